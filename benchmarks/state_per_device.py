"""Optimizer state held by one device, for 1, 2, 4 and 8 devices.

Each device count runs in its own jax process on simulated CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``). The model is two
1024 x 1024 Dense layers (2,099,200 parameters) under
``keras.distribution.ModelParallel`` with a ``(1, N)`` mesh: the first
kernel and its bias are sharded along their last axis, the second kernel
along its first; the second bias is replicated. For every
``momentum_dtype`` the script builds lionr's optimizer and sums, on each
device, the bytes of the optimizer variables it holds (momentum stores
only, not the iteration count and learning rate), and reports the largest
device's total divided by the model's parameter count. With
``DataParallel`` (every parameter replicated) every device holds the
1-device figure.

Usage: python benchmarks/state_per_device.py [--devices 1 2 4 8]
Writes benchmarks/results/state_per_device.{md,json}.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("float32", "bfloat16", "int8")


def worker():
    import keras

    import lionr

    devices = keras.distribution.list_devices("cpu")
    mesh = keras.distribution.DeviceMesh(
        (1, len(devices)), ["batch", "model"], devices
    )
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map[".*up/kernel"] = (None, "model")
    layout_map[".*up/bias"] = ("model",)
    layout_map[".*down/kernel"] = ("model", None)
    keras.distribution.set_distribution(
        keras.distribution.ModelParallel(
            layout_map=layout_map, batch_dim_name="batch"
        )
    )
    out = {}
    for mode in MODES:
        model = keras.Sequential(
            [
                keras.Input((1024,)),
                keras.layers.Dense(1024, name="up"),
                keras.layers.Dense(1024, name="down"),
            ]
        )
        optimizer = lionr.optimizer_lion(momentum_dtype=mode)
        optimizer.build(model.trainable_variables)
        skip = {id(optimizer.iterations), id(optimizer._learning_rate)}
        held = {}
        for v in optimizer.variables:
            if id(v) in skip:
                continue
            for shard in v.value.addressable_shards:
                key = str(shard.device)
                held[key] = held.get(key, 0) + shard.data.nbytes
        params = sum(int(v.numpy().size) for v in model.trainable_variables)
        out[mode] = {"params": params, "bytes": max(held.values())}
    print(json.dumps({"devices": len(devices), "modes": out}))


def measure(n):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n}"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), env.get("PYTHONPATH", "")]
    )
    done = subprocess.run(
        [sys.executable, __file__, "--worker"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results):
    counts = [r["devices"] for r in results]
    lines = [
        "| momentum_dtype | " + " | ".join(f"{n} device{'s' * (n > 1)}" for n in counts) + " |",
        "|---|" + "---|" * len(counts),
    ]
    for mode in MODES:
        cells = [
            f"{r['modes'][mode]['bytes'] / r['modes'][mode]['params']:.3f}"
            for r in results
        ]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    results = [measure(n) for n in args.devices]
    text = (
        "# Optimizer state per device\n\n"
        "Command: `python benchmarks/state_per_device.py`  \n"
        "Two 1024 x 1024 Dense layers (2,099,200 parameters), "
        "`ModelParallel` over a (1, N) mesh of simulated CPU devices; "
        "bytes of momentum state on the fullest device per model "
        "parameter.\n\n" + table(results) + "\n"
    )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "state_per_device.md").write_text(text)
    (args.out / "state_per_device.json").write_text(
        json.dumps(results, indent=1) + "\n"
    )
    return None


if __name__ == "__main__":
    main()
