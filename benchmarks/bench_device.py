"""Every benchmark of the optimizer step and of ``fit`` on this machine's
accelerator, in one table with the device named.

The script asks each Keras backend (each in its own process) what it
computes on: torch (``torch.cuda``), jax (``jax.devices()``) and tensorflow
(``tf.config.list_physical_devices("GPU")``). Then it runs, with glibc's
default allocation only (host memory plays no part off the CPU):

* ``bench_step.py``: every implementation and memory mode, 1e6 and 1e7
  parameters;
* ``bench_step.py --ratios``: stochastic / nearest, kahan / nearest and
  int8 / float32 at 1e7, ratios within each repeat;
* ``bench_fit.py``: lionr's optimizer cost inside ``fit`` against Keras's.

and writes ``benchmarks/results/device.md`` (and ``device.json``): the
device each backend used, then the three tables. Without an accelerator it
still runs, on the CPU, and says so. ``--quick`` runs everything at tiny
sizes (a smoke test of the script, seconds per backend; the numbers mean
nothing).

Usage::

    ./dev bench --device            # or: python benchmarks/bench_device.py
    python benchmarks/bench_device.py --quick --backends torch
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BACKENDS = ("jax", "tensorflow", "torch")

# Printed by a child process: the device a backend computes on.
PROBE = {
    "torch": (
        "import torch\n"
        "if torch.cuda.is_available():\n"
        "    print('cuda', torch.cuda.get_device_name(0))\n"
        "else:\n"
        "    print('cpu', 'CPU')\n"
    ),
    "jax": (
        "import jax\n"
        "d = jax.devices()[0]\n"
        "print(d.platform, getattr(d, 'device_kind', d.platform))\n"
    ),
    "tensorflow": (
        "import tensorflow as tf\n"
        "gpus = tf.config.list_physical_devices('GPU')\n"
        "if gpus:\n"
        "    name = tf.config.experimental.get_device_details(gpus[0])\n"
        "    print('gpu', name.get('device_name', gpus[0].name))\n"
        "else:\n"
        "    print('cpu', 'CPU')\n"
    ),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def environment():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.setdefault("KERAS_HOME", str(ROOT / ".keras_home"))
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    return env


def detect(backend, timeout=300):
    """``(kind, name)`` of the device ``backend`` computes on."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", PROBE[backend]], env=environment(),
            capture_output=True, text=True, timeout=timeout, check=True,
        ).stdout.strip().splitlines()
        kind, _, name = out[-1].partition(" ")
        return kind, name
    except (subprocess.SubprocessError, IndexError) as e:
        return "unavailable", type(e).__name__


def run(script, args, out, timeout):
    cmd = [sys.executable, str(HERE / script), *args, "--out", str(out)]
    log("== " + " ".join(cmd[1:]))
    subprocess.run(cmd, env=environment(), check=True, timeout=timeout)


def body_of(md_path):
    """A benchmark's markdown from its first table on (header dropped)."""
    lines = Path(md_path).read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    return "\n".join(lines[first:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", nargs="+", choices=BACKENDS,
                    default=list(BACKENDS))
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, few repeats: a smoke test.")
    ap.add_argument("--out", type=Path, default=HERE / "results",
                    help="folder for device.md and device.json.")
    ap.add_argument("--timeout", type=float, default=3600,
                    help="seconds allowed to each benchmark run.")
    args = ap.parse_args(argv)
    t0 = time.time()
    devices = {b: detect(b) for b in args.backends}
    for b, (kind, name) in devices.items():
        log(f"{b}: {kind} ({name})")
    accelerated = any(k not in ("cpu", "unavailable") for k, _ in devices.values())
    backends = ["--backends", *args.backends]
    memory = ["--host-memory", "default"]
    if args.quick:
        step = [*backends, *memory, "--quick"]
        ratios = [*backends, "--ratios", "--quick"]
        fit = [*backends, *memory, "--sizes", "1e6", "--rounds", "1",
               "--steps", "4"]
    else:
        step, ratios = [*backends, *memory], [*backends, "--ratios"]
        fit = [*backends, *memory]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run("bench_step.py", step, tmp / "step", args.timeout)
        run("bench_step.py", ratios, tmp / "ratios", args.timeout)
        run("bench_fit.py", fit, tmp / "fit", args.timeout)
        sections = [
            ("Optimizer step", body_of(tmp / "step" / "step.md")),
            ("What each memory mode costs (ratios within a repeat)",
             body_of(tmp / "ratios" / "mode_ratios.md")),
            ("The optimizer inside fit", body_of(tmp / "fit" / "fit.md")),
        ]
        records = {
            name: json.loads((tmp / d / f).read_text())
            for name, d, f in (("step", "step", "step.json"),
                               ("ratios", "ratios", "mode_ratios.json"),
                               ("fit", "fit", "fit.json"))
        }
    head = [
        "Command: `python benchmarks/bench_device.py"
        + ("".join(" " + a for a in (sys.argv[1:] if argv is None else argv)))
        + "`  ",
        "Devices: " + "; ".join(
            f"{b}: {name} ({kind})" for b, (kind, name) in devices.items()
        ) + ".  ",
    ]
    if not accelerated:
        head.append("No accelerator was found: these numbers are the CPU's.  ")
    if args.quick:
        head.append("`--quick`: tiny sizes; a smoke test, not a measurement.  ")
    parts = ["\n".join(head), ""]
    for title, text in sections:
        parts += [f"**{title}**", "", text, ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "device.md").write_text("\n".join(parts))
    (args.out / "device.json").write_text(json.dumps(dict(
        devices={b: dict(kind=k, name=n) for b, (k, n) in devices.items()},
        accelerated=accelerated, quick=args.quick,
        wall_seconds=time.time() - t0, **records,
    ), indent=1))
    log(f"wrote {args.out / 'device.md'} in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
