"""Tiny models, data and step loops shared by the tests."""

import numpy as np

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from reference import momentum_of
from reference import numpy_of

BACKEND = keras.backend.backend()
COMPILED = BACKEND != "torch"  # jit on jax, tf.function + XLA on tensorflow
SWITCH = 3  # step at which a varying hyperparameter changes


@keras.saving.register_keras_serializable(package="lionr_tests")
class Switch(LearningRateSchedule):
    """``before`` for steps < ``at``, then ``after``."""

    def __init__(self, before, after, at=SWITCH):
        self.before, self.after, self.at = before, after, at

    def __call__(self, step):
        return ops.cast(
            ops.where(ops.less(step, self.at), self.before, self.after),
            "float32",
        )

    def get_config(self):
        return dict(before=self.before, after=self.after, at=self.at)


def switching_callable(box, before, after, at=SWITCH):
    """A no-argument callable reading ``box["optimizer"].iterations``."""

    def value():
        step = box["optimizer"].iterations
        chosen = ops.where(ops.less(step, at), before, after)
        return ops.cast(chosen, "float32")

    return value


def normal(seed, shape, scale=1.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.normal(size=shape)).astype("float32")


def signal_loss(y_true, y_pred):
    """mean(y_pred): with one row per batch, the kernel's gradient is the
    row itself."""
    return ops.mean(y_pred)


def linear_model(kernel, optimizer):
    """``x @ kernel`` (no bias), compiled with ``signal_loss``.

    With ``batch_size=1`` the gradient of step ``t`` is exactly row ``t`` of
    the inputs, whatever the weights, so a float64 reference can replay it.
    """
    kernel = np.asarray(kernel, dtype="float32")
    model = keras.Sequential(
        [keras.Input((kernel.shape[0],)),
         keras.layers.Dense(1, use_bias=False)]
    )
    model.set_weights([kernel])
    model.compile(optimizer=optimizer, loss=signal_loss, jit_compile=COMPILED)
    return model


def fit_rows(model, rows, epochs=1):
    rows = np.asarray(rows, dtype="float32")
    model.fit(
        rows, np.zeros((len(rows), 1), "float32"), batch_size=1,
        epochs=epochs, shuffle=False, verbose=0,
    )


def row_gradients(rows):
    """The per-step kernel gradients of ``fit_rows`` on ``linear_model``."""
    return [np.asarray(r, dtype="float32").reshape(-1, 1) for r in rows]


def apply_steps(optimizer, variables, grads_per_step):
    """Apply each step's gradients; return per-step records
    ``(p_before, m_before, g, p_after, m_after)`` for every variable."""
    records = []
    for grads in grads_per_step:
        before = [numpy_of(v) for v in variables]
        m_before = (
            [momentum_of(optimizer, v) for v in variables]
            if optimizer.built
            else [np.zeros_like(b) for b in before]
        )
        optimizer.apply([ops.convert_to_tensor(g) for g in grads], variables)
        records.append(
            [
                (pb, mb, np.asarray(g), numpy_of(v), momentum_of(optimizer, v))
                for v, pb, mb, g in zip(variables, before, m_before, grads)
            ]
        )
    return records
