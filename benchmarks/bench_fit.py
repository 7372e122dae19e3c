"""Time a whole training step under ``model.fit``: Lion against AdamW.

A small MLP (784 -> 512 -> 512 -> 10, about 0.67M parameters) is trained on
random data with ``model.fit`` on each Keras backend (one subprocess per
backend), once with ``lionr.Lion``, once with ``keras.optimizers.Lion`` and
once with ``keras.optimizers.AdamW``. After a warm-up epoch (compilation),
epochs are interleaved across the optimizers; within each epoch the time of
every batch is taken with a callback, and the epoch contributes the median
batch time. Reported: median over epochs and min-max, in ms per training
step, and the ratio to AdamW on the same backend.

Outputs: markdown on stdout and in ``benchmarks/results/fit.md``, numbers in
``fit.json`` (``--out`` changes the folder).

Examples::

    python benchmarks/bench_fit.py                    # all backends, ~2 min
    python benchmarks/bench_fit.py --backends torch --epochs 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BACKENDS = ("jax", "tensorflow", "torch")
OPTIMIZERS = ("lionr.Lion", "keras.optimizers.Lion", "keras.optimizers.AdamW")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def worker(backend, epochs, steps, batch, out_path):
    import numpy as np

    import keras

    import lionr

    assert keras.backend.backend() == backend
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps * batch, 784)).astype("float32")
    y = rng.integers(0, 10, steps * batch)

    def make(name):
        keras.utils.set_random_seed(0)
        opt = {
            "lionr.Lion": lambda: lionr.Lion(1e-4, weight_decay=0.01),
            "keras.optimizers.Lion": lambda: keras.optimizers.Lion(
                1e-4, weight_decay=0.01),
            "keras.optimizers.AdamW": lambda: keras.optimizers.AdamW(1e-3),
        }[name]()
        model = keras.Sequential([
            keras.Input((784,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(10),
        ])
        model.compile(
            optimizer=opt,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    class BatchTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.times = []
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            self.times.append(now - self.t)
            self.t = now

    runs = {}
    for name in OPTIMIZERS:
        log(f"[{backend}] {name}: build + warm-up epoch")
        model = make(name)
        timer = BatchTimer()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0,
                  callbacks=[timer])
        runs[name] = dict(model=model, timer=timer, samples=[],
                          params=model.count_params())
    for e in range(epochs):
        for name, r in runs.items():
            log(f"[{backend}] epoch {e + 1}/{epochs}: {name}")
            r["model"].fit(x, y, batch_size=batch, epochs=1, verbose=0,
                           callbacks=[r["timer"]])
            # The first batch of an epoch carries iterator setup; skip it.
            r["samples"].append(
                statistics.median(r["timer"].times[1:]) * 1e3)
    records = [
        dict(backend=backend, optimizer=name, params=r["params"],
             batch_size=batch, steps_per_epoch=steps, epoch_medians_ms=r[
                 "samples"], median_ms=statistics.median(r["samples"]),
             min_ms=min(r["samples"]), max_ms=max(r["samples"]))
        for name, r in runs.items()
    ]
    Path(out_path).write_text(json.dumps(records))


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Training-step time under model.fit, Lion vs AdamW, "
                    "per Keras backend. See the module docstring.")
    ap.add_argument("--backends", nargs="+", choices=BACKENDS,
                    default=list(BACKENDS), help="backends (default: all)")
    ap.add_argument("--epochs", type=int, default=5,
                    help="timed epochs per optimizer, interleaved (default 5)")
    ap.add_argument("--steps", type=int, default=30,
                    help="training steps per epoch (default 30)")
    ap.add_argument("--batch-size", type=int, default=128,
                    help="batch size (default 128)")
    ap.add_argument("--out", type=Path, default=HERE / "results",
                    help="folder for fit.md and fit.json")
    ap.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.epochs, args.steps, args.batch_size,
               args.worker_out)
        return 0
    t0 = time.time()
    records = []
    for backend in args.backends:
        log(f"== {backend}: starting worker process")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "fit.json"
            env = dict(os.environ, KERAS_BACKEND=backend,
                       TF_CPP_MIN_LOG_LEVEL="3")
            env.setdefault("KERAS_HOME", str(ROOT / ".keras_home"))
            rc = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()),
                 "--worker", backend, "--worker-out", str(out),
                 "--epochs", str(args.epochs), "--steps", str(args.steps),
                 "--batch-size", str(args.batch_size)], env=env).returncode
            if rc:
                log(f"!! {backend} worker failed (exit {rc})")
                return rc
            records.extend(json.loads(out.read_text()))
    adamw = {r["backend"]: r["median_ms"] for r in records
             if r["optimizer"] == "keras.optimizers.AdamW"}
    cmd = "python benchmarks/bench_fit.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    lines = [
        "# Training step under model.fit",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"MLP 784-512-512-10 ({records[0]['params']} parameters), batch "
        f"{args.batch_size}, {args.steps} steps per epoch, {args.epochs} "
        "interleaved timed epochs after a warm-up epoch; per epoch the "
        "median batch time. Lion runs use weight_decay=0.01.",
        "",
        "| backend | optimizer | median ms/step | min-max | vs AdamW |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['backend']} | {r['optimizer']} | {r['median_ms']:.3g} "
            f"| {r['min_ms']:.3g}-{r['max_ms']:.3g} "
            f"| {r['median_ms'] / adamw[r['backend']]:.2f} |")
    md = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fit.md").write_text(md)
    (args.out / "fit.json").write_text(json.dumps(dict(
        command=cmd.strip(), epochs=args.epochs, steps=args.steps,
        batch_size=args.batch_size, wall_seconds=time.time() - t0,
        records=records), indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
