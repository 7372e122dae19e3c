"""Decoupled weight decay, scaled by the current learning rate, and
``exclude_from_weight_decay``."""

import numpy as np

import keras
from keras import ops

import lionr
import reference
from tiny import Switch
from tiny import apply_steps
from tiny import normal


def test_decay_uses_the_scheduled_learning_rate():
    """Each step decays by lr_t * wd with lr_t the schedule's current value;
    the momentum never sees the decay."""
    lrs = [0.1, 0.1, 0.1, 0.025, 0.025]
    optimizer = lionr.optimizer_lion(
        learning_rate=Switch(0.1, 0.025), weight_decay=0.5
    )
    variables = reference.variables_of([normal(0, (4, 3)), normal(1, (3,))])
    grads = [[normal(10 + t, (4, 3)), normal(20 + t, (3,))] for t in range(5)]
    for t, step in enumerate(apply_steps(optimizer, variables, grads)):
        for p, m, g, p_new, m_new in step:
            reference.assert_step_within(
                p, m, g, p_new, m_new, lrs[t], 0.9, 0.99, 0.5
            )


def test_zero_gradient_decays_geometrically_with_the_schedule():
    v = keras.Variable(np.array([3.0, -2.0], "float32"))
    optimizer = lionr.optimizer_lion(
        learning_rate=Switch(0.5, 0.125, at=2), weight_decay=0.25
    )
    for _ in range(4):
        optimizer.apply([ops.zeros((2,))], [v])
    expected = np.array([3.0, -2.0]) * (1 - 0.125) ** 2 * (1 - 0.03125) ** 2
    np.testing.assert_allclose(reference.numpy_of(v), expected, rtol=1e-6)


def test_excluded_variables_are_not_decayed():
    kernel = keras.Variable(normal(0, (4, 3)), name="kernel")
    bias = keras.Variable(normal(1, (3,)), name="bias")
    starts = [reference.numpy_of(kernel), reference.numpy_of(bias)]
    optimizer = lionr.optimizer_lion(learning_rate=0.05, weight_decay=0.4)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    grads = [[normal(10 + t, (4, 3)), normal(20 + t, (3,))] for t in range(4)]
    apply_steps(optimizer, [kernel, bias], grads)
    for variable, start, wd, i in ((kernel, starts[0], 0.4, 0),
                                   (bias, starts[1], 0.0, 1)):
        expected, _ = reference.run(
            start, [g[i] for g in grads], 0.05, 0.9, 0.99, wd
        )
        np.testing.assert_allclose(
            reference.numpy_of(variable), expected, rtol=1e-6, atol=1e-7
        )
    decayed, _ = reference.run(
        starts[1], [g[1] for g in grads], 0.05, 0.9, 0.99, 0.4
    )
    assert np.abs(decayed - reference.numpy_of(bias)).max() > 1e-3
