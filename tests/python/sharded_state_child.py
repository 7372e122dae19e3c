"""Sharded optimizer state under keras.distribution (jax), one device count
per process; used by ``test_state_sharding.py``.

``python sharded_state_child.py OUT.json TASK [TASK ...]``, with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` set; tasks:

* ``layouts:DIR``: for each case (``CASES``) under ``DataParallel`` and
  ``ModelParallel`` (a ``(2, N/2)`` mesh), two epochs with
  ``state_sharding`` "sharded" and "replicated": the weights, the whole
  optimizer state, every state variable's spec and bytes on one device,
  whether every device holds the same replicated weights, and the
  collectives of the compiled train step (``benchmarks/hlo_collectives``);
  and, under ``DataParallel``, ``cautious=True`` with bfloat16 momentum,
  float32 weights ("nearest") and bfloat16 weights ("kahan").
  Between the epochs, the runs of ``SAVED`` are saved to ``DIR`` with
  their momentum then.
* ``save:DIR``: on one device, each case saved after one epoch, with its
  momentum and the weights after a second epoch.
* ``resume:DIR``: every file in ``DIR`` loaded under this device count's
  distribution of the same kind (none on one device), the momentum as
  loaded, and the weights after one more epoch.
"""

import json
import os
import re
import sys
from pathlib import Path

import numpy as np

import distributed_fit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "benchmarks"))

# (momentum_dtype, weight_rounding); the rounding cases train bfloat16 weights
CASES = (
    ("float32", "nearest"), ("bfloat16", "nearest"), ("int8", "nearest"),
    ("float32", "kahan"), ("int8", "stochastic"),
)


data = distributed_fit.arrays


def distribution(layout):
    import keras

    devices = keras.distribution.list_devices("cpu")
    if len(devices) == 1:
        return None
    if layout == "data":
        return keras.distribution.DataParallel(devices=devices)
    mesh = keras.distribution.DeviceMesh(
        (2, len(devices) // 2), ["batch", "model"], devices
    )
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map[".*d1/kernel"] = (None, "model")
    layout_map[".*d2/kernel"] = ("model", None)
    return keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name="batch"
    )


def build(momentum_dtype, rounding, sharding, cautious=False):
    return distributed_fit.build(
        momentum_dtype, rounding, state_sharding=sharding, cautious=cautious
    )


def fit(model, epochs=1):
    x, y = data()
    model.fit(x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0)


def weights(model):
    return [np.asarray(v.value).astype("float32").tolist()
            for v in model.trainable_variables]


def replicas_agree(model):
    """Every device's copy of every replicated weight is the same bits."""
    for v in model.trainable_variables:
        shards = v.value.addressable_shards
        if not v.value.sharding.is_fully_replicated:
            continue
        first = np.asarray(shards[0].data)
        if not all(np.array_equal(np.asarray(s.data), first) for s in shards):
            return False
    return True


def momenta(model):
    """Each parameter's momentum as the step reads it (float32)."""
    from keras import ops

    optimizer = model.optimizer
    return {
        re.sub(r"^sequential(_\d+)?/", "", v.path): ops.convert_to_numpy(
            ops.cast(s.read(), "float32")).tolist()
        for v, s in zip(model.trainable_variables, optimizer._slots)
    }


def state(model):
    """spec, bytes on one device and value of every state variable."""
    out = {}
    skip = {id(model.optimizer.iterations),
            id(model.optimizer._learning_rate)}
    for v in model.optimizer.variables:
        if id(v) in skip or "seed" in v.path:
            continue
        value = v.value
        out[v.path.split("/", 1)[1]] = {
            "spec": str(getattr(value.sharding, "spec", None)),
            "bytes": int(value.addressable_shards[0].data.nbytes),
            "value": np.asarray(value).astype("float32").tolist(),
        }
    return out


def saved(case):
    """True for the runs that are saved: sharded state, and int8 state
    replicated."""
    return case[3] == "sharded" or case[1] == "int8"


def layouts(folder):
    import hlo_collectives

    import keras

    out = {}
    x, y = data()
    for layout in ("data", "model"):
        for momentum_dtype, rounding in CASES:
            for sharding in ("sharded", "replicated"):
                keras.distribution.set_distribution(distribution(layout))
                model = build(momentum_dtype, rounding, sharding)
                case = (layout, momentum_dtype, rounding, sharding)
                fit(model)
                if saved(case):
                    keep(model, case, folder, out)
                fit(model)
                key = f"{layout}/{momentum_dtype}/{rounding}/{sharding}"
                out[key] = {
                    "weights": weights(model),
                    "params": {v.path.split("/", 1)[1]: int(
                        v.value.addressable_shards[0].data.nbytes)
                        for v in model.trainable_variables},
                    "param_specs": {v.path.split("/", 1)[1]: str(
                        v.value.sharding.spec)
                        for v in model.trainable_variables},
                    "state": state(model),
                    "replicas_agree": replicas_agree(model),
                    "collectives": hlo_collectives.collectives(
                        hlo_collectives.train_step_hlo(model, x[:32], y[:32])
                    ),
                }
                keras.distribution.set_distribution(None)
    # Cautious updates: a masked ternary update, exchanged the same way.
    for rounding in ("nearest", "kahan"):
        for sharding in ("sharded", "replicated"):
            keras.distribution.set_distribution(distribution("data"))
            momentum_dtype = "bfloat16" if rounding == "nearest" else "float32"
            model = build(momentum_dtype, rounding, sharding, cautious=True)
            fit(model, epochs=2)
            out[f"cautious/{rounding}/{sharding}"] = {
                "weights": weights(model),
                "replicas_agree": replicas_agree(model),
                "collectives": hlo_collectives.collectives(
                    hlo_collectives.train_step_hlo(model, x[:32], y[:32])
                ),
            }
            keras.distribution.set_distribution(None)
    return out


def keep(model, case, folder, out):
    """Save ``model`` to ``folder`` and its momentum to ``out["saved"]``."""
    import keras

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    devices = len(keras.distribution.list_devices("cpu"))
    name = f"{devices}-{'-'.join(case)}"
    model.save(folder / f"{name}.keras")
    out.setdefault("saved", {})[name] = momenta(model)


def save(folder):
    """One device: every case saved after one epoch."""
    out = {}
    for momentum_dtype, rounding in CASES:
        case = ("data", momentum_dtype, rounding, "sharded")
        model = build(momentum_dtype, rounding, "sharded")
        fit(model)
        keep(model, case, folder, out)
        fit(model)
        out["/".join(case)] = {"weights": weights(model)}
    return out


def resume(folder):
    import keras

    import lionr  # noqa: F401  (registers Lion)

    out = {}
    for path in sorted(Path(folder).glob("*.keras")):
        layout = path.stem.split("-")[1]
        keras.distribution.set_distribution(distribution(layout))
        model = keras.saving.load_model(path)
        out[path.stem] = {
            "momenta": momenta(model),
            "state": {k: v["spec"] for k, v in state(model).items()},
        }
        fit(model)
        out[path.stem]["weights"] = weights(model)
        out[path.stem]["replicas_agree"] = replicas_agree(model)
        keras.distribution.set_distribution(None)
    return out


def main():
    import keras

    out = {"devices": len(keras.distribution.list_devices("cpu"))}
    for task in sys.argv[2:]:
        name, _, arg = task.partition(":")
        out[task] = {"layouts": layouts, "save": save, "resume": resume}[
            name](*([arg] if arg else []))
    Path(sys.argv[1]).write_text(json.dumps(out))


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    main()
