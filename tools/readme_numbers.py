"""The README's table of headline measurements, made from benchmarks/results.

    python tools/readme_numbers.py           rewrite the table in README.md
    python tools/readme_numbers.py --check   exit 1 if README.md's table is stale

The table sits between the two marker lines START and END in README.md.
Numbers come from the JSON files the benchmarks write: step.json
(``benchmarks/bench_step.py``), fit.json (``benchmarks/bench_fit.py``),
momentum_modes.json (``benchmarks/momentum_modes.py``), state_per_device.json
(``benchmarks/state_per_device.py``) and transformer.json
(``benchmarks/transformer.py``).
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START = "<!-- headline numbers: made by tools/readme_numbers.py, do not edit -->"
END = "<!-- end of headline numbers -->"
BACKENDS = ("jax", "tensorflow", "torch")
# How Keras's own trainer runs the step on each backend (bench_step's "how").
KERAS_WAY = {
    "jax": "jit, donated, parameters first",
    "tensorflow": "tf.function(jit_compile=True)(apply)",
    "torch": "eager apply",
}
LIONR, KERAS, SGD = "lionr.Lion", "keras.optimizers.Lion", "keras.optimizers.SGD"


def _load(name):
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def step_ratio(step, backend, retained):
    """lionr's median step time over Keras's Lion's at the largest size."""
    how = KERAS_WAY[backend] + (", memory retained" if retained else "")
    size = max(step["sizes"])
    median = {r["implementation"]: r["median_ms"] for r in step["records"]
              if r["backend"] == backend and r["how"] == how and r["params"] == size}
    if LIONR not in median or KERAS not in median:
        return None  # a run without that allocation (bench_step --host-memory)
    return median[LIONR] / median[KERAS]


def fit_cost_ratio(fit, backend):
    """lionr's cost over Keras's Lion's inside fit (step minus SGD's), the
    larger model, memory retained, from the median epochs."""
    recs = [r for r in fit["records"] if r["backend"] == backend and r["host_memory"] == "retained"]
    params = max(r["params"] for r in recs)
    median = {r["optimizer"]: r["median_ms"] for r in recs if r["params"] == params}
    return (median[LIONR] - median[SGD]) / (median[KERAS] - median[SGD]), params


def state_on_devices(record, devices=8):
    """One sentence: state per device (B/param), DataParallel on ``devices``."""
    run = next(r for r in record["results"] if r["devices"] == devices)
    held = {r["optimizer"]: r["bytes"] / r["params"] for r in run["rows"]
            if r["layout"] == "DataParallel"}
    lionr = ", ".join(f"`{m}` {held[f'lionr {m}, sharded']:.3f}"
                      for m in ("float32", "bfloat16", "int8"))
    return (f"Optimizer state per device under `DataParallel` on {devices} devices, "
            f"B/param: lionr {lionr}; Keras's Lion {held['keras Lion']:.3f}, "
            f"AdamW {held['keras AdamW']:.3f}.")


def transformer(record):
    """One sentence: the transformer benchmark's best Lion against AdamW."""
    batch = str(record["config"]["batch"])
    runs = record["results"][batch]
    adamw = runs["AdamW"]["mean"]
    best = min((k for k in runs if k != "AdamW" and "experiment" not in k),
               key=lambda k: runs[k]["mean"])
    return (f"Small transformer language model (batch {batch}, "
            f"{record['config']['steps']} steps, mean of 3 seeds): validation loss "
            f"AdamW {adamw:.3f}, lionr's best ({best}) {runs[best]['mean']:.3f} "
            f"({runs[best]['mean'] / adamw:.3f}x); see "
            "[Choosing settings](docs/choosing-settings.md).")


def table():
    step, fit, modes = _load("step.json"), _load("fit.json"), _load("momentum_modes.json")
    size = max(step["sizes"])
    fits = {b: fit_cost_ratio(fit, b) for b in BACKENDS}
    params = statistics.median(p for _, p in fits.values())
    retained = [step_ratio(step, b, True) for b in BACKENDS]
    rows = [
        f"| one optimizer step, {size / 1e6:g}M parameters: lionr's time / Keras's Lion's | "
        + " | ".join(f"{step_ratio(step, b, False):.2f}" for b in BACKENDS) + " |",
        *(["| the same, after `retain_host_memory()` | "
           + " | ".join(f"{r:.2f}" for r in retained) + " |"]
          if None not in retained else []),
        f"| inside `fit`, {params / 1e6:.1f}M parameters, memory retained: lionr's cost "
        "/ Keras's Lion's (cost: step time minus SGD's) | "
        + " | ".join(f"{fits[b][0]:.2f}" for b in BACKENDS) + " |",
    ]
    state = ", ".join(f"`{k}` {v['state_bytes_per_param']:.2f}" for k, v in modes.items())
    devices = state_on_devices(_load("state_per_device.json"))
    quality = transformer(_load("transformer.json"))
    agree = ", ".join(f"`{k}` {1 - v['sign_agreement']:.4f}" for k, v in modes.items()
                      if k != "float32")
    return "\n".join([
        START,
        f"| measured on a {step['cpu_count']}-core CPU | jax | tensorflow | torch |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"Momentum state in bytes per parameter: {state}; share of update signs that",
        f"differ from float32's: {agree}.",
        "",
        devices,
        "",
        quality,
        END,
    ])


def rewritten(text, new):
    head, sep, rest = text.partition(START)
    if not sep or END not in rest:
        raise SystemExit(f"README.md lacks the marker lines {START!r} ... {END!r}")
    return head + new + rest.partition(END)[2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = rewritten(text, table())
    if args.check:
        if new != text:
            print("README.md's table of measurements is not the one benchmarks/results gives:"
                  " run python tools/readme_numbers.py")
            return 1
        print("README.md's table of measurements matches benchmarks/results")
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
