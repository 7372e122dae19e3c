"""Backend-specific fused update paths.

``apply_fused`` returns True when it has updated every variable itself, and
False to let Keras loop over ``Lion.update_step``.

* jax and tensorflow compile the whole step (``jit`` / ``tf.function`` with
  XLA), which fuses each variable's update, weight decay included, into
  one loop over memory; they take the generic per-variable path. On the
  CPU, ``after_parameter`` keeps XLA from copying every momentum.
* torch runs eagerly, one kernel per operation. There the step (with the
  weight decay folded in) runs cache-blocked and multi-tensor, see
  ``lionr._torch_kernel``, in the same operations as Keras's torch Lion,
  for float32 and bfloat16 momentum, and for int8 blocks where the step
  computes in float32; 16-bit weights under a ``lionr.rounding`` store
  take the same cut, stepped in float32 by ``lionr._torch_rounding``.
  Parameters of several dtypes (a bfloat16 model with a float32 output
  layer) are stepped one dtype at a time. Nothing is read back to the host
  during a step.
"""

import functools
import math

import keras
from keras import ops

_TORCH = keras.backend.backend() == "torch"


@functools.cache
def _on_cpu():
    """True when the backend computes on the CPU (jax and tensorflow)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() == "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.config.list_logical_devices("GPU")
    return False


def traced_for_xla(x):
    """True while ``x`` belongs to a step being traced for XLA: a jax trace
    (Keras's jax trainer always compiles), or a ``tf.function`` with
    ``jit_compile=True`` (Keras's tensorflow trainer compiles with XLA only
    when asked; a plain graph or eager step has no copy to remove)."""
    if keras.backend.backend() == "jax":
        import jax

        return isinstance(x, jax.core.Tracer)
    try:  # tensorflow's own test of an XLA context, not a public API
        from tensorflow.python.framework import ops as tf_ops
        from tensorflow.python.ops import control_flow_util

        in_xla = control_flow_util.GraphOrParentsInXlaContext
    except (ImportError, AttributeError):
        return False
    return in_xla(tf_ops.get_default_graph())


def after_parameter(m_new, variable):
    """``m_new`` unchanged, made to depend on ``variable``'s updated value.

    The parameter update reads the old momentum, whose buffer the new
    momentum is written into (jax with donated buffers, as Keras's trainer
    runs it; tensorflow's resource variables). XLA on CPU resolves that by
    copying every momentum at every step, into freshly allocated buffers: 8
    more bytes of memory traffic per parameter than the 20 of the step
    itself. Once the momentum's update reads the new parameter, the
    parameter update must run first and the copy is dropped.

    Only one element of the new parameter is read, ``p0 = p_new.flat[0]``:
    the order is the same as with the whole tensor, and the momentum's
    update stays as cheap as without it (no more bytes per parameter),
    so a step whose buffers are not donated, which has no copy to remove,
    loses nothing. The value is ``m_new - (p0 > inf)``, which subtracts
    ``+0.0``: ``m_new`` to the bit, NaN, infinities and ``-0.0`` included.
    Outside XLA the two extra operations would only cost time, so they are
    left out.
    """
    if not (_on_cpu() and traced_for_xla(m_new)):
        return m_new
    if math.prod(variable.shape) == 0:
        return m_new
    return _depending(m_new, ops.convert_to_tensor(variable))


def _depending(x, y):
    """``x - (y0 > inf)`` for the first element ``y0`` of nonempty ``y``:
    ``x`` to the bit (``+0.0`` is subtracted), computed after ``y``.
    Indexed, not flattened: flattening a parameter cut along a later axis
    (keras.distribution) would make XLA gather all of it."""
    never = ops.greater(y[(0,) * len(y.shape)], math.inf)
    return ops.subtract(x, ops.cast(never, x.dtype))


def after(x, previous):
    """``x`` unchanged, made to depend on ``previous`` (the float tensors
    written by the step of an earlier variable; none: ``x`` as it is).

    Some steps need a temporary as large as their parameter in XLA's CPU
    code: the int8 momentum's ``|m|`` before its block maxima, the float32
    weight that ``"kahan"`` rounds twice. XLA schedules the steps of all
    variables side by side, so these temporaries are alive at once, in one
    buffer as large as their sum, which the C library maps afresh at every
    step and the kernel zero-fills page by page (``lionr.host_memory``).
    Ordered one after the other, the steps share one temporary of the
    largest variable's size. The dependence is ``after_parameter``'s:
    ``x - (y > inf)`` for one element ``y`` of each tensor of ``previous``,
    which subtracts ``+0.0`` (``x`` to the bit).

    Applied only in a jax step compiled for the CPU and outside a
    ``keras.distribution`` (one element of a sharded tensor would be a
    collective). Tensorflow's allocator keeps its buffers from step to
    step, and there the order made the kahan step slower.
    """
    if not previous or keras.backend.backend() != "jax":
        return x
    if not (_on_cpu() and traced_for_xla(x)):
        return x
    if keras.distribution.distribution() is not None:
        return x  # one element of a sharded tensor would travel
    for y in previous:
        if math.prod(y.shape):
            x = _depending(x, y)
    return x


def fuses_weight_decay(optimizer, variables):
    """True when ``apply_fused`` will also apply the decoupled weight decay.

    The optimizer then skips Keras's separate weight-decay pass and hands
    the decay factor to ``apply_fused`` instead.
    """
    if not _TORCH or optimizer.weight_decay is None:
        return False
    return _torch_groups(optimizer, list(variables), list(variables)) is not None


def decay_factor(optimizer):
    """``1 - wd*lr`` as Keras's torch weight decay computes it."""
    return 1 - optimizer.weight_decay * optimizer._get_current_learning_rate()


def _torch_groups(optimizer, grads, variables):
    """``[(grads, variables)]`` per parameter dtype, in first-seen order, or
    None unless the torch kernel supports every group."""
    from lionr import _torch_kernel

    groups = {}
    for g, v in zip(grads, variables):
        gs, vs = groups.setdefault(str(v.dtype), ([], []))
        gs.append(g)
        vs.append(v)
    groups = list(groups.values())
    if not all(_torch_kernel.supports(optimizer, vs) for _, vs in groups):
        return None
    return groups


def apply_fused(optimizer, grads, variables, learning_rate, betas, decay=None):
    """Update every variable in a fused step and return True, or return False
    (nothing updated). ``betas`` as resolved (numbers or tensors); the torch
    step casts them to each group's compute dtype, as ``Lion.update_step``
    does, so ``1 - beta`` is the same on every path.
    """
    if not _TORCH or not variables:
        return False
    from lionr import _torch_kernel

    groups = _torch_groups(optimizer, grads, variables)
    if groups is None:
        return False
    for gs, vs in groups:
        _torch_kernel.apply(optimizer, gs, vs, learning_rate, betas, decay)
    return True
