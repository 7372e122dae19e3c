"""The torch multi-tensor step for 16-bit weights under a rounding store.

``lionr._torch_kernel`` cuts the parameters, momenta and (``"kahan"``) the
compensation buffers into cache-sized pieces and groups, as for any other
step; this module runs the step of ``lionr.rounding`` on a group, in float32
scratch, with the operations and roundings of ``Lion.update_step`` and
``lionr.rounding.lion_step`` in the same order, so that parameters, momenta
and buffers get the bits of the per-variable path::

    w  = p (+ e)                        widened to float32
    w  = w - w * (wd * lr)              weights under decay
    c  = m * b1 + g * (1 - b1)          each product rounded, then the sum
    w  = w - lr * sign(c)
    m  = m * b2 + g * (1 - b2)
    p  = rn(w), e = rn(w - p)           "kahan"
    p  = sr(w)                          "stochastic"

For ``"stochastic"`` the bits of ``lionr.random_bits`` are drawn a piece at
a time: ``(start + i + key) * C1`` is ``i * C1 + (start + key) * C1`` modulo
2**32, so a cached ``i * C1`` and one scalar per piece give the first
product. Nothing is read back to the host.
"""

import torch

from lionr import random_bits
from lionr import rounding


def _cached(optimizer, name, make, n, dtype, device):
    """A cached tensor of at least ``n`` elements, built by ``make(n)``."""
    cache = optimizer.__dict__.setdefault("_lionr_scratch", {})
    key = (name, dtype, device)
    buf = cache.get(key)
    if buf is None or buf.numel() < n:
        buf = cache[key] = make(max(n, 1))
    return buf


def _index_times_c1(optimizer, n, device):
    """``i * C1`` (int32, wrapping) for ``i`` in ``[0, n)``."""

    def make(k):
        return torch.arange(k, dtype=torch.int32, device=device).mul_(
            random_bits.C1
        )

    return _cached(optimizer, "index_c1", make, n, torch.int32, device)


def _piece_offsets(optimizer, plan):
    """``(variables, positions, starts)``, device tensors cached on the
    plan: the optimizer's indices of the plan's variables, and for every
    piece the position of its variable among them and its first element."""
    table = plan.__dict__.get("_rounding_table")
    if table is None:
        pieces = [x for group in plan.groups for x in group.pieces]
        device = plan.ps[0].device
        variables = sorted({x.var for x in pieces})
        where = {v: i for i, v in enumerate(variables)}
        table = plan._rounding_table = (
            torch.tensor(variables, dtype=torch.int32, device=device),
            torch.tensor([where[x.var] for x in pieces], device=device),
            torch.tensor([x.start for x in pieces], dtype=torch.int32,
                         device=device),
        )
    return table


def _piece_scalars(optimizer, plan):
    """``(start + key) * C1`` per piece: int32 scalars on the device."""
    variables, positions, starts = _piece_offsets(optimizer, plan)
    store = next(r for r in optimizer._rounders if r is not None)
    seed = rounding.seed_value(store.seed)
    keys = random_bits.key(seed, optimizer.iterations, variables)
    return (keys[positions] + starts).mul_(random_bits.C1)


def step(optimizer, plan, grads, lr, betas):
    """One step of ``plan`` (a ``_torch_kernel._Plan`` under a rounding
    store); ``lr``: float32 0-d tensor; ``betas`` as given."""
    from lionr._torch_kernel import _device_scalar
    from lionr._torch_kernel import mul_into

    f32 = torch.float32
    device = plan.ps[0].device
    b1, b2 = (_device_scalar(b, f32, device) for b in betas)
    one_b1, one_b2 = 1.0 - b1, 1.0 - b2
    decay = None
    if optimizer.weight_decay is not None:
        decay = _device_scalar(optimizer.weight_decay, f32, device) * lr
    kahan = plan.rounded == "kahan"
    n = plan.widest
    w_buf = _cached(optimizer, "w", lambda k: torch.empty(k, dtype=f32,
                    device=device), n, f32, device)
    g_buf = _cached(optimizer, "g", lambda k: torch.empty(k, dtype=f32,
                    device=device), n, f32, device)
    if not kahan:
        scalars = _piece_scalars(optimizer, plan)
        index_c1 = _index_times_c1(optimizer, min(plan.chunk, n), device)
        x_buf = _cached(optimizer, "x", lambda k: torch.empty(
            k, dtype=torch.int32, device=device), n, torch.int32, device)
        y_buf = _cached(optimizer, "y", lambda k: torch.empty(
            k, dtype=torch.int32, device=device), n, torch.int32, device)
    g_pieces = plan.grad_pieces(grads, convert=False)
    first = 0
    for group in plan.groups:
        gs = [g_pieces[k] for k in group.where]
        ws, ts, cs = group.views(w_buf), group.spare, group.cs
        torch._foreach_copy_(ws, group.ps)
        if kahan:
            # Widened by a copy first: an operation on mixed dtypes runs
            # unvectorized here, slower than the copy and the operation.
            errors = [x.error for x in group.pieces]
            torch._foreach_copy_(ts, errors)
            torch._foreach_add_(ws, ts)
        decayed = [i for i, x in enumerate(group.pieces) if x.decayed]
        if decay is not None and decayed:
            wd_, td_ = [ws[i] for i in decayed], [ts[i] for i in decayed]
            mul_into(td_, wd_, decay)
            torch._foreach_sub_(wd_, td_)
        if any(g.dtype != f32 for g in gs):
            g32 = group.views(g_buf)
            torch._foreach_copy_(g32, gs)
            gs = g32
        group.load()
        ms = group.work
        mul_into(cs, ms, b1)
        mul_into(ts, gs, one_b1)
        torch._foreach_add_(cs, ts)
        torch._foreach_sign_(cs)
        torch._foreach_mul_(cs, lr)
        torch._foreach_sub_(ws, cs)
        torch._foreach_mul_(ms, b2)
        mul_into(ts, gs, one_b2)
        torch._foreach_add_(ms, ts)
        group.store()
        if kahan:
            torch._foreach_copy_(group.ps, ws)
            torch._foreach_copy_(ts, group.ps)
            torch._foreach_sub_(ws, ts)  # w - p, exact in float32
            torch._foreach_copy_(errors, ws)
            continue
        for j, (p, w) in enumerate(zip(group.ps, ws)):
            k = w.numel()
            round_piece(w, index_c1[:k], scalars[first + j], x_buf[:k], y_buf[:k])
            p.copy_(w)
        first += len(group.ps)


def round_piece(w, index_c1, scalar, x, y):
    """Float32 ``w`` rounded in place to bfloat16 values (kept as float32)
    with the bits ``random_bits.bits16(start + i, key)``, given
    ``index_c1 = i * C1`` and ``scalar = (start + key) * C1``; ``x``, ``y``:
    int32 scratch like ``w``. Gives the bits of ``rounding.cut_with_noise``.
    """
    torch.add(index_c1, scalar, out=x)
    torch.bitwise_right_shift(x, 15, out=y)
    x.bitwise_xor_(y).mul_(random_bits.C2)
    torch.bitwise_right_shift(x, 16, out=y)
    x.bitwise_xor_(y).mul_(random_bits.C3)
    x.bitwise_right_shift_(16).bitwise_and_(random_bits.LOW16)
    # r = (w + noise) & ~0xFFFF on the bits, into x
    bits = w.view(torch.int32)
    x.add_(bits).bitwise_and_(-(1 << 16))
    # where(isnan(w), w, r) in integer operations (torch's isnan and where
    # cost several times more): y = -1 where |w|'s bits exceed infinity's
    # (NaN), else 0; then w <- r ^ ((w ^ r) & y).
    torch.bitwise_and(bits, 0x7FFFFFFF, out=y).add_(0x007FFFFF)
    y.clamp_(-1, 0)
    bits.bitwise_xor_(x).bitwise_and_(y).bitwise_xor_(x)
