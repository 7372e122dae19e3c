"""use_ema, ema_momentum, ema_overwrite_frequency, finalize_variable_values,
and fit's finalization after the last epoch."""

import numpy as np
import pytest

import lionr
import reference
from tiny import apply_steps
from tiny import fit_rows
from tiny import linear_model
from tiny import normal
from tiny import row_gradients

LR, B1, B2 = 0.05, 0.9, 0.99


def simulate(start, grads, momentum, frequency=None):
    """float64 Lion + EMA: the average starts at the first updated weights;
    every ``frequency`` steps the weights are replaced by the average."""
    p, m, average = np.asarray(start, "f8"), np.zeros(np.shape(start)), None
    mu = reference.f32(momentum)
    for t, g in enumerate(grads):
        p, m = reference.step(p, m, g, LR, B1, B2)
        average = p if average is None else mu * average + (1 - mu) * p
        if frequency and (t + 1) % frequency == 0:
            p = average
    return p, average


def close(actual, expected):
    np.testing.assert_allclose(
        reference.numpy_of(actual), expected, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_average_follows_ema_momentum_and_finalize_writes_it(momentum):
    start = normal(0, (5,))
    grads = [normal(10 + t, (5,)) for t in range(6)]
    optimizer = lionr.optimizer_lion(
        learning_rate=LR, use_ema=True, ema_momentum=momentum
    )
    (v,) = reference.variables_of([start])
    apply_steps(optimizer, [v], [[g] for g in grads])
    raw, average = simulate(start, grads, momentum)
    close(v, raw)  # weights untouched until finalized
    close(optimizer._model_variables_moving_average[0], average)
    assert np.abs(raw - average).max() > 1e-2
    optimizer.finalize_variable_values([v])
    close(v, average)


@pytest.mark.parametrize("frequency", [2, 2.0])
def test_overwrite_frequency(frequency):
    start = normal(1, (5,))
    grads = [normal(30 + t, (5,)) for t in range(5)]
    optimizer = lionr.optimizer_lion(
        learning_rate=LR, use_ema=True, ema_momentum=0.8,
        ema_overwrite_frequency=frequency,
    )
    assert optimizer.ema_overwrite_frequency == 2
    assert isinstance(optimizer.ema_overwrite_frequency, int)
    (v,) = reference.variables_of([start])
    records = apply_steps(optimizer, [v], [[g] for g in grads])
    for t in (1, 3):  # steps 2 and 4 end with the weights set to the average
        _, average = simulate(start, grads[: t + 1], 0.8, 2)
        np.testing.assert_allclose(records[t][0][3], average, rtol=1e-5)
    expected, _ = simulate(start, grads, 0.8, 2)
    never, _ = simulate(start, grads, 0.8)
    close(v, expected)
    assert np.abs(expected - never).max() > 1e-2


def test_fit_finalizes_after_last_epoch():
    rows, start = normal(2, (3, 4)), normal(3, (4, 1))
    optimizer = lionr.optimizer_lion(
        learning_rate=LR, use_ema=True, ema_momentum=0.6
    )
    model = linear_model(start, optimizer)
    fit_rows(model, rows, epochs=2)
    raw, average = simulate(start, row_gradients(rows) * 2, 0.6)
    close(model.trainable_variables[0], average)
    assert np.abs(raw - average).max() > 1e-2
