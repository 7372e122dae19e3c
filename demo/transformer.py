"""The trade Lion offers, on a small character-level transformer.

Trains the model of ``benchmarks/transformer.py`` (same text, batches and
schedule, fewer steps) once with AdamW and once with lionr's Lion, prints
the validation loss of each and the optimizer state each keeps (AdamW 8
bytes per parameter; lionr 4, 2 or about 1 with ``momentum_dtype``
``"float32"``, ``"bfloat16"`` or ``"int8"``), and plots the two loss
curves. About a minute on a 2-core CPU (jax).

Usage: python demo/transformer.py [--steps N] [--output PNG]
From R: ``Rscript demo/transformer.R`` (lionr's R ``optimizer_lion()``
handed to ``run()`` below).
"""

import argparse
import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import lionr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# lionr's best setting on the benchmark, and the learning rates that were
# best there (benchmarks/results/transformer.md).
LION = dict(learning_rate=1e-3, beta_1=0.95, beta_2=0.98, weight_decay=0.1,
            cautious=True, momentum_dtype="int8")
ADAMW = dict(learning_rate=3e-3, weight_decay=0.01)


def _bench():
    """``benchmarks/transformer.py`` as a module."""
    path = ROOT / "benchmarks" / "transformer.py"
    spec = importlib.util.spec_from_file_location("lionr_transformer", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Setup:
    """Text, batches and model of the benchmark, for ``steps`` steps."""

    def __init__(self, steps=100):
        self.bench = bench = _bench()
        self.cfg = dict(bench.FULL, steps=steps, warmup=max(1, steps // 10),
                        eval_every=max(1, steps // 12))
        train, val_codes, self.vocab = bench.corpus()
        self.val = bench.validation(val_codes, self.cfg)
        self.data = bench.batches(train, self.cfg, self.cfg["batch"])
        self.model = bench.make_model(self.vocab, self.cfg)
        self.init = bench.initial_weights(self.vocab, self.cfg, 0)

    def run(self, optimizer):
        """Train from the same start; ``(steps, val losses, B/param)``.

        The peak learning rate is the optimizer's own, then scheduled."""
        peak = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        trainer = self.bench.Trainer(self.model, optimizer, self.cfg)
        curve, _ = trainer.run(self.init, peak, self.data, self.val)
        steps, losses = zip(*curve)
        return list(steps), list(losses), trainer.state_bytes_per_param()


def state_bytes(setup, **kwargs):
    """Bytes of lionr state per parameter of the model for ``kwargs``."""
    optimizer = lionr.optimizer_lion(**kwargs)
    optimizer.build(setup.model.trainable_variables)
    return setup.bench.state_bytes_per_param(setup.model, optimizer)


def report(results, setup, output):
    n = setup.model.count_params()
    print(f"model: {n:,} parameters, {setup.cfg['steps']} steps")
    print("| optimizer | val loss | state B/param | state for this model |")
    print("|---|---|---|---|")
    for name, (_, losses, per_param) in results.items():
        print(f"| {name} | {losses[-1]:.4f} | {per_param:.2f} "
              f"| {per_param * n / 2**20:.2f} MiB |")
    for dtype in ("float32", "bfloat16", "int8"):
        b = state_bytes(setup, momentum_dtype=dtype)
        print(f"lionr momentum_dtype={dtype!r}: {b:.2f} B/param")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, (steps, losses, per_param) in results.items():
        ax.plot(steps, losses, label=f"{name}: {per_param:.1f} B/param of state")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/char)")
    ax.set_title("character-level transformer: loss and optimizer memory")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    print(f"plot: {output}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--output", type=Path,
                        default=ROOT / "build" / "demo" / "transformer.png")
    args = parser.parse_args(argv)
    setup = Setup(args.steps)
    results = {
        "AdamW": setup.run(keras.optimizers.AdamW(**ADAMW)),
        "lionr Lion (cautious, betas 0.95/0.98, int8 momentum)": setup.run(
            lionr.optimizer_lion(**LION)
        ),
    }
    report(results, setup, args.output)


if __name__ == "__main__":
    main()
