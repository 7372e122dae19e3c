"""Optimizer state per device and bytes moved per train step, for 1, 2, 4
and 8 devices, lionr's state sharded or replicated, against Keras's Lion
and AdamW.

Each device count runs in its own jax process on simulated CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``). The model is two
1024 x 1024 Dense layers (2,099,200 parameters; bfloat16 for the
``weight_rounding="kahan"`` rows), under

* ``DataParallel`` over the N devices (every parameter replicated), and
* ``ModelParallel`` over a ``("batch", "model")`` mesh of shape
  ``(N/2, 2)`` (``(1, 1)`` on one device): the first kernel and its bias
  cut along their last axis over "model", the second kernel along its
  first; the second bias replicated.

For each optimizer the script builds it and sums, on each device, the
bytes of its variables other than the iteration count and learning rate;
it reports the fullest device's total per model parameter. On 8 devices it
also compiles the train step as ``fit`` does and sums, from the optimized
HLO, the bits each device receives from every collective
(``benchmarks/hlo_collectives.py``), per model parameter: all-reduce (the
gradient's reduction), all-gather, and the rest. With ``--time`` it times
``fit`` on 8 devices, sharded against replicated state, interleaved.

Usage: python benchmarks/state_per_device.py [--devices 1 2 4 8] [--time]
Writes benchmarks/results/state_per_device.{md,json}.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (row label, optimizer, keyword arguments, model dtype)
OPTIMIZERS = [
    ("lionr float32, sharded", "lionr", {}, "float32"),
    ("lionr float32, replicated", "lionr",
     {"state_sharding": "replicated"}, "float32"),
    ("lionr bfloat16, sharded", "lionr", {"momentum_dtype": "bfloat16"},
     "float32"),
    ("lionr bfloat16, replicated", "lionr",
     {"momentum_dtype": "bfloat16", "state_sharding": "replicated"},
     "float32"),
    ("lionr int8, sharded", "lionr", {"momentum_dtype": "int8"}, "float32"),
    ("lionr int8, replicated", "lionr",
     {"momentum_dtype": "int8", "state_sharding": "replicated"}, "float32"),
    ("lionr bf16 weights kahan, sharded", "lionr",
     {"weight_rounding": "kahan"}, "bfloat16"),
    ("lionr bf16 weights kahan, replicated", "lionr",
     {"weight_rounding": "kahan", "state_sharding": "replicated"},
     "bfloat16"),
    ("keras Lion", "Lion", {}, "float32"),
    ("keras AdamW", "AdamW", {}, "float32"),
]
LAYOUTS = ("DataParallel", "ModelParallel")


def distribution(layout):
    import keras

    devices = keras.distribution.list_devices("cpu")
    if layout == "DataParallel":
        return keras.distribution.DataParallel(devices=devices)
    shape = (max(1, len(devices) // 2), min(2, len(devices)))
    mesh = keras.distribution.DeviceMesh(shape, ["batch", "model"], devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map[".*up/kernel"] = (None, "model")
    layout_map[".*up/bias"] = ("model",)
    layout_map[".*down/kernel"] = ("model", None)
    return keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name="batch"
    )


def build(kind, kwargs, dtype):
    import keras

    import lionr

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((1024,)),
            keras.layers.Dense(1024, name="up", dtype=dtype),
            keras.layers.Dense(1024, name="down", dtype=dtype),
        ]
    )
    if kind == "lionr":
        optimizer = lionr.optimizer_lion(learning_rate=1e-4, **kwargs)
    else:
        optimizer = getattr(keras.optimizers, kind)(learning_rate=1e-4)
    model.compile(optimizer=optimizer, loss="mse")
    optimizer.build(model.trainable_variables)
    return model


def state_bytes(model):
    """Bytes of optimizer state on the fullest device."""
    optimizer = model.optimizer
    skip = {id(optimizer.iterations), id(optimizer._learning_rate)}
    held = {}
    for v in optimizer.variables:
        if id(v) in skip:
            continue
        for shard in v.value.addressable_shards:
            key = str(shard.device)
            held[key] = held.get(key, 0) + shard.data.nbytes
    return max(held.values())


def wire(model):
    """Bits per device of all-reduce, all-gather and other collectives of
    one train step."""
    import hlo_collectives as hlo
    import numpy as np

    x = np.zeros((64, 1024), "float32")
    found = hlo.collectives(hlo.train_step_hlo(model, x, x))
    reduce, gather = ("all-reduce",), ("all-gather",)
    rest = tuple(k for k in hlo.KINDS if k not in reduce + gather)
    return {
        "all-reduce": hlo.bits(found, reduce),
        "all-gather": hlo.bits(found, gather),
        "other": hlo.bits(found, rest),
    }


def worker():
    import keras

    devices = len(keras.distribution.list_devices("cpu"))
    out = {"devices": devices, "rows": []}
    for layout in LAYOUTS:
        for label, kind, kwargs, dtype in OPTIMIZERS:
            keras.distribution.set_distribution(distribution(layout))
            model = build(kind, kwargs, dtype)
            row = {
                "layout": layout, "optimizer": label,
                "params": model.count_params(), "bytes": state_bytes(model),
            }
            if devices == 8:
                row["bits"] = wire(model)
            out["rows"].append(row)
            keras.distribution.set_distribution(None)
    print(json.dumps(out))


def timer(repeats=3, steps=16):
    """Seconds per ``fit`` epoch of ``steps`` batches of 64, DataParallel,
    sharded and replicated state interleaved, after a first epoch."""
    import numpy as np

    import keras

    x = np.random.default_rng(0).normal(size=(64 * steps, 1024))
    x = x.astype("float32")
    pairs = [(label, kind, kwargs, dtype)
             for label, kind, kwargs, dtype in OPTIMIZERS if kind == "lionr"]
    models = {}
    for label, kind, kwargs, dtype in pairs:
        keras.distribution.set_distribution(distribution("DataParallel"))
        model = build(kind, kwargs, dtype)
        model.fit(x, x, batch_size=64, epochs=1, verbose=0)
        models[label] = model
    times = {label: [] for label in models}
    for _ in range(repeats):
        for label, model in models.items():
            start = time.perf_counter()
            model.fit(x, x, batch_size=64, epochs=1, verbose=0)
            times[label].append(time.perf_counter() - start)
    print(json.dumps({"times": times}))


def run(n, flag):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n}"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), str(HERE), env.get("PYTHONPATH", "")]
    )
    done = subprocess.run(
        [sys.executable, __file__, flag],
        env=env, capture_output=True, text=True, timeout=1800, check=False,
    )
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def state_table(results, layout):
    counts = [r["devices"] for r in results]
    lines = [
        "| optimizer | " + " | ".join(
            f"{n} device{'s' * (n > 1)}" for n in counts) + " |",
        "|---|" + "---|" * len(counts),
    ]
    for label, *_ in OPTIMIZERS:
        cells = []
        for r in results:
            row = next(x for x in r["rows"]
                       if x["layout"] == layout and x["optimizer"] == label)
            cells.append(f"{row['bytes'] / row['params']:.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wire_table(result):
    lines = [
        "| layout | optimizer | all-reduce | all-gather | other | "
        "total | beyond the gradient's reduction |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        bits = {k: v / row["params"] for k, v in row["bits"].items()}
        total = sum(bits.values())
        lines.append(
            f"| {row['layout']} | {row['optimizer']} | "
            f"{bits['all-reduce']:.2f} | {bits['all-gather']:.2f} | "
            f"{bits['other']:.2f} | {total:.2f} | "
            f"{total - bits['all-reduce']:.2f} |"
        )
    return "\n".join(lines)


def time_table(times):
    lines = ["| mode | sharded / replicated, s per epoch (3 repeats) |",
             "|---|---|"]
    for label in times:
        if not label.endswith(", sharded"):
            continue
        mode = label[len("lionr "):-len(", sharded")]
        other = times[label.replace("sharded", "replicated")]
        ratios = sorted(a / b for a, b in zip(times[label], other))
        lines.append(
            f"| {mode} | {ratios[len(ratios) // 2]:.2f} "
            f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}) |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--time", action="store_true",
                        help="also time fit on 8 devices")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    if args.timer:
        return timer()
    results = [run(n, "--worker") for n in args.devices]
    text = (
        "Command: `python benchmarks/state_per_device.py"
        f"{' --time' if args.time else ''}`. Two 1024 x 1024 Dense layers "
        "(2,099,200 parameters), simulated CPU devices (jax). State: bytes "
        "of optimizer state on the fullest device per model parameter.\n\n"
    )
    for layout in LAYOUTS:
        mesh = {"DataParallel": "N devices",
                "ModelParallel": "a (N/2, 2) (batch, model) mesh"}[layout]
        text += (f"**{layout}** ({mesh}), state B/param:\n\n"
                 + state_table(results, layout) + "\n\n")
    eight = [r for r in results if r["devices"] == 8]
    if eight:
        text += ("Collectives of one compiled train step on 8 devices, "
                 "bits received per device per model parameter (optimized "
                 "HLO, batch of 64):\n\n" + wire_table(eight[0]) + "\n")
    timing = run(8, "--timer")["times"] if args.time else None
    if timing:
        text += ("\n`fit` time on 8 simulated CPU devices (2 cores; "
                 "informative), DataParallel:\n\n" + time_table(timing)
                 + "\n")
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "state_per_device.md").write_text(text)
    (args.out / "state_per_device.json").write_text(
        json.dumps({"results": results, "times": timing}, indent=1) + "\n"
    )
    return None


if __name__ == "__main__":
    main()
