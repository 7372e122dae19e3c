"""Hyperparameters that may change from step to step.

A hyperparameter is one of

* a Python float: a constant, folded into the compiled step;
* a constant scalar tensor: used as is;
* a ``keras.optimizers.schedules.LearningRateSchedule``: called with the
  optimizer's iteration count, ``value(iterations)``;
* any other callable: called with no arguments, ``value()``.

``resolve`` is the single place where the update rule reads one. It runs
inside the (possibly compiled) train step, so a schedule or a callable built
from tensors is re-evaluated at every step. A callable that returns a plain
Python number is only called while the step is traced; under ``jit`` or
``tf.function`` its value is then fixed until the step is traced again.
"""

from keras.optimizers.schedules import LearningRateSchedule
from keras.saving import deserialize_keras_object
from keras.saving import serialize_keras_object


def resolve(value, iterations):
    """The value of hyperparameter ``value`` at step ``iterations``."""
    if isinstance(value, LearningRateSchedule):
        return value(iterations)
    if callable(value):
        return value()
    return value


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
