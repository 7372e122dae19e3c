"""Backend-specific fused update paths.

``apply_fused`` returns True when it has updated every variable itself, and
False to let Keras loop over ``Lion.update_step``.

* jax and tensorflow compile the whole step (``jit`` / ``tf.function`` with
  XLA), which fuses each variable's update, weight decay included, into
  one loop over memory; they take the generic per-variable path.
* torch runs eagerly, one kernel per operation. There the step (with the
  weight decay folded in) runs cache-blocked and multi-tensor, see
  ``lionr._torch_kernel``, in the same operations as Keras's torch Lion,
  for float32 and bfloat16 momentum.
"""

import keras

_TORCH = keras.backend.backend() == "torch"


def fuses_weight_decay(optimizer, variables):
    """True when ``apply_fused`` will also apply the decoupled weight decay.

    The optimizer then skips Keras's separate weight-decay pass and hands
    the decay factor to ``apply_fused`` instead.
    """
    if not _TORCH or optimizer.weight_decay is None:
        return False
    from lionr import _torch_kernel

    return _torch_kernel.supports(optimizer, list(variables))


def decay_factor(optimizer):
    """``1 - wd*lr`` as Keras's torch weight decay computes it."""
    return 1 - optimizer.weight_decay * optimizer._get_current_learning_rate()


def apply_fused(optimizer, grads, variables, learning_rate, betas, decay=None):
    if not _TORCH:
        return False
    from lionr import _torch_kernel

    return _torch_kernel.apply(
        optimizer, grads, variables, learning_rate, betas, decay
    )
