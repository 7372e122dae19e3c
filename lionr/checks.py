"""Validation of optimizer arguments.

Every check raises at construction, with a message that names the argument,
shows the value received and says what is accepted. Numbers arrive from R as
doubles, so a whole-number float is accepted where an integer is required.
"""

import math
import numbers

import numpy as np

from keras import ops
from keras.optimizers.schedules import LearningRateSchedule


class ArgumentError(ValueError):
    """A value outside what an argument accepts (also a ``ValueError``)."""


class ArgumentTypeError(TypeError):
    """A value of a kind an argument does not accept (also a ``TypeError``)."""


def _shown(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(
        value, (bool, np.bool_)
    )


def _range_text(low, high, low_open, high_open):
    return (
        ("(" if low_open else "[")
        + f"{low:g}, {high:g}"
        + (")" if high_open else "]")
    )


def _check_in_range(name, value, low, high, low_open, high_open, accepted):
    ok = math.isfinite(value) and (
        (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not ok:
        raise ArgumentError(
            f"`{name}` must be {accepted}; received {name}={_shown(value)}."
        )


def number(
    name, value, low=-math.inf, high=math.inf, low_open=False,
    high_open=False, optional=False,
):
    """A finite real number in a range, returned as a Python float."""
    if value is None and optional:
        return None
    what = "a finite number"
    if low > -math.inf or high < math.inf:
        if high == math.inf:
            what = f"a number {'>' if low_open else '>='} {low:g}"
        else:
            what = f"a number in {_range_text(low, high, low_open, high_open)}"
    if optional:
        what += " or None"
    if not _is_real(value):
        raise ArgumentTypeError(
            f"`{name}` must be {what}; received {name}={_shown(value)} "
            f"of type {type(value).__name__}."
        )
    value = float(value)
    _check_in_range(name, value, low, high, low_open, high_open, what)
    return value


def integer(name, value, minimum, optional=True):
    """A whole number >= ``minimum``; a whole-number float becomes an int."""
    if value is None and optional:
        return None
    what = f"an integer >= {minimum}" + (" or None" if optional else "")
    if not _is_real(value):
        raise ArgumentTypeError(
            f"`{name}` must be {what}; received {name}={_shown(value)} "
            f"of type {type(value).__name__}."
        )
    if not (math.isfinite(value) and float(value).is_integer()):
        raise ArgumentError(
            f"`{name}` must be {what}; received {name}={_shown(value)}, "
            "which is not a whole number."
        )
    value = int(value)
    if value < minimum:
        raise ArgumentError(
            f"`{name}` must be {what}; received {name}={value}."
        )
    return value


def boolean(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(
            f"`{name}` must be True or False; received {name}={_shown(value)} "
            f"of type {type(value).__name__}."
        )
    return bool(value)


def string(name, value):
    if not isinstance(value, str) or not value:
        raise ArgumentTypeError(
            f"`{name}` must be a non-empty string; received "
            f"{name}={_shown(value)}."
        )
    return value


def choice(name, value, accepted):
    if not isinstance(value, str) or value not in accepted:
        options = ", ".join(repr(a) for a in accepted)
        raise ArgumentError(
            f"`{name}` must be one of {options}; received {name}={_shown(value)}."
        )
    return value


def hyperparameter(name, value, low, high, low_open, high_open):
    """A float, a constant scalar tensor, a schedule, or a callable.

    Floats and tensors are range-checked now; schedules and callables are
    resolved at each step (see ``lionr.hyper``) and cannot be checked here.
    """
    span = _range_text(low, high, low_open, high_open)
    what = (
        f"a number in {span}, a constant scalar tensor in {span}, a "
        "LearningRateSchedule, or a callable taking no arguments"
    )
    if isinstance(value, LearningRateSchedule) or callable(value):
        return value
    if _is_real(value):
        value = float(value)
        _check_in_range(name, value, low, high, low_open, high_open, what)
        return value
    if ops.is_tensor(value) or isinstance(value, np.ndarray):
        array = np.asarray(ops.convert_to_numpy(value))
        if array.ndim != 0 or not np.issubdtype(array.dtype, np.floating):
            raise ArgumentTypeError(
                f"`{name}` must be {what}; received a tensor of shape "
                f"{tuple(array.shape)} and dtype {array.dtype}."
            )
        _check_in_range(
            name, float(array), low, high, low_open, high_open, what
        )
        return value
    raise ArgumentTypeError(
        f"`{name}` must be {what}; received {name}={_shown(value)} "
        f"of type {type(value).__name__}."
    )


def learning_rate(value):
    """``learning_rate``: a number >= 0, a schedule or a no-argument callable."""
    if isinstance(value, LearningRateSchedule) or callable(value):
        return value
    what = (
        "a finite number >= 0, a LearningRateSchedule, or a callable taking "
        "no arguments"
    )
    if not _is_real(value):
        raise ArgumentTypeError(
            f"`learning_rate` must be {what}; received "
            f"learning_rate={_shown(value)} of type {type(value).__name__}."
        )
    value = float(value)
    _check_in_range("learning_rate", value, 0, math.inf, False, False, what)
    return value


def one_clip(clips):
    """At most one of the gradient-clipping arguments may be set."""
    given = [f"{k}={v!r}" for k, v in clips.items() if v is not None]
    if len(given) > 1:
        raise ArgumentError(
            "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` may be "
            f"set; received {' and '.join(given)}."
        )
