"""beta_1, beta_2 and learning_rate in each accepted form: number, constant
tensor, schedule, no-argument callable; followed at every step, also inside
a compiled train step."""

import numpy as np
import pytest

import keras
from keras import ops

import lionr
from lionr.checks import Refusal
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



# --------------------------------------------------------------------------
# Bad callables and schedules are refused before any weight changes
# --------------------------------------------------------------------------

class LateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Gives ``value`` once ``box["optimizer"]`` is set; fails before."""

    def __init__(self, box, value):
        self.box, self.value = box, value

    def __call__(self, step):
        self.box["optimizer"]  # noqa: B018 (KeyError until it is set)
        return ops.convert_to_tensor(self.value, "float32")


BAD = {  # argument, what its callable or schedule gives
    "beta_1 returns 1.5": ("beta_1", 1.5),
    "beta_1 returns a tensor 0.0": ("beta_1", "tensor", 0.0),
    "beta_2 returns a string": ("beta_2", "a"),
    "learning_rate returns -1": ("learning_rate", -1.0),
    "beta_1 schedule gives 2": ("beta_1", "schedule", 2.0),
}


def bad_form(box, case, late):
    """The bad hyperparameter of ``case``; when ``late``, one that fails
    until the optimizer exists, so that it is checked when ``fit`` builds
    the optimizer rather than when it is made."""
    which, *form = BAD[case]
    value = form[-1]
    if form[0] == "schedule":
        schedule = LateSchedule(box if late else {"optimizer": None}, value)
        return which, schedule
    made = (lambda: ops.convert_to_tensor(value, "float32")) if (
        form[0] == "tensor") else (lambda: value)
    if late:
        return which, lambda: (box["optimizer"], made())[1]
    return which, made


@pytest.mark.parametrize("late", [False, True], ids=["made", "built in fit"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_values_refused_before_any_weight_changes(case, late):
    """Refused when the optimizer is made or, for a callable that cannot be
    evaluated then, when ``fit`` builds it: before the training loop, so
    the weights are untouched and readable (on jax an error inside the
    compiled step would leave them unreadable)."""
    box = {}
    which, value = bad_form(box, case, late)
    rows, start = rows_and_start(seed=3)
    model = linear_model(start, "sgd")
    if not late:
        with pytest.raises(Refusal) as info:
            lionr.optimizer_lion(**{which: value})
    else:
        optimizer = lionr.optimizer_lion(**{which: value})
        box["optimizer"] = optimizer
        model = linear_model(start, optimizer)
        with pytest.raises(Refusal) as info:
            fit_rows(model, rows)
        assert int(ops.convert_to_numpy(optimizer.iterations)) == 0
    assert info.value.argument == which
    np.testing.assert_array_equal(model.get_weights()[0], start)


def test_callable_needing_an_argument_refused_naming_it():
    for which in ("learning_rate", "beta_1", "beta_2"):
        with pytest.raises(lionr.ArgumentTypeError) as info:
            lionr.optimizer_lion(**{which: lambda step: 0.5})
        assert info.value.argument == which
        assert list(info.value.related) == ["step"]


def test_plain_numbers_checked_at_every_read():
    """A callable returning plain numbers is checked at each step it is
    read (here eagerly, through ``apply``): the step whose value is out of
    range is refused, and changes no weight."""
    values = iter([0.9, 0.9, 0.8, 0.7, 1.5])  # made, then steps 1 to 4
    optimizer = lionr.optimizer_lion(learning_rate=0.01,
                                     beta_1=lambda: next(values))
    variables = variables_of([normal(0, (4, 3))])
    grads = [[normal(10 + t, (4, 3))] for t in range(4)]
    apply_steps(optimizer, variables, grads[:3])
    before = reference.numpy_of(variables[0])
    with pytest.raises(lionr.ArgumentError) as info:
        optimizer.apply([ops.convert_to_tensor(g) for g in grads[3]],
                        variables)
    assert info.value.argument == "beta_1" and info.value.value == 1.5
    np.testing.assert_array_equal(reference.numpy_of(variables[0]), before)
    assert int(ops.convert_to_numpy(optimizer.iterations)) == 3


def test_valid_callables_called_at_every_eager_step():
    """Besides the check when it is made, a callable is still called at
    every step, and its value used."""
    calls = []

    def beta_2():
        calls.append(1)
        return 0.5

    optimizer = lionr.optimizer_lion(learning_rate=0.01, beta_2=beta_2)
    assert len(calls) == 1  # the check when it is made
    variables = variables_of([normal(0, (4, 3))])
    grads = [[normal(20 + t, (4, 3))] for t in range(STEPS)]
    for step in apply_steps(optimizer, variables, grads):
        for p, m, g, p_new, m_new in step:
            reference.assert_step_within(p, m, g, p_new, m_new, 0.01, 0.9,
                                         0.5)
    assert len(calls) == 1 + STEPS
