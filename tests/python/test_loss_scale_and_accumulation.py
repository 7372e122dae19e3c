"""loss_scale_factor divides the gradients; gradient_accumulation_steps
applies the mean gradient every k-th step."""

import numpy as np
import pytest

from keras import ops

import lionr
import reference
from tiny import apply_steps
from tiny import fit_rows
from tiny import linear_model
from tiny import normal
from tiny import row_gradients


def test_loss_scale_factor_divides_gradients():
    """Gradients of a loss scaled by 1024 give the unscaled rule."""
    optimizer = lionr.optimizer_lion(
        learning_rate=0.01, loss_scale_factor=1024
    )
    variables = reference.variables_of([normal(0, (3, 2)), normal(1, (2,))])
    grads = [[normal(10 + t, (3, 2)), normal(20 + t, (2,))] for t in range(4)]
    scaled = [[1024 * g for g in step] for step in grads]
    for step, raw in zip(apply_steps(optimizer, variables, scaled), grads):
        for (p, m, _, p_new, m_new), g in zip(step, raw):
            reference.assert_step_within(
                p, m, g, p_new, m_new, 0.01, 0.9, 0.99
            )


def test_loss_scale_factor_in_fit():
    rows, start = normal(4, (5, 3)), normal(5, (3, 1))
    model = linear_model(
        start, lionr.optimizer_lion(learning_rate=0.01, loss_scale_factor=64.0)
    )
    fit_rows(model, rows)
    expected, _ = reference.run(start, row_gradients(rows), 0.01, 0.9, 0.99)
    np.testing.assert_allclose(
        model.get_weights()[0], expected, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("steps", [2, 2.0])
def test_accumulation_updates_every_second_step_with_the_mean(steps):
    optimizer = lionr.optimizer_lion(
        learning_rate=0.01, gradient_accumulation_steps=steps
    )
    assert optimizer.gradient_accumulation_steps == 2
    assert isinstance(optimizer.gradient_accumulation_steps, int)
    start = normal(0, (6,))
    # whole numbers: every mean is exact in float32
    grads = [np.round(normal(40 + t, (6,), 4.0)) for t in range(6)]
    (v,) = reference.variables_of([start])
    p, m = np.asarray(start, "f8"), np.zeros(6)
    for t, g in enumerate(grads):
        before = reference.numpy_of(v)
        optimizer.apply([ops.convert_to_tensor(g)], [v])
        after = reference.numpy_of(v)
        if t % 2 == 0:
            np.testing.assert_array_equal(after, before)
        else:
            mean = (grads[t - 1] + g) / 2
            p, m = reference.step(p, m, mean, 0.01, 0.9, 0.99)
            np.testing.assert_allclose(after, p, rtol=1e-6, atol=1e-7)
            assert not np.array_equal(after, before)
        iterations = reference.numpy_of(optimizer.iterations)
        assert np.issubdtype(iterations.dtype, np.integer)
        assert iterations == (t + 1) // 2  # counts applied updates
    np.testing.assert_allclose(
        reference.momentum_of(optimizer, v), m, rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize("steps", [2, 2.0, 3])
def test_accumulation_in_compiled_fit(steps):
    rows, start = normal(6, (6, 4)), normal(7, (4, 1))
    model = linear_model(
        start,
        lionr.optimizer_lion(
            learning_rate=0.01, gradient_accumulation_steps=steps
        ),
    )
    fit_rows(model, rows)
    k = int(steps)
    grads = row_gradients(rows)
    means = [sum(grads[i : i + k]) / k for i in range(0, len(grads), k)]
    expected, _ = reference.run(start, means, 0.01, 0.9, 0.99)
    np.testing.assert_allclose(
        model.get_weights()[0], expected, rtol=1e-6, atol=1e-6
    )
    iterations = reference.numpy_of(model.optimizer.iterations)
    assert np.issubdtype(iterations.dtype, np.integer)
    assert iterations == 6 // k
