"""Validation of optimizer arguments.

Every check raises at construction. The exception carries the facts as
fields (``Refusal``): the argument, the value received (or the value a
callable returned), the kinds of value accepted (``Kind`` records) and an
optional detail; its message renders them in Python's words, and lionr's R
package renders the same fields in R's words. The rules live here only.

Numbers arrive from R as doubles, so a whole-number float is accepted where
an integer is required.
"""

import inspect
import math
import numbers
from dataclasses import asdict
from dataclasses import dataclass

import numpy as np

from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

INF = math.inf


@dataclass(frozen=True)
class Kind:
    """One form of value an argument accepts.

    ``kind`` is one of ``number`` (finite, in the range given by ``low``,
    ``high``, ``low_open``, ``high_open``), ``integer`` (whole, ``>= low``),
    ``boolean``, ``string`` (non-empty), ``none``, ``schedule`` (a
    ``LearningRateSchedule``), ``callable`` (callable with no arguments),
    ``tensor`` (a constant scalar float tensor in the range) or ``option``
    (one of the strings in ``options``).
    """

    kind: str
    low: float = -INF
    high: float = INF
    low_open: bool = False
    high_open: bool = False
    options: tuple = ()


def _number(low=-INF, high=INF, low_open=False, high_open=False):
    return Kind("number", low, high, low_open, high_open)


BOOLEAN, STRING, NONE = Kind("boolean"), Kind("string"), Kind("none")
SCHEDULE, CALLABLE = Kind("schedule"), Kind("callable")

# What the value of each hyperparameter (given, or returned by a callable or
# a schedule) must be.
VALUE_RANGES = {
    "learning_rate": _number(0),
    "beta_1": _number(0, 1, low_open=True),
    "beta_2": _number(0, 1),
}
TENSOR_ACCEPTED = ("beta_1", "beta_2")  # constant scalar tensors welcome

# Details: what else the message says.
FRACTION = "fraction"  # the value is not a whole number
ARITY = "arity"  # a callable that needs arguments; ``related``: their names
RETURNED = "returned"  # ``value`` is what the callable returned
SCHEDULED = "scheduled"  # ``value`` is what the schedule gave at step 0
ONLY_ONE = "only_one"  # several of ``related`` given where one may be
UNKNOWN = "unknown"  # names not accepted; ``related``: the extra names known
WEIGHT_DTYPE = "weight_dtype"  # not for this weight; ``related``: its path, dtype


class Refusal(Exception):
    """A refused argument: the base of lionr's two exception classes.

    Attributes:
        arguments: the names of the arguments at fault (usually one).
        values: the values received, one per name (with ``RETURNED`` or
            ``SCHEDULED``: the value the callable or schedule gave).
        accepted: a tuple of ``Kind``: what is accepted.
        detail: ``None`` or one of the detail codes of this module.
        related: further names the detail speaks of.
    """

    def __init__(self, arguments, values, accepted=(), detail=None,
                 related=()):
        self.arguments = tuple(arguments)
        self.values = tuple(values)
        self.accepted = tuple(accepted)
        self.detail = detail
        self.related = tuple(related)
        super().__init__(self._message())

    def __reduce__(self):  # copies and pickles rebuild it from its fields
        return type(self), (self.arguments, self.values, self.accepted,
                            self.detail, self.related)

    @property
    def argument(self):
        return self.arguments[0]

    @property
    def value(self):
        return self.values[0]

    def fields(self):
        """The fields as plain Python data (for the R package)."""
        return {
            "arguments": list(self.arguments),
            "values": [describe(v) for v in self.values],
            "accepted": [asdict(k) | {"options": list(k.options)}
                         for k in self.accepted],
            "detail": self.detail,
            "related": list(self.related),
        }

    def _message(self):
        name, shown = self.argument, _shown(self.value)
        if self.detail == ONLY_ONE:
            given = " and ".join(
                f"{n}={_shown(v)}" for n, v in zip(self.arguments, self.values))
            return (f"Only one of {_names(self.related)} may be set; "
                    f"received {given}.")
        if self.detail == UNKNOWN:
            return (f"Unknown argument(s) {_names(self.arguments, ', ')}; "
                    "lionr's Lion accepts the Keras optimizer arguments and "
                    f"{_names(self.related)}.")
        what = _either([python_words(k) for k in self.accepted])
        if self.detail == RETURNED:
            return (f"`{name}` is a callable, which must return {what}; it "
                    f"returned {shown}{self._of_type()}.")
        if self.detail == SCHEDULED:
            return (f"`{name}` is a LearningRateSchedule, which must give "
                    f"{what}; at step 0 it gave {shown}{self._of_type()}.")
        text = f"`{name}` must be {what}; received {name}={shown}"
        if self.detail == ARITY:
            text += (", which cannot be called without arguments (it "
                     f"needs {_names(self.related)})")
        text += self._of_type()
        if self.detail == FRACTION:
            text += ", which is not a whole number"
        if self.detail == WEIGHT_DTYPE:
            text += (f" for the {self.related[1]} weight {self.related[0]!r}")
        return text + "."

    def _of_type(self):
        plain = not (callable(self.value) or _is_tensor(self.value))
        if isinstance(self, TypeError) and plain:
            return f" of type {type(self.value).__name__}"
        return ""


class ArgumentError(Refusal, ValueError):
    """A value outside what an argument accepts (also a ``ValueError``)."""


class ArgumentTypeError(Refusal, TypeError):
    """A value of a kind an argument does not accept (also a ``TypeError``)."""


def attempt(function, /, *args, **kwargs):
    """``(function(*args, **kwargs), None)``, or ``(None, refusal)`` when it
    raises a ``Refusal``: lets the R package read the refusal's fields
    whatever its reticulate does with Python exceptions."""
    try:
        return function(*args, **kwargs), None
    except Refusal as refusal:
        return None, refusal


# --------------------------------------------------------------------------
# Rendering in Python's words
# --------------------------------------------------------------------------

def _range(kind):
    if kind.high == INF:
        return f"{'>' if kind.low_open else '>='} {kind.low:g}"
    return ("in " + ("(" if kind.low_open else "[") + f"{kind.low:g}, "
            f"{kind.high:g}" + (")" if kind.high_open else "]"))


def python_words(kind):
    """How Python's messages name one ``Kind``."""
    ranged = kind.low > -INF or kind.high < INF
    return {
        "number": f"a number {_range(kind)}" if ranged else "a finite number",
        "integer": f"an integer >= {kind.low:g}",
        "boolean": "True or False",
        "string": "a non-empty string",
        "none": "None",
        "schedule": "a LearningRateSchedule",
        "callable": "a callable taking no arguments",
        "tensor": f"a scalar float tensor {_range(kind)}",
        "option": "one of " + ", ".join(repr(o) for o in kind.options),
    }[kind.kind]


def _either(words):
    if len(words) <= 2:
        return " or ".join(words)
    return ", ".join(words[:-1]) + ", or " + words[-1]


def _names(names, last=" and "):
    quoted = [f"`{n}`" for n in names]
    if len(quoted) <= 1 or last != " and ":
        return ", ".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _is_tensor(value):
    return ops.is_tensor(value) or isinstance(value, np.ndarray)


def _shown(value):
    if _is_tensor(value):
        held = _scalar_of(value)
        if held is not None:
            return f"a {_dtype(value)} scalar tensor holding {held!r}"
        return (f"a tensor of shape {tuple(value.shape)} and dtype "
                f"{_dtype(value)}")
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _scalar_of(tensor):
    """The Python number a concrete scalar tensor holds, else None."""
    array = _concrete(tensor) if len(tensor.shape) == 0 else None
    return None if array is None else array.item()


def _dtype(tensor):
    return str(getattr(tensor.dtype, "name", tensor.dtype)).replace(
        "torch.", "")


def describe(value):
    """``value`` as plain data that another language can show in its own
    words: ``{"kind": ..., "value"/"shape"/...}``."""
    if value is None:
        return {"kind": "none"}
    if isinstance(value, (bool, np.bool_)):
        return {"kind": "boolean", "value": bool(value)}
    if isinstance(value, numbers.Integral):
        return {"kind": "integer", "value": int(value)}
    if isinstance(value, numbers.Real):
        return {"kind": "number", "value": float(value)}
    if isinstance(value, str):
        return {"kind": "string", "value": value}
    if _is_tensor(value):
        return {"kind": "tensor", "shape": [int(d) for d in value.shape],
                "dtype": _dtype(value), "holds": _scalar_of(value)}
    if isinstance(value, (list, tuple)) and len(value) <= 20:
        return {"kind": "sequence", "items": [describe(v) for v in value]}
    if isinstance(value, LearningRateSchedule):
        return {"kind": "schedule", "type": type(value).__name__}
    if callable(value):
        return {"kind": "callable", "text": _shown(value)}
    return {"kind": "object", "type": type(value).__name__,
            "text": _shown(value)}


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------

def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(
        value, (bool, np.bool_)
    )


def _in_range(value, kind):
    return math.isfinite(value) and (
        (value > kind.low if kind.low_open else value >= kind.low)
        and (value < kind.high if kind.high_open else value <= kind.high)
    )


def number(
    name, value, low=-INF, high=INF, low_open=False,
    high_open=False, optional=False,
):
    """A finite real number in a range, returned as a Python float."""
    if value is None and optional:
        return None
    kind = _number(low, high, low_open, high_open)
    accepted = (kind, NONE) if optional else (kind,)
    if not _is_real(value):
        raise ArgumentTypeError([name], [value], accepted)
    if not _in_range(float(value), kind):
        raise ArgumentError([name], [value], accepted)
    return float(value)


def integer(name, value, minimum, optional=True):
    """A whole number >= ``minimum``; a whole-number float becomes an int."""
    if value is None and optional:
        return None
    accepted = (Kind("integer", minimum),) + ((NONE,) if optional else ())
    if not _is_real(value):
        raise ArgumentTypeError([name], [value], accepted)
    if not (math.isfinite(value) and float(value).is_integer()):
        detail = FRACTION if math.isfinite(value) else None
        raise ArgumentError([name], [value], accepted, detail)
    if int(value) < minimum:
        raise ArgumentError([name], [value], accepted)
    return int(value)


def boolean(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError([name], [value], (BOOLEAN,))
    return bool(value)


def string(name, value, optional=False):
    """A non-empty string (or, when ``optional``, None)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        accepted = (STRING, NONE) if optional else (STRING,)
        raise ArgumentTypeError([name], [value], accepted)
    return value


def choice(name, value, accepted):
    if not isinstance(value, str) or value not in accepted:
        raise ArgumentError([name], [value], (Kind("option", options=tuple(
            accepted)),))
    return value


def _forms(name):
    """What ``name`` accepts, and what its callables and schedules may give:
    a number in its range or a scalar float tensor in that range."""
    rng = VALUE_RANGES[name]
    results = (rng, Kind("tensor", *_bounds(rng)))
    direct = results if name in TENSOR_ACCEPTED else (rng,)
    return direct + (SCHEDULE, CALLABLE), results


def _required_parameters(function):
    """The names of the parameters ``function`` cannot be called without;
    empty when its signature cannot be read."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return []
    return [
        p.name for p in signature.parameters.values()
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def hyperparameter(name, value):
    """``learning_rate``, ``beta_1`` or ``beta_2`` (see ``VALUE_RANGES``): a
    number, a constant scalar tensor (betas), a schedule, or a callable
    taking no arguments.

    Numbers and tensors are range-checked here; a callable's signature is
    checked here, and what callables and schedules give is checked by
    ``result`` (see ``lionr.hyper``).
    """
    accepted, values = _forms(name)
    if isinstance(value, LearningRateSchedule):
        return value
    if callable(value) and not _is_tensor(value):
        needs = _required_parameters(value)
        if needs:
            raise ArgumentTypeError([name], [value], accepted, ARITY, needs)
        return value
    if _is_real(value):
        if not _in_range(float(value), values[0]):
            raise ArgumentError([name], [value], accepted)
        return float(value)
    if _is_tensor(value) and name in TENSOR_ACCEPTED:
        _tensor(name, value, accepted, None, symbolic_ok=False)
        return value
    raise ArgumentTypeError([name], [value], accepted)


def _tensor(name, value, accepted, detail, symbolic_ok):
    array = _concrete(value)
    if array is None:
        if symbolic_ok:
            return
        raise ArgumentTypeError([name], [value], accepted, detail)
    if array.ndim != 0 or not np.issubdtype(array.dtype, np.floating):
        raise ArgumentTypeError([name], [value], accepted, detail)
    if not _in_range(float(array), VALUE_RANGES[name]):
        raise ArgumentError([name], [value], accepted, detail)


def _concrete(tensor):
    """The tensor's value as a NumPy array, or None while it is symbolic
    (being traced by jax or tensorflow)."""
    if isinstance(tensor, np.ndarray):
        return tensor
    try:
        return np.asarray(ops.convert_to_numpy(tensor))
    except Exception:  # a tracer or a graph tensor: no value yet
        return None


def result(name, value, detail=RETURNED):
    """Check what the callable (``RETURNED``) or schedule (``SCHEDULED``)
    given as hyperparameter ``name`` gave: a number or a scalar float tensor
    in its range. A tensor still being traced passes unchecked. Returns
    ``value``."""
    _, results = _forms(name)
    if _is_real(value):
        if not _in_range(float(value), results[0]):
            raise ArgumentError([name], [value], results, detail)
        return value
    if _is_tensor(value):
        _tensor(name, value, results, detail, symbolic_ok=True)
        return value
    raise ArgumentTypeError([name], [value], results, detail)


def _bounds(kind):
    return kind.low, kind.high, kind.low_open, kind.high_open


def one_clip(clips):
    """At most one of the gradient-clipping arguments may be set."""
    given = {k: v for k, v in clips.items() if v is not None}
    if len(given) > 1:
        raise ArgumentError(list(given), list(given.values()),
                            detail=ONLY_ONE, related=list(clips))


def for_weight(name, value, accepted, weight, dtype):
    """Refuse ``value`` of ``name`` for one weight (path ``weight``, dtype
    ``dtype``): ``accepted`` names the options that weight takes."""
    raise ArgumentError([name], [value], (Kind("option", options=tuple(accepted)),),
                        detail=WEIGHT_DTYPE, related=(weight, str(dtype)))


def no_unknown(kwargs, extras):
    """Refuse named arguments beyond the optimizer's; ``extras``: the extra
    names that are accepted."""
    if kwargs:
        raise ArgumentTypeError(list(kwargs), list(kwargs.values()),
                                detail=UNKNOWN, related=list(extras))
