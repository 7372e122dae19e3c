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

Each element goes through the operations of Keras's own torch Lion (and
Keras's torch weight decay ``p *= 1 - wd*lr``), in the same order and
precision; splitting a tensor at multiples of ``CHUNK`` (itself a multiple
of every SIMD width) changes no rounding. ``Lion`` hands this kernel betas
already in the parameters' dtype, so ``1 - beta`` is rounded as on jax and
tensorflow: the parameters are then bit-identical to
``keras.optimizers.Lion`` on torch, and the momentum, where Keras's torch
Lion takes ``1 - beta`` in double precision, is a few ulp from it and
closer to the float64 rule.

A momentum stored in bfloat16 is widened into a scratch copy in the
parameters' dtype for the step and rounded back (to nearest, as a cast
does) after it. int8 block storage takes Keras's per-variable path.
"""

import torch
from keras.src.backend.common.stateless_scope import in_stateless_scope
from keras.src.backend.common.variables import get_autocast_scope

from lionr import state

CHUNK = 1 << 18  # elements per piece (1 MiB of float32)
GROUP = 1 << 18  # elements per cache-resident group


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

    ``ps``/``ms``: pieces of the parameters and of their stored momenta;
    ``work``: the momenta as the step computes with them (``ms`` itself,
    or for a momentum stored in another dtype, a scratch view in the
    parameters' dtype, filled from ``stored`` before the step and written
    back after it); ``cs``: scratch views for ``c``; ``decayed``: the pieces
    of ``ps`` under weight decay; ``where``: which gradient pieces match.
    """

    def __init__(self, pieces, c_buf, m_buf):
        self.ps = [x[0] for x in pieces]
        self.ms = [x[1] for x in pieces]
        self.decayed = [x[0] for x in pieces if x[2]]
        self.where = [x[3] for x in pieces]
        self.cs, self.work, self.stored, self.staged = [], [], [], []
        at = 0
        for pp, mm, _, _ in pieces:
            n = pp.numel()
            self.cs.append(c_buf[at : at + n])
            if mm.dtype == pp.dtype:
                self.work.append(mm)
            else:
                self.stored.append(mm)
                self.staged.append(m_buf[at : at + n])
                self.work.append(self.staged[-1])
            at += n


class _Plan:
    """How one list of variables is cut into cache-resident groups.

    Built once per list of variables and reused while the variables and
    their momenta keep their tensors.
    """

    def __init__(self, optimizer, variables, ps):
        index = optimizer._get_variable_index
        self.slot_vars = [optimizer._slots[index(v)].slot for v in variables]
        self.ps = ps
        self.ms = _tensors(self.slot_vars)
        decayed = [optimizer._use_weight_decay(v) for v in variables]
        c_buf, m_buf = _scratch(optimizer, ps[0].dtype, ps[0].device)
        self.groups = []
        current, size, k = [], 0, 0
        for p, m, wd in zip(ps, self.ms, decayed):
            for pp, mm in zip(_pieces(p), _pieces(m)):
                n = pp.numel()
                if current and size + n > GROUP:
                    self.groups.append(_Group(current, c_buf, m_buf))
                    current, size = [], 0
                current.append((pp, mm, wd, k))
                size += n
                k += 1
        if current:
            self.groups.append(_Group(current, c_buf, m_buf))

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
            out.extend(_pieces(g))
        return out


def _supported(optimizer, variables, ps):
    """True when ``apply`` can update all of ``variables`` (tensors ``ps``):
    float32 or bfloat16 momenta (not int8 blocks), one parameter dtype,
    contiguous storage (updated in place through flat views)."""
    slots = optimizer._slots
    index = optimizer._get_variable_index
    dtype = ps[0].dtype
    for v, p in zip(variables, ps):
        s = slots[index(v)]
        if not isinstance(s, state.Plain) or p.dtype != dtype:
            return False
        if not (p.is_contiguous() and s.slot.value.is_contiguous()):
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


def _pieces(t):
    """Views of ``t`` (flattened) of at most ``CHUNK`` elements each."""
    flat = t.reshape(-1)
    if flat.numel() <= CHUNK:
        return [flat]
    return list(flat.split(CHUNK))


def _scratch(optimizer, dtype, device):
    """Reusable buffers for ``c`` and for momenta stored in another dtype,
    each large enough for one group (kept off Keras's variable tracking)."""
    cache = optimizer.__dict__.setdefault("_lionr_scratch", {})
    key = (dtype, device)
    if key not in cache:
        buf = torch.empty(2 * (GROUP + CHUNK), dtype=dtype, device=device)
        cache[key] = buf.split(GROUP + CHUNK)
    return cache[key]


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
        if group.stored:
            torch._foreach_copy_(group.staged, group.stored)
        # c = b1*m + (1-b1)*g, exactly as torch._foreach_mul / _foreach_add_.
        torch._foreach_copy_(cs, ms)
        torch._foreach_mul_(cs, b1)
        torch._foreach_add_(cs, gs, alpha=one_b1)
        torch._foreach_sign_(cs)
        torch._foreach_add_(group.ps, cs, alpha=-lr)
        torch._foreach_mul_(ms, b2)
        torch._foreach_add_(ms, gs, alpha=one_b2)
        if group.stored:
            torch._foreach_copy_(group.stored, group.staged)
    return True
