"""beta_1, beta_2 and learning_rate in each accepted form: number, constant
tensor, schedule, no-argument callable; followed at every step, also inside
a compiled train step."""

import numpy as np
import pytest

from keras import ops

import lionr
import reference
from reference import momentum_of
from reference import variables_of
from tiny import COMPILED
from tiny import SWITCH
from tiny import Switch
from tiny import apply_steps
from tiny import fit_rows
from tiny import linear_model
from tiny import normal
from tiny import row_gradients
from tiny import switching_callable

STEPS = 8


def per_step(before, after, at=SWITCH, steps=STEPS):
    return [before if t < at else after for t in range(steps)]


def make(form, before, after, box):
    """The hyperparameter in ``form`` and its value at each step."""
    if form == "float":
        return before, [before] * STEPS
    if form == "tensor":
        return ops.convert_to_tensor(before, "float32"), [before] * STEPS
    if form == "schedule":
        return Switch(before, after), per_step(before, after)
    if form == "callable":
        return switching_callable(box, before, after), per_step(before, after)
    if form == "python callable":
        return (lambda: before), [before] * STEPS
    raise AssertionError(form)


BETAS = {"beta_1": (0.9, 0.2), "beta_2": (0.99, 0.5)}
DEFAULTS = {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.99}
SHAPES = [(4, 3), (3,)]


@pytest.mark.parametrize("form", ["float", "tensor", "schedule", "callable"])
@pytest.mark.parametrize("which", ["beta_1", "beta_2"])
def test_beta_forms_follow_reference_each_step(which, form):
    box = {}
    value, values = make(form, *BETAS[which], box)
    optimizer = lionr.optimizer_lion(learning_rate=0.01, **{which: value})
    box["optimizer"] = optimizer
    hyper = {k: [v] * STEPS for k, v in DEFAULTS.items()}
    hyper[which] = values
    variables = variables_of([normal(i, s) for i, s in enumerate(SHAPES)])
    grads = [
        [normal(50 + 7 * t + i, s) for i, s in enumerate(SHAPES)]
        for t in range(STEPS)
    ]
    for t, step in enumerate(apply_steps(optimizer, variables, grads)):
        for p, m, g, p_new, m_new in step:
            reference.assert_step_within(
                p, m, g, p_new, m_new, hyper["learning_rate"][t],
                hyper["beta_1"][t], hyper["beta_2"][t],
            )


def rows_and_start(seed=0, n=STEPS, d=6):
    return normal(seed, (n, d)), normal(seed + 1, (d, 1))


def check_fit_against_reference(model, optimizer, start, rows, lr, b1, b2):
    """Final kernel and momentum near the float64 run; a run with the first
    value of every hyperparameter held constant must end elsewhere."""
    grads = row_gradients(rows)
    p_ref, m_ref = reference.run(start, grads, lr, b1, b2)
    p_const, _ = reference.run(start, grads, lr[0], b1[0], b2[0])
    kernel = model.trainable_variables[0]
    p = reference.numpy_of(kernel)
    np.testing.assert_allclose(p, p_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        momentum_of(optimizer, kernel), m_ref, rtol=1e-5, atol=1e-7
    )
    return np.abs(p_const - p_ref).max()


@pytest.mark.parametrize(
    "forms", [("callable", "callable"), ("schedule", "schedule"),
              ("callable", "schedule")],
    ids=str,
)
def test_varying_betas_inside_compiled_fit(forms):
    """Callables reading ``optimizer.iterations`` and schedules are evaluated
    at every step of ``fit`` (jit on jax, XLA on tensorflow)."""
    box = {}
    b1, b1s = make(forms[0], *BETAS["beta_1"], box)
    b2, b2s = make(forms[1], *BETAS["beta_2"], box)
    optimizer = lionr.optimizer_lion(learning_rate=0.01, beta_1=b1, beta_2=b2)
    box["optimizer"] = optimizer
    rows, start = rows_and_start()
    model = linear_model(start, optimizer)
    assert model.jit_compile is COMPILED
    fit_rows(model, rows)
    moved = check_fit_against_reference(
        model, optimizer, start, rows, [0.01] * STEPS, b1s, b2s
    )
    assert moved > 0.01  # held-constant betas give another trajectory


LEARNING_RATES = {
    "float": (0.02, 0.02),
    "schedule": (0.02, 0.005),
    "callable": (0.02, 0.005),
    "python callable": (0.02, 0.02),
}


@pytest.mark.parametrize("form", list(LEARNING_RATES))
def test_learning_rate_forms_in_compiled_fit(form):
    box = {}
    lr, lrs = make(form, *LEARNING_RATES[form], box)
    optimizer = lionr.optimizer_lion(learning_rate=lr)
    box["optimizer"] = optimizer
    rows, start = rows_and_start(seed=5)
    model = linear_model(start, optimizer)
    fit_rows(model, rows)
    moved = check_fit_against_reference(
        model, optimizer, start, rows, lrs, [0.9] * STEPS, [0.99] * STEPS
    )
    if lrs[0] != lrs[-1]:
        assert moved > 0.01


def test_tensor_betas_in_compiled_fit():
    b1 = ops.convert_to_tensor(0.6, "float32")
    b2 = ops.convert_to_tensor(0.9, "float32")
    optimizer = lionr.optimizer_lion(learning_rate=0.01, beta_1=b1, beta_2=b2)
    rows, start = rows_and_start(seed=9)
    model = linear_model(start, optimizer)
    fit_rows(model, rows)
    check_fit_against_reference(
        model, optimizer, start, rows, [0.01] * STEPS, [0.6] * STEPS,
        [0.9] * STEPS,
    )

