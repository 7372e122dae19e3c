"""optimizer_lion() has the formals of keras3's R optimizer_lion()."""

import inspect
import re

import pytest

import lionr

# The Usage section of keras3 1.1.0's R documentation of optimizer_lion().
R_USAGE = """
optimizer_lion(
  learning_rate = 0.001,
  beta_1 = 0.9,
  beta_2 = 0.99,
  weight_decay = NULL,
  clipnorm = NULL,
  clipvalue = NULL,
  global_clipnorm = NULL,
  use_ema = FALSE,
  ema_momentum = 0.99,
  ema_overwrite_frequency = NULL,
  name = "lion",
  ...,
  loss_scale_factor = NULL,
  gradient_accumulation_steps = NULL
)
"""

R_VALUES = {"NULL": None, "FALSE": False, "TRUE": True}


def r_formals():
    """(name, default) pairs, with "..." as its own entry."""
    formals = []
    for line in R_USAGE.strip().splitlines()[1:-1]:
        item = line.strip().rstrip(",")
        if item == "...":
            formals.append(("...", None))
            continue
        name, default = (s.strip() for s in item.split("="))
        if default in R_VALUES:
            value = R_VALUES[default]
        elif re.fullmatch(r'".*"', default):
            value = default[1:-1]
        else:
            value = float(default)
        formals.append((name, value))
    return formals


@pytest.mark.backend_free
def test_python_signature_mirrors_r_formals():
    """Same names, order and defaults; the formals after R's ``...`` are
    keyword-only and ``**kwargs`` takes the part of ``...``."""
    params = list(inspect.signature(lionr.optimizer_lion).parameters.values())
    assert params[-1].kind is inspect.Parameter.VAR_KEYWORD
    formals = r_formals()
    dots = [name for name, _ in formals].index("...")
    named = formals[:dots] + formals[dots + 1 :]
    assert [p.name for p in params[:-1]] == [name for name, _ in named]
    for i, ((name, default), param) in enumerate(zip(named, params)):
        assert param.default == default, name
        assert type(param.default) is type(default), name
        kind = (
            inspect.Parameter.KEYWORD_ONLY
            if i >= dots
            else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        assert param.kind is kind, name


@pytest.mark.backend_free
def test_defaults_reach_the_optimizer():
    optimizer = lionr.optimizer_lion()
    assert isinstance(optimizer, lionr.Lion)
    assert optimizer.name == "lion"
    config = optimizer.get_config()
    assert config["beta_1"] == 0.9 and config["beta_2"] == 0.99
    assert config["learning_rate"] == pytest.approx(0.001)
    assert config["use_ema"] is False and config["weight_decay"] is None
