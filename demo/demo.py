"""Lion (lionr) against AdamW on scikit-learn's digits, from Python and from R.

Trains the same small network three times on the 8x8 digits that ship with
scikit-learn (no download):

  1. keras.optimizers.AdamW, from Python;
  2. lionr.optimizer_lion, from Python;
  3. lionr's R function optimizer_lion(), from R (demo/demo.R, run with
     Rscript in a subprocess; skipped with a reason when R or the installed
     R package is missing, or with --no-r).

Every run starts from the same seed, so the initial weights and the order of
the batches are the same; the two Lion runs should draw the same curves.
Prints Keras's progress bar while training, then a table of the final loss
and accuracy, and writes a PNG of the curves (plus the histories as JSON and
the table as Markdown next to it).

    ./dev demo                       # jax backend, Python and R
    ./dev demo --backend torch --epochs 10 --no-r
    ./dev demo --docs                # also refresh docs/demo.png
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

# Learning rates and weight decays. Lion's update is a sign, of size 1 in
# every coordinate, larger than AdamW's typical step, so Lion takes a
# learning rate 10x smaller; Keras applies weight decay as p <- p - lr*wd*p,
# so a weight decay 10x larger keeps the decay per step (lr*wd = 3e-5) the
# same as AdamW's. demo/sweep.py is the grid behind the choice: with lr 1e-3
# Lion's validation loss is lowest around epoch 7 and then climbs back; with
# 1e-4 it is far from done after 30 epochs.
ADAMW_LR, ADAMW_WD = 3e-3, 0.01
LION_LR, LION_WD = 3e-4, 0.1


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Train a small digits classifier with lionr's Lion "
        "(from Python and R) and with Keras's AdamW; print a table and "
        "draw the curves.",
    )
    p.add_argument("--backend", choices=["jax", "tensorflow", "torch"],
                   default="jax", help="Keras backend (default: jax)")
    p.add_argument("--epochs", type=int, default=30,
                   help="epochs per run (default: 30)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="batch size (default: 64)")
    p.add_argument("--seed", type=int, default=42,
                   help="seed for keras.utils.set_random_seed (default: 42)")
    p.add_argument("--output", type=Path,
                   default=ROOT / "build" / "demo" / "lion_vs_adamw.png",
                   help="where to write the PNG (default: "
                   "build/demo/lion_vs_adamw.png)")
    p.add_argument("--no-r", action="store_true",
                   help="skip the run from R")
    p.add_argument("--docs", action="store_true",
                   help="also copy the PNG to docs/demo.png")
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1,
                   help="verbose= for fit(): 1 progress bar (default), "
                   "2 one line per epoch, 0 silent")
    p.add_argument("--adamw-lr", type=float, default=ADAMW_LR)
    p.add_argument("--adamw-wd", type=float, default=ADAMW_WD)
    p.add_argument("--lion-lr", type=float, default=LION_LR)
    p.add_argument("--lion-wd", type=float, default=LION_WD)
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be at least 1")
    return args


# ---------------------------------------------------------------------------
# Data and model (demo/demo.R builds exactly the same through reticulate)
# ---------------------------------------------------------------------------

def load_digits_split():
    """1797 8x8 images scaled to [0, 1]; stratified 80/20 split, fixed."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
    )
    return (np.ascontiguousarray(x_train), y_train), (
        np.ascontiguousarray(x_val), y_val)


def build_model(keras):
    return keras.Sequential([
        keras.Input(shape=(64,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])


def train(keras, make_optimizer, data, args):
    """Seed, build, compile, fit; return (history dict, fit seconds)."""
    (x_train, y_train), (x_val, y_val) = data
    keras.utils.set_random_seed(args.seed)
    model = build_model(keras)
    model.compile(
        optimizer=make_optimizer(),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    t0 = time.perf_counter()
    history = model.fit(
        x_train, y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        shuffle=True,
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - t0
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}, seconds


# ---------------------------------------------------------------------------
# The R run
# ---------------------------------------------------------------------------

def r_environment(backend):
    env = dict(os.environ)
    venv_python = ROOT / ".venv" / "bin" / "python"
    env.setdefault("RETICULATE_PYTHON",
                   str(venv_python if venv_python.exists() else sys.executable))
    env.setdefault("R_LIBS_USER", str(ROOT / ".Rlib"))
    env.setdefault("R_LD_LIBRARY_PATH", "/usr/lib/R/lib")
    env["KERAS_BACKEND"] = backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def r_unavailable(env):
    """None when the R run can go ahead, else the reason it cannot."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript is not on PATH (./dev setup installs R from Debian)."
    missing = [p for p in ("DESCRIPTION", "R/optimizer_lion.R")
               if not (ROOT / p).exists()]
    if missing:
        return ("the R package's sources are not in this checkout yet "
                f"(missing: {', '.join(missing)}).")
    probe = subprocess.run(
        [rscript, "--vanilla", "-e",
         'quit(status = if (requireNamespace("lionr", quietly = TRUE)) 0 else 3)'],
        env=env, capture_output=True, text=True,
    )
    if probe.returncode != 0:
        return ("the lionr R package is not installed in R_LIBS_USER="
                f"{env['R_LIBS_USER']} (run ./dev setup, which installs it).")
    return None


def run_r(args, env, csv_path):
    """Run demo/demo.R; return (history dict, fit seconds)."""
    cmd = [
        shutil.which("Rscript"), "--vanilla", str(HERE / "demo.R"),
        "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size),
        "--seed", str(args.seed),
        "--lr", repr(args.lion_lr),
        "--wd", repr(args.lion_wd),
        "--verbose", str(args.verbose),
        "--out", str(csv_path),
    ]
    sys.stdout.flush()
    try:
        proc = subprocess.run(cmd, env=env, cwd=ROOT, timeout=900)
    except subprocess.TimeoutExpired:
        raise RuntimeError("demo/demo.R did not finish within 900 s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"demo/demo.R exited with status {proc.returncode}")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    history = {k: [float(r[k]) for r in rows] for k in rows[0]
               if k not in ("epoch", "fit_seconds")}
    return history, float(rows[0]["fit_seconds"])


# ---------------------------------------------------------------------------
# Output: table and figure
# ---------------------------------------------------------------------------

COLUMNS = ("run", "lr", "wd", "train loss", "train acc", "val loss",
           "val acc", "fit s")


def table_rows(runs):
    rows = []
    for r in runs:
        h = r["history"]
        rows.append((
            r["label"], f"{r['lr']:g}", f"{r['wd']:g}",
            f"{h['loss'][-1]:.4f}", f"{h['accuracy'][-1]:.4f}",
            f"{h['val_loss'][-1]:.4f}", f"{h['val_accuracy'][-1]:.4f}",
            f"{r['seconds']:.1f}",
        ))
    return rows


def format_table(rows):
    widths = [max(len(c), *(len(row[i]) for row in rows))
              for i, c in enumerate(COLUMNS)]
    line = "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                     for i, (c, w) in enumerate(zip(COLUMNS, widths)))
    out = [line, "-" * len(line)]
    for row in rows:
        out.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                             for i, (v, w) in enumerate(zip(row, widths))))
    return "\n".join(out)


def markdown_table(rows):
    out = ["| " + " | ".join(COLUMNS) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def draw(runs, args, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    colors = {"AdamW (Python)": "tab:blue", "Lion (Python)": "tab:red",
              "Lion (R)": "tab:orange"}
    styles = {"Lion (R)": dict(marker="o", markersize=3, linewidth=0,
                               alpha=0.8)}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, title in ((axes[0], "loss", "loss (cross-entropy)"),
                              (axes[1], "accuracy", "accuracy")):
        for r in runs:
            h = r["history"]
            epochs = range(1, len(h[metric]) + 1)
            kw = dict(color=colors.get(r["label"]), **styles.get(r["label"], {}))
            val_kw = dict(kw)
            if "linewidth" not in kw:
                val_kw["linestyle"] = "--"
            else:
                val_kw["marker"] = "s"
            ax.plot(epochs, h[metric], label=f"{r['label']} train", **kw)
            ax.plot(epochs, h["val_" + metric], label=f"{r['label']} val",
                    **val_kw)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    last = min(min(r["history"]["accuracy"][-1],
                   r["history"]["val_accuracy"][-1]) for r in runs)
    axes[1].set_ylim(min(0.8, max(0.0, last - 0.05)), 1.005)
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"digits (scikit-learn), 64-128-64-10 MLP, batch {args.batch_size}, "
        f"KERAS_BACKEND={args.backend}, seed {args.seed}\n"
        f"AdamW lr {args.adamw_lr:g} wd {args.adamw_wd:g}   vs   "
        f"lionr Lion lr {args.lion_lr:g} wd {args.lion_wd:g}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def banner(text):
    print(f"\n=== {text} ===", flush=True)


def main(argv=None):
    args = parse_args(argv)
    t_start = time.perf_counter()
    # Keras reads KERAS_BACKEND once, when it is first imported.
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.backend != "tensorflow":
        # keras.utils.set_random_seed() imports TensorFlow (to seed it) when
        # it is installed, even on jax and torch; there TensorFlow computes
        # nothing, so its oneDNN notice on stderr is only noise.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    import keras

    import lionr

    out_dir = args.output.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"lionr {lionr.__version__}, keras {keras.__version__}, "
          f"backend {keras.backend.backend()}, {args.epochs} epochs, "
          f"batch {args.batch_size}, seed {args.seed}")

    data = load_digits_split()
    print(f"digits: {len(data[0][0])} training and {len(data[1][0])} "
          "validation images (8x8, 10 classes)")

    runs = []
    plan = [
        ("AdamW (Python)", args.adamw_lr, args.adamw_wd,
         lambda: keras.optimizers.AdamW(learning_rate=args.adamw_lr,
                                        weight_decay=args.adamw_wd)),
        ("Lion (Python)", args.lion_lr, args.lion_wd,
         lambda: lionr.optimizer_lion(learning_rate=args.lion_lr,
                                      weight_decay=args.lion_wd)),
    ]
    n_runs = len(plan) + (0 if args.no_r else 1)
    for i, (label, lr, wd, make) in enumerate(plan, 1):
        banner(f"[{i}/{n_runs}] {label}: learning_rate={lr:g}, "
               f"weight_decay={wd:g}")
        history, seconds = train(keras, make, data, args)
        runs.append(dict(label=label, lr=lr, wd=wd, history=history,
                         seconds=seconds))

    r_status = "skipped (--no-r)"
    r_failed = False
    if not args.no_r:
        env = r_environment(args.backend)
        reason = r_unavailable(env)
        if reason:
            r_status = "skipped: " + reason
            banner(f"[{n_runs}/{n_runs}] Lion (R): SKIPPED")
            print("The R run is skipped because " + reason)
        else:
            banner(f"[{n_runs}/{n_runs}] Lion (R): optimizer_lion(learning_rate"
                   f"={args.lion_lr:g}, weight_decay={args.lion_wd:g}) "
                   "via Rscript demo/demo.R")
            csv_path = out_dir / f"history_r_{args.backend}.csv"
            try:
                history, seconds = run_r(args, env, csv_path)
                runs.append(dict(label="Lion (R)", lr=args.lion_lr,
                                 wd=args.lion_wd, history=history,
                                 seconds=seconds))
                r_status = "included"
            except Exception as e:  # report, still draw the Python runs
                r_failed = True
                r_status = f"FAILED: {e}"
                print(f"The R run failed: {e}", file=sys.stderr)

    rows = table_rows(runs)
    banner(f"Final epoch ({args.epochs}), backend {args.backend}")
    print(format_table(rows))
    by_label = {r["label"]: r["history"] for r in runs}
    if "Lion (R)" in by_label:
        py, r = by_label["Lion (Python)"], by_label["Lion (R)"]
        diff = max(abs(a - b) for k in py for a, b in zip(py[k], r[k]))
        print(f"Lion from R against Lion from Python: largest difference in "
              f"any logged value, any epoch: {diff:.2g}")
    print(f"R run: {r_status}")

    draw(runs, args, args.output)
    stem = args.output.with_suffix("")
    with open(f"{stem}.json", "w") as f:
        json.dump(dict(backend=args.backend, epochs=args.epochs,
                       batch_size=args.batch_size, seed=args.seed,
                       runs=runs, r_run=r_status), f, indent=1)
    with open(f"{stem}.md", "w") as f:
        f.write(markdown_table(rows) + "\n")
    print(f"\nFigure:    {args.output}")
    print(f"Histories: {stem}.json   Table: {stem}.md")
    if args.docs:
        docs = ROOT / "docs" / "demo.png"
        docs.parent.mkdir(exist_ok=True)
        shutil.copyfile(args.output, docs)
        print(f"Copied to: {docs}")
    print(f"Demo took {time.perf_counter() - t_start:.0f} s.")
    return 1 if r_failed else 0


if __name__ == "__main__":
    sys.exit(main())
