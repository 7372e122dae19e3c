"""Quality and size of lionr's momentum storage modes on the digits task.

For each ``momentum_dtype`` ("float32", "bfloat16", "int8") this script

* fits the same MLP on scikit-learn's digits with the same seeds and
  reports final loss and accuracy (train and validation);
* measures how often the update direction agrees with float32: a float32
  run drives the training, and at every step a shadow optimizer of each
  mode receives the same gradient at the same weights; the fraction of
  coordinates where ``sign(update)`` equals float32's is reported;
* reports optimizer state in bytes per parameter for a 1e6-parameter model.

Usage: KERAS_BACKEND=jax python benchmarks/momentum_modes.py [--epochs N]
Writes benchmarks/results/momentum_modes.{md,json}.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

import keras  # noqa: E402

import lionr  # noqa: E402

MODES = ("float32", "bfloat16", "int8")
HERE = Path(__file__).resolve().parent


def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def mlp():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def make_optimizer(mode):
    return lionr.optimizer_lion(
        learning_rate=1e-3, weight_decay=0.1, momentum_dtype=mode
    )


def state_bytes_per_param(mode, units=1000):
    model = keras.Sequential([keras.Input((units,)), keras.layers.Dense(units)])
    optimizer = make_optimizer(mode)
    optimizer.build(model.trainable_variables)
    params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    skip = {id(optimizer._iterations), id(optimizer._learning_rate)}
    state = sum(
        keras.ops.convert_to_numpy(v.value).nbytes
        for v in optimizer.variables
        if id(v) not in skip
    )
    return params, state / params


def fit(mode, epochs, train, val):
    keras.utils.set_random_seed(0)
    model = mlp()
    model.compile(
        optimizer=make_optimizer(mode),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        *train, validation_data=val, epochs=epochs, batch_size=64, verbose=0
    )
    return {k: float(v[-1]) for k, v in history.history.items()}


def sign_agreement(epochs, train):
    """Fraction of update signs equal to float32's at the same weights."""
    import jax

    keras.utils.set_random_seed(0)
    model = mlp()
    weights = model.trainable_variables
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizers = {m: make_optimizer(m) for m in MODES}
    for opt in optimizers.values():
        opt.build(weights)

    def loss(values, x, y):
        logits, _ = model.stateless_call(values, [], x)
        return loss_fn(y, logits)

    grad = jax.jit(jax.grad(loss))
    agree = {m: 0 for m in MODES[1:]}
    total = 0
    x, y = train
    for _ in range(epochs):
        for start in range(0, len(x), 64):
            values = [v.value for v in weights]
            grads = grad(values, x[start : start + 64], y[start : start + 64])
            signs = {}
            for mode in reversed(MODES):  # float32 last: it moves the weights
                for v, value in zip(weights, values):
                    v.assign(value)
                optimizers[mode].apply(grads, weights)
                signs[mode] = [
                    np.sign(np.asarray(b) - np.asarray(a.value))
                    for b, a in zip(values, weights)
                ]
            for mode in agree:
                agree[mode] += sum(
                    int((s == r).sum())
                    for s, r in zip(signs[mode], signs["float32"])
                )
            total += sum(s.size for s in signs["float32"])
    return {m: agree[m] / total for m in agree}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    train, val = digits()
    rows = {}
    for mode in MODES:
        t0 = time.perf_counter()
        print(f"fitting with momentum_dtype={mode!r} ...", flush=True)
        rows[mode] = fit(mode, args.epochs, train, val)
        rows[mode]["fit_seconds"] = time.perf_counter() - t0
        params, rows[mode]["state_bytes_per_param"] = state_bytes_per_param(mode)
    print("measuring sign agreement with float32 ...", flush=True)
    agreement = sign_agreement(args.epochs, train)
    for mode in MODES:
        rows[mode]["sign_agreement"] = agreement.get(mode, 1.0)
    lines = [
        f"Digits MLP, {args.epochs} epochs, backend {keras.backend.backend()}; "
        f"state measured on a {params:,}-parameter model.",
        "",
        "| momentum_dtype | state bytes/param | loss | accuracy | val loss "
        "| val accuracy | update signs equal to float32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, r in rows.items():
        lines.append(
            f"| {mode} | {r['state_bytes_per_param']:.3f} | {r['loss']:.4f} "
            f"| {r['accuracy']:.4f} | {r['val_loss']:.4f} "
            f"| {r['val_accuracy']:.4f} | {r['sign_agreement']:.4f} |"
        )
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "momentum_modes.md").write_text(table + "\n")
    (args.out / "momentum_modes.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
