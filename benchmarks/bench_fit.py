"""Time the optimizer inside ``model.fit``: lionr's Lion against Keras's, over
SGD as the floor.

A model of two ``Dense(width)`` layers on ``width`` inputs (width 2048: 8.4M
parameters; width 707: 1.0M) is trained with mean squared error on random
data, batch 8, 64 steps an epoch, on each Keras backend (one subprocess per
backend) as ``fit`` runs it there: jax jit-compiled (Keras's trainer donates
the state), tensorflow with ``jit_compile=True`` (XLA), torch eagerly. Three
optimizers: ``keras.optimizers.SGD`` (the floor: forward, backward and the
cheapest update), ``keras.optimizers.Lion`` and ``lionr.Lion`` (both with
weight_decay=0.01).

After a warm-up epoch per optimizer (compilation), timed epochs are run in
rounds, one epoch of each optimizer per round, so that a slow phase of a
shared machine hits all three alike. Within an epoch every step is timed
(a callback reading the step's loss, which waits for the step), and the
epoch contributes the median step time (its first step is left out).

The optimizer's cost is its step time minus SGD's. Reported per backend and
size: median and min-max step times over rounds, and lionr's cost over
Keras's three ways: from the median epochs, from each optimizer's least
disturbed (fastest) epoch, and the range of the per-round ratios.

Each backend runs twice, in separate processes: with glibc's default
allocation, and with ``lionr.retain_host_memory()`` called first (freed
memory kept for reuse, see ``lionr.host_memory``); ``--host-memory``
chooses.

Outputs: markdown on stdout and in ``benchmarks/results/fit.md``, numbers in
``fit.json`` (``--out`` changes the folder).

Examples::

    python benchmarks/bench_fit.py                    # all backends, both sizes
    python benchmarks/bench_fit.py --backends torch --sizes 1e6 --rounds 3
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BACKENDS = ("jax", "tensorflow", "torch")
OPTIMIZERS = ("keras.optimizers.SGD", "keras.optimizers.Lion", "lionr.Lion")
FLOOR, KERAS, LIONR = OPTIMIZERS
WIDTHS = {"8.4e6": 2048, "1e6": 707}  # two Dense(width) on width inputs
# Wall time, or the CPU time of the process (all its threads): on a busy
# machine the latter leaves out the time the process waits for a core.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
HOST_MEMORY = ("default", "retained")
HOW = {
    "jax": "fit, jit (Keras's trainer donates the state)",
    "tensorflow": "fit, compile(jit_compile=True)",
    "torch": "fit, eager",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def worker(backend, host_memory, sizes, rounds, steps, batch, clock,
           out_path):
    import lionr

    if host_memory == "retained":
        assert lionr.retain_host_memory()

    import numpy as np

    import keras

    assert keras.backend.backend() == backend

    def make(name, width):
        keras.utils.set_random_seed(0)
        opt = {
            FLOOR: lambda: keras.optimizers.SGD(1e-4),
            KERAS: lambda: keras.optimizers.Lion(1e-4, weight_decay=0.01),
            LIONR: lambda: lionr.Lion(1e-4, weight_decay=0.01),
        }[name]()
        model = keras.Sequential([
            keras.Input((width,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width),
        ])
        jit = {"tensorflow": True, "jax": True, "torch": False}[backend]
        model.compile(optimizer=opt, loss="mse", jit_compile=jit)
        return model

    now_s = CLOCKS[clock]

    class StepTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.times = []
            self.t = now_s()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # waits for the step
            now = now_s()
            self.times.append(now - self.t)
            self.t = now

    records = []
    for size in sizes:
        width = WIDTHS[size]
        rng = np.random.default_rng(0)
        x = rng.standard_normal((steps * batch, width)).astype("float32")
        y = rng.standard_normal((steps * batch, width)).astype("float32")
        runs = {}
        for name in OPTIMIZERS:
            log(f"[{backend} {size}] {name}: build + warm-up epoch")
            model = make(name, width)
            timer = StepTimer()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0,
                      shuffle=False, callbacks=[timer])
            runs[name] = dict(model=model, timer=timer, samples=[],
                              params=model.count_params())
        for r in range(rounds):
            log(f"[{backend} {size}] round {r + 1}/{rounds}")
            for run in runs.values():
                run["model"].fit(x, y, batch_size=batch, epochs=1, verbose=0,
                                 shuffle=False, callbacks=[run["timer"]])
                times = run["timer"].times[1:]
                run["samples"].append(statistics.median(times) * 1e3)
        for name, run in runs.items():
            s = run["samples"]
            records.append(dict(
                backend=backend, how=HOW[backend], host_memory=host_memory,
                size=size,
                optimizer=name, params=run["params"], batch_size=batch,
                steps_per_epoch=steps, epoch_medians_ms=s,
                median_ms=statistics.median(s), min_ms=min(s), max_ms=max(s),
            ))
        del runs
    Path(out_path).write_text(json.dumps(records))


def cost_ratios(rows):
    """lionr's optimizer cost over Keras's for one backend and size: from
    the median epochs, from the fastest epochs, and per round."""
    by = {r["optimizer"]: r for r in rows}
    floor, keras_, lionr_ = (by[n] for n in OPTIMIZERS)

    def ratio(key):
        return (lionr_[key] - floor[key]) / (keras_[key] - floor[key])

    rounds = [
        (li - f) / (k - f)
        for f, k, li in zip(*(by[n]["epoch_medians_ms"] for n in OPTIMIZERS))
    ]
    return dict(median=ratio("median_ms"), best=ratio("min_ms"),
                rounds_min=min(rounds), rounds_max=max(rounds),
                rounds=rounds)


def _key(record):
    return record["backend"], record["host_memory"], record["size"]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="The optimizer's cost inside model.fit, lionr vs Keras's "
                    "Lion over SGD, per backend. See the module docstring.")
    ap.add_argument("--backends", nargs="+", choices=BACKENDS,
                    default=list(BACKENDS), help="backends (default: all)")
    ap.add_argument("--sizes", nargs="+", choices=list(WIDTHS),
                    default=list(WIDTHS),
                    help="parameter counts (default: both)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="timed rounds, one epoch per optimizer (default 5)")
    ap.add_argument("--steps", type=int, default=64,
                    help="training steps per epoch (default 64)")
    ap.add_argument("--batch-size", type=int, default=8,
                    help="batch size (default 8)")
    ap.add_argument("--clock", choices=list(CLOCKS), default="wall",
                    help="wall time (default), or the process's CPU time, "
                         "steadier on a busy machine")
    ap.add_argument("--host-memory", nargs="+", choices=HOST_MEMORY,
                    default=list(HOST_MEMORY),
                    help="glibc's default allocation, freed memory retained "
                         "(lionr.retain_host_memory), or both (default)")
    ap.add_argument("--out", type=Path, default=HERE / "results",
                    help="folder for fit.md and fit.json")
    ap.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.host_memory[0], args.sizes, args.rounds, args.steps,
               args.batch_size, args.clock, args.worker_out)
        return 0
    t0 = time.time()
    records = []
    for backend, memory in (
        (b, m) for b in args.backends for m in args.host_memory
    ):
        log(f"== {backend}, host memory {memory}: starting worker process")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "fit.json"
            env = dict(os.environ, KERAS_BACKEND=backend,
                       TF_CPP_MIN_LOG_LEVEL="3")
            env.setdefault("KERAS_HOME", str(ROOT / ".keras_home"))
            rc = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()),
                 "--worker", backend, "--worker-out", str(out),
                 "--rounds", str(args.rounds), "--steps", str(args.steps),
                 "--batch-size", str(args.batch_size), "--clock", args.clock,
                 "--host-memory", memory,
                 "--sizes", *args.sizes], env=env).returncode
            if rc:
                log(f"!! {backend} worker failed (exit {rc})")
                return rc
            records.extend(json.loads(out.read_text()))
    cmd = "python benchmarks/bench_fit.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    ratios = {}
    for r in records:
        key = (r["backend"], r["host_memory"], r["size"])
        if key not in ratios:
            ratios[key] = cost_ratios([x for x in records if _key(x) == key])
    lines = [
        "# The optimizer inside model.fit",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs.  ",
        f"Two Dense(width) layers on width inputs, MSE, batch "
        f"{args.batch_size}, {args.steps} steps per epoch; {args.rounds} "
        "rounds of one epoch per optimizer after a warm-up epoch; per epoch "
        f"the median step time ({args.clock} clock). Lion runs use "
        "weight_decay=0.01. Cost: step time minus SGD's.",
        "",
        "| backend | how | host memory | params | SGD ms | Keras Lion ms | lionr ms "
        "| cost ratio, medians | cost ratio, fastest epochs "
        "| per-round ratios |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (backend, memory, size), q in ratios.items():
        by = {r["optimizer"]: r for r in records
              if _key(r) == (backend, memory, size)}

        def cell(name, by=by):
            r = by[name]
            return (f"{r['median_ms']:.3g} ({r['min_ms']:.3g}-"
                    f"{r['max_ms']:.3g})")

        lines.append(
            f"| {backend} | {HOW[backend]} | {memory} "
            f"| {by[FLOOR]['params']:.2e} "
            f"| {cell(FLOOR)} | {cell(KERAS)} | {cell(LIONR)} "
            f"| {q['median']:.2f} | {q['best']:.2f} "
            f"| {q['rounds_min']:.2f}-{q['rounds_max']:.2f} |")
    md = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fit.md").write_text(md)
    (args.out / "fit.json").write_text(json.dumps(dict(
        command=cmd.strip(), clock=args.clock, rounds=args.rounds, steps=args.steps,
        batch_size=args.batch_size, wall_seconds=time.time() - t0,
        cpu_count=os.cpu_count(), records=records,
        cost_ratios=[dict(backend=b, host_memory=m, size=s, **q)
                     for (b, m, s), q in ratios.items()]), indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
