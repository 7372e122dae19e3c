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

Saving (``to_config``) keeps what Keras can rebuild when the model loads:
floats, tensors, schedules, registered functions and functions found by
module and name; lambdas are kept as bytecode (load with
``safe_mode=False``). Any other callable (a local function or closure, an R
function passed by reticulate, a callable object without a config) cannot
be rebuilt in another process, so the saved model holds ``Constant(v)``
instead, a callable returning ``v``, the float it returned at save time
(a callable still, so that the optimizer keeps the same variables), and a
``FrozenHyperparameterWarning`` names the argument (in its text and in its
field ``argument``).
"""

import contextlib
import types
import warnings

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule
from keras.saving import deserialize_keras_object
from keras.saving import serialize_keras_object

from lionr import checks
from lionr.notices import LionrWarning

NAMES = tuple(checks.VALUE_RANGES)  # the hyperparameters resolved here


class FrozenHyperparameterWarning(LionrWarning):
    """A callable hyperparameter was saved as its current value; the field
    ``argument`` names the hyperparameter."""


# Shown at every save, not only the first time from a given line.
warnings.simplefilter("always", FrozenHyperparameterWarning)


@keras.saving.register_keras_serializable(package="lionr")
class Constant:
    """A callable taking no arguments that returns ``value`` (a float): what
    a callable that cannot be saved becomes in a saved model."""

    def __init__(self, value):
        self.value = float(value)

    def __call__(self):
        return self.value

    def __repr__(self):
        return f"Constant({self.value!r})"

    def get_config(self):
        return {"value": self.value}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


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


def to_config(value, name):
    """A JSON-ready form of hyperparameter ``name`` that loads back.

    Floats stay plain numbers. A callable that Keras cannot rebuild (see the
    module docstring) is replaced by ``Constant(value())``, with a warning.
    """
    if isinstance(value, float):
        return value
    if callable(value) and not isinstance(value, LearningRateSchedule):
        if not loads_back(value):
            value = frozen(value, name)
    return serialize_keras_object(value)


def loads_back(fn):
    """Whether Keras can rebuild callable ``fn`` from its config.

    Lambdas count as loading back (as bytecode, with ``safe_mode=False``).
    A function must come back as itself; a callable object, as any object
    its config rebuilds.
    """
    if isinstance(fn, types.FunctionType) and fn.__name__ == "<lambda>":
        return True
    try:
        back = deserialize_keras_object(serialize_keras_object(fn))
    except Exception:  # Keras raises TypeError, ValueError, ImportError...
        return False
    if isinstance(fn, types.FunctionType):
        return back is fn
    return callable(back)


def frozen(fn, name):
    """``Constant(fn())``, saved in place of callable ``fn``, with a warning."""
    try:
        value = float(ops.convert_to_numpy(fn()))
    except Exception as error:
        raise ValueError(
            f"`{name}` holds {described(fn)}, which cannot be saved so that "
            "it loads back, and calling it to save its value instead failed "
            f"({type(error).__name__}: {error})."
        ) from error
    warnings.warn(
        FrozenHyperparameterWarning(
            f"`{name}` holds {described(fn)}, which cannot be saved so that "
            f"it loads back; the saved model holds {value!r}, the value it "
            f"returns now, in its place (as lionr's Constant({value!r})). To "
            "save a value that changes, use a "
            "keras.optimizers.schedules.LearningRateSchedule or a function "
            "registered with keras.saving.register_keras_serializable().",
            argument=name,
        ),
        stacklevel=2,
    )
    return Constant(value)


def described(fn):
    """How a warning names callable ``fn``."""
    if getattr(fn, "lionr_r_function", False):
        return "an R function"
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(fn, types.FunctionType) and qualname:
        return f"the function {qualname}"
    return f"a callable {type(fn).__name__} object"


def from_config(value, custom_objects=None):
    """The inverse of ``to_config``: tensors, schedules and callables return."""
    if isinstance(value, dict):
        return deserialize_keras_object(value, custom_objects=custom_objects)
    return value
