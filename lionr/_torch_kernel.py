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
group, not one per tensor.

Each element goes through the operations of Keras's own torch Lion (and
Keras's torch weight decay ``p *= 1 - wd*lr``), in the same order and
precision; splitting a tensor at multiples of ``CHUNK`` (itself a multiple
of every SIMD width) changes no rounding. ``Lion`` hands this kernel betas
already in the parameters' dtype, so ``1 - beta`` is rounded as on jax and
tensorflow: the parameters are then bit-identical to
``keras.optimizers.Lion`` on torch, and the momentum, where Keras's torch
Lion takes ``1 - beta`` in double precision, is a few ulp from it and
closer to the float64 rule.
"""

import torch

from lionr import state

CHUNK = 1 << 18  # elements per piece (1 MiB of float32)
GROUP = 1 << 18  # elements per cache-resident group


def _scalar(x):
    """A Python float for ``x`` (a number, a 0-d tensor or a Keras variable)."""
    if isinstance(x, (int, float)):
        return float(x)
    x = getattr(x, "value", x)
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


def _rate(b):
    """``(b, 1 - b)`` as Python floats, with ``1 - b`` computed as Keras does.

    For a Python number, ``1 - b`` is taken in double precision (as Keras's
    torch Lion does); for a tensor, in the tensor's own dtype (as
    ``Lion.update_step`` does).
    """
    if isinstance(b, (int, float)):
        return float(b), 1.0 - float(b)
    b = getattr(b, "value", b)
    if isinstance(b, torch.Tensor):
        return float(b.item()), float((1 - b).item())
    return float(b), 1.0 - float(b)


def supports(optimizer, variables):
    """True when ``apply`` can update all of ``variables``."""
    slots = optimizer._slots
    index = optimizer._get_variable_index
    dtype = variables[0].dtype if variables else None
    for v in variables:
        s = slots[index(v)]
        if not isinstance(s, state.Plain) or s.cast or v.dtype != dtype:
            return False
        # In-place updates through flat views need contiguous storage.
        if not (v.value.is_contiguous() and s.slot.value.is_contiguous()):
            return False
    return True


def _pieces(t):
    """Views of ``t`` (flattened) of at most ``CHUNK`` elements each."""
    flat = t.reshape(-1)
    n = flat.numel()
    if n <= CHUNK:
        return [flat]
    return list(flat.split(CHUNK))


def _scratch(optimizer, dtype, device):
    """A reusable ``GROUP``-element buffer for ``c`` (kept off Keras tracking)."""
    cache = optimizer.__dict__.setdefault("_lionr_scratch", {})
    key = (dtype, device)
    buf = cache.get(key)
    if buf is None:
        buf = torch.empty(GROUP + CHUNK, dtype=dtype, device=device)
        cache[key] = buf
    return buf


@torch.no_grad()
def apply(optimizer, grads, variables, learning_rate, betas, decay=None):
    """One Lion step for all ``variables``; returns False if unsupported.

    ``decay`` is the factor ``1 - wd*lr`` (a 0-d tensor) when the decoupled
    weight decay is folded into this step, else None.
    """
    if not variables or not supports(optimizer, variables):
        return False
    slots = optimizer._slots
    index = optimizer._get_variable_index
    (b1, one_b1), (b2, one_b2) = (_rate(b) for b in betas)
    lr = _scalar(learning_rate)
    decayed = (
        [optimizer._use_weight_decay(v) for v in variables]
        if decay is not None
        else [False] * len(variables)
    )
    p0 = variables[0].value
    buf = _scratch(optimizer, p0.dtype, p0.device)

    groups = []  # lists of (p, g, m, decayed) pieces, ~GROUP elements each
    current, size = [], 0
    for v, g, wd in zip(variables, grads, decayed):
        p = v.value
        m = slots[index(v)].slot.value
        g = g.to(p.dtype)
        for pp, gg, mm in zip(_pieces(p), _pieces(g), _pieces(m)):
            n = pp.numel()
            if current and size + n > GROUP:
                groups.append(current)
                current, size = [], 0
            current.append((pp, gg, mm, wd))
            size += n
    if current:
        groups.append(current)

    for group in groups:
        ps = [x[0] for x in group]
        gs = [x[1] for x in group]
        ms = [x[2] for x in group]
        cs, at = [], 0
        for p in ps:
            n = p.numel()
            cs.append(buf[at : at + n])
            at += n
        if decay is not None:
            dec = [x[0] for x in group if x[3]]
            if dec:
                torch._foreach_mul_(dec, decay)
        # c = b1*m + (1-b1)*g, exactly as torch._foreach_mul / _foreach_add_.
        torch._foreach_copy_(cs, ms)
        torch._foreach_mul_(cs, b1)
        torch._foreach_add_(cs, gs, alpha=one_b1)
        torch._foreach_sign_(cs)
        torch._foreach_add_(ps, cs, alpha=-lr)
        torch._foreach_mul_(ms, b2)
        torch._foreach_add_(ms, gs, alpha=one_b2)
    return True
