"""Conformance of refusals: a bad argument is refused by R and by Python,
from the same facts.

The whole table runs from R in ONE ``Rscript`` per backend: each call must
signal a condition of class ``lionr_error``. The Python counterparts (R's
``NA`` may reach Python as ``None`` or, through reticulate, as ``True``;
``c(0.9, 0.99)`` as a list) must raise ``ValueError`` or ``TypeError``.

Python's checks hold the rules; R renders the fields of Python's refusal in
R's words. So for every refusal made in Python, R's condition must name the
same argument(s), carry the classes reticulate gives Python's exception
(its class and bases, ``ArgumentError`` or ``ArgumentTypeError`` alike),
show the value as R prints it, and use no Python words (``None``,
``True``, ``callable``). Values only R can write (vectors, ``NA``) are
refused by the R adapter itself, with the classes of the Python exception
they stand for, and show the value as the R user wrote it.
"""

import json
import re
from dataclasses import dataclass

import pytest

import keras

import lionr
import rside
from conftest import BACKEND

UNKNOWN = "not_an_argument"


@pytest.fixture(autouse=True)
def _fresh_keras_state(_keras_reset_once):
    """Replaces conftest's reset before every test (0.3-0.7 s each, most of
    this module's time): these tests share no Keras state, so one reset for
    the module is enough."""
    yield


@pytest.fixture(scope="module")
def _keras_reset_once():
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)


@dataclass
class Bad:
    id: str
    r: str  # the arguments, as R code
    py: list  # Python counterparts: each a dict of keyword arguments
    names: tuple  # the argument(s) both refusals must name
    r_shows: str = ""  # text R's message must hold (the value, as R writes it)
    r_only: str = ""  # refused by R itself: the Python exception it stands for


BAD = [
    Bad("beta_1_above_1", "beta_1 = 1.5", [{"beta_1": 1.5}], ("beta_1",),
        r_shows="received beta_1 = 1.5."),
    Bad("beta_2_above_1", "beta_2 = 5", [{"beta_2": 5.0}], ("beta_2",),
        r_shows="received beta_2 = 5."),
    Bad("beta_2_negative", "beta_2 = -0.1", [{"beta_2": -0.1}], ("beta_2",),
        r_shows="beta_2 = -0.1"),
    Bad("learning_rate_negative", "learning_rate = -1",
        [{"learning_rate": -1}], ("learning_rate",),
        r_shows="learning_rate = -1."),
    Bad("learning_rate_NULL", "learning_rate = NULL",
        [{"learning_rate": None}], ("learning_rate",),
        r_shows="learning_rate = NULL."),
    Bad("ema_momentum_above_1", "ema_momentum = 2", [{"ema_momentum": 2}],
        ("ema_momentum",), r_shows="ema_momentum = 2."),
    Bad("use_ema_number", "use_ema = 1", [{"use_ema": 1.0}], ("use_ema",),
        r_shows="must be TRUE or FALSE; received use_ema = 1."),
    Bad("weight_decay_list", "weight_decay = list(1)",
        [{"weight_decay": [1.0]}], ("weight_decay",),
        r_shows="or NULL; received weight_decay = list(1)."),
    Bad("gradient_accumulation_fraction", "gradient_accumulation_steps = 2.5",
        [{"gradient_accumulation_steps": 2.5}],
        ("gradient_accumulation_steps",),
        r_shows="gradient_accumulation_steps = 2.5, which is not a whole"),
    Bad("ema_overwrite_frequency_zero", "ema_overwrite_frequency = 0",
        [{"ema_overwrite_frequency": 0}], ("ema_overwrite_frequency",),
        r_shows="a whole number >= 1 or NULL"),
    Bad("clipnorm_and_clipvalue", "clipnorm = 1, clipvalue = 1",
        [{"clipnorm": 1, "clipvalue": 1}], ("clipnorm", "clipvalue"),
        r_shows="received clipnorm = 1 and clipvalue = 1."),
    Bad("empty_name", 'name = ""', [{"name": ""}], ("name",),
        r_shows='name = "".'),
    Bad("name_number", "name = 3", [{"name": 3.0}], ("name",),
        r_shows="name = 3."),
    Bad("unknown_argument", f"{UNKNOWN} = 1", [{UNKNOWN: 1}], (UNKNOWN,)),
    Bad("momentum_dtype_fp8", 'momentum_dtype = "fp8"',
        [{"momentum_dtype": "fp8"}], ("momentum_dtype",),
        r_shows='one of "float32", "bfloat16", "int8"; received '
                'momentum_dtype = "fp8".'),
    # functions: called with no arguments, and their values checked
    Bad("beta_1_function_of_step", "beta_1 = function(step) 0.9",
        [{"beta_1": lambda step: 0.9}], ("beta_1",),
        r_shows="beta_1 = function (step) 0.9, which cannot be called "
                "without arguments"),
    Bad("learning_rate_function_of_step", "learning_rate = function(s) 1e-3",
        [{"learning_rate": lambda s: 1e-3}], ("learning_rate",),
        r_shows="a function taking no arguments"),
    Bad("beta_1_function_above_1", "beta_1 = function() 1.5",
        [{"beta_1": lambda: 1.5}], ("beta_1",),
        r_shows="`beta_1` is a function, which must return a number in "
                "(0, 1]"),
    Bad("learning_rate_function_negative", "learning_rate = function() -1",
        [{"learning_rate": lambda: -1.0}], ("learning_rate",),
        r_shows="it returned -1."),
    Bad("beta_2_function_string", 'beta_2 = function() "a"',
        [{"beta_2": lambda: "a"}], ("beta_2",), r_shows='it returned "a".'),
    Bad("beta_2_function_NULL", "beta_2 = function() NULL",
        [{"beta_2": lambda: None}], ("beta_2",), r_shows="it returned NULL."),
    # forms only R can write, and what they become in Python
    Bad("beta_1_vector", "beta_1 = c(0.9, 0.99)", [{"beta_1": [0.9, 0.99]}],
        ("beta_1",), r_shows="beta_1 = c(0.9, 0.99)", r_only="TypeError"),
    Bad("name_vector", 'name = c("a", "b")', [{"name": ["a", "b"]}],
        ("name",), r_shows='name = c("a", "b")', r_only="TypeError"),
    Bad("beta_1_NA", "beta_1 = NA", [{"beta_1": None}, {"beta_1": True}],
        ("beta_1",), r_shows="beta_1 = NA", r_only="ValueError"),
    Bad("use_ema_NA", "use_ema = NA", [{"use_ema": None}], ("use_ema",),
        r_shows="use_ema = NA", r_only="ValueError"),
    Bad("gradient_accumulation_NA", "gradient_accumulation_steps = NA",
        [{"gradient_accumulation_steps": True}],
        ("gradient_accumulation_steps",),
        r_shows="gradient_accumulation_steps = NA", r_only="ValueError"),
    Bad("beta_2_string", 'beta_2 = "0.9"', [{"beta_2": "0.9"}], ("beta_2",),
        r_shows='beta_2 = "0.9".'),
    Bad("learning_rate_string", 'learning_rate = "0.001"',
        [{"learning_rate": "0.001"}], ("learning_rate",),
        r_shows='learning_rate = "0.001".'),
]

PYTHON_WORDS = re.compile(r"\b(None|True|False|callable|NoneType)\b|of type ")


def r_table_code():
    cases = ",\n".join(
        f"  {rside.r_string(b.id)} = function() optimizer_lion({b.r})"
        for b in BAD)
    return f"""
suppressPackageStartupMessages({{
  library(reticulate)
  optimizer_lion <- getExportedValue("lionr", "optimizer_lion")
}})
data <- import("conformance_data", convert = FALSE)
recorder <- data$Recorder()
calls <- list(
{cases}
)
for (id in names(calls)) {{
  tryCatch({{
    made <- calls[[id]]()
    recorder$accepted(id, paste(class(made), collapse = "/"))
  }}, error = function(e) {{
    recorder$refused(id, conditionMessage(e), as.list(class(e)),
                     as.list(as.character(e$argument)))
  }})
}}
recorder$dump(.out_path)
"""


@pytest.fixture(scope="module")
def r_outcomes():
    return json.loads(rside.run_rscript(r_table_code(), BACKEND))


def named(message, names):
    """Which of ``names`` the message names (as whole words)."""
    return [n for n in names
            if re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", message)]


def python_refusal(kwargs):
    """Python's refusal (the exception), or None if it accepts."""
    try:
        lionr.optimizer_lion(**kwargs)
    except (ValueError, TypeError) as error:
        return error
    return None


def reticulate_classes(error):
    """The classes reticulate gives the exception ``error``, as lionr's
    conditions carry them (without ``python.builtin.object``)."""
    return [
        ("python.builtin" if c.__module__ == "builtins" else c.__module__)
        + "." + c.__name__
        for c in type(error).__mro__ if c is not object
    ]


def test_python_refuses_naming_the_argument():
    """Every Python counterpart of the table (one test: the table is
    cheap, and pytest's per-test Keras reset is not)."""
    problems = []
    for bad in BAD:
        for kwargs in bad.py:
            error = python_refusal(kwargs)
            if error is None:
                problems.append(f"accepted: lionr.optimizer_lion(**{kwargs!r})")
            elif named(str(error), bad.names) != list(bad.names):
                problems.append(
                    f"lionr.optimizer_lion(**{kwargs!r}) does not name "
                    f"{list(bad.names)}: {error}")
            elif not bad.r_only and list(error.arguments) != list(bad.names):
                problems.append(
                    f"lionr.optimizer_lion(**{kwargs!r}) reports arguments "
                    f"{error.arguments}, not {bad.names}")
    assert not problems, "\n".join(problems)


@pytest.mark.r
@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_r_refuses_like_python(bad, r_outcomes):
    """R signals a lionr_error from the same facts as Python's refusal:
    same argument(s), the classes of the same exception, the value shown as
    R prints it, in R's words."""
    outcome = r_outcomes.get(bad.id)
    assert outcome is not None, f"the R run recorded nothing for {bad.id}"
    assert outcome["refused"], (
        f"R accepted optimizer_lion({bad.r}) and returned {outcome['what']}")
    r_message, classes = outcome["message"], outcome["classes"]
    assert classes[0] == "lionr_error" and classes[-2:] == [
        "error", "condition"], (
        f"R refused optimizer_lion({bad.r}) with a condition of class "
        f"{classes}: {r_message}")
    kwargs = bad.py[0]
    error = python_refusal(kwargs)
    assert error is not None, (
        f"Python accepted lionr.optimizer_lion(**{kwargs!r})")
    if bad.r_only:
        expected = [f"python.builtin.{bad.r_only}", "python.builtin.Exception",
                    "python.builtin.BaseException"]
    else:
        expected = reticulate_classes(error)
    assert classes[1:-2] == expected, (
        f"R's condition for optimizer_lion({bad.r}) has classes {classes}; "
        f"expected lionr_error, {expected}, error, condition")
    assert outcome["arguments"] == list(bad.names), (
        f"R's condition names {outcome['arguments']}, not {list(bad.names)}")
    r_named = named(r_message, bad.names)
    assert r_named == list(bad.names), (
        f"R's message for optimizer_lion({bad.r}) names {r_named}, not "
        f"{list(bad.names)}: {r_message}")
    assert bad.r_shows in r_message, (
        f"R's message for optimizer_lion({bad.r}) should show "
        f"{bad.r_shows!r}: {r_message}")
    words = PYTHON_WORDS.findall(r_message)
    assert not words, (
        f"R's message for optimizer_lion({bad.r}) speaks Python ({words}): "
        f"{r_message}")
