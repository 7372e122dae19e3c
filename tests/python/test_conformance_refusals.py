"""Conformance of refusals: a bad argument is refused by R and by Python,
both naming the same argument.

The whole table runs from R in ONE ``Rscript`` per backend: each call must
signal a condition of class ``lionr_error``. The Python counterparts (R's
``NA`` may reach Python as ``None`` or, through reticulate, as ``True``;
``c(0.9, 0.99)`` as a list) must raise ``ValueError`` or ``TypeError``.
Each message must name the argument at fault. Values only R can write
(vectors, ``NA``) are refused by the R adapter itself, so its message shows
the value as the R user wrote it, not the list or ``True`` Python would see.
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
    names: tuple  # the argument(s) both messages must name
    r_shows: str = ""  # text R's message must hold (the value, as R writes it)


BAD = [
    Bad("beta_1_above_1", "beta_1 = 1.5", [{"beta_1": 1.5}], ("beta_1",)),
    Bad("beta_2_negative", "beta_2 = -0.1", [{"beta_2": -0.1}], ("beta_2",)),
    Bad("learning_rate_negative", "learning_rate = -1",
        [{"learning_rate": -1}], ("learning_rate",)),
    Bad("ema_momentum_above_1", "ema_momentum = 2", [{"ema_momentum": 2}],
        ("ema_momentum",)),
    Bad("gradient_accumulation_fraction", "gradient_accumulation_steps = 2.5",
        [{"gradient_accumulation_steps": 2.5}],
        ("gradient_accumulation_steps",)),
    Bad("ema_overwrite_frequency_zero", "ema_overwrite_frequency = 0",
        [{"ema_overwrite_frequency": 0}], ("ema_overwrite_frequency",)),
    Bad("clipnorm_and_clipvalue", "clipnorm = 1, clipvalue = 1",
        [{"clipnorm": 1, "clipvalue": 1}], ("clipnorm", "clipvalue")),
    Bad("empty_name", 'name = ""', [{"name": ""}], ("name",)),
    Bad("unknown_argument", f"{UNKNOWN} = 1", [{UNKNOWN: 1}], (UNKNOWN,)),
    Bad("momentum_dtype_fp8", 'momentum_dtype = "fp8"',
        [{"momentum_dtype": "fp8"}], ("momentum_dtype",)),
    # forms only R can write, and what they become in Python
    Bad("beta_1_vector", "beta_1 = c(0.9, 0.99)", [{"beta_1": [0.9, 0.99]}],
        ("beta_1",), r_shows="beta_1 = c(0.9, 0.99)"),
    Bad("name_vector", 'name = c("a", "b")', [{"name": ["a", "b"]}],
        ("name",), r_shows='name = c("a", "b")'),
    Bad("beta_1_NA", "beta_1 = NA", [{"beta_1": None}, {"beta_1": True}],
        ("beta_1",), r_shows="beta_1 = NA"),
    Bad("use_ema_NA", "use_ema = NA", [{"use_ema": None}], ("use_ema",),
        r_shows="use_ema = NA"),
    Bad("gradient_accumulation_NA", "gradient_accumulation_steps = NA",
        [{"gradient_accumulation_steps": True}],
        ("gradient_accumulation_steps",),
        r_shows="gradient_accumulation_steps = NA"),
    Bad("beta_2_string", 'beta_2 = "0.9"', [{"beta_2": "0.9"}], ("beta_2",)),
    Bad("learning_rate_string", 'learning_rate = "0.001"',
        [{"learning_rate": "0.001"}], ("learning_rate",)),
]


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
  }}, error = function(e) recorder$refused(id, conditionMessage(e), as.list(class(e))))
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


def python_message(kwargs):
    """The message of Python's refusal, or None if it accepts."""
    try:
        lionr.optimizer_lion(**kwargs)
    except (ValueError, TypeError) as error:
        return str(error)
    return None


def test_python_refuses_naming_the_argument():
    """Every Python counterpart of the table (one test: the table is
    cheap, and pytest's per-test Keras reset is not)."""
    problems = []
    for bad in BAD:
        for kwargs in bad.py:
            message = python_message(kwargs)
            if message is None:
                problems.append(f"accepted: lionr.optimizer_lion(**{kwargs!r})")
            elif named(message, bad.names) != list(bad.names):
                problems.append(
                    f"lionr.optimizer_lion(**{kwargs!r}) does not name "
                    f"{list(bad.names)}: {message}")
    assert not problems, "\n".join(problems)


@pytest.mark.r
@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_r_refuses_like_python(bad, r_outcomes):
    """R signals a lionr_error whose message names the same argument(s)
    as Python's."""
    outcome = r_outcomes.get(bad.id)
    assert outcome is not None, f"the R run recorded nothing for {bad.id}"
    assert outcome["refused"], (
        f"R accepted optimizer_lion({bad.r}) and returned {outcome['what']}")
    r_message = outcome["message"]
    assert "lionr_error" in outcome["classes"], (
        f"R refused optimizer_lion({bad.r}) with a condition of class "
        f"{outcome['classes']}, not lionr_error: {r_message}")
    kwargs = bad.py[0]
    py_message = python_message(kwargs)
    assert py_message is not None, (
        f"Python accepted lionr.optimizer_lion(**{kwargs!r})")
    r_named = named(r_message, bad.names)
    py_named = named(py_message, bad.names)
    assert r_named == py_named == list(bad.names), (
        f"the messages should both name {list(bad.names)}:\n"
        f"  R      optimizer_lion({bad.r}) names {r_named}: {r_message}\n"
        f"  Python optimizer_lion(**{kwargs!r}) names {py_named}: "
        f"{py_message}")
    assert bad.r_shows in r_message, (
        f"R's message for optimizer_lion({bad.r}) should show "
        f"{bad.r_shows!r}: {r_message}")
