"""A step never waits for the host: on torch no tensor is read back
(``.item()``, ``.cpu()``, ``.numpy()``, ``.tolist()``, ``float()``,
``int()``, ``bool()``) during ``optimizer.apply``; on jax, ``fit`` runs
under ``jax.transfer_guard("disallow")``."""

import numpy as np
import pytest

import keras
from keras import ops

import lionr
from tiny import BACKEND
from tiny import normal

READS = ("item", "cpu", "numpy", "tolist", "__float__", "__int__", "__bool__")

MODES = [
    dict(),
    dict(momentum_dtype="bfloat16"),
    dict(momentum_dtype="int8"),
    dict(weight_rounding="kahan", dtype="bfloat16"),
    dict(weight_rounding="stochastic", dtype="bfloat16"),
    dict(weight_rounding="stochastic", dtype="bfloat16", momentum_dtype="int8"),
]


def hyperparameters(kind):
    if kind == "numbers":
        return dict(learning_rate=1e-3, beta_1=0.9, beta_2=0.99)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)
    return dict(
        learning_rate=schedule,
        beta_1=ops.convert_to_tensor(0.9),
        beta_2=lambda: ops.convert_to_tensor(0.99),
    )


@pytest.mark.skipif(BACKEND != "torch", reason="torch's eager step")
@pytest.mark.parametrize("kind", ["numbers", "tensors"])
@pytest.mark.parametrize("mode", MODES, ids=lambda m: "-".join(m.values()) or "default")
def test_a_torch_step_reads_nothing_back(mode, kind, monkeypatch):
    import torch

    mode = dict(mode)
    dtype = mode.pop("dtype", "float32")
    variables = [
        keras.Variable(normal(i, s), dtype=dtype, name=f"w{i}")
        for i, s in enumerate([(64, 128), (128,), (5000,)])
    ]
    optimizer = lionr.optimizer_lion(
        weight_decay=0.01, **hyperparameters(kind), **mode
    )
    optimizer.exclude_from_weight_decay(var_names=["w1"])
    grads = [ops.cast(normal(10 + i, v.shape), dtype)
             for i, v in enumerate(variables)]
    optimizer.apply(grads, variables)  # builds, plans
    before = [np.array(ops.convert_to_numpy(ops.cast(v, "float32")))
              for v in variables]
    counts = {name: 0 for name in READS}

    def counting(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            counts[name] += 1
            return original(self, *args, **kwargs)

        return wrapper

    with monkeypatch.context() as patch:
        for name in READS:
            patch.setattr(torch.Tensor, name, counting(name))
        optimizer.apply(grads, variables)
    assert counts == {name: 0 for name in READS}
    assert optimizer.__dict__.get("_lionr_plans")  # the fused step ran
    for a, v in zip(before, variables):
        assert not np.array_equal(a, ops.convert_to_numpy(ops.cast(v, "float32")))


@pytest.mark.skipif(BACKEND != "jax", reason="jax's transfer guard")
@pytest.mark.parametrize("mode", MODES, ids=lambda m: "-".join(m.values()) or "default")
def test_jax_fit_steps_make_no_host_transfer(mode):
    import jax

    mode = dict(mode)
    dtype = mode.pop("dtype", "float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32,)),
        keras.layers.Dense(256, dtype=dtype),
        keras.layers.Dense(1, dtype="float32"),
    ])
    model.compile(
        optimizer=lionr.optimizer_lion(weight_decay=0.01, **mode), loss="mse"
    )
    x = jax.device_put(normal(0, (64, 32)))
    y = jax.device_put(normal(1, (64, 1)))
    model.train_on_batch(x, y)  # builds and compiles Keras's train step
    # The steps as ``fit`` runs them: the compiled train function on the
    # state it hands back (Keras's bookkeeping between steps, such as
    # resetting metrics, is outside the step and not watched).
    state = model._get_jax_state(
        trainable_variables=True, non_trainable_variables=True,
        optimizer_variables=True, metrics_variables=True,
        purge_model_variables=False,
    )
    start = [np.array(x) for x in state[0]]
    with jax.transfer_guard("disallow"):
        for _ in range(3):
            _, state = model.train_function(state, iter([(x, y, None)]))
    counts = [np.array(v) for v in state[2]
              if np.array(v).dtype.kind == "i" and np.array(v).shape == ()]
    assert 4 in [int(c) for c in counts]  # iterations: 1 + 3
    assert all(not np.array_equal(a, np.array(b)) for a, b in zip(start, state[0]))
