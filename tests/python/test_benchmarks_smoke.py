"""Smoke test of the optimizer-step benchmark (``benchmarks/bench_step.py``).

Runs its ``--quick`` mode for the current Keras backend only and checks that
the markdown, JSON and PNG outputs exist and are well-formed. Timings are
not checked: this is not a speed test.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import keras

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_step.py"

pytestmark = pytest.mark.smoke


def test_quick_benchmark_writes_well_formed_outputs(tmp_path):
    backend = keras.backend.backend()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--backends", backend,
         "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    md = (tmp_path / "step.md").read_text()
    assert "| backend | implementation |" in md
    assert md in proc.stdout  # the table is also printed

    data = json.loads((tmp_path / "step.json").read_text())
    assert data["quick"] is True
    assert data["bandwidth_gbps"] > 0
    records = data["records"]
    names = {r["implementation"] for r in records}
    expected = {
        "lionr.Lion", "keras.optimizers.Lion", "keras.optimizers.AdamW",
        "lionr.Lion bfloat16", "lionr.Lion int8",
        "lionr.Lion bf16 weights wd", "lionr.Lion bf16 weights kahan wd",
        "lionr.Lion bf16 weights stochastic wd",
    }
    expected |= {"jax": {"optax.lion"}, "torch": {"lion_pytorch.Lion"}}.get(
        backend, set())
    assert expected <= names
    for r in records:
        assert r["backend"] == backend
        assert len(r["times_ms"]) == data["repeats"]
        assert r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        assert r["x_bound"] > 0
        assert f"| {r['implementation']} |" in md
    state = {r["implementation"]: r["state_bytes_per_param"] for r in records}
    assert state["lionr.Lion"] == pytest.approx(4.0)
    assert state["keras.optimizers.AdamW"] == pytest.approx(8.0)
    assert state["lionr.Lion bfloat16"] == pytest.approx(2.0)
    assert state["lionr.Lion int8"] < 1.1
    # bfloat16 weights: bfloat16 momentum, and Kahan's bfloat16 compensation.
    assert state["lionr.Lion bf16 weights wd"] == pytest.approx(2.0)
    assert state["lionr.Lion bf16 weights kahan wd"] == pytest.approx(4.0)
    assert state["lionr.Lion bf16 weights stochastic wd"] == pytest.approx(
        2.0, abs=1e-3)

    png = (tmp_path / "step.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="one backend is enough to check the script (it runs in children)",
)
def test_quick_device_benchmark_names_the_device_and_writes_its_tables(tmp_path):
    """``bench_device.py --quick`` on the CPU: it finds no accelerator, says
    so, and gathers the step, ratio and fit tables into device.md."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_device.py"),
         "--quick", "--backends", "torch", "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "device.md").read_text()
    data = json.loads((tmp_path / "device.json").read_text())
    assert data["devices"]["torch"]["kind"] == "cpu"
    assert data["accelerated"] is False
    assert "No accelerator was found" in md and "torch: CPU (cpu)" in md
    for header in ("| backend | implementation |", "| backend | params | ratio |",
                   "| backend | how | host memory |"):
        assert header in md
    labels = {row["ratio"] for row in data["ratios"]["rows"]}
    assert labels == {
        "stochastic / nearest (bf16 weights, wd)",
        "kahan / nearest (bf16 weights, wd)", "int8 / float32 momentum",
    }
