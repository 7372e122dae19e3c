"""Saving to ``.keras`` and loading back: optimizer variables and config
come back equal, and training resumes on the uninterrupted trajectory."""

import json

import numpy as np
import pytest

import keras
from keras import ops

import lionr
from reference import numpy_of
from tiny import COMPILED
from tiny import Switch
from tiny import normal

FIRST, THEN = 4, 3  # steps before and after saving


@keras.saving.register_keras_serializable(package="lionr_tests")
def registered_beta_2():
    return 0.95


def small_model(optimizer, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
         keras.layers.Dense(2)]
    )
    model.compile(optimizer=optimizer, loss="mse", jit_compile=COMPILED)
    return model


def data(seed=1):
    return normal(seed, (FIRST + THEN, 3)), normal(seed + 1, (FIRST + THEN, 2))


def train(model, x, y):
    """One step per row: ``fit``, or ``train_on_batch`` with EMA, where
    ``fit`` would finalize (overwrite the weights) at its end."""
    if model.optimizer.use_ema:
        for i in range(len(x)):
            model.train_on_batch(x[i : i + 1], y[i : i + 1])
    else:
        model.fit(x, y, batch_size=1, shuffle=False, verbose=0)


def optimizer_state(optimizer):
    """Variables in creation order (a loaded model's variable paths lack the
    model's name scope, so slot names differ)."""
    return [numpy_of(v) for v in optimizer.variables]


def config_text(optimizer, skip=()):
    config = {k: v for k, v in optimizer.get_config().items() if k not in skip}
    return json.dumps(config, sort_keys=True, default=str)


def assert_same_state(a, b):
    sa, sb = optimizer_state(a), optimizer_state(b)
    assert len(sa) == len(sb)
    for va, vb in zip(sa, sb):
        assert va.dtype == vb.dtype
        np.testing.assert_array_equal(va, vb)


def save_load(model, tmp_path, name="model", **load_kwargs):
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    return keras.saving.load_model(path, **load_kwargs)


def check_resume(make_optimizer, tmp_path, skip=(), **load_kwargs):
    """Train FIRST steps, save, load, train THEN more on both the original
    (never interrupted) and the loaded model: everything must agree."""
    x, y = data()
    model = small_model(make_optimizer())
    train(model, x[:FIRST], y[:FIRST])
    loaded = save_load(model, tmp_path, **load_kwargs)
    assert isinstance(loaded.optimizer, lionr.Lion)
    assert config_text(loaded.optimizer, skip) == config_text(
        model.optimizer, skip
    )
    assert_same_state(loaded.optimizer, model.optimizer)
    start = [w.copy() for w in model.get_weights()]
    train(model, x[FIRST:], y[FIRST:])
    train(loaded, x[FIRST:], y[FIRST:])
    for a, b, s in zip(model.get_weights(), loaded.get_weights(), start):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, s)
    assert_same_state(loaded.optimizer, model.optimizer)
    return loaded


CONFIGS = {
    "tensor betas, weight decay": lambda: dict(
        beta_1=ops.convert_to_tensor(0.8, "float32"),
        beta_2=ops.convert_to_tensor(0.95, "float32"),
        learning_rate=0.05, weight_decay=0.3,
    ),
    "schedule learning_rate, clipnorm": lambda: dict(
        learning_rate=keras.optimizers.schedules.ExponentialDecay(
            0.02, decay_steps=2, decay_rate=0.5
        ),
        clipnorm=0.1,
    ),
    "schedule beta_1, global_clipnorm, loss scale": lambda: dict(
        beta_1=Switch(0.9, 0.5), global_clipnorm=0.1, loss_scale_factor=128.0
    ),
    "ema overwrite, clipvalue": lambda: dict(
        use_ema=True, ema_momentum=0.7, ema_overwrite_frequency=3,
        clipvalue=0.05,
    ),
    "ema, accumulation": lambda: dict(
        use_ema=True, ema_momentum=0.7, gradient_accumulation_steps=2
    ),
    "cautious, int8 momentum": lambda: dict(
        learning_rate=0.05, weight_decay=0.1, cautious=True,
        momentum_dtype="int8",
    ),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_resumes_on_the_uninterrupted_trajectory(config, tmp_path):
    loaded = check_resume(
        lambda: lionr.optimizer_lion(**CONFIGS[config]()), tmp_path
    )
    assert loaded.optimizer.cautious == config.startswith("cautious")
    if config.startswith("tensor betas"):
        assert ops.is_tensor(loaded.optimizer.beta_1)
        assert float(numpy_of(loaded.optimizer.beta_2)) == np.float32(0.95)


@pytest.mark.filterwarnings("ignore:The object being serialized includes a")
def test_lambda_beta_needs_unsafe_mode(tmp_path):
    model = small_model(lionr.optimizer_lion(beta_1=lambda: 0.8))
    x, y = data()
    train(model, x[:FIRST], y[:FIRST])
    with pytest.raises(ValueError, match="safe_mode"):
        save_load(model, tmp_path)
    loaded = check_resume(
        lambda: lionr.optimizer_lion(beta_1=lambda: 0.8), tmp_path,
        skip=("beta_1",),  # a lambda's bytecode is not kept byte for byte
        safe_mode=False,
    )
    assert loaded.optimizer.beta_1() == 0.8


def test_registered_function_beta_loads_in_safe_mode(tmp_path):
    loaded = check_resume(
        lambda: lionr.optimizer_lion(beta_2=registered_beta_2), tmp_path
    )
    assert loaded.optimizer.beta_2 is registered_beta_2


def test_two_default_named_optimizers_side_by_side(tmp_path):
    """Two models, each with an optimizer named "lion", train together as
    each would alone, and both save and load back."""
    x, y = data()
    first = small_model(lionr.optimizer_lion(), seed=3)
    second = small_model(lionr.optimizer_lion(learning_rate=0.01), seed=4)
    assert first.optimizer.name == second.optimizer.name == "lion"
    for i in range(FIRST):  # interleaved steps
        first.train_on_batch(x[i : i + 1], y[i : i + 1])
        second.train_on_batch(x[i : i + 1], y[i : i + 1])
    alone = small_model(lionr.optimizer_lion(), seed=3)
    for i in range(FIRST):
        alone.train_on_batch(x[i : i + 1], y[i : i + 1])
    for a, b in zip(first.get_weights(), alone.get_weights()):
        np.testing.assert_array_equal(a, b)
    loaded = [
        save_load(first, tmp_path, "first"),
        save_load(second, tmp_path, "second"),
    ]
    for original, back in zip((first, second), loaded):
        assert back.optimizer.name == "lion"
        assert config_text(back.optimizer) == config_text(original.optimizer)
        assert_same_state(back.optimizer, original.optimizer)
        for a, b in zip(original.get_weights(), back.get_weights()):
            np.testing.assert_array_equal(a, b)


def closure_returning(value):
    def rate():
        return value

    return rate


class CallableRate:
    """A callable object with no config: Keras cannot serialize it."""

    def __call__(self):
        return 0.9


FROZEN = {
    "closure beta_1": ("beta_1", lambda: closure_returning(0.8), 0.8),
    "local function beta_2": ("beta_2", lambda: closure_returning(0.95), 0.95),
    "callable object beta_1": ("beta_1", CallableRate, 0.9),
    "closure learning_rate": (
        "learning_rate", lambda: closure_returning(0.02), 0.02
    ),
    "callable object learning_rate": ("learning_rate", CallableRate, 0.9),
}


@pytest.mark.parametrize("case", list(FROZEN))
def test_unloadable_callable_saves_its_value_with_a_warning(case, tmp_path):
    """A callable Keras cannot rebuild is saved as a constant callable
    returning what it returned at save time; the model loads in safe mode
    and trains on along the uninterrupted trajectory."""
    arg, make, value = FROZEN[case]
    with pytest.warns(lionr.FrozenHyperparameterWarning) as caught:
        loaded = check_resume(
            lambda: lionr.optimizer_lion(**{arg: make()}), tmp_path,
            skip=(arg,),
        )
    texts = {str(w.message) for w in caught
             if issubclass(w.category, lionr.FrozenHyperparameterWarning)}
    assert texts and all(f"`{arg}`" in t and repr(value) in t for t in texts)
    assert all(w.message.fields == {"argument": arg} for w in caught
               if issubclass(w.category, lionr.FrozenHyperparameterWarning))
    held = (loaded.optimizer._learning_rate if arg == "learning_rate"
            else getattr(loaded.optimizer, arg))
    assert isinstance(held, lionr.hyper.Constant) and held() == value
    assert loaded.optimizer.get_config()[arg]["config"] == {"value": value}


def test_callable_that_fails_at_save_time_names_the_argument(tmp_path):
    def broken():
        raise RuntimeError("no value")

    model = small_model(lionr.optimizer_lion(beta_2=broken))
    with pytest.raises(ValueError, match=r"`beta_2`.*RuntimeError: no value"):
        model.optimizer.get_config()


@pytest.mark.parametrize("value", [0.9, registered_beta_2])
def test_loadable_values_save_without_a_warning(value, recwarn):
    config = lionr.optimizer_lion(beta_1=value).get_config()
    assert not [w for w in recwarn
                if issubclass(w.category, lionr.FrozenHyperparameterWarning)]
    assert config["beta_1"] == (
        0.9 if value == 0.9 else keras.saving.serialize_keras_object(value)
    )
