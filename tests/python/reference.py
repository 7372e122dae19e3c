"""A float64 reference of the Lion rule, and float32 ulp comparisons.

The rule (Chen et al., 2023), with decoupled weight decay ``wd``::

    c = b1 * m + (1 - b1) * g
    p <- p - lr * (sign(c) + wd * p)
    m <- b2 * m + (1 - b2) * g

Hyperparameters are first rounded to float32 (the optimizer computes in
float32), then everything is done in float64.
"""

import numpy as np

import keras
from keras import ops


def f32(x):
    """``x`` rounded to float32, returned as float64."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def ulp(magnitude):
    """The float32 spacing at ``magnitude`` (elementwise)."""
    return np.spacing(np.abs(np.asarray(magnitude, dtype=np.float32))).astype(
        np.float64
    )


def step(p, m, g, lr, b1, b2, wd=0.0):
    """One float64 step; returns ``(p, m)``."""
    p, m, g = (np.asarray(x, dtype=np.float64) for x in (p, m, g))
    lr, b1, b2, wd = f32(lr), f32(b1), f32(b2), f32(wd)
    c = b1 * m + (1.0 - b1) * g
    return p - lr * (np.sign(c) + wd * p), b2 * m + (1.0 - b2) * g


def cautious_step(p, m, g, lr, b1, b2, wd=0.0):
    """One float64 step of cautious Lion (Liang et al., 2024); ``(p, m)``.

    ``u = sign(c)``; coordinates where ``u * g <= 0`` are dropped and the
    rest scaled by ``n / kept`` (per tensor); nothing kept: no update::

        p <- p - lr * (scale * u * [u * g > 0] + wd * p)
    """
    p, m, g = (np.asarray(x, dtype=np.float64) for x in (p, m, g))
    lr, b1, b2, wd = f32(lr), f32(b1), f32(b2), f32(wd)
    u = np.sign(b1 * m + (1.0 - b1) * g)
    keep = u * g > 0
    kept = np.count_nonzero(keep)
    scale = p.size / kept if kept else 0.0
    update = np.where(keep, u, 0.0) * scale
    return p - lr * (update + wd * p), b2 * m + (1.0 - b2) * g


def run(p, grads, lr, b1, b2, wd=0.0):
    """``len(grads)`` float64 steps from ``p`` with zero momentum.

    ``lr``, ``b1`` and ``b2`` are numbers or per-step sequences.
    """
    n = len(grads)
    per_step = [
        list(h) if np.ndim(h) else [h] * n for h in (lr, b1, b2)
    ]
    p = np.asarray(p, dtype=np.float64)
    m = np.zeros_like(p)
    for g, lr_t, b1_t, b2_t in zip(grads, *per_step):
        p, m = step(p, m, g, lr_t, b1_t, b2_t, wd)
    return p, m


def assert_step_within(p, m, g, p_new, m_new, lr, b1, b2, wd=0.0, ulps=2):
    """Assert that float32 ``(p_new, m_new)`` is one rule step from ``(p, m)``.

    The reference step is taken in float64 from the optimizer's own float32
    state. Errors are measured in float32 ulps at the magnitude of the
    largest term of each update. Where ``c`` itself is within rounding of
    zero, either sign (or zero) is accepted for ``sign(c)``.
    """
    p, m, g, p_new, m_new = (
        np.asarray(x, dtype=np.float64) for x in (p, m, g, p_new, m_new)
    )
    lr, b1, b2, wd = f32(lr), f32(b1), f32(b2), f32(wd)
    c = b1 * m + (1.0 - b1) * g
    c_scale = np.maximum(np.abs(b1 * m), np.abs((1.0 - b1) * g))
    unsure = np.abs(c) <= 4 * ulp(c_scale)

    m_ref = b2 * m + (1.0 - b2) * g
    m_scale = np.maximum.reduce(
        [np.abs(b2 * m), np.abs((1.0 - b2) * g), np.abs(m_ref)]
    )
    m_err = np.abs(m_new - m_ref) / ulp(m_scale).clip(min=np.finfo("f4").tiny)
    assert np.all(m_err <= ulps), f"momentum off by {m_err.max():.2f} ulp"

    p_errs = []
    for s in (np.sign(c), -1.0, 0.0, 1.0):
        p_ref = p - lr * (s + wd * p)
        scale = np.maximum.reduce(
            [np.abs(p), np.full_like(p, lr), np.abs(lr * wd * p),
             np.abs(p_ref)]
        )
        p_errs.append(
            np.abs(p_new - p_ref) / ulp(scale).clip(min=np.finfo("f4").tiny)
        )
    p_err = np.where(unsure, np.minimum.reduce(p_errs), p_errs[0])
    assert np.all(p_err <= ulps), f"parameter off by {p_err.max():.2f} ulp"
    return float(p_err.max()), float(m_err.max())


def numpy_of(x):
    return np.asarray(ops.convert_to_numpy(x))


def momentum_of(optimizer, variable):
    """The float32 momentum the optimizer keeps for ``variable``."""
    slot = optimizer._slots[optimizer._get_variable_index(variable)]
    return numpy_of(slot.read())


def keras_momentum_of(optimizer, variable):
    """The momentum ``keras.optimizers.Lion`` keeps for ``variable``."""
    return numpy_of(
        optimizer._momentums[optimizer._get_variable_index(variable)]
    )


def variables_of(arrays, prefix="w"):
    return [
        keras.Variable(np.asarray(a, dtype="float32"), name=f"{prefix}{i}")
        for i, a in enumerate(arrays)
    ]


def int8_blocks(blocks):
    """Codes and scales of float32 ``blocks`` (one block per last axis), as
    ``lionr.state`` documents the int8 momentum: ``scale = max |m|``,
    codes ``round-half-even(sign(m) sqrt(|m| k))`` with
    ``k = min(127**2 / scale, the largest float32)``, in float32."""
    scales = np.abs(blocks).max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        k = np.minimum(np.float32(127**2) / scales, np.finfo("float32").max)
    codes = np.round(np.sign(blocks) * np.sqrt(np.abs(blocks) * k))
    return codes.astype("int8"), scales.astype("float32")


def int8_decoded(codes, scales):
    """The float32 values int8 ``codes`` and ``scales`` stand for:
    ``(q * |q|) * (scale / 127**2)``."""
    q = codes.astype("float32")
    return (q * np.abs(q)) * (scales * np.float32(1 / 127**2))
