"""AdamW against lionr's Lion on a small causal character-level transformer.

The text is a file that an installed package ships (torch's
``testing/_internal/common_methods_invocations.py``, about 1.4 MB of
Python; torch is in requirements-dev.txt): nothing is downloaded or
generated. Its first 90% trains, the rest validates.

The model: token and position embeddings, ``LAYERS`` pre-norm blocks
(causal multi-head attention, a GELU MLP of width 4x), a final norm and a
linear head. Training is a jax loop around ``model.stateless_call`` and
``optimizer.stateless_apply`` (as Keras's jax trainer runs them), compiled
once per optimizer setting and reused for every learning rate and seed:
the learning rate (linear warm-up, then cosine decay to zero) is written
into the optimizer's ``learning_rate`` variable at every step.

For each optimizer setting:

* a grid of peak learning rates is run with seed 0 (widened by a factor
  of 2, at most twice, while the best is at its edge); the best final
  validation loss picks the rate, which then runs with the other seeds;
* every run sees the same batches in the same order (seeds change the
  initial weights only); validation loss is measured on the same fixed
  windows every ``eval_every`` steps;
* reported: mean, min and max over seeds of the final validation loss,
  its ratio to AdamW's, optimizer state bytes per parameter, and the median
  time of a training step (forward, backward and update; a shared machine,
  so only rough).

Everything is repeated at a second batch size, 4x smaller, for AdamW and
the two Lion settings that matter most (the batch-size effect).

One setting is an experiment only: cautious weight decay (arXiv
2510.12402), where the decoupled decay applies only where the update and
the weight agree in sign, written here as a subclass (float32 weights,
compiled path); lionr keeps it only if it helps.

A separate run (``--bf16``) trains bfloat16 weights (``"nearest"``)
with lionr (arithmetic in bfloat16, betas rounded to it, as Keras's Lion
on jax and tensorflow) and with an experiment that keeps the momentum
arithmetic in float32 with the betas as given, to see whether the
rounding of the betas matters.

Usage: nice python benchmarks/transformer.py [--quick] [--bf16] [--out DIR]
Writes transformer.{md,json,png} (``--bf16``: transformer_bf16.*;
default folder: benchmarks/results/).
"""

import argparse
import importlib.util
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import keras  # noqa: E402
from keras import ops  # noqa: E402

import lionr  # noqa: E402

HERE = Path(__file__).resolve().parent
TEXT = ("testing", "_internal", "common_methods_invocations.py")

FULL = dict(
    layers=2, width=128, heads=4, seq=64, batch=16, small_batch=4, steps=250,
    warmup=25, eval_every=25, val_windows=128, seeds=3, widen=2,
)
QUICK = dict(
    layers=1, width=32, heads=2, seq=16, batch=8, small_batch=2, steps=6,
    warmup=2, eval_every=3, val_windows=8, seeds=2, widen=0,
)


def text_path():
    """The corpus file inside the installed torch package."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("torch (requirements-dev.txt) is needed for its text")
    return Path(spec.submodule_search_locations[0]).joinpath(*TEXT)


def corpus():
    """``(train, val, vocabulary size)``: the text as int32 codes."""
    text = text_path().read_text(encoding="utf-8")
    chars = sorted(set(text))
    table = {c: i for i, c in enumerate(chars)}
    codes = np.fromiter((table[c] for c in text), dtype=np.int32)
    cut = int(0.9 * len(codes))
    return codes[:cut], codes[cut:], len(chars)


def windows(codes, starts, seq):
    """Inputs and next-character targets for windows at ``starts``."""
    idx = starts[:, None] + np.arange(seq + 1)[None, :]
    w = codes[idx]
    return w[:, :-1], w[:, 1:]


def validation(codes, cfg):
    """The fixed validation windows."""
    rng = np.random.default_rng(99)
    starts = rng.integers(0, len(codes) - cfg["seq"] - 1, cfg["val_windows"])
    return windows(codes, starts, cfg["seq"])


def batches(train, cfg, batch, seed=1234):
    """The batches every run sees, in order."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(train) - cfg["seq"] - 1, (cfg["steps"], batch))
    return [windows(train, s, cfg["seq"]) for s in starts]


def make_model(vocab, cfg):
    if cfg.get("dtype", "float32") != "float32":
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(cfg["dtype"])
        try:
            return make_model(vocab, dict(cfg, dtype="float32"))
        finally:
            keras.config.set_dtype_policy(previous)
    seq, width, heads = cfg["seq"], cfg["width"], cfg["heads"]
    tokens = keras.Input((seq,), dtype="int32")
    x = keras.layers.Embedding(vocab, width)(tokens)
    positions = keras.layers.Embedding(seq, width)(ops.arange(seq))
    x = x + positions
    for _ in range(cfg["layers"]):
        h = keras.layers.LayerNormalization()(x)
        h = keras.layers.MultiHeadAttention(heads, width // heads)(
            h, h, use_causal_mask=True
        )
        x = x + h
        h = keras.layers.LayerNormalization()(x)
        h = keras.layers.Dense(4 * width, activation="gelu")(h)
        x = x + keras.layers.Dense(width)(h)
    x = keras.layers.LayerNormalization()(x)
    return keras.Model(tokens, keras.layers.Dense(vocab)(x))


class CautiousDecayLion(lionr.Lion):
    """Experiment: Lion whose decoupled weight decay applies only where the
    (cautious) update ``t`` and the weight agree in sign::

        p <- p - lr * wd * p * [t * p > 0] - lr * scale * t

    Float32 weights on the compiled (jax) path only.
    """

    def _apply_weight_decay(self, variables):
        pass  # applied in update_step, masked

    def update_step(self, gradient, variable, learning_rate):
        from lionr import cautious

        b1, b2 = (ops.cast(b, "float32") for b in self._betas_now)
        slot = self._slots[self._get_variable_index(variable)]
        m = slot.read()
        c = m * b1 + gradient * (1.0 - b1)
        t, scale = cautious.mask(ops.sign(c), gradient)
        lr = ops.cast(learning_rate, "float32")
        p = ops.convert_to_tensor(variable)
        step = lr * scale * t
        if self.weight_decay is not None and self._use_weight_decay(variable):
            agree = ops.cast(ops.greater(t * p, 0), "float32")
            step = step + lr * self.weight_decay * p * agree
        self.assign_sub(variable, step)
        slot.write(self, m * b2 + gradient * (1.0 - b2))


LION_WD = 0.1
ADAMW_WD = 0.01


def settings(quick):
    """``{name: (factory(lr), grid of peak learning rates)}``."""
    lion_grid = [3e-3] if quick else [5e-4, 1e-3, 2e-3]
    adam_grid = [1e-2] if quick else [3e-3, 6e-3, 1.2e-2]

    def lion(**kw):
        return lambda lr: lionr.optimizer_lion(
            learning_rate=lr, weight_decay=LION_WD, **kw
        )

    return {
        "AdamW": (
            lambda lr: keras.optimizers.AdamW(lr, weight_decay=ADAMW_WD),
            adam_grid,
        ),
        "Lion": (lion(), lion_grid),
        "Lion cautious": (lion(cautious=True), lion_grid),
        "Lion cautious, betas 0.95/0.98": (
            lion(cautious=True, beta_1=0.95, beta_2=0.98), lion_grid
        ),
        "Lion cautious + cautious wd (experiment)": (
            lambda lr: CautiousDecayLion(
                learning_rate=lr, weight_decay=LION_WD, cautious=True
            ),
            lion_grid,
        ),
        "Lion cautious, momentum bfloat16": (
            lion(cautious=True, momentum_dtype="bfloat16"), lion_grid
        ),
        "Lion cautious, momentum int8": (
            lion(cautious=True, momentum_dtype="int8"), lion_grid
        ),
    }



SMALL_BATCH_SETTINGS = ("AdamW", "Lion", "Lion cautious")
QUICK_SETTINGS = ("AdamW", "Lion cautious")


class BetasAsGivenLion(lionr.Lion):
    """Experiment: on 16-bit weights under ``"nearest"``, ``c`` and the
    momentum in float32 with the betas as given (lionr, like Keras's Lion
    on jax and tensorflow, computes them in the weight's dtype, so that
    ``beta_2 = 0.99`` is 0.98828125 in bfloat16); the step ``lr * sign(c)``
    in the weight's dtype. Float32 momentum store (kept in the weight's
    dtype), compiled path."""

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        b1, b2 = (ops.cast(b, "float32") for b in self._betas_now)
        store = self._slots[self._get_variable_index(variable)].slot
        m = ops.cast(store, "float32")
        g = ops.cast(gradient, "float32")
        s = ops.sign(m * b1 + g * (1.0 - b1))
        self.assign_sub(
            variable, ops.cast(learning_rate, dtype) * ops.cast(s, dtype)
        )
        self.assign(store, ops.cast(m * b2 + g * (1.0 - b2), store.dtype))


def bf16_settings(quick):
    """bfloat16 weights, rounded to nearest: lionr as it is (bit for bit
    Keras's Lion on jax) against the betas-as-given experiment, at one
    learning rate."""
    grid = [3e-3] if quick else [1e-3]
    return {
        "lionr Lion (= Keras's on jax), bf16 weights: bf16 math, "
        "betas 0.8984375/0.98828125": (
            lambda lr: lionr.optimizer_lion(
                learning_rate=lr, weight_decay=LION_WD
            ),
            grid,
        ),
        "experiment, bf16 weights: float32 momentum math, betas as given": (
            lambda lr: BetasAsGivenLion(learning_rate=lr, weight_decay=LION_WD),
            grid,
        ),
    }


def lr_at(step, peak, cfg):
    """Linear warm-up to ``peak``, then cosine decay to zero."""
    if step < cfg["warmup"]:
        return peak * (step + 1) / cfg["warmup"]
    done = (step - cfg["warmup"]) / max(1, cfg["steps"] - cfg["warmup"])
    return peak * 0.5 * (1.0 + math.cos(math.pi * done))


class Trainer:
    """One optimizer setting: its compiled step, reused across runs."""

    def __init__(self, model, optimizer, cfg):
        import jax

        self.model, self.optimizer, self.cfg = model, optimizer, cfg
        optimizer.build(model.trainable_variables)
        self.opt_init = [np.array(v.value) for v in optimizer.variables]
        self.lr_index = next(
            i for i, v in enumerate(optimizer.variables)
            if v is optimizer._learning_rate
        )
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        nontrain = [v.value for v in model.non_trainable_variables]

        def loss_of(trainable, x, y):
            logits, _ = model.stateless_call(trainable, nontrain, x)
            return loss_fn(y, ops.cast(logits, "float32"))

        def train_step(trainable, opt_vars, x, y):
            loss, grads = jax.value_and_grad(loss_of)(trainable, x, y)
            trainable, opt_vars = optimizer.stateless_apply(
                opt_vars, grads, trainable
            )
            return trainable, opt_vars, loss

        self.step = jax.jit(train_step, donate_argnums=(0, 1))
        self.val_loss = jax.jit(loss_of)

    def state_bytes_per_param(self):
        return state_bytes_per_param(self.model, self.optimizer)

    def run(self, init, peak, data, val):
        """Train from ``init``; ``(val losses at eval steps, step times)``."""
        import jax.numpy as jnp

        cfg = self.cfg
        trainable = [jnp.array(w) for w in init]
        opt_vars = [jnp.array(v) for v in self.opt_init]
        curve, times = [], []
        for step, (x, y) in enumerate(data):
            opt_vars[self.lr_index] = jnp.asarray(
                lr_at(step, peak, cfg), self.opt_init[self.lr_index].dtype
            )
            start = time.perf_counter()
            trainable, opt_vars, loss = self.step(trainable, opt_vars, x, y)
            loss.block_until_ready()
            times.append(time.perf_counter() - start)
            if (step + 1) % cfg["eval_every"] == 0 or step + 1 == len(data):
                v = float(self.val_loss(trainable, *val))
                curve.append((step + 1, v if math.isfinite(v) else 99.0))
        return curve, times[1:]  # the first step includes compiling


def state_bytes_per_param(model, optimizer):
    """Bytes of ``optimizer``'s state per trainable parameter of ``model``
    (the scalars, iterations and learning rate, left out)."""
    n = sum(math.prod(v.shape) for v in model.trainable_variables)
    state = sum(
        math.prod(v.shape) * np.dtype(v.dtype).itemsize
        for v in optimizer.variables
        if v.shape
    )
    return state / n


def initial_weights(vocab, cfg, seed):
    keras.utils.set_random_seed(seed)
    model = make_model(vocab, cfg)
    return [np.array(v.value) for v in model.trainable_variables]


def sweep(names, setups, vocab, cfg, batch, data, val, log):
    """Every setting in ``names`` at ``batch``: the grid, then seeds."""
    model = make_model(vocab, cfg)
    inits = [initial_weights(vocab, cfg, s) for s in range(cfg["seeds"])]
    out = {}
    for name in names:
        factory, grid = setups[name]
        trainer = Trainer(model, factory(grid[0]), cfg)
        grid_runs = {}
        grid = list(grid)
        while True:  # widen the grid (up to twice) while an edge is best
            for lr in grid:
                if lr not in grid_runs:
                    grid_runs[lr] = trainer.run(inits[0], lr, data, val)
                    log(f"b{batch} {name} lr={lr:g}: "
                        f"{grid_runs[lr][0][-1][1]:.4f}")
            best = min(grid, key=lambda lr: grid_runs[lr][0][-1][1])
            if len(grid) >= len(setups[name][1]) + cfg["widen"]:
                break
            if best == max(grid):
                grid.append(best * 2)
            elif best == min(grid):
                grid.insert(0, best / 2)
            else:
                break
        runs = [grid_runs[best]]
        for s in range(1, cfg["seeds"]):
            runs.append(trainer.run(inits[s], best, data, val))
            log(f"b{batch} {name} lr={best:g} seed {s}: {runs[-1][0][-1][1]:.4f}")
        finals = [r[0][-1][1] for r in runs]
        out[name] = dict(
            best_lr=best,
            grid={f"{lr:g}": grid_runs[lr][0][-1][1] for lr in grid},
            final=finals,
            mean=float(np.mean(finals)),
            curves=[r[0] for r in runs],
            step_ms=float(np.median(np.concatenate([r[1] for r in runs])) * 1e3),
            state_bytes_per_param=trainer.state_bytes_per_param(),
        )
    return out


def table(results, cfg):
    lines = []
    for batch, rows in results.items():
        base = rows["AdamW"]["mean"] if "AdamW" in rows else None
        lines += [
            f"Batch {batch} x {cfg['seq']} characters, {cfg['steps']} steps "
            f"({cfg['seeds']} seeds):",
            "",
            "| optimizer | best lr (grid) | val loss, mean [min, max] "
            "| vs AdamW | state B/param | step ms |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in rows.items():
            grid = ", ".join(r["grid"])
            ratio = f"{r['mean'] / base:.3f}x" if base else "-"
            lines.append(
                f"| {name} | {r['best_lr']:g} ({grid}) | {r['mean']:.4f} "
                f"[{min(r['final']):.4f}, {max(r['final']):.4f}] "
                f"| {ratio} | {r['state_bytes_per_param']:.2f} "
                f"| {r['step_ms']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(results), figsize=(6.5 * len(results), 4.5), squeeze=False
    )
    for ax, (batch, rows) in zip(axes[0], results.items()):
        for name, r in rows.items():
            steps = [s for s, _ in r["curves"][0]]
            losses = np.array([[v for _, v in c] for c in r["curves"]])
            mean = losses.mean(axis=0)
            (line,) = ax.plot(steps, mean, label=f"{name} (lr {r['best_lr']:g})")
            ax.fill_between(
                steps, losses.min(axis=0), losses.max(axis=0),
                color=line.get_color(), alpha=0.2,
            )
        finals = [r["mean"] for r in rows.values()]
        low, high = min(finals), max(finals)
        ax.set_ylim(low - 0.1, high + 0.6)
        ax.set_title(f"batch {batch}: validation loss (band: min-max of seeds)")
        ax.set_xlabel("step")
        ax.set_ylabel("validation loss (nats/char)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a tiny model and a few steps (a smoke test)")
    parser.add_argument("--bf16", action="store_true",
                        help="only the bfloat16-weight experiment on the "
                             "betas (writes transformer_bf16.*)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if keras.backend.backend() != "jax":
        raise SystemExit("run with KERAS_BACKEND=jax")
    cfg = dict(QUICK if args.quick else FULL)
    setups = settings(args.quick)
    started = time.time()

    def log(msg):
        print(f"[{time.time() - started:6.0f}s] {msg}", flush=True)

    train, val_codes, vocab = corpus()
    val = validation(val_codes, cfg)
    if args.bf16:
        cfg.update(dtype="bfloat16", widen=0)
        setups = bf16_settings(args.quick)
        plan = [(cfg["batch"], list(setups))]
        stem = "transformer_bf16"
    else:
        small = QUICK_SETTINGS if args.quick else SMALL_BATCH_SETTINGS
        plan = [
            (cfg["batch"], list(QUICK_SETTINGS if args.quick else setups)),
            (cfg["small_batch"], list(small)),
        ]
        stem = "transformer"
    results = {}
    for batch, names in plan:
        data = batches(train, cfg, batch)
        results[batch] = sweep(names, setups, vocab, cfg, batch, data, val, log)
    args.out.mkdir(parents=True, exist_ok=True)
    md = table(results, cfg)
    source = "/".join(("torch",) + TEXT)
    flags = " --quick" if args.quick else ""
    flags += " --bf16" if args.bf16 else ""
    md = (
        f"Character-level causal transformer ({cfg['layers']} layers, width "
        f"{cfg['width']}, {cfg['heads']} heads, {vocab} characters, "
        f"{cfg.get('dtype', 'float32')} weights) on `{source}`, jax on CPU; "
        f"AdamW weight decay {ADAMW_WD}, Lion {LION_WD}; warm-up "
        f"{cfg['warmup']} steps then cosine to 0. Written by "
        f"`benchmarks/transformer.py{flags}`.\n\n" + md
    )
    (args.out / f"{stem}.md").write_text(md)
    (args.out / f"{stem}.json").write_text(json.dumps(dict(
        quick=args.quick, config=cfg, text=source, vocabulary=vocab,
        adamw_weight_decay=ADAMW_WD, lion_weight_decay=LION_WD,
        seconds=time.time() - started,
        results={str(b): r for b, r in results.items()},
    ), indent=1))
    plot(results, args.out / f"{stem}.png")
    print(md)


if __name__ == "__main__":
    main()
