"""Fit a small model with lionr under keras.distribution and report.

Run as a script (jax backend, ``XLA_FLAGS=--xla_force_host_platform_device_count=8``)
by ``test_distribution.py``; prints one JSON object: for each layout
("single", "data", "model") and momentum dtype, the final weights and, for
every optimizer variable, its sharding spec next to its parameter's; then
the same for a bfloat16 model with each ``weight_rounding`` other than
``"nearest"`` (keys ``layout/kahan``, ``layout/stochastic``).
"""

import json
import sys

import numpy as np

import keras
import lionr

LAYOUTS = ("single", "data", "model")
DTYPES = ("float32", "bfloat16", "int8")
ROUNDINGS = ("kahan", "stochastic")


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 64)).astype("float32")
    y = rng.normal(size=(128, 8)).astype("float32")
    return x, y


def distribution(layout):
    if layout == "single":
        return None
    devices = keras.distribution.list_devices("cpu")
    if layout == "data":
        return keras.distribution.DataParallel(devices=devices)
    mesh = keras.distribution.DeviceMesh((2, 4), ["batch", "model"], devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map[".*d1/kernel"] = (None, "model")
    layout_map[".*d1/bias"] = ("model",)
    layout_map[".*d2/kernel"] = ("model", None)
    return keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name="batch"
    )


def spec(variable):
    sharding = getattr(variable.value, "sharding", None)
    return str(getattr(sharding, "spec", None))


def run(layout, momentum_dtype, rounding="nearest"):
    keras.distribution.set_distribution(distribution(layout))
    keras.utils.set_random_seed(0)
    dtype = "float32" if rounding == "nearest" else "bfloat16"
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, name="d1", dtype=dtype),
            keras.layers.Dense(8, name="d2", dtype=dtype),
        ]
    )
    optimizer = lionr.optimizer_lion(
        learning_rate=1e-2, weight_decay=0.1, momentum_dtype=momentum_dtype,
        weight_rounding=rounding,
    )
    model.compile(optimizer=optimizer, loss="mse")
    x, y = data()
    model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    params = {v.path: spec(v) for v in model.trainable_variables}
    slots = {}
    for variable, slot in zip(model.trainable_variables, optimizer._slots):
        stores = [getattr(slot, "slot", None), getattr(slot, "codes", None)]
        slots[variable.path] = [spec(s) for s in stores if s is not None]
    errors = {
        v.path: spec(r.error)
        for v, r in zip(model.trainable_variables, optimizer._rounders)
        if hasattr(r, "error")
    }
    keras.distribution.set_distribution(None)
    return {
        "devices": len(keras.distribution.list_devices("cpu")),
        "weights": [
            np.asarray(w, dtype="float32").tolist() for w in model.get_weights()
        ],
        "error_specs": errors,
        "param_specs": params,
        "slot_specs": slots,
    }


if __name__ == "__main__":
    dtypes = sys.argv[1:] or DTYPES
    out = {f"{layout}/{d}": run(layout, d) for d in dtypes for layout in LAYOUTS}
    for r in ROUNDINGS:
        out.update({f"{layout}/{r}": run(layout, "float32", r) for layout in LAYOUTS})
    print(json.dumps(out))
