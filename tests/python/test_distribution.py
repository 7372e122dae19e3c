"""lionr under keras.distribution (jax) on 8 simulated CPU devices.

The fits run in a subprocess (``distributed_fit.py``) because the device
count must be fixed before jax starts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "jax", reason="keras.distribution layouts are a jax feature"
)

SCRIPT = Path(__file__).with_name("distributed_fit.py")
# Sharded matmuls may sum in another order; a float32 rounding difference in
# a gradient can move a weight by at most a few ulp through the Lion step.
ATOL = 1e-6


@pytest.fixture(scope="module")
def runs():
    env = dict(os.environ, KERAS_BACKEND="jax")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    done = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("momentum_dtype", ["float32", "bfloat16", "int8"])
@pytest.mark.parametrize("layout", ["data", "model"])
def test_same_weights_as_one_device(runs, layout, momentum_dtype):
    one = runs[f"single/{momentum_dtype}"]
    many = runs[f"{layout}/{momentum_dtype}"]
    assert many["devices"] == 8
    for a, b in zip(one["weights"], many["weights"]):
        np.testing.assert_allclose(np.array(b), np.array(a), rtol=0, atol=ATOL)


@pytest.mark.parametrize("momentum_dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("layout", ["data", "model"])
def test_momentum_follows_parameter_sharding(runs, layout, momentum_dtype):
    run = runs[f"{layout}/{momentum_dtype}"]
    for path, spec in run["param_specs"].items():
        assert run["slot_specs"][path] == [spec], path
    if layout == "model":
        sharded = [s for s in run["param_specs"].values() if "model" in s]
        assert len(sharded) == 3


def test_int8_blocks_are_replicated(runs):
    run = runs["model/int8"]
    kernel = next(p for p in run["param_specs"] if p.endswith("d1/kernel"))
    assert "model" in run["param_specs"][kernel]
    assert run["slot_specs"][kernel] == ["P(None, None)"]


@pytest.mark.parametrize("rounding", ["kahan", "stochastic"])
@pytest.mark.parametrize("layout", ["data", "model"])
def test_bfloat16_weights_with_rounding_train_alike_sharded(runs, layout, rounding):
    """Sharded bfloat16 sums round differently, and where that flips the sign
    of an update, a weight moves 2 * lr (2e-2) away; all but a few in a
    thousand weights stay within 2**-5 of the one-device run."""
    one = runs[f"single/{rounding}"]
    many = runs[f"{layout}/{rounding}"]
    for a, b in zip(one["weights"], many["weights"]):
        a, b = np.array(a), np.array(b)
        assert np.all(np.isfinite(b))
        assert np.mean(np.abs(b - a) <= 2**-5) >= 0.995
        assert np.max(np.abs(b - a)) <= 0.2  # 8 steps of 2e-2 at most


@pytest.mark.parametrize("layout", ["data", "model"])
def test_kahan_compensation_follows_parameter_sharding(runs, layout):
    run = runs[f"{layout}/kahan"]
    assert set(run["error_specs"]) == set(run["param_specs"])
    for path, spec in run["param_specs"].items():
        assert run["error_specs"][path] == spec, path
