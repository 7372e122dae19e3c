"""Backend-specific fused update paths.

``apply_fused`` returns True when it has updated every variable itself, and
False to let Keras loop over ``Lion.update_step``. jax and tensorflow
compile the per-variable loop into fused kernels already; torch runs
eagerly, so there the whole step is done with multi-tensor (``_foreach``)
operations, in the same order of operations as ``update_step``.
"""

import keras


def apply_fused(optimizer, grads, variables, learning_rate, betas):
    if keras.backend.backend() != "torch":
        return False
    from lionr import _torch_kernel

    return _torch_kernel.apply(optimizer, grads, variables, learning_rate, betas)
