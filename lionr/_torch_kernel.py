"""The Lion step on torch with multi-tensor ``_foreach`` operations."""

import torch

from lionr import state


def _scalar(x):
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


@torch.no_grad()
def apply(optimizer, grads, variables, learning_rate, betas):
    slots = [optimizer._slots[optimizer._get_variable_index(v)] for v in variables]
    if not all(
        isinstance(s, state.Plain) and not s.cast for s in slots
    ) or any(v.dtype != variables[0].dtype for v in variables):
        return False
    b1, b2 = (_scalar(b) for b in betas)
    lr = _scalar(learning_rate)
    params = [v.value for v in variables]
    moms = [s.slot.value for s in slots]
    grads = [g.to(p.dtype) for g, p in zip(grads, params)]
    c = torch._foreach_mul(moms, b1)
    torch._foreach_add_(c, grads, alpha=1.0 - b1)
    torch._foreach_sign_(c)
    torch._foreach_add_(params, c, alpha=-lr)
    torch._foreach_mul_(moms, b2)
    torch._foreach_add_(moms, grads, alpha=1.0 - b2)
    return True
