"""Training quality and memory of ``weight_rounding`` with bfloat16 weights.

The task (from issue 12): scikit-learn's digits, stratified 80/20 split as
in the demo, MLP 64-128-64-10 (ReLU; the output layer in float32, as Keras's
mixed-precision guide advises), batch 64, ``--epochs`` epochs, Lion with
learning rate 3e-4 and no weight decay. Rows:

* ``float32 weights``: dtype policy ``mixed_bfloat16`` (bfloat16 compute,
  float32 weights), ``weight_rounding="nearest"``;
* ``bfloat16 weights``: policy ``bfloat16`` for the hidden layers, each of
  ``nearest``, ``kahan`` and ``stochastic`` (and, with ``--momentum``, each
  ``momentum_dtype``).

Reported: the final training loss (mean over the last epoch, as ``fit``
logs it) and validation accuracy, mean over ``--seeds`` seeds, and the
ratio of the loss to the float32-weights row. The same for one wider model
(64-1024-1024-10, 1.1 M parameters; ``--large-seeds`` seeds). Bytes per
parameter of weights plus optimizer state are counted from the variables of
a built optimizer on the wide model (step counter and scalars left out).

Each backend runs in its own process. Results go to
``benchmarks/results/weight_rounding.{md,json}`` (``--out`` for another
folder).

Usage::

    python benchmarks/weight_rounding.py                      # all backends
    python benchmarks/weight_rounding.py --backends jax --seeds 1 --epochs 2
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BACKENDS = ("jax", "tensorflow", "torch")
MODES = ("nearest", "kahan", "stochastic")
LR = 3e-4


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Child: one backend
# --------------------------------------------------------------------------


def digits():
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y.astype("int32"), test_size=0.2, random_state=0, stratify=y
    )
    return (np.ascontiguousarray(x_tr), y_tr), (np.ascontiguousarray(x_va), y_va)


def model(hidden, weights):
    import keras

    policy = "mixed_bfloat16" if weights == "float32" else "bfloat16"
    layers = [keras.Input((64,))]
    layers += [keras.layers.Dense(h, activation="relu", dtype=policy) for h in hidden]
    layers.append(keras.layers.Dense(10, activation="softmax", dtype="float32"))
    return keras.Sequential(layers)


def fit(hidden, weights, mode, momentum, seed, epochs, data):
    import keras

    import lionr

    keras.utils.set_random_seed(seed)
    m = model(hidden, weights)
    m.compile(
        optimizer=lionr.optimizer_lion(
            learning_rate=LR, weight_rounding=mode, momentum_dtype=momentum
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    (x, y), (xv, yv) = data
    t0 = time.perf_counter()
    h = m.fit(x, y, batch_size=64, epochs=epochs, verbose=0,
              validation_data=(xv, yv))
    return {
        "loss": h.history["loss"][-1],
        "val_accuracy": h.history["val_accuracy"][-1],
        "seconds": time.perf_counter() - t0,
    }


def state_bytes(weights, mode, momentum):
    """Bytes per parameter of weights + optimizer state, wide model."""
    import math

    import lionr

    m = model((1024, 1024), weights)
    opt = lionr.optimizer_lion(weight_rounding=mode, momentum_dtype=momentum)
    opt.build(m.trainable_variables)
    n = sum(math.prod(v.shape) for v in m.trainable_variables)

    def nbytes(vs):
        import numpy as np

        return sum(
            math.prod(v.shape) * np.dtype(_np_dtype(v.dtype)).itemsize
            for v in vs
            if len(v.shape) > 0 and math.prod(v.shape) > 2
        )

    return (nbytes(m.trainable_variables) + nbytes(opt.variables)) / n, n


def _np_dtype(dtype):
    return {"bfloat16": "float16"}.get(str(dtype), str(dtype))  # same size


def child(args):
    data = digits()
    rows = []
    combos = [("float32", "nearest", "float32")]
    momenta = ("float32", "bfloat16", "int8") if args.momentum else ("float32",)
    combos += [("bfloat16", mode, mom) for mom in momenta for mode in MODES]
    for size, hidden, seeds in (
        ("small", (128, 64), range(args.seeds)),
        ("large", (1024, 1024), range(args.large_seeds)),
    ):
        for weights, mode, mom in combos:
            runs = [fit(hidden, weights, mode, mom, s, args.epochs, data) for s in seeds]
            if not runs:
                continue
            row = {
                "model": size,
                "weights": weights,
                "weight_rounding": mode,
                "momentum_dtype": mom,
                "seeds": len(runs),
                "loss": sum(r["loss"] for r in runs) / len(runs),
                "val_accuracy": sum(r["val_accuracy"] for r in runs) / len(runs),
                "losses": [r["loss"] for r in runs],
                "seconds": sum(r["seconds"] for r in runs),
            }
            log(f"  {os.environ['KERAS_BACKEND']} {size} {weights} {mode} "
                f"{mom}: loss {row['loss']:.4f}")
            rows.append(row)
    sizes = []
    for weights in ("float32", "bfloat16"):
        for mom in ("float32", "bfloat16", "int8"):
            for mode in MODES if weights == "bfloat16" else ("nearest",):
                b, n = state_bytes(weights, mode, mom)
                sizes.append({"weights": weights, "momentum_dtype": mom,
                              "weight_rounding": mode, "bytes_per_param": b,
                              "params": n})
    print(json.dumps({"rows": rows, "bytes": sizes}))


# --------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------


def table(results, epochs):
    out = []
    for backend, res in results.items():
        for size in ("small", "large"):
            rows = [r for r in res["rows"] if r["model"] == size]
            if not rows:
                continue
            base = rows[0]["loss"]
            name = "64-128-64-10" if size == "small" else "64-1024-1024-10"
            out.append(f"\n{backend}, MLP {name}, {epochs} epochs, "
                       f"{rows[0]['seeds']} seed(s):\n")
            out.append("| weights | weight_rounding | momentum_dtype | loss "
                       "| loss / float32 weights | val accuracy |")
            out.append("|---|---|---|---:|---:|---:|")
            for r in rows:
                out.append(
                    f"| {r['weights']} | {r['weight_rounding']} | "
                    f"{r['momentum_dtype']} | {r['loss']:.4f} | "
                    f"{r['loss'] / base:.2f} | {r['val_accuracy']:.4f} |"
                )
    res = next(iter(results.values()))
    n = res["bytes"][0]["params"]
    out.append(f"\nWeights + optimizer state, bytes per parameter ({n:,} parameters):\n")
    out.append("| weights | momentum_dtype | weight_rounding | bytes/param |")
    out.append("|---|---|---|---:|")
    for b in res["bytes"]:
        out.append(f"| {b['weights']} | {b['momentum_dtype']} | "
                   f"{b['weight_rounding']} | {b['bytes_per_param']:.2f} |")
    return "\n".join(out) + "\n"


def _collect(backend, proc, results):
    out, _ = proc.communicate(timeout=4 * 3600)
    if proc.returncode:
        raise SystemExit(f"{backend} failed with status {proc.returncode}")
    results[backend] = json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--large-seeds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--momentum", action="store_true",
                    help="also every momentum_dtype for bfloat16 weights")
    ap.add_argument("--parallel", action="store_true",
                    help="run the backends at the same time")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    results, running = {}, {}
    for backend in args.backends:
        log(f"{backend}: started")
        env = dict(os.environ, KERAS_BACKEND=backend)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]
        )
        cmd = [sys.executable, __file__, "--child", "--seeds", str(args.seeds),
               "--large-seeds", str(args.large_seeds), "--epochs", str(args.epochs)]
        if args.momentum:
            cmd.append("--momentum")
        running[backend] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        if not args.parallel:
            _collect(backend, running.pop(backend), results)
    for backend, proc in running.items():
        _collect(backend, proc, results)
    text = table(results, args.epochs)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "weight_rounding.md").write_text(text)
    (args.out / "weight_rounding.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
