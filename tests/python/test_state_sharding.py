"""Optimizer state sharded over the data axis (``state_sharding``), its
2-bit update exchange, and checkpoints across device counts (jax, simulated
CPU devices).

Five subprocesses (``sharded_state_child.py``), one per device count, run
in order: 8 devices (every case trained with sharded and with replicated
state, the train step's collectives, files saved after one epoch), 4, 2 and
1 device (each 8-device file resumed for one epoch; one device also saves
every case), and 8 again (the one-device files resumed).
"""

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "jax", reason="keras.distribution layouts are a jax feature"
)

SCRIPT = Path(__file__).with_name("sharded_state_child.py")
TIMEOUT = 400  # seconds for any one subprocess, on a loaded machine
LR = 1e-2
# Parameters of the test model (64 -> 128 -> 8 Dense).
PARAMS = 64 * 128 + 128 + 128 * 8 + 8


def _child(devices, out, *tasks):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SCRIPT.parents[2]), env.get("PYTHONPATH", "")]
    )
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), *tasks],
        env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(Path(out).read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sharded")
    eight, one = tmp / "saved8", tmp / "saved1"
    out = {8: _child(8, tmp / "8.json", f"layouts:{eight}")[f"layouts:{eight}"]}
    for n in (4, 2):
        out[n] = _child(n, tmp / f"{n}.json", f"resume:{eight}")[
            f"resume:{eight}"]
    single = _child(1, tmp / "1.json", f"resume:{eight}", f"save:{one}")
    out[1] = single[f"resume:{eight}"]
    out["single"] = single[f"save:{one}"]
    out["1to8"] = _child(8, tmp / "1to8.json", f"resume:{one}")[
        f"resume:{one}"]
    return out


CASES = [
    f"{layout}/{m}/{r}" for layout in ("data", "model")
    for m, r in (("float32", "nearest"), ("bfloat16", "nearest"),
                 ("int8", "nearest"), ("float32", "kahan"),
                 ("int8", "stochastic"))
]


def _name(path):
    """A state variable's name without the model's numbered prefix."""
    return re.sub(r"^sequential(_\d+)?_", "", path)


def _state(run):
    return {_name(k): v for k, v in run["state"].items()}


@pytest.mark.parametrize("case", CASES)
def test_state_is_cut_over_the_data_axis(runs, case):
    """Sharded: every state variable of a parameter replicated over "batch"
    is cut over it where a dimension divides (all of them here), each
    device holding 1/8 (DataParallel) or 1/2 (the (2, 4) mesh's batch axis)
    of the bytes it holds with replicated state."""
    sharded = _state(runs[8][f"{case}/sharded"])
    replicated = _state(runs[8][f"{case}/replicated"])
    assert set(sharded) == set(replicated)
    share = 8 if case.startswith("data") else 2
    for name, held in sharded.items():
        assert "batch" not in replicated[name]["spec"], name
        if "batch" in held["spec"]:
            assert held["bytes"] * share == replicated[name]["bytes"], name
        else:
            assert held["bytes"] == replicated[name]["bytes"], name
    spread = [n for n, s in sharded.items() if "batch" in s["spec"]]
    if case.startswith("data"):
        assert len(spread) == len(sharded)  # every dimension 0 divides by 8
    else:  # d1's kernel (None, "model") and bias; d2's kernel; d2's bias
        assert any("d1_kernel" in n for n in spread)
    total = sum(s["bytes"] for s in sharded.values())
    assert total * share == sum(s["bytes"] for s in replicated.values())


@pytest.mark.parametrize("case", CASES)
def test_sharded_state_trains_as_replicated(runs, case):
    """Same weights and state to the bit; every device's copy of a
    replicated weight the same."""
    sharded = runs[8][f"{case}/sharded"]
    replicated = runs[8][f"{case}/replicated"]
    for a, b in zip(sharded["weights"], replicated["weights"]):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    if "/int8/" not in case:  # int8 codes are stored in per-device groups
        reps = _state(replicated)
        for name, held in _state(sharded).items():
            np.testing.assert_array_equal(
                np.array(held["value"]), np.array(reps[name]["value"])
            )
    assert sharded["replicas_agree"] and replicated["replicas_agree"]


def _bits(found):
    sizes = {"u8": 8, "s8": 8, "pred": 8, "bf16": 16, "f16": 16, "f32": 32,
             "s32": 32, "u32": 32}
    return sum(sizes[d] * n for _, d, n in found)


@pytest.mark.parametrize("case", CASES)
def test_update_is_gathered_in_2_bits(runs, case):
    """The compiled train step: with sharded state, the optimizer adds only
    all-gathers of bytes: 2 bits per parameter for the signs, 16 for the
    new values of 16-bit weights under kahan/stochastic rounding; no float
    all-gather beyond those the replicated run has (the model's own)."""
    sharded = Counter(map(tuple, runs[8][f"{case}/sharded"]["collectives"]))
    replicated = Counter(
        map(tuple, runs[8][f"{case}/replicated"]["collectives"])
    )
    added = sharded - replicated
    floats = [c for c in added if c[1] in ("f32", "bf16", "f16")]
    gathers = [c for c in added.elements() if c[0] == "all-gather"]
    rounds = "/nearest" not in case
    if case.startswith("data"):
        assert not floats, floats
        assert set(c[0] for c in added) == {"all-gather"}
        assert all(c[1] == "u8" for c in gathers)
        if rounds:  # every weight is bfloat16: its 16 bits
            assert _bits(gathers) == 16 * PARAMS
        else:  # 2 bits per parameter, in whole bytes per device and tensor
            assert 2 * PARAMS <= _bits(gathers) <= 2 * PARAMS + 4 * 8 * 16
    else:
        # The (2, 4) mesh moves where a bias's values are gathered or
        # reduced (at most 128 values): nothing of a kernel's size.
        assert all(n <= 128 for _, _, n in floats), added
        bytes_ = [c for c in gathers if c[1] == "u8"]
        assert _bits(bytes_) <= (16 if rounds else 2) * PARAMS + 4 * 8 * 16


@pytest.mark.parametrize("rounding", ["nearest", "kahan"])
def test_cautious_update_is_exchanged_like_the_plain_one(runs, rounding):
    """cautious=True under DataParallel: sharded state trains to the bits
    of replicated state, replicas agree, the masked update still travels
    as bytes (2 bits per parameter, or the 16-bit weights under kahan; the
    kept fraction is one float per tensor), and the mask did change the
    run (it differs from plain Lion's)."""
    sharded = runs[8][f"cautious/{rounding}/sharded"]
    replicated = runs[8][f"cautious/{rounding}/replicated"]
    for a, b in zip(sharded["weights"], replicated["weights"]):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    assert sharded["replicas_agree"]
    plain = runs[8][f"data/{'bfloat16' if rounding == 'nearest' else 'float32'}"
                    f"/{rounding}/sharded"]["weights"]
    assert any(not np.array_equal(np.array(a), np.array(b))
               for a, b in zip(sharded["weights"], plain))
    added = Counter(map(tuple, sharded["collectives"])) - Counter(
        map(tuple, replicated["collectives"]))
    big_floats = [c for c in added if c[1] in ("f32", "bf16", "f16") and c[2] > 1]
    assert not big_floats, added
    gathers = [c for c in added.elements() if c[0] == "all-gather"]
    assert all(c[1] == "u8" for c in gathers)
    limit = 16 * PARAMS if rounding == "kahan" else 2 * PARAMS + 4 * 8 * 16
    assert 0 < _bits(gathers) <= limit


def _saved(runs, name):
    """The uninterrupted 8-device run of a saved file: its weights after
    the second epoch and its momentum when saved."""
    _, layout, momentum_dtype, rounding, sharding = name.split("-")
    run = runs[8][f"{layout}/{momentum_dtype}/{rounding}/{sharding}"]
    return run["weights"], runs[8]["saved"][name]


def _close_or_flipped(resumed, reference):
    """Within a float32 rounding of the reference, but for the few weights
    whose update changed sign (a step of 2 * lr, where the gradient's
    reduction order, bfloat16 sums or a re-encoded int8 momentum moves a
    sign near zero: up to 2.5% of a tensor here)."""
    for a, b in zip(resumed, reference):
        a, b = np.array(a), np.array(b)
        assert np.all(np.isfinite(a))
        assert np.mean(np.abs(a - b) <= 1e-6) >= 0.95
        assert np.max(np.abs(a - b)) <= 2 * LR + 1e-3


@pytest.mark.parametrize("devices", [4, 2, 1])
def test_resume_8_devices_on_fewer(runs, devices):
    """Every file saved on 8 devices loads on 4, 2 and 1 and trains on: the
    momentum as saved (to the bit where the int8 blocks are the same;
    within the re-encoding's rounding where they are not), the weights of
    the uninterrupted run (within a few sign flips after a re-encoding)."""
    resumed = runs[devices]
    assert sorted(resumed) == sorted(runs[8]["saved"])
    for name, run in resumed.items():
        weights, momenta = _saved(runs, name)
        # the (2, 4) mesh's int8 blocks are no blocks of another mesh's
        reencoded = "-model-int8-" in name
        for path, m in momenta.items():
            m, got = np.array(m), np.array(run["momenta"][path])
            if not reencoded or got.size < 4096:
                np.testing.assert_array_equal(got, m, err_msg=name)
            else:  # one rounding of a new 8-bit encode
                bound = 2 / 127 * np.max(np.abs(m))
                assert np.max(np.abs(got - m)) <= bound, name
        if not reencoded:  # stochastic bits too: keyed by the global index
            for a, b in zip(run["weights"], weights):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-6,
                                           err_msg=name)
        else:
            _close_or_flipped(run["weights"], weights)
        assert run["replicas_agree"], name


def test_resume_1_device_on_8(runs):
    """Files saved on one device load under an 8-device DataParallel with
    sharded state and train on as the one-device run does (stochastic
    rounding included: its bits are keyed by the global element index)."""
    resumed = runs["1to8"]
    assert len(resumed) == 5
    for name, run in resumed.items():
        key = "/".join(name.split("-")[1:])
        reference = runs["single"][key]["weights"]
        for path, m in runs["single"]["saved"][name].items():
            np.testing.assert_array_equal(np.array(run["momenta"][path]),
                                          np.array(m), err_msg=name)
        assert any("batch" in spec for spec in run["state"].values()), name
        for a, b in zip(run["weights"], reference):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=name)
