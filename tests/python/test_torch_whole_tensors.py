"""The torch step off the CPU: whole tensors, one multi-tensor call per
operation (``lionr._torch_kernel._cut``), forced here on the CPU and
compared bit for bit with the cache-blocked step that the CPU takes."""

import numpy as np
import pytest

import keras

import lionr
from reference import numpy_of
from tiny import BACKEND
from tiny import normal

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="the multi-tensor step is torch's"
)

# Two tensors of more than one 2**19-element piece (one ending inside an
# int8 block), and small ones that share a group.
SHAPES = [(1 << 19) + 3000, (700, 1000), (64, 32), (7,)]


def run(momentum_dtype, weight_decay, whole, monkeypatch, steps=3):
    """Parameters and optimizer variables after ``steps`` steps, and how the
    plan cut the tensors: ``(pieces per tensor, number of groups)``."""
    from lionr import _torch_kernel as kernel

    with monkeypatch.context() as patch:
        if whole:
            patch.setattr(kernel, "_cut", lambda device, rounded=None: kernel.WHOLE)
        variables = [
            keras.Variable(normal(10 + i, s), name=f"w{i}")
            for i, s in enumerate(SHAPES)
        ]
        optimizer = lionr.Lion(
            learning_rate=0.01,
            beta_1=0.8,
            beta_2=0.95,
            weight_decay=weight_decay,
            momentum_dtype=momentum_dtype,
        )
        optimizer.build(variables)
        for t in range(steps):
            grads = [normal(30 + 5 * t + i, s) for i, s in enumerate(SHAPES)]
            grads[0][:4] = [-0.0, np.inf, -np.inf, np.nan]
            optimizer.apply(
                [keras.ops.convert_to_tensor(g) for g in grads], variables
            )
        (plan,) = optimizer.__dict__["_lionr_plans"].values()
    values = [numpy_of(v) for v in (*variables, *optimizer.variables)]
    return values, (len(plan.groups), sum(len(g.ps) for g in plan.groups))


@pytest.mark.parametrize("momentum_dtype", ["float32", "bfloat16", "int8"])
@pytest.mark.parametrize("weight_decay", [None, 0.1])
def test_whole_tensors_give_the_blocked_steps_bits(
    momentum_dtype, weight_decay, monkeypatch
):
    blocked, blocked_cut = run(momentum_dtype, weight_decay, False, monkeypatch)
    whole, whole_cut = run(momentum_dtype, weight_decay, True, monkeypatch)
    assert whole_cut == (1, len(SHAPES))  # one group, one piece per tensor
    assert blocked_cut[0] > 1 and blocked_cut[1] > len(SHAPES)
    assert len(whole) == len(blocked)
    for a, b in zip(whole, blocked):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def test_whole_tensors_give_keras_lions_parameters(monkeypatch):
    """Parameters (float32 momentum, weight decay) bit-identical to
    ``keras.optimizers.Lion`` on torch, as the blocked step's are."""
    whole, _ = run("float32", 0.1, True, monkeypatch)
    variables = [
        keras.Variable(normal(10 + i, s)) for i, s in enumerate(SHAPES)
    ]
    optimizer = keras.optimizers.Lion(
        learning_rate=0.01, beta_1=0.8, beta_2=0.95, weight_decay=0.1
    )
    for t in range(3):
        grads = [normal(30 + 5 * t + i, s) for i, s in enumerate(SHAPES)]
        grads[0][:4] = [-0.0, np.inf, -np.inf, np.nan]
        optimizer.apply(
            [keras.ops.convert_to_tensor(g) for g in grads], variables
        )
    for a, v in zip(whole, variables):
        assert a.tobytes() == numpy_of(v).tobytes()


def test_the_cut_is_chosen_by_device():
    import torch

    from lionr import _torch_kernel as kernel

    assert kernel._cut(torch.device("cpu")) == (kernel.CHUNK, kernel.GROUP)
    for device in ("cuda", "mps", "meta"):
        assert kernel._cut(torch.device(device)) == kernel.WHOLE
