"""The small grid behind the demo's learning rates and weight decays.

Trains the demo's network (same data, same epochs and batch size) silently
for each setting and several seeds, and prints the mean final validation
accuracy and loss, so the choice in demo.py can be checked or redone:

    KERAS_BACKEND=jax .venv/bin/python demo/sweep.py --seeds 3
"""

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="jax",
                   choices=["jax", "tensorflow", "torch"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--lion-lr", type=float, nargs="+",
                   default=[1e-4, 3e-4, 1e-3, 3e-3])
    p.add_argument("--lion-wd", type=float, nargs="+",
                   default=[0.03, 0.1, 0.3])
    p.add_argument("--adamw-lr", type=float, nargs="+",
                   default=[1e-3, 3e-3, 1e-2])
    p.add_argument("--adamw-wd", type=float, nargs="+", default=[0.01])
    a = p.parse_args()
    os.environ["KERAS_BACKEND"] = a.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if a.backend != "tensorflow":
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import keras

    import lionr
    import demo

    data = demo.load_digits_split()
    grid = [("AdamW", lr, wd) for lr, wd in
            itertools.product(a.adamw_lr, a.adamw_wd)]
    grid += [("Lion", lr, wd) for lr, wd in
             itertools.product(a.lion_lr, a.lion_wd)]
    print(f"backend {a.backend}, {a.epochs} epochs, batch {a.batch_size}, "
          f"seeds 0..{a.seeds - 1}; means over seeds")
    print(f"{'optimizer':9} {'lr':>7} {'wd':>6} {'train acc':>9} "
          f"{'val acc':>8} {'val loss':>8} {'min val loss':>12} {'at epoch':>8}")
    t0 = time.perf_counter()
    for name, lr, wd in grid:
        res = []
        for seed in range(a.seeds):
            args = argparse.Namespace(seed=seed, epochs=a.epochs,
                                      batch_size=a.batch_size, verbose=0)
            if name == "AdamW":
                make = lambda lr=lr, wd=wd: keras.optimizers.AdamW(  # noqa: E731
                    learning_rate=lr, weight_decay=wd)
            else:
                make = lambda lr=lr, wd=wd: lionr.optimizer_lion(  # noqa: E731
                    learning_rate=lr, weight_decay=wd)
            h, _ = demo.train(keras, make, data, args)
            res.append((h["accuracy"][-1], h["val_accuracy"][-1],
                        h["val_loss"][-1], min(h["val_loss"]),
                        1 + h["val_loss"].index(min(h["val_loss"]))))
        m = [statistics.mean(col) for col in zip(*res)]
        print(f"{name:9} {lr:7g} {wd:6g} {m[0]:9.4f} {m[1]:8.4f} "
              f"{m[2]:8.4f} {m[3]:12.4f} {m[4]:8.1f}", flush=True)
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
