"""Check lionr's step numerics against keras.optimizers.Lion and float64.

For each backend (one subprocess each), runs ``lionr.Lion`` and
``keras.optimizers.Lion`` for a few steps from the same weights with the
same gradients, with and without weight decay, on tensors of several sizes
(large enough to take the cache-blocked torch path), and reports

* whether parameters and momenta are bit-identical, and the largest
  absolute difference;
* the largest error of lionr's last step against a float64 evaluation of
  the rule ``c = b1*m + (1-b1)*g; p <- p - lr*(sign(c) + wd*p);
  m <- b2*m + (1-b2)*g`` from lionr's own previous state, in float32 ulps
  (coordinates where ``c`` is within rounding of zero excluded);
* Keras's golden values: one step with lr=0.5 on [1,2,3,4] with gradient
  [1,6,7,2] gives [0.5,1.5,2.5,3.5]; lr=1, weight_decay=0.004, zero
  gradient, 3 steps on 2.0 gives 2*0.996**3.

Usage: python benchmarks/check_numerics.py [--backends jax torch ...]
Exits non-zero if a golden value or the 2-ulp bound fails.
"""

import argparse
import os
import subprocess
import sys

BACKENDS = ("jax", "tensorflow", "torch")
SHAPES = [(300_001,), (17, 33), (5,), (70_000, 3)]
LR, B1, B2 = 0.01, 0.9, 0.99


def worker():
    import numpy as np

    import keras

    import lionr

    be = keras.backend.backend()
    to_np = keras.ops.convert_to_numpy
    rng = np.random.default_rng(1)
    p0 = [rng.standard_normal(s).astype("float32") for s in SHAPES]
    grads = [[rng.standard_normal(s).astype("float32") for s in SHAPES]
             for _ in range(5)]
    ok = True

    def run(cls, steps, **kw):
        vs = [keras.Variable(p) for p in p0]
        opt = cls(learning_rate=LR, beta_1=B1, beta_2=B2, **kw)
        opt.build(vs)
        for i in range(steps):
            opt.apply([keras.ops.convert_to_tensor(g) for g in grads[i]], vs)
        ms = [to_np(m.value if hasattr(m, "value") else m)
              for m in opt._momentums]
        return [to_np(v.value) for v in vs], ms

    for wd in (None, 0.05):
        kw = {} if wd is None else {"weight_decay": wd}
        pa, ma = run(lionr.Lion, 5, **kw)
        pb, mb = run(keras.optimizers.Lion, 5, **kw)
        same = all(np.array_equal(x, y) for x, y in zip(pa + ma, pb + mb))
        dp = max(float(np.max(np.abs(x - y))) for x, y in zip(pa, pb))
        dm = max(float(np.max(np.abs(x - y))) for x, y in zip(ma, mb))
        # Last step against float64, from lionr's own state after 4 steps.
        p4, m4 = run(lionr.Lion, 4, **kw)
        worst = 0.0
        w = np.float64(np.float32(wd or 0.0))
        lr, b1, b2 = (np.float64(np.float32(x)) for x in (LR, B1, B2))
        for p, m, g, pn, mn in zip(p4, m4, grads[4], pa, ma):
            p, m, g = (x.astype(np.float64) for x in (p, m, g))
            c = b1 * m + (1 - b1) * g
            sure = np.abs(c) > 4 * np.spacing(
                np.maximum(np.abs(b1 * m), np.abs((1 - b1) * g)).astype("f4"))
            p_ref = p - lr * (np.sign(c) + w * p)
            m_ref = b2 * m + (1 - b2) * g
            for new, ref, scale in (
                (pn, p_ref, np.maximum(np.abs(p), np.abs(p_ref))),
                (mn, m_ref, np.maximum(np.abs(m), np.abs(g) * (1 - b2))),
            ):
                u = np.spacing(scale.astype("f4")).astype(np.float64)
                err = np.abs(new.astype(np.float64) - ref) / np.maximum(
                    u, np.finfo("f4").tiny)
                worst = max(worst, float(np.max(err[sure])))
        ok &= worst <= 2
        print(f"{be:10s} weight_decay={wd}: vs keras Lion "
              f"{'bit-identical' if same else 'NOT identical'} "
              f"(max |dp|={dp:.3g}, max |dm|={dm:.3g}); "
              f"vs float64 rule: {worst:.2f} ulp max", flush=True)

    v = keras.Variable(np.array([1.0, 2, 3, 4], "float32"))
    lionr.Lion(learning_rate=0.5).apply(
        [keras.ops.convert_to_tensor(np.array([1.0, 6, 7, 2], "float32"))], [v])
    g1 = to_np(v.value)
    ok1 = np.allclose(g1, [0.5, 1.5, 2.5, 3.5], rtol=0, atol=1e-6)
    v = keras.Variable(np.array([2.0], "float32"))
    o = lionr.Lion(learning_rate=1.0, weight_decay=0.004)
    for _ in range(3):
        o.apply([keras.ops.zeros((1,))], [v])
    g2 = float(to_np(v.value)[0])
    ok2 = abs(g2 - 2 * 0.996**3) < 1e-6
    print(f"{be:10s} golden: {g1.tolist()} {'ok' if ok1 else 'FAIL'}; "
          f"{g2:.7f} vs {2 * 0.996**3:.7f} {'ok' if ok2 else 'FAIL'}",
          flush=True)
    return 0 if ok and ok1 and ok2 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", nargs="+", choices=BACKENDS,
                    default=list(BACKENDS), help="backends to check")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker()
    rc = 0
    for be in args.backends:
        env = dict(os.environ, KERAS_BACKEND=be, TF_CPP_MIN_LOG_LEVEL="3")
        rc |= subprocess.run([sys.executable, __file__, "--worker"],
                             env=env).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())
