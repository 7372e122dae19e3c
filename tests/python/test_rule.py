"""The Lion rule: Keras's golden values, keras.optimizers.Lion, and the
float64 reference of the paper's rule."""

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras
from keras import ops

import lionr
import reference
from reference import keras_momentum_of
from reference import momentum_of
from reference import numpy_of
from reference import variables_of
from tiny import BACKEND
from tiny import apply_steps
from tiny import normal

SHAPES = [(3, 4), (5,), ()]


def random_steps(seed, shapes, steps, scale=1.0):
    return [
        [normal(seed + 97 * t + i, s, scale) for i, s in enumerate(shapes)]
        for t in range(steps)
    ]


def test_one_step_golden_value():
    """Keras's test: lr=0.5 on [1, 2, 3, 4] with gradient [1, 6, 7, 2]."""
    v = keras.Variable(np.array([1.0, 2.0, 3.0, 4.0], "float32"))
    lionr.optimizer_lion(learning_rate=0.5).apply(
        [ops.convert_to_tensor(np.array([1.0, 6.0, 7.0, 2.0], "float32"))], [v]
    )
    np.testing.assert_array_equal(numpy_of(v), [0.5, 1.5, 2.5, 3.5])


def test_weight_decay_golden_value():
    """Keras's test: lr=1, weight_decay=0.004, zero gradient, three steps."""
    v = keras.Variable(np.array(2.0, "float32"))
    optimizer = lionr.optimizer_lion(learning_rate=1.0, weight_decay=0.004)
    for _ in range(3):
        optimizer.apply([ops.zeros(())], [v])
    np.testing.assert_allclose(numpy_of(v), 2 * 0.996**3, rtol=1e-6)
    np.testing.assert_allclose(numpy_of(v), 1.9760959, rtol=1e-7)


KERAS_CASES = [
    dict(learning_rate=0.01),
    dict(learning_rate=0.01, weight_decay=0.05),
    dict(learning_rate=0.003, beta_1=0.8, beta_2=0.95, weight_decay=0.2),
]
# torch: Keras's multi-tensor Lion forms 1 - beta in float64 from the Python
# float, lionr (like Keras on jax and tensorflow) from the float32 beta; the
# momenta then differ by a few float32 ulps. Measured: at most 12 ulp
# (4.5e-8) of the largest |m| of a tensor after 8 steps.
TORCH_MOMENTUM_ULPS = 16


@pytest.mark.parametrize("kwargs", KERAS_CASES, ids=str)
def test_same_as_keras_lion(kwargs):
    """Parameters bit-identical to keras.optimizers.Lion after 8 steps;
    momenta bit-identical on jax and tensorflow, within a few ulp on torch."""
    starts = [normal(1 + i, s) for i, s in enumerate(SHAPES)]
    ours, theirs = variables_of(starts), variables_of(starts)
    a = lionr.optimizer_lion(**kwargs)
    b = keras.optimizers.Lion(**kwargs)
    for grads in random_steps(10, SHAPES, 8):
        a.apply([ops.convert_to_tensor(g) for g in grads], ours)
        b.apply([ops.convert_to_tensor(g) for g in grads], theirs)
    for v, w in zip(ours, theirs):
        np.testing.assert_array_equal(numpy_of(v), numpy_of(w))
        m, k = momentum_of(a, v), keras_momentum_of(b, w)
        if BACKEND == "torch":
            ulps = np.abs(m - k).max() / reference.ulp(np.abs(k).max())
            assert ulps <= TORCH_MOMENTUM_ULPS
        else:
            np.testing.assert_array_equal(m, k)


# Tensors that the torch step cuts into several pieces (of 2**19 elements)
# and groups, mixed with small ones that share a group.
LARGE_SHAPES = [(5,), (600, 1000), (2**19 + 3,), (300, 7), ()]


def test_large_tensors_same_as_keras_lion_and_reference():
    """Across piece and group boundaries: parameters bit-identical to
    keras.optimizers.Lion, and every step within 2 ulp of the float64 rule."""
    kwargs = dict(learning_rate=0.003, beta_1=0.8, beta_2=0.95, weight_decay=0.2)
    starts = [normal(40 + i, s) for i, s in enumerate(LARGE_SHAPES)]
    ours, theirs = variables_of(starts), variables_of(starts)
    a = lionr.optimizer_lion(**kwargs)
    b = keras.optimizers.Lion(**kwargs)
    steps = random_steps(50, LARGE_SHAPES, 3)
    records = apply_steps(a, ours, steps)
    for grads in steps:
        b.apply([ops.convert_to_tensor(g) for g in grads], theirs)
    for v, w in zip(ours, theirs):
        np.testing.assert_array_equal(numpy_of(v), numpy_of(w))
    for step in records:
        for p, m, g, p_new, m_new in step:
            reference.assert_step_within(
                p, m, g, p_new, m_new, 0.003, 0.8, 0.95, 0.2
            )


STEP_CASES = [
    dict(lr=0.01, b1=0.9, b2=0.99, wd=0.0),
    dict(lr=0.01, b1=0.9, b2=0.99, wd=0.1),
    dict(lr=0.3, b1=0.3, b2=0.7, wd=0.5),
    dict(lr=1e-4, b1=1.0, b2=0.0, wd=0.0),
    dict(lr=0.05, b1=0.99, b2=1.0, wd=0.01),
]


@pytest.mark.parametrize("case", STEP_CASES, ids=str)
def test_each_step_within_2_ulp_of_reference(case):
    """Every step, from lionr's own float32 state, matches the float64 rule."""
    optimizer = lionr.optimizer_lion(
        learning_rate=case["lr"], beta_1=case["b1"], beta_2=case["b2"],
        weight_decay=case["wd"] or None,
    )
    variables = variables_of([normal(3 + i, s) for i, s in enumerate(SHAPES)])
    records = apply_steps(optimizer, variables, random_steps(20, SHAPES, 8))
    for step in records:
        for p, m, g, p_new, m_new in step:
            reference.assert_step_within(
                p, m, g, p_new, m_new,
                case["lr"], case["b1"], case["b2"], case["wd"],
            )


def test_reference_catches_a_wrong_rule():
    """The comparison rejects a rule with beta_1 and beta_2 swapped."""
    p, m, g = normal(5, (50,)), normal(6, (50,)), normal(7, (50,))
    wrong_p, wrong_m = reference.step(p, m, g, 0.01, 0.99, 0.9)
    with pytest.raises(AssertionError):
        reference.assert_step_within(
            p, m, g, wrong_p.astype("f4"), wrong_m.astype("f4"),
            0.01, 0.9, 0.99,
        )


shape_lists = st.lists(
    st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple),
    min_size=1, max_size=3,
)


@settings(
    max_examples=25, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    shapes=shape_lists,
    lr=st.floats(1e-4, 1.0),
    b1=st.floats(0.0, 1.0, exclude_min=True),
    b2=st.floats(0.0, 1.0),
    wd=st.one_of(st.just(0.0), st.floats(0.0, 0.5)),
    steps=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    log_scale=st.floats(-3.0, 3.0),
)
def test_property_random_problems_follow_reference(
    shapes, lr, b1, b2, wd, steps, seed, log_scale
):
    optimizer = lionr.optimizer_lion(
        learning_rate=lr, beta_1=b1, beta_2=b2, weight_decay=wd or None
    )
    variables = variables_of(
        [normal(seed + i, s) for i, s in enumerate(shapes)]
    )
    grads = random_steps(seed + 1000, shapes, steps, 10.0**log_scale)
    for step in apply_steps(optimizer, variables, grads):
        for p, m, g, p_new, m_new in step:
            reference.assert_step_within(
                p, m, g, p_new, m_new, lr, b1, b2, wd
            )
