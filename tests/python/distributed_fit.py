"""Fit a small model with lionr under keras.distribution and report.

Run as a script on jax with 8 CPU devices in all: one process with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``, or (``--processes
2 --process-id I --port P``) one of two processes with 4 devices each,
joined over loopback with gloo collectives. Used by ``test_distribution.py``
and ``test_multiprocess.py``. Process 0 prints one JSON object: for each
layout ("single" in one process only, "data", "model") and momentum dtype,
the final weights, every optimizer variable's sharding spec next to its
parameter's and the bytes each holds on one device (with ``--save DIR``, the data/int8
model is saved to ``DIR/p<process id>.keras`` by every process, and its
momentum reported); and under "blocks",
an int8 momentum written through a parameter sharded along its last axis,
with the codes and scales every device keeps. In one process it also
reports a bfloat16 model with each ``weight_rounding`` other than
``"nearest"`` (keys ``layout/kahan``, ``layout/stochastic``), with the
sharding spec of every Kahan compensation buffer.
"""

import argparse
import json
import os

import numpy as np

LAYOUTS = ("single", "data", "model")
DTYPES = ("float32", "bfloat16", "int8")
ROUNDINGS = ("kahan", "stochastic")


def connect(args):
    """Join the processes before Keras builds anything (one process: no-op)."""
    if args.processes == 1:
        return
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{args.port}",
        num_processes=args.processes,
        process_id=args.process_id,
        initialization_timeout=60,
    )


def arrays():
    """The inputs and targets every distributed test trains on."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 64)).astype("float32")
    y = rng.normal(size=(128, 8)).astype("float32")
    return x, y


def data():
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(arrays()).batch(32)


def distribution(layout):
    import keras

    if layout == "single":
        return None
    devices = keras.distribution.list_devices("cpu")
    if layout == "data":
        return keras.distribution.DataParallel(devices=devices)
    mesh = keras.distribution.DeviceMesh((2, 4), ["batch", "model"], devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    # d1's kernel is cut along its first axis into shards of whole blocks:
    # its int8 blocks are those of one device (see lionr.shards).
    layout_map[".*d1/kernel"] = ("model", None)
    layout_map[".*d1/bias"] = ("model",)
    layout_map[".*d2/kernel"] = ("model", None)
    return keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name="batch"
    )


def spec(variable):
    sharding = getattr(variable.value, "sharding", None)
    return str(getattr(sharding, "spec", None))


def device_bytes(variable):
    """Bytes of ``variable`` held on one device (the first one here)."""
    return int(variable.value.addressable_shards[0].data.nbytes)


def gather(value):
    """The whole array, from every process."""
    from jax.experimental import multihost_utils

    if getattr(value, "is_fully_addressable", True):
        return np.asarray(value)
    return np.asarray(multihost_utils.process_allgather(value, tiled=True))


def slot_variables(slot):
    stores = [getattr(slot, n, None) for n in ("slot", "codes", "scales")]
    return [s for s in stores if s is not None]


def build(momentum_dtype, rounding="nearest", **options):
    """The test model (64 -> 128 -> 8 Dense; bfloat16 weights under a
    rounding other than "nearest"), compiled with lionr and ``options``."""
    import keras

    import lionr

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
        weight_rounding=rounding, **options,
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def run(layout, momentum_dtype, rounding="nearest", save=None):
    import keras

    keras.distribution.set_distribution(distribution(layout))
    model = build(momentum_dtype, rounding)
    optimizer = model.optimizer
    model.fit(data(), epochs=2, shuffle=False, verbose=0)
    variables = model.trainable_variables
    name = {id(v): v.path.split("/", 1)[1] for v in variables}  # "d1/kernel"
    out = {
        "devices": len(keras.distribution.list_devices("cpu")),
        "weights": [
            gather(v.value).astype("float32").tolist() for v in variables
        ],
        "param_specs": {name[id(v)]: spec(v) for v in variables},
        "param_bytes": {name[id(v)]: device_bytes(v) for v in variables},
        "slot_specs": {},
        "slot_bytes": {},
        "error_specs": {
            name[id(v)]: spec(r.error)
            for v, r in zip(variables, optimizer._rounders)
            if hasattr(r, "error")
        },
    }
    for variable, slot in zip(variables, optimizer._slots):
        stores = slot_variables(slot)
        out["slot_specs"][name[id(variable)]] = [spec(s) for s in stores]
        out["slot_bytes"][name[id(variable)]] = sum(map(device_bytes, stores))
    if save is not None:  # every process saves (each gathers the state)
        model.save(save)
        out["momenta"] = {
            name[id(v)]: gather(slot.read()).astype("float32").tolist()
            for v, slot in zip(variables, optimizer._slots)
        }
    keras.distribution.set_distribution(None)
    return out


def blocks():
    """An int8 momentum of a (64, 512) parameter sharded (None, "model")
    over a (2, 4) mesh: 64 x 128 values per device, 32 blocks of a device's
    rows, none of them blocks of the whole tensor."""
    import keras

    import lionr
    from lionr import state

    mesh = keras.distribution.DeviceMesh(
        (2, 4), ["batch", "model"], keras.distribution.list_devices("cpu")
    )
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map[".*wide/kernel"] = (None, "model")
    keras.distribution.set_distribution(
        keras.distribution.ModelParallel(
            layout_map=layout_map, batch_dim_name="batch"
        )
    )
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(512, name="wide", use_bias=False)]
    )
    # The parameter's own layout: each "model" device's 64 x 128 values.
    optimizer = lionr.optimizer_lion(
        momentum_dtype="int8", state_sharding="replicated"
    )
    optimizer.build(model.trainable_variables)
    slot = optimizer._slots[0]
    m = np.random.default_rng(1).normal(size=(64, 512)).astype("float32")
    m[:, :128] *= 1e-3  # the first shard's scales differ from the others'
    value = keras.ops.convert_to_tensor(m)
    value = keras.distribution.distribute_tensor(value, model.layers[0].kernel._layout)
    slot.write(optimizer, value)
    read = slot.read()
    out = {
        "m": m.tolist(),
        "codes": gather(slot.codes.value).tolist(),
        "scales": gather(slot.scales.value).tolist(),
        "read": gather(read).tolist(),
        "codes_spec": spec(slot.codes),
        "bytes": device_bytes(slot.codes) + device_bytes(slot.scales),
        "block": state.BLOCK,
    }
    keras.distribution.set_distribution(None)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dtypes", nargs="*", default=DTYPES)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--save", help="folder: save the data/int8 model")
    args = parser.parse_args()
    connect(args)
    layouts = LAYOUTS if args.processes == 1 else LAYOUTS[1:]
    out = {}
    for d in args.dtypes:
        for lay in layouts:
            save = None
            if args.save and (lay, d) == ("data", "int8"):
                save = os.path.join(args.save, f"p{args.process_id}.keras")
            out[f"{lay}/{d}"] = run(lay, d, save=save)
    if args.processes == 1:
        for r in ROUNDINGS:
            out.update({f"{lay}/{r}": run(lay, "float32", r) for lay in layouts})
    out["blocks"] = blocks()
    out["processes"] = args.processes
    if args.process_id == 0:
        print(json.dumps(out))
    if args.processes > 1:
        import jax

        jax.distributed.shutdown()


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    main()
