"""Cautious updates (Liang et al., 2024, "Cautious Optimizers", arXiv
2411.16085), for Lion.

Lion's update is ``u = sign(c)``. The cautious update keeps a coordinate
only where ``u`` and the gradient ``g`` agree in sign, and scales what is
kept so that the update's mean magnitude over the tensor stays 1::

    keep  = (u * g > 0)                       (elementwise)
    t     = u * keep                          (ternary: -1, 0 or 1)
    scale = n / sum(keep)                     (one scalar per tensor)
    p    <- p - lr * scale * t

with ``n`` the tensor's number of elements. When every coordinate agrees,
``t = u`` and ``scale = 1``: plain Lion. When none agrees (``sum(keep) =
0``), ``t = 0`` and the parameter does not move (the decoupled weight
decay still applies); ``scale`` is then 1.

The rule is a function from ``(u, g)`` to ``(t, scale)``: the ternary
``t`` can be exchanged as packed 2-bit signs and the scalar applied after
the exchange.
"""

import math

from keras import ops


def mask(u, g):
    """``(t, scale)`` of the cautious update: ``t`` the ternary update in
    ``u``'s dtype, ``scale`` a float32 scalar (1 when nothing is kept).

    ``u``: the sign of Lion's interpolation; ``g``: the gradient (any float
    dtype; only its sign counts).
    """
    keep = ops.greater(ops.multiply(ops.sign(ops.cast(g, u.dtype)), u), 0)
    t = ops.where(keep, u, ops.zeros_like(u))
    kept = ops.sum(ops.cast(keep, "float32"))
    n = float(max(1, math.prod(u.shape)))
    scale = ops.where(ops.greater(kept, 0), n / ops.maximum(kept, 1.0), 1.0)
    return t, scale


def foreach_(us, gs):
    """``mask`` on lists of torch tensors, in place: each ``u`` in ``us``
    becomes ``scale * t`` (multi-tensor operations, no host round trip).

    ``us``: signs; ``gs``: the gradients, same shapes and dtype; the count
    and the scale are float32.
    """
    import torch

    keep = torch._foreach_mul(us, gs)
    torch._foreach_sign_(keep)
    torch._foreach_clamp_min_(keep, 0.0)  # 1 where kept, else 0
    kept = torch.stack(torch._foreach_norm(keep, 1, dtype=torch.float32))
    n = torch.tensor([float(max(1, u.numel())) for u in us], device=kept.device)
    scale = torch.where(kept > 0, n / kept.clamp_min(1.0), 1.0)
    torch._foreach_mul_(us, keep)
    torch._foreach_mul_(us, list(scale.unbind()))
