"""lionr under keras.distribution (jax) on 8 simulated CPU devices: in one
process, and in two processes of 4 devices joined over loopback.

The fits run in subprocesses (``distributed_fit.py``) because the device
count must be fixed before jax starts.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import reference
from conftest import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "jax", reason="keras.distribution layouts are a jax feature"
)

SCRIPT = Path(__file__).with_name("distributed_fit.py")
# Sharded matmuls may sum in another order; a float32 rounding difference in
# a gradient can move a weight by at most a few ulp through the Lion step.
ATOL = 1e-6
TIMEOUT = 300  # seconds for any one subprocess, on a loaded machine
DTYPES = ("float32", "bfloat16", "int8")


def _env(devices):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _report(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs():
    done = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env=_env(8), capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return _report(done.stdout)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """The same report from 2 processes x 4 CPU devices (gloo over
    loopback); both are killed if either fails or the time runs out. Each
    process saves its data/int8 model (``saved`` in the report: the
    folder)."""
    port = _free_port()
    logs = tmp_path_factory.mktemp("processes")
    procs, files = [], []
    try:
        for i in range(2):
            out = open(logs / f"out{i}", "w+")
            err = open(logs / f"err{i}", "w+")
            files += [out, err]
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(SCRIPT), "--processes", "2",
                     "--process-id", str(i), "--port", str(port),
                     "--save", str(logs)],
                    env=_env(4), stdout=out, stderr=err, text=True,
                )
            )
        codes = _wait_all(procs, TIMEOUT)
        for f in files:
            f.seek(0)
        texts = [f.read() for f in files]
        assert codes == [0, 0], texts[1][-3000:] + texts[3][-3000:]
        return dict(_report(texts[0]), saved=str(logs))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
        for f in files:
            f.close()


def _wait_all(procs, timeout):
    """Exit codes of ``procs``; stops waiting as soon as one fails (the
    other would wait for it in a collective) or ``timeout`` s have passed
    (None for those still running, which the caller kills)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        codes = [p.poll() for p in procs]
        if None not in codes or any(c not in (None, 0) for c in codes):
            return codes
        time.sleep(0.2)
    return [p.poll() for p in procs]


def _weights(run):
    return [np.array(w) for w in run["weights"]]


@pytest.mark.parametrize("momentum_dtype", DTYPES)
@pytest.mark.parametrize("layout", ["data", "model"])
def test_same_weights_as_one_device(runs, layout, momentum_dtype):
    one = runs[f"single/{momentum_dtype}"]
    many = runs[f"{layout}/{momentum_dtype}"]
    assert many["devices"] == 8
    for a, b in zip(_weights(one), _weights(many)):
        np.testing.assert_allclose(b, a, rtol=0, atol=ATOL)


@pytest.mark.parametrize("momentum_dtype", DTYPES)
@pytest.mark.parametrize("layout", ["data", "model"])
def test_momentum_follows_parameter_sharding(runs, layout, momentum_dtype):
    """Every momentum store is sharded over "model" exactly where its
    parameter is, and over "batch" too (``state_sharding="sharded"``, the
    default) where a dimension whole in the parameter divides and, for
    int8, the blocks stay the same."""
    run = runs[f"{layout}/{momentum_dtype}"]
    for name, spec in run["param_specs"].items():
        stores = run["slot_specs"][name]
        assert all(("model" in s) == ("model" in spec) for s in stores)
        assert "batch" not in spec
        cut = {"data": True, "model": name != "d1/bias"}[layout]
        if momentum_dtype == "int8" and name == "d1/kernel":
            # (64, 128) over 4 "model" shards of 16 rows: cutting each
            # piece's columns over "batch" would change its blocks
            cut = layout == "data"
        assert all(("batch" in s) == cut for s in stores), (name, stores)
    sharded = [s for s in run["param_specs"].values() if "model" in s]
    assert len(sharded) == (3 if layout == "model" else 0)


def _expected_state_bytes(param_bytes, momentum_dtype, quantized):
    values = param_bytes // 4  # float32 parameters
    if momentum_dtype == "bfloat16":
        return 2 * values
    if momentum_dtype == "int8" and quantized:
        return -(-values // 256) * (256 + 4)  # int8 codes + float32 scale
    return 4 * values


@pytest.mark.parametrize("momentum_dtype", DTYPES)
@pytest.mark.parametrize("layout", ["single", "data", "model"])
def test_state_bytes_per_device(runs, layout, momentum_dtype):
    """Each device holds its own shard's state: 4, 2 or 1 + 4/256 bytes per
    parameter value it holds (d1's kernel is the one quantized tensor),
    divided by the "batch" devices where the state is cut over them."""
    run = runs[f"{layout}/{momentum_dtype}"]
    share = {"single": 1, "data": 8, "model": 2}[layout]  # "batch" devices
    for name, held in run["param_bytes"].items():
        expected = _expected_state_bytes(
            held, momentum_dtype, name == "d1/kernel"
        )
        if any("batch" in s for s in run["slot_specs"][name]):
            expected //= share
        assert run["slot_bytes"][name] == expected, name
    if layout == "model" and momentum_dtype == "int8":
        # 64 x 128 kernel over 4 "model" shards: 1.016 / 4 B per parameter.
        assert run["slot_bytes"]["d1/kernel"] <= 1.1 / 4 * 64 * 128


def test_int8_blocks_of_a_last_axis_shard_are_its_devices_own(runs):
    """A (64, 512) momentum sharded (None, "model") over 4: each device
    quantizes its own 64 x 128 values, flattened, in blocks of 256, and
    holds 32 blocks; reading back gives the dequantized values in place."""
    run = runs["blocks"]
    m = np.array(run["m"], "float32")
    codes, scales = np.array(run["codes"]), np.array(run["scales"], "float32")
    assert codes.shape == (4, 32, 256) and "model" in run["codes_spec"]
    assert run["bytes"] == 32 * (256 + 4)
    read = np.empty_like(m)
    for j in range(4):
        local = m[:, 128 * j : 128 * (j + 1)].reshape(32, 256)
        want_codes, want_scales = reference.int8_blocks(local)
        np.testing.assert_array_equal(codes[j], want_codes)
        np.testing.assert_array_equal(scales[j], want_scales)
        decoded = reference.int8_decoded(want_codes, want_scales)
        read[:, 128 * j : 128 * (j + 1)] = decoded.reshape(64, 128)
    np.testing.assert_allclose(np.array(run["read"]), read, rtol=1e-6, atol=0)
    # These are not the blocks of the whole flattened tensor.
    whole, _ = reference.int8_blocks(m.reshape(-1, 256))
    assert not np.array_equal(codes.reshape(-1, 256), whole)


@pytest.mark.parametrize("momentum_dtype", DTYPES)
@pytest.mark.parametrize("layout", ["data", "model"])
def test_two_processes_train_as_one(runs, two_processes, layout, momentum_dtype):
    """2 processes x 4 devices: the weights of 1 process x 8 devices, and
    the same state on each device."""
    key = f"{layout}/{momentum_dtype}"
    one, two = runs[key], two_processes[key]
    assert two["devices"] == 8 and two_processes["processes"] == 2
    for a, b in zip(_weights(one), _weights(two)):
        np.testing.assert_allclose(b, a, rtol=0, atol=ATOL)
    assert two["slot_specs"] == one["slot_specs"]
    assert two["slot_bytes"] == one["slot_bytes"]


def test_two_processes_keep_the_same_int8_blocks(runs, two_processes):
    one, two = runs["blocks"], two_processes["blocks"]
    assert two["codes"] == one["codes"] and two["scales"] == one["scales"]
    assert two["bytes"] == one["bytes"]


@pytest.mark.parametrize("rounding", ["kahan", "stochastic"])
@pytest.mark.parametrize("layout", ["data", "model"])
def test_bfloat16_weights_with_rounding_train_alike_sharded(runs, layout, rounding):
    """Sharded bfloat16 sums round differently, and where that flips the sign
    of an update, a weight moves 2 * lr (2e-2) away; all but a few in a
    thousand weights stay within 2**-5 of the one-device run."""
    one = runs[f"single/{rounding}"]
    many = runs[f"{layout}/{rounding}"]
    for a, b in zip(_weights(one), _weights(many)):
        assert np.all(np.isfinite(b))
        assert np.mean(np.abs(b - a) <= 2**-5) >= 0.995
        assert np.max(np.abs(b - a)) <= 0.2  # 8 steps of 2e-2 at most


@pytest.mark.parametrize("layout", ["data", "model"])
def test_kahan_compensation_follows_parameter_sharding(runs, layout):
    run = runs[f"{layout}/kahan"]
    assert set(run["error_specs"]) == set(run["param_specs"])
    for path, spec in run["param_specs"].items():
        # with the float32 momentum's layout: the parameter's, cut over
        # "batch" too where the momentum is
        assert run["error_specs"][path] == run["slot_specs"][path][0], path
        assert ("model" in run["error_specs"][path]) == ("model" in spec)


def test_state_sharded_over_two_processes_saves_and_loads_on_one(two_processes):
    """int8 momentum cut over the 8 devices of 2 processes: the file process
    0 saved loads here, on one device, with the momentum it had."""
    import keras

    import lionr  # noqa: F401  (registers Lion)

    run = two_processes["data/int8"]
    assert all("batch" in s for s in run["slot_specs"]["d1/kernel"])
    model = keras.saving.load_model(Path(two_processes["saved"]) / "p0.keras")
    optimizer = model.optimizer
    for variable, slot in zip(model.trainable_variables, optimizer._slots):
        path = variable.path  # "d1/kernel" as loaded
        if path not in run["momenta"]:
            path = path.split("/", 1)[1]
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(slot.read()),
            np.array(run["momenta"][path], "float32"),
        )
