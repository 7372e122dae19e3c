"""Shared fixtures. Each pytest process runs one Keras backend
(``KERAS_BACKEND``, read once at import); ``./dev test`` runs all three.

Tests marked ``backend_free`` do not depend on the backend and run only in
the jax process.
"""

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

BACKEND = keras.backend.backend()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "backend_free: independent of the Keras backend; run once"
    )


def pytest_collection_modifyitems(config, items):
    if BACKEND == "jax":
        return
    skip = pytest.mark.skip(reason="backend-free test; runs in the jax process")
    for item in items:
        if "backend_free" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    yield
