"""The Lion step on torch, cache-blocked.

Eager torch runs one kernel per operation, and each kernel streams its
operands through main memory: written naively, one Lion step makes about
eight passes over parameter-sized arrays (weight decay, ``c = b1*m``,
``c += (1-b1)*g``, ``sign``, ``p -= lr*c``, ``m *= b2``, ``m += (1-b2)*g``),
some 70 bytes of memory traffic per parameter where 20 would do (read
``p, g, m``; write ``p, m``).

Here every tensor is cut into pieces of at most ``CHUNK`` elements, and the
pieces are taken in groups of about ``GROUP`` elements. All operations of
the step run on one group before the next one starts, so the group's
``p, g, m`` and the scratch ``c`` stay in cache between operations and main
memory sees little more than the 20 bytes. Within a group the operations
are multi-tensor (``torch._foreach_*``), so small tensors cost one call per
group, not one per tensor. How a list of variables is cut (``_Plan``) is
worked out once and reused at every step while the variables keep their
tensors, so the Python work per step stays below Keras's own torch Lion.

That cut is for the CPU. On an accelerator (CUDA, MPS, ...) every operation
is a kernel launch and no CPU cache is to be kept warm, so there each
tensor is one piece and all pieces one group (``_cut``): the step is then
one multi-tensor call per operation over whole tensors, with the same
arithmetic as the blocked step, and gives the same bits.

Each element goes through the operations of Keras's own torch Lion (and
Keras's torch weight decay ``p *= 1 - wd*lr``), in the same order and
precision; splitting a tensor at multiples of ``CHUNK`` (itself a multiple
of every SIMD width) changes no rounding. ``Lion`` hands this kernel betas
already in the parameters' dtype, so ``1 - beta`` is rounded as on jax and
tensorflow: the parameters are then bit-identical to
``keras.optimizers.Lion`` on torch, and the momentum, where Keras's torch
Lion takes ``1 - beta`` in double precision, is a few ulp from it and
closer to the float64 rule.

With ``cautious`` (``lionr.cautious``) the scale is one number per tensor,
so every tensor is one piece and all pieces one group, as on an
accelerator.

A momentum stored in bfloat16 is widened into a scratch copy in the
parameters' dtype for the step and rounded back (to nearest, as a cast
does) after it. A momentum stored as int8 blocks (float32 parameters only)
is decoded into the same scratch, a piece at a time, and encoded again
after the step, to the bits of ``lionr.state.Blockwise`` (the same
roundings; only the sign is applied after the rounding, which commutes with
it): pieces start at multiples of ``CHUNK``, itself a multiple of
the block size, so a piece holds whole blocks (the tensor's last piece
ends in its zero-padded last block).
"""

import sys

import torch

from keras.src.backend.common.stateless_scope import in_stateless_scope
from keras.src.backend.common.variables import get_autocast_scope

from lionr import cautious
from lionr import state

# A group's p, g, m and c take 8 MiB in float32: within the last-level
# cache of a server CPU, and few enough groups that the per-call cost of
# eager torch stays small. On the 2-core development machine (32 MiB L3),
# 2**19 was fastest of 2**18 to 2**21 at 1e6, 1e7 and 3e7 parameters.
CHUNK = 1 << 19  # elements per piece (2 MiB of float32)
GROUP = 1 << 19  # elements per cache-resident group
WHOLE = (sys.maxsize, sys.maxsize)  # (chunk, group): no cut at all


# Off the CPU, a step under a rounding store needs several float32 scratch
# buffers as large as a group: there groups are cut at this many elements
# (64 MiB of float32 each) rather than kept whole.
ROUNDED_GROUP = 1 << 24


def _cut(device, rounded=None):
    """``(chunk, group)`` for tensors on ``device``: cache-sized pieces and
    groups on the CPU; elsewhere whole tensors in a single group, or pieces
    and groups of ``ROUNDED_GROUP`` elements under a rounding store."""
    if device.type == "cpu":
        return CHUNK, GROUP
    if rounded:
        return ROUNDED_GROUP, ROUNDED_GROUP
    return WHOLE


def _device_scalar(x, dtype, device):
    """``x`` (a number, a 0-d tensor or a Keras variable) as a 0-d tensor of
    ``dtype`` on ``device``, rounded as ``ops.cast`` rounds; a tensor stays
    on its device (no read back to the host)."""
    x = getattr(x, "value", x)
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    return torch.full((), float(x), dtype=dtype, device=device)


def _rate(b, like):
    """``(b, 1 - b)`` for a beta, computed in ``like``'s dtype (as
    ``Lion.update_step`` computes them): ``b`` as a 0-d tensor on ``like``'s
    device (the multi-tensor ``mul_`` with a tensor is several times faster
    on CPU than with a Python number); ``1 - b`` as a Python float when the
    user gave ``b`` as a number (the ``alpha`` of ``_foreach_add_``, as
    Keras's torch Lion uses it), else as a 0-d tensor, so that the step
    never waits for the device."""
    b_t = _device_scalar(b, like.dtype, like.device)
    if isinstance(b, (int, float)):
        return b_t, _host_one_minus(b, like.dtype)
    return b_t, 1 - b_t


def _host_one_minus(b, dtype):
    """``1 - b`` rounded in torch ``dtype``, computed on the host."""
    import ml_dtypes
    import numpy as np

    name = str(dtype).rsplit(".", 1)[-1]
    np_dtype = ml_dtypes.bfloat16 if name == "bfloat16" else np.dtype(name)
    one, b = np.asarray(1, np_dtype), np.asarray(b).astype(np_dtype)
    return float(one - b)


def _tensors(variables):
    """The torch tensors behind Keras variables.

    Outside a stateless scope and an autocast scope, ``Variable.value`` is
    the variable's own tensor; reading it directly saves Keras's per-call
    checks, which would otherwise cost more than the update of a small model.
    """
    if in_stateless_scope() or get_autocast_scope() is not None:
        return [v.value for v in variables]
    return [v._value for v in variables]


class _Group:
    """One cache-resident group of pieces, and the views the step works on.

    ``ps``: pieces of the parameters; ``work``: the momenta as the step
    computes with them, in the compute dtype (the parameters', or float32
    under a rounding store): the stored momentum itself, or a view of the
    scratch ``m_buf``, filled before the step and written back after it
    (``load``, ``store``) from pieces stored in another dtype (``stored``,
    staged in ``staged``) or from int8 ``blocks``; ``cs`` and ``spare``:
    scratch views (``c``, and ``a * g`` for a beta given as a tensor);
    ``decayed``: the pieces of ``ps`` under weight decay; ``where``: which
    gradient pieces match; ``pieces``: the ``_Piece`` objects.
    """

    def __init__(self, pieces, c_buf, m_buf, spare_buf):
        self.pieces = pieces
        self.scratch = c_buf
        self.ps = [x.p for x in pieces]
        self.decayed = [x.p for x in pieces if x.decayed]
        self.where = [x.k for x in pieces]
        self.cs, self.spare, self.work, self.stored, self.staged, self.blocks = (
            [], [], [], [], [], []
        )
        at = staged = 0
        for x in pieces:
            n = x.p.numel()
            self.cs.append(c_buf[at : at + n])
            self.spare.append(spare_buf[at : at + n])
            at += n
            scratch = m_buf[staged : staged + x.staged(c_buf.dtype)]
            staged += x.staged(c_buf.dtype)
            if x.codes is not None:
                rows = x.codes.shape[0]
                self.blocks.append((x.codes, x.scales, scratch.view(rows, -1)))
                self.work.append(scratch[:n])
            elif x.m.dtype != c_buf.dtype:
                self.stored.append(x.m)
                self.staged.append(scratch)
                self.work.append(scratch)
            else:
                self.work.append(x.m)

    def views(self, buf):
        """Views of flat ``buf`` laid out as ``cs`` is (one per piece)."""
        out, at = [], 0
        for x in self.pieces:
            n = x.p.numel()
            out.append(buf[at : at + n])
            at += n
        return out

    def load(self):
        """Fill the scratch momenta from their stored forms (before the
        step, while ``cs`` is free to serve as scratch)."""
        if self.stored:
            torch._foreach_copy_(self.staged, self.stored)
        for codes, scales, block in self.blocks:
            _decode(codes, scales, block, self._scratch_like(block))

    def store(self):
        """Write the scratch momenta back to their stored forms."""
        if self.stored:
            torch._foreach_copy_(self.stored, self.staged)
        for codes, scales, block in self.blocks:
            _encode(block, codes, scales, self._scratch_like(block))

    def _scratch_like(self, block):
        return self.scratch[: block.numel()].view_as(block)


def _decode(codes, scales, block, scratch):
    """``block <- (q * |q|) * (s / 127**2)``, as ``Blockwise.read``."""
    block.copy_(codes)
    torch.abs(block, out=scratch)
    block.mul_(scratch)
    block.mul_(scales * (1.0 / state.LEVELS**2))


def _encode(block, codes, scales, scratch):
    """Codes and scales of ``block`` (destroyed), as ``state._quantize``:
    ``round(sign(m) * sqrt(|m| * k))``, ``k = min(127**2 / s, FLOAT32_MAX)``."""
    torch.abs(block, out=scratch)
    torch.amax(scratch, dim=1, keepdim=True, out=scales)
    factor = (state.LEVELS**2 / scales).clamp_(max=state.FLOAT32_MAX)
    scratch.mul_(factor).sqrt_().round_()  # rounding commutes with the sign
    codes.copy_(block.sign_().mul_(scratch))


class _Piece:
    """At most ``CHUNK`` elements of one parameter and of its momentum:
    ``m`` (float32 or bfloat16 storage), or ``codes`` and ``scales`` (int8
    blocks: the rows of the blocks the piece falls in). ``var``: the
    parameter's index among the optimizer's variables; ``start``: the
    piece's first element in the flattened parameter; ``error``: the piece
    of a Kahan buffer, if any."""

    def __init__(self, p, decayed, k, m=None, codes=None, scales=None):
        self.p, self.decayed, self.k = p, decayed, k
        self.m, self.codes, self.scales = m, codes, scales
        self.var, self.start, self.error = 0, 0, None

    def staged(self, compute):
        """Elements of scratch the step works in for this piece's momentum
        (``compute``: the dtype the step computes in): whole blocks for
        int8, the piece for another dtype, else none."""
        if self.codes is not None:
            return self.codes.numel()
        return self.p.numel() if self.m.dtype != compute else 0


def _slot_variables(slot):
    """The Keras variables a momentum store keeps."""
    if isinstance(slot, state.Blockwise):
        return [slot.codes, slot.scales]
    return [slot.slot]


def _slot_pieces(slot, stored, p, decayed, k, chunk):
    """``_Piece``s of at most ``chunk`` elements of parameter tensor ``p``,
    whose momentum store ``slot`` keeps the tensors ``stored``; ``k``
    numbers the first."""
    ps = _pieces(p, chunk)
    if isinstance(slot, state.Blockwise):
        rows = chunk // state.BLOCK
        codes, scales = (t.split(rows) for t in stored)
        return [
            _Piece(pp, decayed, k + i, codes=c, scales=s)
            for i, (pp, c, s) in enumerate(zip(ps, codes, scales))
        ]
    ms = _pieces(stored[0], chunk)
    return [
        _Piece(pp, decayed, k + i, m=mm) for i, (pp, mm) in enumerate(zip(ps, ms))
    ]


class _Plan:
    """How one list of variables is cut into cache-resident groups.

    Built once per list of variables and reused while the variables and
    their momenta keep their tensors. ``rounded``: the optimizer's
    ``weight_rounding`` when the variables are under a ``lionr.rounding``
    store (the step then computes in float32), else None.
    """

    def __init__(self, optimizer, variables, ps):
        index = optimizer._get_variable_index
        slots = [optimizer._slots[index(v)] for v in variables]
        rounders = [optimizer._rounders[index(v)] for v in variables]
        self.rounded = optimizer.weight_rounding if rounders[0] else None
        self.compute = torch.float32 if self.rounded else ps[0].dtype
        self.slot_vars = [x for s in slots for x in _slot_variables(s)]
        self.error_vars = [r.error for r in rounders if hasattr(r, "error")]
        self.ps = ps
        self.cautious = optimizer.cautious
        # A cautious scale needs the whole tensor: no cut.
        self.chunk, group = (
            WHOLE if self.cautious else _cut(ps[0].device, self.rounded)
        )
        self.ms = _tensors(self.slot_vars)
        self.es = _tensors(self.error_vars)
        pieces, at = [], 0
        for i, (v, p, slot) in enumerate(zip(variables, ps, slots)):
            count = len(_slot_variables(slot))
            stored, at = self.ms[at : at + count], at + count
            decayed = optimizer._use_weight_decay(v)
            mine = _slot_pieces(slot, stored, p, decayed, len(pieces), self.chunk)
            errors = _pieces(self.es[i], self.chunk) if self.es else None
            for j, piece in enumerate(mine):
                piece.var, piece.start = index(v), j * self.chunk
                piece.error = errors[j] if errors else None
            pieces.extend(mine)
        cut, current, size = [], [], 0
        for piece in pieces:
            n = piece.p.numel()
            if current and size + n > group:
                cut.append(current)
                current, size = [], 0
            current.append(piece)
            size += n
        cut.append(current)
        # c takes a group's elements; int8 decoding, one piece's whole blocks.
        compute = self.compute
        self.widest = max(
            sum(max(x.p.numel(), x.staged(compute)) for x in c) for c in cut
        )
        staged = max(sum(x.staged(compute) for x in c) for c in cut)
        device = ps[0].device
        c_buf, m_buf, spare = _scratch(
            optimizer, compute, device, ("c", self.widest), ("m", staged),
            ("spare", self.widest),
        )
        self.scratch_like = c_buf
        self.groups = [_Group(c, c_buf, m_buf, spare) for c in cut]

    def valid(self, ps):
        """True while every variable and momentum keeps the planned tensor."""
        return all(a is b for a, b in zip(ps, self.ps)) and all(
            a is b
            for a, b in zip(
                _tensors(self.slot_vars + self.error_vars), self.ms + self.es
            )
        )

    def grad_pieces(self, grads, convert=True):
        """The gradients cut like the parameters, in the parameters' dtype
        (or as they come, without ``convert``)."""
        out = []
        for g, p in zip(grads, self.ps):
            if convert and g.dtype != p.dtype:
                g = g.to(p.dtype)
            out.extend(_pieces(g, self.chunk))
        return out


def _supported(optimizer, variables, ps):
    """True when ``apply`` can update all of ``variables`` (tensors ``ps``):
    one parameter dtype, contiguous storage (updated in place through flat
    views), all under the same rounding (none, or a ``lionr.rounding``
    store), and momenta in float32 or bfloat16, or in int8 blocks where the
    step computes in float32. Cautious updates under a rounding store take
    the per-variable step (the fused rounding step has no mask)."""
    slots = optimizer._slots
    index = optimizer._get_variable_index
    dtype = ps[0].dtype
    rounders = [optimizer._rounders[index(v)] for v in variables]
    if len({r is None for r in rounders}) > 1:
        return False
    if optimizer.cautious and rounders[0] is not None:
        return False
    compute = torch.float32 if rounders[0] else dtype
    for v, p, r in zip(variables, ps, rounders):
        s = slots[index(v)]
        if p.dtype != dtype or not p.is_contiguous():
            return False
        if isinstance(s, state.Blockwise) and (
            compute != torch.float32 or s.grouping.sharded
        ):
            return False
        held = _slot_variables(s) + ([r.error] if hasattr(r, "error") else [])
        if not all(x.value.is_contiguous() for x in held):
            return False
    return True


def _plan(optimizer, variables):
    """The cached ``_Plan`` for ``variables``, or None if unsupported."""
    if not variables:
        return None
    ps = _tensors(variables)
    cache = optimizer.__dict__.setdefault("_lionr_plans", {})
    key = tuple(map(id, variables))
    plan = cache.get(key)
    if plan is not None and plan.valid(ps):
        return plan
    if not _supported(optimizer, variables, ps):
        return None
    if len(cache) >= 4:
        cache.clear()
    plan = cache[key] = _Plan(optimizer, variables, ps)
    return plan


def supports(optimizer, variables):
    """True when ``apply`` can update all of ``variables``."""
    return _plan(optimizer, list(variables)) is not None


def _pieces(t, chunk):
    """Views of ``t`` (flattened) of at most ``chunk`` elements each."""
    flat = t.reshape(-1)
    if flat.numel() <= chunk:
        return [flat]
    return list(flat.split(chunk))


def _scratch(optimizer, dtype, device, *wanted):
    """Reusable flat buffers of ``dtype`` on ``device``, one per ``(name,
    elements)`` in ``wanted``, each at least that long (kept off Keras's
    variable tracking, shared by all plans)."""
    cache = optimizer.__dict__.setdefault("_lionr_scratch", {})
    out = []
    for name, n in wanted:
        key = (name, dtype, device)
        buf = cache.get(key)
        if buf is None or buf.numel() < n:
            buf = cache[key] = torch.empty(max(n, 1), dtype=dtype, device=device)
        out.append(buf)
    return out


@torch.no_grad()
def apply(optimizer, grads, variables, learning_rate, betas, decay=None):
    """One Lion step for all ``variables``; returns False if unsupported.

    ``decay`` is the factor ``1 - wd*lr`` (a 0-d tensor) when the decoupled
    weight decay is folded into this step, else None (weights under a
    ``lionr.rounding`` store take it in their float32 step instead).
    ``betas`` as given (numbers or tensors). Nothing is read back to the
    host: the learning rate and the betas stay 0-d tensors on the device.
    """
    plan = _plan(optimizer, variables)
    if plan is None:
        return False
    like = plan.scratch_like
    lr = _device_scalar(learning_rate, like.dtype, like.device)
    if plan.rounded is not None:
        from lionr import _torch_rounding

        _torch_rounding.step(optimizer, plan, grads, lr, betas)
        return True
    (b1, one_b1), (b2, one_b2) = (_rate(b, like) for b in betas)
    g_pieces = plan.grad_pieces(grads)
    for group in plan.groups:
        gs = [g_pieces[k] for k in group.where]
        if decay is not None and group.decayed:
            torch._foreach_mul_(group.decayed, decay)
        ms, cs = group.work, group.cs
        group.load()
        # c = b1*m + (1-b1)*g, exactly as torch._foreach_mul / _foreach_add_.
        mul_into(cs, ms, b1)
        _add_scaled(cs, gs, one_b1, group.spare)
        torch._foreach_sign_(cs)
        if plan.cautious:
            cautious.foreach_(cs, gs)
        torch._foreach_mul_(cs, lr)
        torch._foreach_sub_(group.ps, cs)
        torch._foreach_mul_(ms, b2)
        _add_scaled(ms, gs, one_b2, group.spare)
        group.store()
    return True


def _add_scaled(xs, gs, a, spare):
    """``xs += a * gs``: one fused multiply-add (``alpha``, as Keras's torch
    Lion) for a number ``a``; for a tensor ``a``, ``a * gs`` rounded into
    ``spare`` (views like ``xs``) and added, as ``Lion.update_step`` does."""
    if not isinstance(a, torch.Tensor):
        torch._foreach_add_(xs, gs, alpha=a)
        return
    mul_into(spare, gs, a)
    torch._foreach_add_(xs, spare)


# Up to this many pieces in a group, ``mul_into`` makes one call per piece.
FEW_PIECES = 4


def mul_into(out, xs, a):
    """``out <- xs * a`` (``a`` a number or 0-d tensor): one pass over
    memory per piece (``torch.mul`` with ``out``) where the group has few
    pieces, else a multi-tensor copy and multiply (two passes, two calls).
    The same product either way."""
    if len(out) <= FEW_PIECES:
        for o, x in zip(out, xs):
            torch.mul(x, a, out=o)
        return
    torch._foreach_copy_(out, xs)
    torch._foreach_mul_(out, a)
