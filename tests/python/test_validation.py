"""Bad arguments are refused at construction, with a message that names the
argument, shows the value and says what is accepted."""

import math

import numpy as np
import pytest

from keras import ops

import lionr

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
    # name, unknown names, momentum storage
    (dict(name=""), T, ["name", "''", "non-empty string"]),
    (dict(name=3), T, ["name", "3", "string"]),
    (dict(beta3=0.5), T, ["beta3", "momentum_dtype"]),
    (dict(epsilon=1e-7), T, ["epsilon"]),
    (dict(momentum_dtype="float16"), V,
     ["momentum_dtype", "'float16'", "'float32'", "'bfloat16'", "'int8'"]),
    (dict(momentum_dtype=None), V, ["momentum_dtype", "None", "'float32'"]),
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


ACCEPTED_EDGES = [
    dict(beta_1=1.0), dict(beta_2=0.0), dict(beta_2=1.0),
    dict(learning_rate=0.0), dict(learning_rate=3), dict(weight_decay=0),
    dict(ema_momentum=0.0), dict(ema_momentum=1.0),
    dict(ema_overwrite_frequency=1), dict(gradient_accumulation_steps=2.0),
    dict(beta_1=np.float32(0.5)), dict(name="my_lion"),
]


@pytest.mark.backend_free
@pytest.mark.parametrize("kwargs", ACCEPTED_EDGES, ids=str)
def test_edges_of_the_ranges_accepted(kwargs):
    assert isinstance(lionr.optimizer_lion(**kwargs), lionr.Lion)


@pytest.mark.backend_free
def test_errors_are_value_and_type_errors():
    assert issubclass(lionr.ArgumentError, ValueError)
    assert issubclass(lionr.ArgumentTypeError, TypeError)
