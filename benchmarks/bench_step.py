"""Time one optimizer step the way Keras runs it in training.

For every Keras backend (each in its own subprocess, since ``KERAS_BACKEND``
is read once at import) and every parameter count, this script times:

* ``lionr.Lion`` (float32 momentum, with and without weight decay, the
  ``bfloat16`` / ``int8`` momentum modes, and ``cautious`` with float32 and
  int8 momentum; and with bfloat16 weights, weight
  decay and each ``weight_rounding``: ``bf16 weights`` rows, where the step
  of ``kahan`` or ``stochastic`` compares with ``nearest``),
* ``keras.optimizers.Lion`` (with and without weight decay),
* ``keras.optimizers.AdamW``,
* ``optax.lion`` (jax) and ``lion_pytorch.Lion`` (torch) as outside
  references.

How a step runs, per backend, mirrors Keras's own trainers:

* jax: ``jax.jit`` of ``optimizer.stateless_apply`` with the parameter and
  optimizer-state buffers donated, the parameters first (optax: ``jit`` of
  ``update`` + ``apply_updates``, donated the same way);
* tensorflow: ``tf.function(jit_compile=True)`` around ``optimizer.apply``;
* torch: eager ``optimizer.apply`` (lion_pytorch: ``step()``).

Custom training loops run the step in other ways too; for Lion (lionr's,
Keras's and, on jax, optax's) these rows are added:

* jax: ``jit`` without donation;
  ``jit(optimizer.stateless_apply, donate_argnums=(0, 2))``, whose
  donated inputs come state first while its outputs come parameters first
  (jax hands a donated buffer to the first output of its shape and dtype,
  so the parameters' and the momenta's buffers cross);
  eager ``apply`` on Keras variables;
* tensorflow: ``tf.function`` without XLA; eager ``apply``.

Each is compared with Keras's Lion run the same way.

Each backend runs in one process per host-memory setting: glibc's default
allocation, and (rows marked "memory retained") with
``lionr.retain_host_memory()`` called first, so that a step's temporaries
reuse pages instead of faulting in fresh ones (``lionr.host_memory``);
``--host-memory`` chooses (default: both).

Parameters are float32 (bfloat16 in the ``bf16 weights`` rows), split into
10 tensors of equal size. Repeats are
interleaved across implementations within a backend, so slow phases of a
shared machine hit every implementation alike; medians and min-max are
reported. The machine's memory bandwidth is measured in the same run (numpy
copy of a 256 MiB array), and each step time is also given as a multiple of
the bandwidth bound of an ideal Lion step: 20 bytes per parameter (read
p, g, m; write p, m).

Outputs: a markdown table on stdout and in ``benchmarks/results/step.md``,
all numbers in ``step.json`` and a chart in ``step.png`` (``--out`` changes
the folder).

``--ratios`` times only what the memory modes cost, at 1e7 parameters by
default, the way Keras's trainer runs a step: per backend the rows
``stochastic`` / ``nearest`` and ``kahan`` / ``nearest`` (bfloat16 weights
with weight decay) and ``int8`` / ``float32`` momentum, each ratio taken
within one repeat (the two steps timed one right after the other) and
reported as the median and range over repeats, in ``mode_ratios.md`` and
``mode_ratios.json``.

Examples::

    python benchmarks/bench_step.py                 # full run, ~5-10 min
    python benchmarks/bench_step.py --quick         # smoke test, seconds
    python benchmarks/bench_step.py --backends jax --sizes 1e6
    python benchmarks/bench_step.py --ratios        # mode ratios, ~3 min
"""

import argparse
import functools
import json
import math
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
N_TENSORS = 10
BYTES_BOUND = 20  # read p, g, m; write p, m (float32)
LR, B1, B2, WD = 1e-4, 0.9, 0.99, 0.01
# How a step runs (the "how it runs" column).
DONATED = "jit, donated, parameters first"
UNDONATED = "jit, not donated"
STATE_FIRST = "jit, donated, state first"
EAGER = "eager apply"
TF_XLA = "tf.function(jit_compile=True)(apply)"
TF_GRAPH = "tf.function(apply), no XLA"
HOST_MEMORY = ("default", "retained")
RETAINED = ", memory retained"  # appended to "how it runs"
# --ratios: (label, implementation timed, implementation it is compared to)
RATIOS = (
    ("stochastic / nearest (bf16 weights, wd)",
     "lionr.Lion bf16 weights stochastic wd", "lionr.Lion bf16 weights wd"),
    ("kahan / nearest (bf16 weights, wd)",
     "lionr.Lion bf16 weights kahan wd", "lionr.Lion bf16 weights wd"),
    ("int8 / float32 momentum", "lionr.Lion int8", "lionr.Lion"),
)
# How Keras's trainers run a step, per backend.
TRAINER_WAY = {"jax": DONATED, "tensorflow": TF_XLA, "torch": EAGER}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Memory bandwidth
# --------------------------------------------------------------------------


def bandwidth(mib=256, repeats=5):
    """Bytes read + written per second by a numpy copy, GB/s (median, all)."""
    import numpy as np

    n = mib * 2**20 // 4
    src = np.ones(n, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        rates.append(2 * src.nbytes / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates), rates


# --------------------------------------------------------------------------
# Implementations, one builder per backend. A builder returns a list of
# (name, how, make) where make(shapes) -> (step, state_bytes).
# --------------------------------------------------------------------------


def _data(shapes, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype("float32") for s in shapes]
    grads = [rng.standard_normal(s).astype("float32") for s in shapes]
    return params, grads


def _dtype_of(factory):
    """The parameter dtype a factory's rows use (float32 unless marked)."""
    return getattr(factory, "weights_dtype", "float32")


def _keras_optimizers():
    import keras

    import lionr

    def lion(**kw):
        return lambda: lionr.Lion(learning_rate=LR, beta_1=B1, beta_2=B2, **kw)

    def klion(**kw):
        return lambda: keras.optimizers.Lion(
            learning_rate=LR, beta_1=B1, beta_2=B2, **kw
        )

    def bf16(mode):
        factory = lion(weight_decay=WD, weight_rounding=mode)
        factory.weights_dtype = "bfloat16"
        return factory

    return [
        ("lionr.Lion", lion()),
        ("keras.optimizers.Lion", klion()),
        ("lionr.Lion wd", lion(weight_decay=WD)),
        ("keras.optimizers.Lion wd", klion(weight_decay=WD)),
        ("keras.optimizers.AdamW", lambda: keras.optimizers.AdamW(LR)),
        ("lionr.Lion bfloat16", lion(momentum_dtype="bfloat16")),
        ("lionr.Lion int8", lion(momentum_dtype="int8")),
        ("lionr.Lion cautious", lion(cautious=True)),
        ("lionr.Lion cautious int8", lion(cautious=True, momentum_dtype="int8")),
        ("lionr.Lion bf16 weights wd", bf16("nearest")),
        ("lionr.Lion bf16 weights kahan wd", bf16("kahan")),
        ("lionr.Lion bf16 weights stochastic wd", bf16("stochastic")),
    ]


def _state_bytes(opt, n_params):
    skip = {id(opt._iterations)}
    if hasattr(opt, "_learning_rate") and hasattr(opt._learning_rate, "path"):
        skip.add(id(opt._learning_rate))
    size = {"bfloat16": 2, "float16": 2, "int8": 1, "float64": 8, "int64": 8}
    total = 0
    for v in opt.variables:
        if id(v) in skip:
            continue
        total += size.get(str(v.dtype), 4) * math.prod(v.shape)
    return total / n_params


def jax_impls():
    import jax
    import jax.numpy as jnp
    import optax

    import keras

    def keras_maker(factory, mode=DONATED):
        def make(shapes):
            params, grads = _data(shapes)
            opt = factory()
            dtype = _dtype_of(factory)
            variables = [keras.Variable(p, dtype=dtype) for p in params]
            opt.build(variables)
            state = [jnp.array(v.value, copy=True) for v in opt.variables]
            tv = [jnp.asarray(p, dtype) for p in params]
            gs = [jnp.asarray(g, dtype) for g in grads]
            box = [tv, state]
            if mode == EAGER:
                def step():
                    opt.apply(gs, variables)

                def sync():
                    jax.block_until_ready([v.value for v in variables])

                n = sum(p.size for p in params)
                return step, sync, _state_bytes(opt, n)
            if mode == STATE_FIRST:
                fn = jax.jit(opt.stateless_apply, donate_argnums=(0, 2))

                def step():
                    box[0], box[1] = fn(box[1], gs, box[0])
            else:
                fn = jax.jit(
                    lambda tv, ov, gs: opt.stateless_apply(ov, gs, tv),
                    donate_argnums=(0, 1) if mode == DONATED else (),
                )

                def step():
                    box[0], box[1] = fn(box[0], box[1], gs)

            def sync():
                jax.block_until_ready(box)

            n = sum(p.size for p in params)
            return step, sync, _state_bytes(opt, n)

        return make

    def optax_maker(mode=DONATED):
        return functools.partial(optax_make, mode=mode)

    def optax_make(shapes, mode):
        params, grads = _data(shapes)
        tx = optax.lion(LR, b1=B1, b2=B2, weight_decay=0.0)
        ps = [jnp.asarray(p) for p in params]
        gs = [jnp.asarray(g) for g in grads]
        st = tx.init(ps)

        def update(ps, st, gs):
            upd, st = tx.update(gs, st, ps)
            return optax.apply_updates(ps, upd), st

        box = [ps, st]
        if mode == STATE_FIRST:
            fn = jax.jit(lambda st, gs, ps: update(ps, st, gs),
                         donate_argnums=(0, 2))

            def step():
                box[0], box[1] = fn(box[1], gs, box[0])
        else:
            fn = jax.jit(update,
                         donate_argnums=(0, 1) if mode == DONATED else ())

            def step():
                box[0], box[1] = fn(box[0], box[1], gs)

        def sync():
            jax.block_until_ready(box)

        leaves = [x for x in jax.tree_util.tree_leaves(st) if x.ndim > 0]
        n = sum(p.size for p in params)
        return step, sync, sum(x.nbytes for x in leaves) / n

    out = [(name, DONATED, keras_maker(f)) for name, f in _keras_optimizers()]
    out.insert(2, ("optax.lion", DONATED, optax_maker()))
    for mode in (UNDONATED, STATE_FIRST, EAGER):
        for name, f in _keras_optimizers()[:2]:
            out.append((name, mode, keras_maker(f, mode)))
        if mode != EAGER:
            out.append(("optax.lion", mode, optax_maker(mode)))
    return out


def tensorflow_impls():
    import tensorflow as tf

    import keras

    def keras_maker(factory, mode=TF_XLA):
        def make(shapes):
            params, grads = _data(shapes)
            opt = factory()
            dtype = _dtype_of(factory)
            variables = [keras.Variable(p, dtype=dtype) for p in params]
            opt.build(variables)
            gs = [tf.cast(tf.constant(g), dtype) for g in grads]

            def fn(gs):
                opt.apply(gs, variables)

            if mode != EAGER:
                fn = tf.function(fn, jit_compile=mode == TF_XLA)

            def step():
                fn(gs)

            def sync():
                variables[0].value[:1].numpy()

            n = sum(p.size for p in params)
            return step, sync, _state_bytes(opt, n)

        return make

    out = [(name, TF_XLA, keras_maker(f)) for name, f in _keras_optimizers()]
    for mode in (TF_GRAPH, EAGER):
        for name, f in _keras_optimizers()[:2]:
            out.append((name, mode, keras_maker(f, mode)))
    return out


def _torch_sync(device):
    """Wait for queued work on ``device`` (nothing to wait for on the CPU)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def torch_impls():
    import torch
    from lion_pytorch import Lion as TorchLion

    import keras

    def keras_maker(factory):
        def make(shapes):
            params, grads = _data(shapes)
            opt = factory()
            dtype = _dtype_of(factory)
            variables = [keras.Variable(p, dtype=dtype) for p in params]
            opt.build(variables)
            device = variables[0].value.device
            gs = [torch.from_numpy(g).to(device, getattr(torch, dtype))
                  for g in grads]

            def step():
                opt.apply(gs, variables)

            n = sum(p.size for p in params)
            return step, _torch_sync(device), _state_bytes(opt, n)

        return make

    def lion_pytorch_make(shapes):
        params, grads = _data(shapes)
        device = keras.Variable(0.0).value.device  # where Keras computes
        ps = [torch.nn.Parameter(torch.from_numpy(p).to(device)) for p in params]
        for p, g in zip(ps, grads):
            p.grad = torch.from_numpy(g).to(device)
        opt = TorchLion(ps, lr=LR, betas=(B1, B2), weight_decay=0.0)
        opt.step()
        n = sum(p.numel() for p in ps)
        nbytes = sum(
            t.numel() * t.element_size()
            for s in opt.state.values()
            for t in s.values()
            if isinstance(t, torch.Tensor) and t.ndim > 0
        )
        return opt.step, _torch_sync(device), nbytes / n

    how = "eager apply"
    out = [(name, how, keras_maker(f)) for name, f in _keras_optimizers()]
    out.insert(2, ("lion_pytorch.Lion", "eager step()", lion_pytorch_make))
    return out


def worker(backend, memory, sizes, repeats, min_time, out_path, ratios=False):
    """Time every implementation of ``backend`` (with ``ratios``, only the
    rows of ``RATIOS``, run as Keras's trainer runs them); write records to
    JSON."""
    import lionr

    if memory == "retained":
        assert lionr.retain_host_memory()

    import keras

    assert keras.backend.backend() == backend, keras.backend.backend()
    impls = {"jax": jax_impls, "tensorflow": tensorflow_impls,
             "torch": torch_impls}[backend]()
    if ratios:
        wanted = {name for row in RATIOS for name in row[1:]}
        impls = [i for i in impls
                 if i[0] in wanted and i[1] == TRAINER_WAY[backend]]
    records = []
    for size in sizes:
        shapes = [(size // N_TENSORS,)] * N_TENSORS
        n = (size // N_TENSORS) * N_TENSORS
        built = []
        for name, how, make in impls:
            log(f"[{backend}] n={n:.0e} {name}: build + compile")
            step, sync, state = make(shapes)
            t0 = time.perf_counter()
            step()
            sync()
            first = time.perf_counter() - t0
            for _ in range(2):
                step()
            sync()
            # Steps per timed block: enough for min_time, at least 1.
            t0 = time.perf_counter()
            step()
            sync()
            one = max(time.perf_counter() - t0, 1e-6)
            inner = max(1, min(1000, int(min_time / one)))
            built.append(dict(name=name, how=how, step=step, sync=sync,
                              state=state, inner=inner, first=first, times=[]))
        for r in range(repeats):
            log(f"[{backend}] n={n:.0e} repeat {r + 1}/{repeats}: "
                + ", ".join(b["name"] for b in built))
            for b in built:
                b["sync"]()
                t0 = time.perf_counter()
                for _ in range(b["inner"]):
                    b["step"]()
                b["sync"]()
                b["times"].append(
                    (time.perf_counter() - t0) / b["inner"] * 1e3
                )
        for b in built:
            how = b["how"] + (RETAINED if memory == "retained" else "")
            records.append(dict(
                backend=backend, implementation=b["name"], how=how,
                host_memory=memory,
                params=n, steps_per_sample=b["inner"],
                first_call_ms=b["first"] * 1e3, times_ms=b["times"],
                median_ms=statistics.median(b["times"]),
                min_ms=min(b["times"]), max_ms=max(b["times"]),
                state_bytes_per_param=b["state"],
            ))
        del built
    Path(out_path).write_text(json.dumps(records))


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def _fmt_ms(x):
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def table(records, gbps):
    ref = {(r["backend"], r["params"], r["how"]): r["median_ms"]
           for r in records if r["implementation"] == "keras.optimizers.Lion"}
    ref_wd = {(r["backend"], r["params"], r["how"]): r["median_ms"]
              for r in records
              if r["implementation"] == "keras.optimizers.Lion wd"}
    lines = [
        "| backend | implementation | how it runs | params | median ms "
        "| min-max ms | x bound | vs keras Lion | state B/param |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        key = (r["backend"], r["params"], r["how"])
        base = ref_wd if r["implementation"].endswith(" wd") else ref
        if key not in base:  # run its own way (lion_pytorch's step())
            key = next((k for k in base if k[:2] == key[:2]), key)
        rel = r["median_ms"] / base[key] if key in base else float("nan")
        bound = BYTES_BOUND * r["params"] / (gbps * 1e9) * 1e3
        lines.append(
            f"| {r['backend']} | {r['implementation']} | {r['how']} "
            f"| {r['params']:.0e} | {_fmt_ms(r['median_ms'])} "
            f"| {_fmt_ms(r['min_ms'])}-{_fmt_ms(r['max_ms'])} "
            f"| {r['median_ms'] / bound:.2f} | {rel:.2f} "
            f"| {r['state_bytes_per_param']:.2f} |"
        )
    return "\n".join(lines)


def chart(records, gbps, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter
    from matplotlib.ticker import LogLocator
    from matplotlib.ticker import NullFormatter

    backends = sorted({r["backend"] for r in records}, key=BACKENDS.index)
    sizes = sorted({r["params"] for r in records})
    fig, axes = plt.subplots(len(backends), len(sizes), squeeze=False,
                             figsize=(5.5 * len(sizes), 3.4 * len(backends)))
    for row, backend in enumerate(backends):
        for col, n in enumerate(sizes):
            ax = axes[row][col]
            _chart_panel(ax, records, backend, n, gbps)
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(NullFormatter())
    fig.suptitle(f"Optimizer step (median, min-max); bandwidth {gbps:.1f} GB/s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _variant(record):
    """A label's suffix for the rows of custom training loops."""
    short = {UNDONATED: "no donation", STATE_FIRST: "state first",
             TF_GRAPH: "no XLA", EAGER: "eager"}
    how = record["how"].removesuffix(RETAINED)
    # torch runs eagerly anyway: its eager rows need no mark.
    torch_eager = how == EAGER and record["backend"] == "torch"
    parts = [short[how]] if how in short and not torch_eager else []
    if record.get("host_memory") == "retained":
        parts.append("retained")
    return f" ({', '.join(parts)})" if parts else ""


def _chart_panel(ax, records, backend, n, gbps):
    """One backend and size: each implementation's step time over the bound."""
    rows = [r for r in records if (r["backend"], r["params"]) == (backend, n)]
    bound = BYTES_BOUND * n / (gbps * 1e9) * 1e3
    names = [r["implementation"] + _variant(r) for r in rows]
    med = [r["median_ms"] / bound for r in rows]
    lo = [(r["median_ms"] - r["min_ms"]) / bound for r in rows]
    hi = [(r["max_ms"] - r["median_ms"]) / bound for r in rows]
    colors = ["tab:green" if s.startswith("lionr") else "tab:gray"
              for s in names]
    ax.barh(range(len(rows)), med, xerr=[lo, hi], color=colors)
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("step time / 20 B-per-param bound")
    ax.set_title(f"{backend}, {n:.0e} params", fontsize=9)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " See the module docstring.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backends", nargs="+", choices=BACKENDS,
                        default=list(BACKENDS),
                        help="Keras backends to time (default: all three).")
    parser.add_argument("--sizes", nargs="+", type=float, default=None,
                        help="total float32 parameter counts, split over 10 "
                             "tensors (default 1e6 1e7; --quick: 1e5).")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved timing repeats per implementation "
                             "(default 5; --quick: 3).")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds per timed sample; steps per sample are "
                             "chosen to fill it (default 0.1; --quick: 0.01).")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few repeats: a smoke test that "
                             "takes seconds per backend; timings mean little.")
    parser.add_argument("--host-memory", nargs="+", choices=HOST_MEMORY,
                        default=list(HOST_MEMORY),
                        help="glibc's default allocation, freed memory "
                             "retained (lionr.retain_host_memory), or both "
                             "(default).")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="folder for step.md, step.json, step.png "
                             "(default benchmarks/results).")
    parser.add_argument("--ratios", action="store_true",
                        help="only the memory modes' cost ratios, in "
                             "mode_ratios.md (default size 1e7, 7 repeats, "
                             "default host memory).")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    default_sizes = [1e7] if args.ratios else [1e6, 1e7]
    sizes = [int(s) for s in (args.sizes or ([1e5] if args.quick else default_sizes))]
    repeats = args.repeats or (3 if args.quick else 7 if args.ratios else 5)
    if args.ratios and "--host-memory" not in (sys.argv if argv is None else argv):
        args.host_memory = ["default"]
    min_time = args.min_time or (0.01 if args.quick else 0.1)

    if args.worker:
        worker(args.worker, args.host_memory[0], sizes, repeats, min_time,
               args.worker_out, args.ratios)
        return 0

    t_start = time.time()
    gb_runs = []
    records = []
    for backend, memory in (
        (b, m) for b in args.backends for m in args.host_memory
    ):
        log(f"== memory bandwidth (numpy copy) before {backend}")
        gb_runs.extend(bandwidth(mib=32 if args.quick else 256,
                                 repeats=3 if args.quick else 5)[1])
        log(f"== {backend}, host memory {memory}: starting worker process")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "records.json"
            env = dict(os.environ, KERAS_BACKEND=backend,
                       TF_CPP_MIN_LOG_LEVEL="3")
            env.setdefault("KERAS_HOME", str(ROOT / ".keras_home"))
            cmd = [sys.executable, str(Path(__file__).resolve()),
                   "--worker", backend, "--worker-out", str(out),
                   "--repeats", str(repeats), "--min-time", str(min_time),
                   "--host-memory", memory, "--sizes", *map(str, sizes),
                   *(["--ratios"] if args.ratios else [])]
            proc = subprocess.run(cmd, env=env)
            if proc.returncode != 0:
                log(f"!! {backend} worker failed (exit {proc.returncode})")
                return proc.returncode
            records.extend(json.loads(out.read_text()))
    log("== memory bandwidth (numpy copy) after all backends")
    gb_runs.extend(bandwidth(mib=32 if args.quick else 256,
                             repeats=3 if args.quick else 5)[1])
    gbps = statistics.median(gb_runs)

    for r in records:
        bound = BYTES_BOUND * r["params"] / (gbps * 1e9) * 1e3
        r["bound_ms"] = bound
        r["x_bound"] = r["median_ms"] / bound

    cmd_line = "python benchmarks/bench_step.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    for var in ("XLA_FLAGS", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        if os.environ.get(var):  # they change how the step runs
            cmd_line = f"{var}={os.environ[var]} {cmd_line}"
    if args.ratios:
        return write_ratios(records, args, cmd_line, repeats, gbps, t_start)
    md = "\n".join([
        "# Optimizer step time",
        "",
        f"Command: `{cmd_line.strip()}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}  ",
        f"Memory bandwidth (numpy copy, median of {len(gb_runs)}): "
        f"{gbps:.1f} GB/s (min {min(gb_runs):.1f}, max {max(gb_runs):.1f}); "
        f"bound = {BYTES_BOUND} bytes/param at that rate.  ",
        f"{repeats} interleaved repeats per implementation; ms per step; "
        f"lr={LR}, beta_1={B1}, beta_2={B2}; 'wd' rows use weight_decay={WD} "
        f"and are compared with keras Lion wd; AdamW uses its defaults.",
        "",
        table(records, gbps),
        "",
    ])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "step.md").write_text(md)
    versions = {}
    for mod in ("keras", "jax", "tensorflow", "torch", "optax", "numpy"):
        try:
            versions[mod] = _version(mod)
        except Exception:  # noqa: BLE001
            versions[mod] = None
    (args.out / "step.json").write_text(json.dumps(dict(
        command=cmd_line.strip(), quick=args.quick, sizes=sizes,
        repeats=repeats, n_tensors=N_TENSORS, bytes_per_param_bound=BYTES_BOUND,
        bandwidth_gbps=gbps, bandwidth_samples_gbps=gb_runs,
        hyperparameters=dict(learning_rate=LR, beta_1=B1, beta_2=B2,
                             weight_decay_wd_rows=WD),
        versions=versions, cpu_count=os.cpu_count(),
        wall_seconds=time.time() - t_start, records=records,
    ), indent=1))
    chart(records, gbps, args.out / "step.png")
    print(md)
    log(f"wrote {args.out / 'step.md'}, step.json, step.png "
        f"in {time.time() - t_start:.0f}s")
    return 0


def ratio_rows(records):
    """``[(backend, params, host memory, label, ratios per repeat, medians
    ms of the two)]`` for every ``RATIOS`` row found in ``records``."""
    by = {(r["backend"], r["params"], r["host_memory"], r["implementation"]): r
          for r in records}
    rows = []
    for backend, params, memory in dict.fromkeys(k[:3] for k in by):
        for label, top, base in RATIOS:
            a = by.get((backend, params, memory, top))
            b = by.get((backend, params, memory, base))
            if a is None or b is None:
                continue
            per = [x / y for x, y in zip(a["times_ms"], b["times_ms"])]
            rows.append((backend, params, memory, label, per,
                         a["median_ms"], b["median_ms"]))
    return rows


def ratios_table(records):
    lines = [
        "| backend | params | ratio | median | min-max over repeats "
        "| ms (median) |",
        "|---|---|---|---|---|---|",
    ]
    for backend, params, memory, label, per, a, b in ratio_rows(records):
        where = "" if memory == "default" else f", memory {memory}"
        lines.append(
            f"| {backend}{where} | {params:.0e} | {label} "
            f"| {statistics.median(per):.2f} | {min(per):.2f}-{max(per):.2f} "
            f"| {_fmt_ms(a)} / {_fmt_ms(b)} |"
        )
    return "\n".join(lines)


def write_ratios(records, args, cmd_line, repeats, gbps, t_start):
    md = "\n".join([
        "Command: `" + cmd_line.strip() + "`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs; "
        f"memory bandwidth (numpy copy) {gbps:.1f} GB/s.  ",
        f"Steps as Keras's trainers run them (jax: jit, donated; "
        f"tensorflow: XLA; torch: eager); each ratio is taken within one of "
        f"{repeats} interleaved repeats.",
        "",
        ratios_table(records),
        "",
    ])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mode_ratios.md").write_text(md)
    (args.out / "mode_ratios.json").write_text(json.dumps(dict(
        command=cmd_line.strip(), repeats=repeats, bandwidth_gbps=gbps,
        rows=[dict(backend=b, params=n, host_memory=m, ratio=label,
                   per_repeat=per, median_ms=a, base_median_ms=c)
              for b, n, m, label, per, a, c in ratio_rows(records)],
        wall_seconds=time.time() - t_start, records=records,
    ), indent=1))
    print(md)
    log(f"wrote {args.out / 'mode_ratios.md'} in {time.time() - t_start:.0f}s")
    return 0


def _version(mod):
    from importlib.metadata import version

    return version({"tensorflow": "tensorflow-cpu"}.get(mod, mod))


if __name__ == "__main__":
    sys.exit(main())
