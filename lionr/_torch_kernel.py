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


def _cut(device):
    """``(chunk, group)`` for tensors on ``device``: cache-sized pieces and
    groups on the CPU; whole tensors in a single group elsewhere."""
    if device.type == "cpu":
        return CHUNK, GROUP
    return WHOLE


def _scalar(x):
    """A Python float for ``x`` (a number, a 0-d tensor or a Keras variable)."""
    if isinstance(x, (int, float)):
        return float(x)
    x = getattr(x, "value", x)
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


def _rate(b, like):
    """``(b, 1 - b)`` for a beta: ``b`` as a 0-d tensor of ``like``'s dtype
    and device, ``1 - b`` as a Python float computed in that dtype (as
    ``Lion.update_step`` computes it).

    The multi-tensor ``mul_`` takes ``b`` as a tensor: on CPU it is several
    times faster than with a Python number, for the same float32 product.
    """
    b = getattr(b, "value", b)
    b = torch.as_tensor(b, dtype=like.dtype, device=like.device)
    return b, float((1 - b).item())


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
    computes with them, in the parameters' dtype: the stored momentum
    itself, or a view of the scratch ``m_buf``, filled before the step and
    written back after it (``load``, ``store``) from bfloat16 pieces
    (``stored``, staged in ``staged``) or from int8 ``blocks``; ``cs``:
    scratch views for ``c``; ``decayed``: the pieces of ``ps`` under weight
    decay; ``where``: which gradient pieces match.
    """

    def __init__(self, pieces, c_buf, m_buf):
        self.scratch = c_buf
        self.ps = [x.p for x in pieces]
        self.decayed = [x.p for x in pieces if x.decayed]
        self.where = [x.k for x in pieces]
        self.cs, self.work, self.stored, self.staged, self.blocks = (
            [], [], [], [], []
        )
        at = staged = 0
        for x in pieces:
            n = x.p.numel()
            self.cs.append(c_buf[at : at + n])
            at += n
            scratch = m_buf[staged : staged + x.staged()]
            staged += x.staged()
            if x.codes is not None:
                rows = x.codes.shape[0]
                self.blocks.append((x.codes, x.scales, scratch.view(rows, -1)))
                self.work.append(scratch[:n])
            elif x.m.dtype != x.p.dtype:
                self.stored.append(x.m)
                self.staged.append(scratch)
                self.work.append(scratch)
            else:
                self.work.append(x.m)

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
    blocks: the rows of the blocks the piece falls in)."""

    def __init__(self, p, decayed, k, m=None, codes=None, scales=None):
        self.p, self.decayed, self.k = p, decayed, k
        self.m, self.codes, self.scales = m, codes, scales

    def staged(self):
        """Elements of scratch the step works in for this piece's momentum:
        whole blocks for int8, the piece for another dtype, else none."""
        if self.codes is not None:
            return self.codes.numel()
        return self.p.numel() if self.m.dtype != self.p.dtype else 0


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
    their momenta keep their tensors.
    """

    def __init__(self, optimizer, variables, ps):
        index = optimizer._get_variable_index
        slots = [optimizer._slots[index(v)] for v in variables]
        self.slot_vars = [x for s in slots for x in _slot_variables(s)]
        self.ps = ps
        self.cautious = optimizer.cautious
        # A cautious scale needs the whole tensor: no cut.
        self.chunk, group = WHOLE if self.cautious else _cut(ps[0].device)
        self.ms = _tensors(self.slot_vars)
        pieces, at = [], 0
        for v, p, slot in zip(variables, ps, slots):
            count = len(_slot_variables(slot))
            stored, at = self.ms[at : at + count], at + count
            decayed = optimizer._use_weight_decay(v)
            pieces.extend(
                _slot_pieces(slot, stored, p, decayed, len(pieces), self.chunk)
            )
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
        widest = max(sum(max(x.p.numel(), x.staged()) for x in c) for c in cut)
        staged = max(sum(x.staged() for x in c) for c in cut)
        c_buf, m_buf = _scratch(
            optimizer, ps[0].dtype, ps[0].device, widest, staged
        )
        self.groups = [_Group(c, c_buf, m_buf) for c in cut]

    def valid(self, ps):
        """True while every variable and momentum keeps the planned tensor."""
        return all(a is b for a, b in zip(ps, self.ps)) and all(
            a is b for a, b in zip(_tensors(self.slot_vars), self.ms)
        )

    def grad_pieces(self, grads):
        """The gradients cut like the parameters, in the parameters' dtype."""
        out = []
        for g, p in zip(grads, self.ps):
            if g.dtype != p.dtype:
                g = g.to(p.dtype)
            out.extend(_pieces(g, self.chunk))
        return out


def _supported(optimizer, variables, ps):
    """True when ``apply`` can update all of ``variables`` (tensors ``ps``):
    one parameter dtype, contiguous storage (updated in place through flat
    views), and momenta in float32 or bfloat16, or in int8 blocks beside
    float32 parameters."""
    slots = optimizer._slots
    index = optimizer._get_variable_index
    dtype = ps[0].dtype
    for v, p in zip(variables, ps):
        s = slots[index(v)]
        if p.dtype != dtype or not p.is_contiguous():
            return False
        if isinstance(s, state.Blockwise) and (
            dtype != torch.float32 or s.grouping.sharded
        ):
            return False
        if not all(x.value.is_contiguous() for x in _slot_variables(s)):
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


def _scratch(optimizer, dtype, device, widest, staged):
    """Reusable buffers: one for ``c`` (the widest group, ``widest``
    elements), one of at least ``staged`` elements for momenta stored in
    another form (kept off Keras's variable tracking)."""
    cache = optimizer.__dict__.setdefault("_lionr_scratch", {})
    key = (dtype, device)
    c_buf, m_buf = cache.get(key, (None, None))
    if c_buf is None or c_buf.numel() < widest:
        c_buf = torch.empty(widest, dtype=dtype, device=device)
    if m_buf is None or m_buf.numel() < staged:
        m_buf = torch.empty(max(staged, 1), dtype=dtype, device=device)
    cache[key] = c_buf, m_buf
    return c_buf, m_buf


@torch.no_grad()
def apply(optimizer, grads, variables, learning_rate, betas, decay=None):
    """One Lion step for all ``variables``; returns False if unsupported.

    ``decay`` is the factor ``1 - wd*lr`` (a 0-d tensor) when the decoupled
    weight decay is folded into this step, else None.
    """
    plan = _plan(optimizer, variables)
    if plan is None:
        return False
    (b1, one_b1), (b2, one_b2) = (_rate(b, plan.ps[0]) for b in betas)
    lr = _scalar(learning_rate)
    g_pieces = plan.grad_pieces(grads)
    for group in plan.groups:
        gs = [g_pieces[k] for k in group.where]
        if decay is not None and group.decayed:
            torch._foreach_mul_(group.decayed, decay)
        ms, cs = group.work, group.cs
        group.load()
        # c = b1*m + (1-b1)*g, exactly as torch._foreach_mul / _foreach_add_.
        torch._foreach_copy_(cs, ms)
        torch._foreach_mul_(cs, b1)
        torch._foreach_add_(cs, gs, alpha=one_b1)
        torch._foreach_sign_(cs)
        if plan.cautious:
            cautious.foreach_(cs, gs)
        torch._foreach_add_(group.ps, cs, alpha=-lr)
        torch._foreach_mul_(ms, b2)
        torch._foreach_add_(ms, gs, alpha=one_b2)
        group.store()
    return True
