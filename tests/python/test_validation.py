"""Bad arguments are refused at construction, with a message that names the
argument, shows the value and says what is accepted."""

import math

import numpy as np
import pytest

import keras
from keras import ops

import lionr
from lionr import checks

V, T = ValueError, TypeError


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Construction-only tests: skip conftest's per-test session reset."""
    yield

NAN, INF = math.nan, math.inf

# (arguments, error, fragments the message must contain)
REFUSED = [
    # beta_1 in (0, 1]: Keras's golden refusals first
    (dict(beta_1=-0.1), V, ["beta_1", "-0.1", "(0, 1]"]),
    (dict(beta_1=0.0), V, ["beta_1", "0.0", "(0, 1]"]),
    (dict(beta_1=1.1), V, ["beta_1", "1.1", "(0, 1]"]),
    (dict(beta_1=NAN), V, ["beta_1", "nan", "(0, 1]"]),
    (dict(beta_1="0.9"), T, ["beta_1", "'0.9'", "str", "callable"]),
    (dict(beta_1=True), T, ["beta_1", "True", "bool"]),
    # beta_2 in [0, 1]
    (dict(beta_2=-0.01), V, ["beta_2", "-0.01", "[0, 1]"]),
    (dict(beta_2=1.5), V, ["beta_2", "1.5", "[0, 1]"]),
    (dict(beta_2=INF), V, ["beta_2", "inf", "[0, 1]"]),
    (dict(beta_2=False), T, ["beta_2", "False", "bool"]),
    (dict(beta_2=[0.9]), T, ["beta_2", "[0.9]", "list"]),
    # learning_rate >= 0 and finite
    (dict(learning_rate=-0.001), V, ["learning_rate", "-0.001", ">= 0"]),
    (dict(learning_rate=NAN), V, ["learning_rate", "nan", ">= 0"]),
    (dict(learning_rate=INF), V, ["learning_rate", "inf", ">= 0"]),
    (dict(learning_rate="fast"), T, ["learning_rate", "'fast'", "str"]),
    (dict(learning_rate=True), T, ["learning_rate", "True", "bool"]),
    (dict(learning_rate=None), T,
     ["learning_rate", "None", "LearningRateSchedule"]),
    # weight decay and clipping
    (dict(weight_decay=-0.1), V, ["weight_decay", "-0.1", ">= 0"]),
    (dict(weight_decay="0.1"), T, ["weight_decay", "'0.1'", "str"]),
    (dict(weight_decay=True), T, ["weight_decay", "True", "bool"]),
    (dict(clipnorm=0.0), V, ["clipnorm", "0.0", "> 0"]),
    (dict(clipvalue=-1.0), V, ["clipvalue", "-1.0", "> 0"]),
    (dict(global_clipnorm=NAN), V, ["global_clipnorm", "nan", "> 0"]),
    (dict(clipnorm="1"), T, ["clipnorm", "'1'", "str"]),
    # EMA
    (dict(use_ema=1), T, ["use_ema", "1", "True or False"]),
    (dict(use_ema="TRUE"), T, ["use_ema", "'TRUE'", "True or False"]),
    (dict(ema_momentum=-0.1), V, ["ema_momentum", "-0.1", "[0, 1]"]),
    (dict(ema_momentum=1.01), V, ["ema_momentum", "1.01", "[0, 1]"]),
    (dict(ema_momentum=True), T, ["ema_momentum", "True", "bool"]),
    (dict(ema_overwrite_frequency=0), V,
     ["ema_overwrite_frequency", "0", "integer >= 1"]),
    (dict(ema_overwrite_frequency=-3), V,
     ["ema_overwrite_frequency", "-3", "integer >= 1"]),
    (dict(ema_overwrite_frequency=2.5), V,
     ["ema_overwrite_frequency", "2.5", "integer >= 1", "whole number"]),
    (dict(ema_overwrite_frequency="2"), T,
     ["ema_overwrite_frequency", "'2'", "str"]),
    # loss scaling and accumulation
    (dict(loss_scale_factor=0), V, ["loss_scale_factor", "0", "> 0"]),
    (dict(loss_scale_factor=True), T, ["loss_scale_factor", "True", "bool"]),
    (dict(gradient_accumulation_steps=2.5), V,
     ["gradient_accumulation_steps", "2.5", "integer >= 2", "whole number"]),
    (dict(gradient_accumulation_steps=1), V,
     ["gradient_accumulation_steps", "1", "integer >= 2"]),
    (dict(gradient_accumulation_steps=True), T,
     ["gradient_accumulation_steps", "True", "bool"]),
    (dict(gradient_accumulation_steps=INF), V,
     ["gradient_accumulation_steps", "inf", "integer >= 2"]),
    # callables that need arguments, and what callables return
    (dict(learning_rate=lambda step: 1e-3), T,
     ["learning_rate", "cannot be called without arguments", "`step`"]),
    (dict(beta_1=lambda x: 0.9), T,
     ["beta_1", "cannot be called without arguments", "`x`"]),
    (dict(beta_2=lambda *a, k: 0.9), T, ["beta_2", "`k`"]),
    (dict(beta_1=lambda: 1.5), V,
     ["beta_1", "is a callable", "returned 1.5", "(0, 1]"]),
    (dict(beta_1=lambda: 0.0), V, ["beta_1", "returned 0.0", "(0, 1]"]),
    (dict(learning_rate=lambda: -1.0), V,
     ["learning_rate", "returned -1.0", ">= 0"]),
    (dict(learning_rate=lambda: NAN), V, ["learning_rate", "returned nan"]),
    (dict(beta_2=lambda: "a"), T, ["beta_2", "returned 'a'", "str"]),
    (dict(beta_2=lambda: None), T, ["beta_2", "returned None"]),
    (dict(beta_2=lambda: [0.9]), T, ["beta_2", "returned [0.9]", "list"]),
    (dict(beta_2=lambda: True), T, ["beta_2", "returned True", "bool"]),
    # name, unknown names, momentum storage
    (dict(name=""), T, ["name", "''", "non-empty string"]),
    (dict(name=3), T, ["name", "3", "string"]),
    (dict(beta3=0.5), T, ["beta3", "momentum_dtype"]),
    (dict(epsilon=1e-7), T, ["epsilon"]),
    (dict(momentum_dtype="float16"), V,
     ["momentum_dtype", "'float16'", "'float32'", "'bfloat16'", "'int8'"]),
    (dict(momentum_dtype=None), V, ["momentum_dtype", "None", "'float32'"]),
    (dict(state_sharding="zero1"), V,
     ["state_sharding", "'zero1'", "'sharded'", "'replicated'"]),
]


def check_refused(kwargs, error, fragments):
    with pytest.raises(error) as info:
        lionr.optimizer_lion(**kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.mark.backend_free
@pytest.mark.parametrize("kwargs, error, fragments", REFUSED, ids=str)
def test_refused(kwargs, error, fragments):
    check_refused(kwargs, error, fragments)


@pytest.mark.parametrize(
    "which, value, error, fragments",
    [
        ("beta_1", 0.0, V, ["beta_1", "0.0", "(0, 1]"]),
        ("beta_1", 1.5, V, ["beta_1", "1.5", "(0, 1]"]),
        ("beta_2", -0.5, V, ["beta_2", "-0.5", "[0, 1]"]),
        ("beta_2", [0.9, 0.99], T, ["beta_2", "shape (2,)"]),
        ("beta_1", 1, T, ["beta_1", "int"]),
    ],
    ids=str,
)
def test_bad_tensor_betas_refused(which, value, error, fragments):
    dtype = "int32" if isinstance(value, int) else "float32"
    tensor = ops.convert_to_tensor(np.asarray(value), dtype)
    check_refused({which: tensor}, error, fragments)


@pytest.mark.parametrize(
    "which, value, error, fragments",
    [
        ("beta_1", 2.0, V, ["beta_1", "LearningRateSchedule", "step 0",
                            "holding 2.0", "(0, 1]"]),
        ("beta_2", -0.5, V, ["beta_2", "step 0", "holding -0.5"]),
        ("learning_rate", -1.0, V, ["learning_rate", "step 0", ">= 0"]),
    ],
    ids=str,
)
def test_schedules_checked_at_step_0(which, value, error, fragments):
    schedule = keras.optimizers.schedules.ExponentialDecay(value, 10, 0.5)
    check_refused({which: schedule}, error, fragments)


@pytest.mark.parametrize("which", ["learning_rate", "beta_1", "beta_2"])
def test_callables_returning_bad_tensors_refused(which):
    bad = {"learning_rate": -1.0, "beta_1": 1.5, "beta_2": 1.5}[which]
    check_refused({which: lambda: ops.convert_to_tensor(bad)}, V,
                  [which, "is a callable", f"holding {bad}"])
    pair = ops.convert_to_tensor([0.5, 0.5])
    check_refused({which: lambda: pair}, T, [which, "shape (2,)"])


ACCEPTED_EDGES = [
    dict(beta_1=1.0), dict(beta_2=0.0), dict(beta_2=1.0),
    dict(learning_rate=0.0), dict(learning_rate=3), dict(weight_decay=0),
    dict(ema_momentum=0.0), dict(ema_momentum=1.0),
    dict(ema_overwrite_frequency=1), dict(gradient_accumulation_steps=2.0),
    dict(beta_1=np.float32(0.5)), dict(name="my_lion"),
    dict(beta_1=lambda: 1.0), dict(beta_2=lambda: 0), dict(beta_2=lambda *a: 0.5),
    dict(learning_rate=lambda step=0: 0.0), dict(beta_1=lambda **k: 0.5),
]


@pytest.mark.backend_free
@pytest.mark.parametrize("kwargs", ACCEPTED_EDGES, ids=str)
def test_edges_of_the_ranges_accepted(kwargs):
    assert isinstance(lionr.optimizer_lion(**kwargs), lionr.Lion)


@pytest.mark.backend_free
def test_errors_are_value_and_type_errors():
    assert issubclass(lionr.ArgumentError, ValueError)
    assert issubclass(lionr.ArgumentTypeError, TypeError)


@pytest.mark.backend_free
def test_name_none_is_named_by_keras():
    """As Keras's own optimizers: lion, lion_1, ... in order of making."""
    keras.utils.clear_session()
    names = [lionr.optimizer_lion(name=None).name for _ in range(3)]
    assert names == ["lion", "lion_1", "lion_2"]
    assert lionr.optimizer_lion().name == "lion"


@pytest.mark.backend_free
@pytest.mark.parametrize(
    "kwargs, arguments, values, kinds, detail, related",
    [
        (dict(beta_1=1.5), ["beta_1"], [1.5],
         ["number", "tensor", "schedule", "callable"], None, []),
        (dict(use_ema="yes"), ["use_ema"], ["yes"], ["boolean"], None, []),
        (dict(gradient_accumulation_steps=2.5),
         ["gradient_accumulation_steps"], [2.5], ["integer", "none"],
         checks.FRACTION, []),
        (dict(beta_2=lambda: 2.0), ["beta_2"], [2.0], ["number", "tensor"],
         checks.RETURNED, []),
        (dict(clipnorm=1.0, clipvalue=2.0), ["clipnorm", "clipvalue"],
         [1.0, 2.0], [], checks.ONLY_ONE,
         ["clipnorm", "clipvalue", "global_clipnorm"]),
        (dict(beta3=0.5), ["beta3"], [0.5], [], checks.UNKNOWN,
         ["momentum_dtype", "weight_rounding", "state_sharding", "cautious"]),
        (dict(momentum_dtype="fp8"), ["momentum_dtype"], ["fp8"], ["option"],
         None, []),
    ],
    ids=str,
)
def test_refusals_carry_their_facts(kwargs, arguments, values, kinds, detail,
                                    related):
    """The fields from which both languages write their message."""
    with pytest.raises(checks.Refusal) as info:
        lionr.optimizer_lion(**kwargs)
    error = info.value
    assert list(error.arguments) == arguments
    assert list(error.values) == values
    assert [k.kind for k in error.accepted] == kinds
    assert error.detail == detail
    assert list(error.related) == related
    fields = error.fields()
    assert fields["arguments"] == arguments
    assert fields["detail"] == detail


@pytest.mark.backend_free
def test_fields_hold_plain_data_only():
    """What R reads: builtins only (reticulate 1.28 with NumPy 2 cannot
    convert NumPy scalars), with the accepted ranges as numbers."""
    with pytest.raises(checks.Refusal) as info:
        lionr.optimizer_lion(beta_1=np.float32(1.5))
    fields = info.value.fields()

    def plain(x):
        if isinstance(x, dict):
            return all(isinstance(k, str) and plain(v) for k, v in x.items())
        if isinstance(x, list):
            return all(plain(v) for v in x)
        return x is None or type(x) in (bool, int, float, str)

    assert plain(fields), fields
    assert fields["values"] == [{"kind": "number", "value": 1.5}]
    number = fields["accepted"][0]
    assert (number["low"], number["high"]) == (0, 1)
    assert (number["low_open"], number["high_open"]) == (True, False)


@pytest.mark.backend_free
@pytest.mark.parametrize(
    "value, described",
    [
        (None, {"kind": "none"}),
        (True, {"kind": "boolean", "value": True}),
        (np.int64(3), {"kind": "integer", "value": 3}),
        (np.float32(0.5), {"kind": "number", "value": 0.5}),
        ("a", {"kind": "string", "value": "a"}),
        ([0.9, "a"], {"kind": "sequence", "items": [
            {"kind": "number", "value": 0.9}, {"kind": "string", "value": "a"}]}),
        (np.zeros((2, 3), "float32"), {"kind": "tensor", "shape": [2, 3],
                                       "dtype": "float32", "holds": None}),
        (np.asarray(2.0, "float32"),
         {"kind": "tensor", "shape": [], "dtype": "float32", "holds": 2.0}),
    ],
    ids=str,
)
def test_values_are_described_as_plain_data(value, described):
    assert checks.describe(value) == described


@pytest.mark.backend_free
def test_attempt_returns_the_refusal_instead_of_raising():
    made, refusal = checks.attempt(lionr.optimizer_lion, beta_1=0.5)
    assert isinstance(made, lionr.Lion) and refusal is None
    made, refusal = checks.attempt(lionr.optimizer_lion, beta_1=5.0)
    assert made is None and isinstance(refusal, lionr.ArgumentError)
    with pytest.raises(ZeroDivisionError):  # other exceptions propagate
        checks.attempt(lambda: 1 / 0)


@pytest.mark.backend_free
def test_refusals_survive_pickling():
    import pickle

    with pytest.raises(lionr.ArgumentError) as info:
        lionr.optimizer_lion(beta_2=5.0)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is lionr.ArgumentError
    assert str(again) == str(info.value)
    assert again.fields() == info.value.fields()
