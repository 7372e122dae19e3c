"""Hyperparameters that may change from step to step.

A hyperparameter is one of

* a Python float: a constant, folded into the compiled step;
* a constant scalar tensor: used as is;
* a ``keras.optimizers.schedules.LearningRateSchedule``: called with the
  optimizer's iteration count, ``value(iterations)``;
* any other callable: called with no arguments, ``value()``.

``resolve`` is the single place where the update rule reads one. It runs
inside the (possibly compiled) train step, so a schedule or a callable built
from tensors is re-evaluated at every step. What a callable returns is
checked there like a number given directly (``lionr.checks.result``) when
it is a plain number; a tensor is used as it comes (inside a compiled step
it has no value yet to check). A callable that returns a plain Python
number is only called while the step is traced; under ``jit`` or
``tf.function`` its value is then fixed until the step is traced again.

``first_check`` evaluates a schedule (at step 0) or a callable once, eagerly,
before any step, and checks its value.
"""

import contextlib

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule
from keras.saving import deserialize_keras_object
from keras.saving import serialize_keras_object

from lionr import checks

NAMES = tuple(checks.VALUE_RANGES)  # the hyperparameters resolved here


def resolve(value, iterations, name=None):
    """The value of hyperparameter ``value`` at step ``iterations``; with
    ``name``, a plain value returned by a callable is checked."""
    if isinstance(value, LearningRateSchedule):
        return value(iterations)
    if callable(value):
        result = value()
        if name is not None and not ops.is_tensor(result):
            checks.result(name, result)
        return result
    return value


def first_check(name, value, deferrable=False):
    """Evaluate the schedule (at step 0) or callable ``value`` given as
    ``name`` once and check what it gives. Returns False, without checking,
    when ``deferrable`` and the evaluation raised (a callable may refer to
    the optimizer being made); True otherwise."""
    if isinstance(value, LearningRateSchedule):
        how, evaluate = checks.SCHEDULED, lambda: value(0)
    elif callable(value):
        how, evaluate = checks.RETURNED, value
    else:
        return True
    try:
        with _eagerly():
            result = evaluate()
    except Exception:
        if deferrable:
            return False
        raise
    checks.result(name, result, how)
    return True


def _eagerly():
    """A context in which tensors have values: on tensorflow, Keras builds
    the optimizer while it traces the first train step (when no
    distribution strategy is set), so step out of the graph there."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.init_scope()
    return contextlib.nullcontext()


def to_config(value):
    """A JSON-ready form of ``value``; floats stay plain numbers."""
    if isinstance(value, float):
        return value
    return serialize_keras_object(value)


def from_config(value, custom_objects=None):
    """The inverse of ``to_config``: tensors, schedules and callables return."""
    if isinstance(value, dict):
        return deserialize_keras_object(value, custom_objects=custom_objects)
    return value
