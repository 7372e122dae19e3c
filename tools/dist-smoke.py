"""Smoke check of an installed lionr wheel (run by ./dev dist).

Usage: python -I tools/dist-smoke.py VERSION, with the Python of a fresh
virtual environment where the wheel was installed with one backend, from a
folder that holds no lionr. Checks that lionr comes from that environment
with the expected version and metadata, then trains a small model for one
epoch of 4 steps. Lion moves each weight by exactly the learning rate at
every step, up or down, so after 4 steps each weight has moved by 0, 2 or 4
times the learning rate.
"""

import importlib.metadata
import sys
from pathlib import Path

import numpy as np

import keras

import lionr

LEARNING_RATE = 0.01


def main(expected):
    where = Path(lionr.__file__).resolve()
    prefix = Path(sys.prefix).resolve()
    assert prefix in where.parents, f"lionr imported from {where}, not from {prefix}"
    meta = importlib.metadata.metadata("lionr")
    assert lionr.__version__ == meta["Version"] == expected, (
        lionr.__version__, meta["Version"], expected)
    assert meta["License-Expression"] == "MIT", meta["License-Expression"]
    assert f"# lionr {expected}" in meta["Description"], "NEWS.md is not in the description"

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    opt = lionr.optimizer_lion(learning_rate=LEARNING_RATE)
    model.compile(optimizer=opt, loss="mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    steps = int(keras.ops.convert_to_numpy(opt.iterations))
    assert steps == 4, steps
    loss = history.history["loss"][0]
    assert np.isfinite(loss), loss
    moved = np.concatenate([np.abs(a - b).ravel() for a, b in zip(model.get_weights(), before)])
    in_steps = moved / LEARNING_RATE
    assert np.allclose(in_steps, np.round(in_steps), atol=1e-3), in_steps
    assert set(np.round(in_steps).astype(int)) <= {0, 2, 4}, in_steps
    assert in_steps.max() > 1, "no weight moved"
    print(f"lionr {lionr.__version__} from {where.parent}, keras {keras.__version__} "
          f"({keras.backend.backend()}): {steps} steps, loss {loss:.4f}, "
          f"weights moved by {moved.min():.4f} to {moved.max():.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
