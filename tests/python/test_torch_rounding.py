"""bfloat16 weights under ``"kahan"`` and ``"stochastic"`` take the torch
multi-tensor step (``lionr._torch_rounding``): the same bits as Keras's loop
over ``Lion.update_step`` for parameters, momenta and Kahan buffers, NaN,
infinities and -0.0 included, on the CPU's cut and on whole tensors."""

import numpy as np
import pytest

import keras
from keras import ops

import lionr
from reference import numpy_of
from tiny import BACKEND
from tiny import normal

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="the multi-tensor step is torch's"
)

# One tensor of two pieces (the second ending inside an int8 block), small
# ones sharing a group, and a bias without weight decay.
SHAPES = [((1 << 19) + 3000,), (300, 40), (7,), (5000,)]


def variables_of(starts):
    out = []
    for i, w in enumerate(starts):
        name = "bias" if w.ndim == 1 and w.size == 7 else f"w{i}"
        out.append(keras.Variable(w, dtype="bfloat16", name=name))
    return out


def bits(v):
    return numpy_of(v).tobytes()


@pytest.mark.parametrize("whole", [False, True], ids=["cpu-cut", "whole"])
@pytest.mark.parametrize("momentum_dtype", ["float32", "bfloat16", "int8"])
@pytest.mark.parametrize("mode", ["kahan", "stochastic"])
def test_fused_step_has_the_bits_of_the_per_variable_step(
    mode, momentum_dtype, whole, monkeypatch
):
    from lionr import _torch_kernel
    from lionr import kernels

    if whole:
        monkeypatch.setattr(
            _torch_kernel, "_cut", lambda device, rounded=None: (1 << 20, 1 << 20)
        )
    starts = [normal(60 + i, s, 0.5) for i, s in enumerate(SHAPES)]
    starts[0][:5] = [np.nan, np.inf, -np.inf, -0.0, 0.0]
    kwargs = dict(
        learning_rate=0.003, beta_1=0.8, beta_2=0.95, weight_decay=0.2,
        momentum_dtype=momentum_dtype, weight_rounding=mode,
    )
    keras.utils.set_random_seed(1)
    runs = []
    for _ in range(2):
        variables = variables_of(starts)
        optimizer = lionr.optimizer_lion(**kwargs)
        optimizer.exclude_from_weight_decay(var_names=["bias"])
        optimizer.build(variables)
        runs.append((optimizer, [*variables, *optimizer.variables]))
    (fused, fused_all), (looped, looped_all) = runs
    for a, b in zip(fused_all, looped_all):
        a.assign(b)  # the same seed in both
    n = len(SHAPES)
    for t in range(3):
        grads = [normal(70 + 9 * t + i, s) for i, s in enumerate(SHAPES)]
        grads[0][5:9] = [-0.0, np.inf, np.nan, 0.0]
        grads = [ops.cast(g, "bfloat16") for g in grads]
        fused.apply(grads, fused_all[:n])
        with monkeypatch.context() as patch:
            patch.setattr(kernels, "apply_fused", lambda *a, **k: False)
            patch.setattr(kernels, "fuses_weight_decay", lambda *a: False)
            looped.apply(grads, looped_all[:n])
        assert fused.__dict__.get("_lionr_plans")
        assert not looped.__dict__.get("_lionr_plans")
        names = [v.path for v in looped_all]
        for name, a, b in zip(names, fused_all, looped_all):
            assert bits(a) == bits(b), (t, name)
    w = numpy_of(ops.cast(fused_all[0], "float32"))
    assert np.isnan(w[0])  # (an infinite weight under decay becomes NaN)
    assert not np.array_equal(w[10:], starts[0][10:])


def test_a_mixed_model_fuses_every_dtype_group(monkeypatch):
    """A bfloat16 layer under stochastic rounding and a float32 layer: one
    fused step each, Keras's loop never called."""
    from lionr import lion

    calls = []
    monkeypatch.setattr(
        lion.keras.optimizers.Optimizer, "_backend_update_step",
        lambda *a: calls.append(a),
    )
    variables = [
        keras.Variable(normal(0, (64, 8)), dtype="bfloat16"),
        keras.Variable(normal(1, (8,)), dtype="float32"),
    ]
    optimizer = lionr.optimizer_lion(weight_rounding="stochastic")
    before = [numpy_of(ops.cast(v, "float32")) for v in variables]
    optimizer.apply(
        [ops.cast(normal(2 + i, v.shape), v.dtype) for i, v in enumerate(variables)],
        variables,
    )
    assert not calls
    assert len(optimizer.__dict__["_lionr_plans"]) == 2
    for a, v in zip(before, variables):
        assert not np.array_equal(a, numpy_of(ops.cast(v, "float32")))


def test_a_rounded_piece_has_the_bits_of_cut_with_noise():
    """The torch piece rounding (integer NaN select included) against
    ``rounding.cut_with_noise`` with ``random_bits`` on float32 values that
    no step of bfloat16 weights makes but that the select must get right:
    NaNs whose bits are all ones (the noise would carry them into +0.0 or
    -0.0), a signalling NaN, infinities, zeros, the largest float32."""
    import torch

    from lionr import _torch_rounding
    from lionr import random_bits
    from lionr import rounding

    w = normal(4, (3000,))
    w.view(np.uint32)[:8] = [
        0xFFFFFFFF, 0x7FFFFFFF, 0xFFC00001, 0x7F800001,
        0x7F800000, 0xFF800000, 0x80000000, 0x7F7FFFFF,
    ]
    start, key = 1 << 20, -123456789
    index = np.arange(start, start + w.size).astype(np.int32)
    noise = random_bits.bits16(
        ops.convert_to_tensor(index), ops.convert_to_tensor(np.int32(key)))
    want = numpy_of(rounding.cut_with_noise(ops.convert_to_tensor(w), noise))

    c1 = random_bits.C1
    index_c1 = torch.arange(w.size, dtype=torch.int32).mul_(c1)
    scalar = (torch.tensor(start + key, dtype=torch.int32)).mul_(c1)
    got = torch.from_numpy(w.copy())
    x, y = (torch.empty(w.size, dtype=torch.int32) for _ in range(2))
    _torch_rounding.round_piece(got, index_c1, scalar, x, y)
    got = got.numpy()
    assert got.tobytes() == want.tobytes()
    assert np.isnan(got[:4]).all()
