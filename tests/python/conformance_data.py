"""Fixed training data and result records shared by both sides of the
conformance tests.

The pytest process imports this module directly; the R side imports it
through reticulate (``import("conformance_data", convert = FALSE)``), so the
data are made on the Python side in both cases, identically. A ``Recorder``
collects what happened to each call of a table and writes it as JSON.
"""

import json

import numpy as np

import keras
from keras.optimizers.schedules import LearningRateSchedule

STEPS = 3
_SHAPES = [(3, 4), (4,)]
# A large first gradient, then a small and a middling one: the momentum
# and the fresh gradient then compete for the sign of the update, so that
# the betas and the clipping change the result.
_SCALES = [4.0, 0.2, 1.0]


def _array(seed, shape):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype("float32")


def variables():
    """Fresh trainable variables with fixed starting values."""
    return [
        keras.Variable(_array(100 + i, shape), name=f"w{i}")
        for i, shape in enumerate(_SHAPES)
    ]


def gradients(step):
    """The gradients of step ``step`` (0, 1, 2, ...): values of mixed sign
    and size, so that the betas, clipping and scaling all matter."""
    step = int(step)
    return [
        keras.ops.convert_to_tensor(
            _array(1000 * step + i, shape) * _SCALES[step % len(_SCALES)]
        )
        for i, shape in enumerate(_SHAPES)
    ]


def constant(value):
    """A Python callable taking no arguments (from a file, so that Keras can
    serialize it; a lambda made by ``eval`` has no source to show)."""
    value = float(value)
    return lambda: value


def train(optimizer, variables_, steps=STEPS):
    for step in range(int(steps)):
        optimizer.apply(gradients(step), variables_)


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if keras.ops.is_tensor(value):
        return np.asarray(keras.ops.convert_to_numpy(value)).tolist()
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _hyperparameters(optimizer):
    return {
        "learning_rate": getattr(optimizer, "_learning_rate", None),
        "beta_1": getattr(optimizer, "beta_1", None),
        "beta_2": getattr(optimizer, "beta_2", None),
    }


def config_of(optimizer):
    """get_config(), JSON-ready, with plain callables shown by kind only
    (an R function and a Python lambda serialize differently)."""
    try:
        config = dict(optimizer.get_config())
    except Exception as error:  # recorded, so that both sides can differ
        return {"<get_config failed>": f"{type(error).__name__}: {error}"}
    for key, value in _hyperparameters(optimizer).items():
        if (key in config and callable(value)
                and not isinstance(value, (LearningRateSchedule, keras.Variable))):
            config[key] = "<callable>"
    return _json_ready(config)


def snapshot(optimizer, variables_):
    return {
        "type": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
        "config": config_of(optimizer),
        "iterations": int(keras.ops.convert_to_numpy(optimizer.iterations)),
        "params": [
            np.asarray(keras.ops.convert_to_numpy(v)).tolist()
            for v in variables_
        ],
    }


class Recorder:
    """What happened to each call of a table, by call id."""

    def __init__(self):
        self.results = {}

    def record(self, case_id, optimizer, variables_):
        self.results[str(case_id)] = {"ok": snapshot(optimizer, variables_)}

    def error(self, case_id, message, classes):
        classes = [classes] if isinstance(classes, str) else classes
        self.results[str(case_id)] = {
            "error": str(message), "classes": [str(c) for c in classes]}

    def refused(self, case_id, message, classes, arguments=()):
        classes = [classes] if isinstance(classes, str) else classes
        arguments = [arguments] if isinstance(arguments, str) else arguments
        self.results[str(case_id)] = {
            "refused": True, "message": str(message),
            "classes": [str(c) for c in classes],
            "arguments": [str(a) for a in arguments]}

    def accepted(self, case_id, what):
        self.results[str(case_id)] = {"refused": False, "what": str(what)}

    def dump(self, path):
        with open(str(path), "w", encoding="utf-8") as f:
            json.dump(self.results, f)
