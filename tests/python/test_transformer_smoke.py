"""Smoke test of the transformer benchmark (``benchmarks/transformer.py``):
its ``--quick`` mode (a tiny model, a few steps; jax only) writes a
well-formed table, JSON and plot. Losses and timings are not checked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import keras

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "transformer.py"

pytestmark = [
    pytest.mark.smoke,
    pytest.mark.skipif(keras.backend.backend() != "jax",
                       reason="the benchmark's training loop is jax's"),
]


def test_quick_transformer_benchmark_writes_well_formed_outputs(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "transformer.md").read_text()
    assert "| optimizer | best lr (grid) |" in md
    data = json.loads((tmp_path / "transformer.json").read_text())
    assert data["quick"] is True
    assert len(data["results"]) == 2  # two batch sizes, 4x apart
    batches = sorted(int(b) for b in data["results"])
    assert batches[1] == 4 * batches[0]
    for rows in data["results"].values():
        assert rows["AdamW"]["state_bytes_per_param"] == pytest.approx(8.0)
        assert rows["Lion cautious"]["state_bytes_per_param"] == pytest.approx(4.0)
        for name, r in rows.items():
            assert len(r["final"]) == data["config"]["seeds"]
            assert f"| {name} |" in md
            assert r["best_lr"] in [float(x) for x in r["grid"]]
    png = (tmp_path / "transformer.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
