"""Conformance of behaviour: the same call made from R and from Python gives
the same optimizer.

One table of calls covers every argument and every form a value may take.
The whole table is run from R in ONE ``Rscript`` (the installed lionr R
package, through reticulate, on this process's Keras backend): R builds
each optimizer, applies 3 steps of fixed gradients (made on the Python side
by ``conformance_data``) and records ``get_config()`` and the parameters.
The same calls are then made here in Python. The two must have equal
configs (plain callables compared by kind: an R function and a Python
lambda serialize differently) and identical parameters.
"""

import inspect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

import pytest

import keras
from keras import ops

import lionr
import conformance_data as data
import rside
from conftest import BACKEND

pytestmark = pytest.mark.filterwarnings(
    "ignore:The object being serialized includes a `lambda`")


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


def _decay(initial, rate):
    return keras.optimizers.schedules.ExponentialDecay(
        initial, decay_steps=1, decay_rate=rate)


def _r_decay(initial, rate):
    return (f"keras$optimizers$schedules$ExponentialDecay({initial}, "
            f"decay_steps = 1, decay_rate = {rate})")


@dataclass
class Call:
    id: str
    r: str  # the arguments, as R code
    py: Callable[[], dict]  # the same arguments, built in this process
    forms: tuple
    positional: Callable[[], tuple] = field(default=lambda: ())


CALLS = [
    Call("defaults", "", lambda: {}, ("no argument",)),
    Call("positional", "0.01, 0.8, 0.95",
         lambda: {}, ("float", "positional"),
         positional=lambda: (0.01, 0.8, 0.95)),
    Call("learning_rate_whole_double", "learning_rate = 1",
         lambda: {"learning_rate": 1}, ("integer-valued double",)),
    Call("learning_rate_schedule",
         f"learning_rate = {_r_decay(0.05, 0.5)}",
         lambda: {"learning_rate": _decay(0.05, 0.5)}, ("schedule",)),
    Call("learning_rate_python_callable",
         'learning_rate = data$constant(0.02)',
         lambda: {"learning_rate": data.constant(0.02)}, ("Python callable",)),
    Call("learning_rate_r_function", "learning_rate = function() 0.03",
         lambda: {"learning_rate": lambda: 0.03}, ("R function",)),
    Call("betas_tensor",
         "beta_1 = keras$ops$convert_to_tensor(0.8), "
         "beta_2 = keras$ops$convert_to_tensor(0.95)",
         lambda: {"beta_1": ops.convert_to_tensor(0.8),
                  "beta_2": ops.convert_to_tensor(0.95)},
         ("tensor",)),
    Call("beta_1_schedule_beta_2_r_function",
         f"beta_1 = {_r_decay(0.9, 0.5)}, beta_2 = function() 0.9",
         lambda: {"beta_1": _decay(0.9, 0.5), "beta_2": lambda: 0.9},
         ("schedule", "R function")),
    Call("beta_1_python_callable_beta_2_schedule",
         'beta_1 = data$constant(0.7), '
         f"beta_2 = {_r_decay(0.99, 0.9)}",
         lambda: {"beta_1": data.constant(0.7), "beta_2": _decay(0.99, 0.9)},
         ("Python callable", "schedule")),
    Call("betas_at_their_bounds", "beta_1 = 1, beta_2 = 0",
         lambda: {"beta_1": 1, "beta_2": 0}, ("integer-valued double",)),
    Call("weight_decay", "learning_rate = 0.1, weight_decay = 0.5",
         lambda: {"learning_rate": 0.1, "weight_decay": 0.5}, ("float",)),
    Call("clipnorm", "clipnorm = 0.5", lambda: {"clipnorm": 0.5}, ("float",)),
    Call("clipvalue", "clipvalue = 0.1", lambda: {"clipvalue": 0.1},
         ("float",)),
    Call("global_clipnorm", "global_clipnorm = 0.3",
         lambda: {"global_clipnorm": 0.3}, ("float",)),
    Call("ema", "use_ema = TRUE, ema_momentum = 0.5, ema_overwrite_frequency = 2",
         lambda: {"use_ema": True, "ema_momentum": 0.5,
                  "ema_overwrite_frequency": 2},
         ("TRUE/FALSE", "integer-valued double")),
    Call("explicit_nulls_and_false",
         "weight_decay = NULL, clipnorm = NULL, clipvalue = NULL, "
         "global_clipnorm = NULL, use_ema = FALSE, "
         "ema_overwrite_frequency = NULL, loss_scale_factor = NULL, "
         "gradient_accumulation_steps = NULL",
         lambda: {"weight_decay": None, "clipnorm": None, "clipvalue": None,
                  "global_clipnorm": None, "use_ema": False,
                  "ema_overwrite_frequency": None, "loss_scale_factor": None,
                  "gradient_accumulation_steps": None},
         ("NULL", "TRUE/FALSE")),
    Call("name", 'name = "my_lion"', lambda: {"name": "my_lion"},
         ("string",)),
    Call("loss_scale_factor", "learning_rate = 0.1, loss_scale_factor = 4",
         lambda: {"learning_rate": 0.1, "loss_scale_factor": 4},
         ("integer-valued double",)),
    Call("gradient_accumulation_whole_double",
         "gradient_accumulation_steps = 2",
         lambda: {"gradient_accumulation_steps": 2},
         ("integer-valued double",)),
    Call("gradient_accumulation_r_integer",
         "gradient_accumulation_steps = 3L",
         lambda: {"gradient_accumulation_steps": 3}, ("R integer",)),
    Call("momentum_dtype_in_dots", 'momentum_dtype = "bfloat16"',
         lambda: {"momentum_dtype": "bfloat16"}, ("extra named ...",)),
]

FORMS = {"float", "integer-valued double", "tensor", "schedule",
         "Python callable", "R function", "NULL", "TRUE/FALSE",
         "extra named ...", "positional"}


def r_table_code():
    cases = ",\n".join(
        f"  {rside.r_string(c.id)} = function() optimizer_lion({c.r})"
        for c in CALLS)
    return f"""
suppressPackageStartupMessages({{
  library(reticulate)
  optimizer_lion <- getExportedValue("lionr", "optimizer_lion")
}})
keras <- import("keras", convert = FALSE)
data <- import("conformance_data", convert = FALSE)
recorder <- data$Recorder()
calls <- list(
{cases}
)
for (id in names(calls)) {{
  tryCatch({{
    optimizer <- calls[[id]]()
    variables <- data$variables()
    for (step in seq_len({data.STEPS}) - 1L) {{
      optimizer$apply(data$gradients(step), variables)
    }}
    recorder$record(id, optimizer, variables)
  }}, error = function(e) recorder$error(id, conditionMessage(e), as.list(class(e))))
}}
recorder$dump(.out_path)
"""


@pytest.fixture(scope="module")
def r_results():
    return json.loads(rside.run_rscript(r_table_code(), BACKEND))


_PYTHON_RESULTS = {}


def python_result(call):
    """The Python side of a call (made once, then reused)."""
    if call.id not in _PYTHON_RESULTS:
        _PYTHON_RESULTS[call.id] = _python_result(call)
    return _PYTHON_RESULTS[call.id]


def _python_result(call):
    try:
        optimizer = lionr.optimizer_lion(*call.positional(), **call.py())
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
    variables = data.variables()
    data.train(optimizer, variables)
    return {"ok": data.snapshot(optimizer, variables)}


def _both(call, r_results):
    r = r_results.get(call.id)
    assert r is not None, f"the R run recorded nothing for {call.id}"
    py = python_result(call)
    assert "ok" in py, f"Python refused the call: {py['error']}"
    assert "ok" in r, (
        f"R failed on optimizer_lion({call.r}): {r['error']} "
        f"(condition classes {r['classes']})")
    return r["ok"], py["ok"]


def _config_difference(r, py):
    keys = sorted(set(r) | set(py))
    rows = [f"  {k}: R {r.get(k, '(absent)')!r}  |  Python "
            f"{py.get(k, '(absent)')!r}"
            for k in keys if r.get(k, "(absent)") != py.get(k, "(absent)")]
    return "\n".join(rows)


@pytest.mark.r
@pytest.mark.parametrize("call", CALLS, ids=[c.id for c in CALLS])
def test_r_and_python_make_the_same_optimizer(call, r_results):
    """Equal type and get_config(), then identical parameters after
    ``data.STEPS`` steps on the same data."""
    r, py = _both(call, r_results)
    assert r["type"] == py["type"], (
        f"R optimizer_lion({call.r}) made a {r['type']}, Python a {py['type']}")
    assert r["config"] == py["config"], (
        f"get_config() differs for R optimizer_lion({call.r}):\n"
        + _config_difference(r["config"], py["config"]))
    assert r["iterations"] == py["iterations"]
    assert r["params"] == py["params"], (
        f"parameters differ after {data.STEPS} steps for R "
        f"optimizer_lion({call.r}):\n  R:      {r['params']}\n"
        f"  Python: {py['params']}")


@pytest.mark.backend_free
def test_table_covers_every_argument_and_form():
    names = list(inspect.signature(lionr.optimizer_lion).parameters)
    positional = [a.name for a in rside.python_args(lionr.optimizer_lion)]
    used = set()
    for call in CALLS:
        used |= set(call.py())
        used |= set(positional[:len(call.positional())])
    missing = [n for n in names if n != "kwargs" and n not in used]
    assert not missing, f"no call in the table sets {missing}"
    assert "momentum_dtype" in used  # through ** / ...
    forms = set().union(*(c.forms for c in CALLS))
    assert FORMS <= forms, f"forms not covered: {FORMS - forms}"


def test_the_table_makes_a_difference():
    """Guards the data: different arguments must give different parameters,
    or the parameter comparison would prove little."""
    results = {c.id: python_result(c)["ok"]["params"] for c in CALLS}
    defaults = results["defaults"]
    same = [i for i, p in results.items()
            if p == defaults and i not in ("defaults", "explicit_nulls_and_false",
                                           "name", "momentum_dtype_in_dots")]
    assert not same, f"these calls train exactly like the defaults: {same}"


def _echoed(given, got):
    """Equal; numbers to float32 precision (learning_rate is kept in a
    float32 variable)."""
    numbers = (int, float)
    if (isinstance(given, numbers) and not isinstance(given, bool)
            and isinstance(got, numbers) and not isinstance(got, bool)):
        return math.isclose(given, got, rel_tol=1e-6)
    return type(given) is type(got) and given == got


def test_python_config_echoes_each_call():
    """The Python side is the yardstick for R, so check it against the
    table itself: every plain value given (number, TRUE/FALSE, string,
    NULL) comes back under its own name in get_config()."""
    positional = [a.name for a in rside.python_args(lionr.optimizer_lion)]
    problems = []
    for call in CALLS:
        given = dict(zip(positional, call.positional()))
        given.update(call.py())
        config = python_result(call)["ok"]["config"]
        for name, value in given.items():
            if value is None or isinstance(value, (bool, int, float, str)):
                got = config.get(name, "(absent)")
                if not _echoed(value, got):
                    problems.append(
                        f"{call.id}: {name}={value!r} given, get_config() "
                        f"has {got!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.r
@pytest.mark.backend_free
def test_installed_r_package_ships_this_python_module():
    """The R package runs the copy of lionr/ installed with it: it must be
    the lionr/ that the Python side of these tests imports."""
    rside.require_installed_package()
    shipped = rside.r_library() / "lionr" / "python" / "lionr"
    here = rside.Path(lionr.__file__).parent
    assert shipped.is_dir(), f"{shipped} is missing"
    names = sorted(p.name for p in here.glob("*.py"))
    assert sorted(p.name for p in shipped.glob("*.py")) == names
    stale = [n for n in names
             if (shipped / n).read_bytes() != (here / n).read_bytes()]
    assert not stale, (
        f"the installed R package ships an outdated copy of {stale} "
        f"(in {shipped}); reinstall it (./dev setup)")
