"""``momentum_dtype``: float32, bfloat16 and int8 block-quantized momentum."""

import math

import ml_dtypes
import numpy as np
import pytest

import keras
from keras import ops

import lionr
from lionr import state
import reference
from reference import variables_of
from tiny import apply_steps
from tiny import normal

MODES = ["float32", "bfloat16", "int8"]


def state_bytes(optimizer):
    skip = {id(optimizer._iterations), id(optimizer._learning_rate)}
    return sum(
        ops.convert_to_numpy(v.value).nbytes
        for v in optimizer.variables
        if id(v) not in skip
    )


def dense_model(units_in=1000, units_out=1000):
    return keras.Sequential(
        [keras.Input((units_in,)), keras.layers.Dense(units_out)]
    )


@pytest.mark.parametrize(
    "mode, low, high", [("float32", 4.0, 4.0), ("bfloat16", 2.0, 2.01),
                        ("int8", 1.0, 1.1)],
)
def test_state_bytes_per_parameter_on_a_million_parameters(mode, low, high):
    model = dense_model()
    params = sum(math.prod(v.shape) for v in model.trainable_variables)
    assert params == 1_001_000
    optimizer = lionr.optimizer_lion(momentum_dtype=mode)
    optimizer.build(model.trainable_variables)
    assert low <= state_bytes(optimizer) / params <= high


def test_adamw_keeps_twice_the_float32_state():
    model = dense_model()
    lion = lionr.optimizer_lion()
    adamw = keras.optimizers.AdamW()
    lion.build(model.trainable_variables)
    adamw.build(model.trainable_variables)
    assert state_bytes(adamw) == 2 * state_bytes(lion)


def test_storage_dtypes_and_small_tensors_left_in_float32():
    model = dense_model(64, 128)  # kernel 8192 values, bias 128
    kernel, bias = model.trainable_variables
    optimizer = lionr.optimizer_lion(momentum_dtype="int8")
    optimizer.build([kernel, bias])
    big, small = optimizer._slots
    assert isinstance(big, state.Blockwise)
    assert big.codes.dtype == "int8" and tuple(big.codes.shape) == (32, 256)
    assert tuple(big.scales.shape) == (32, 1)
    assert isinstance(small, state.Plain) and small.slot.dtype == "float32"
    bf16 = lionr.optimizer_lion(momentum_dtype="bfloat16")
    bf16.build([kernel, bias])
    assert all(s.slot.dtype == "bfloat16" for s in bf16._slots)


def test_int8_round_trip_error_is_within_one_code_step():
    """|m - read(write(m))| <= s * d * (2 sqrt(|m|/s) + d), d = 0.5/127."""
    rng = np.random.default_rng(1)
    m = rng.standard_cauchy(size=(5000,)).astype("float32")  # heavy tails
    variable = keras.Variable(np.zeros_like(m))
    optimizer = lionr.optimizer_lion(momentum_dtype="int8")
    optimizer.build([variable])
    slot = optimizer._slots[0]
    slot.write(optimizer, ops.convert_to_tensor(m))
    back = ops.convert_to_numpy(slot.read())
    padded = np.pad(m, (0, (-len(m)) % state.BLOCK)).reshape(-1, state.BLOCK)
    scale = np.repeat(np.abs(padded).max(axis=1), state.BLOCK)[: len(m)]
    d = 0.5 / 127
    bound = scale * d * (2 * np.sqrt(np.abs(m) / scale) + d)
    assert np.all(np.abs(back - m) <= bound * (1 + 1e-5) + 1e-30)
    assert np.all(np.sign(back[np.abs(m) > bound]) == np.sign(m[np.abs(m) > bound]))


@pytest.mark.parametrize("size", [4096, 5000, 8191])
def test_int8_codes_and_scales_equal_a_numpy_reference(size):
    """Blocks of 256 (the last one zero-padded), scale = max |m|, codes =
    round-half-even(sign(m) sqrt(|m| k)) with k = min(127**2 / scale, the
    largest float32), in float32."""
    rng = np.random.default_rng(size)
    m = rng.standard_cauchy(size=(size,)).astype("float32")
    m[:256] = 0.0  # an all-zero block keeps scale 0 and codes 0
    variable = keras.Variable(np.zeros_like(m))
    optimizer = lionr.optimizer_lion(momentum_dtype="int8")
    optimizer.build([variable])
    slot = optimizer._slots[0]
    slot.write(optimizer, ops.convert_to_tensor(m))

    blocks = np.pad(m, (0, (-size) % state.BLOCK)).reshape(-1, state.BLOCK)
    codes, scales = reference.int8_blocks(blocks)
    np.testing.assert_array_equal(ops.convert_to_numpy(slot.scales.value), scales)
    np.testing.assert_array_equal(ops.convert_to_numpy(slot.codes.value), codes)


TORCH_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="the cache-blocked step is torch's"
)


@TORCH_ONLY
def test_torch_blocked_int8_decodes_and_encodes_as_blockwise():
    """The cache-blocked step's int8 decoding and encoding, piece by piece,
    give the bits of ``Blockwise.read`` and ``Blockwise.write`` (a tensor
    of two pieces, the second ending inside a block)."""
    import torch

    from lionr import _torch_kernel as kernel

    size = kernel.CHUNK + 3000
    variable = keras.Variable(np.zeros(size, "float32"))
    optimizer = lionr.optimizer_lion(momentum_dtype="int8")
    optimizer.build([variable])
    slot = optimizer._slots[0]
    m = normal(5, (size,))
    m[:300] = 0.0  # an all-zero block
    slot.write(optimizer, ops.convert_to_tensor(m))
    read = ops.convert_to_numpy(slot.read())

    rows = kernel.CHUNK // state.BLOCK
    codes = [c.clone() for c in slot.codes.value.split(rows)]
    scales = [s.clone() for s in slot.scales.value.split(rows)]
    decoded, flat = [], torch.from_numpy(m)
    for i, (c, s) in enumerate(zip(codes, scales)):
        block = torch.empty(c.shape)
        kernel._decode(c, s, block, torch.empty(c.shape))
        decoded.append(block.reshape(-1))
        # encode this piece's momentum (zero-padded to whole blocks)
        piece = flat[i * kernel.CHUNK : (i + 1) * kernel.CHUNK]
        padded = torch.zeros(c.numel())
        padded[: piece.numel()] = piece
        kernel._encode(padded.view(c.shape), c, s, torch.empty(c.shape))
    decoded = torch.cat(decoded)[:size].numpy()
    assert decoded.tobytes() == read.tobytes()
    assert torch.cat(codes).numpy().tobytes() == ops.convert_to_numpy(
        slot.codes.value).tobytes()
    assert torch.cat(scales).numpy().tobytes() == ops.convert_to_numpy(
        slot.scales.value).tobytes()


@TORCH_ONLY
@pytest.mark.parametrize("mode", MODES)
def test_torch_blocked_step_matches_the_per_variable_step(mode, monkeypatch):
    """Four steps with weight decay, on tensors cut into several pieces and
    ending inside a block, beside small tensors sharing a group, by the
    cache-blocked torch step and by Keras's loop over ``Lion.update_step``,
    each step from the same state (the loop's): the parameters have the
    same bits. The momenta are formed in another order of float32
    roundings (the blocked step in that of Keras's torch Lion), so they
    agree to an ulp or two of each tensor's largest value in their storage
    dtype (int8 scales in float32), and int8 codes within one code, at the
    few places where those ulps decide the rounding."""
    from lionr import kernels

    shapes = [(2**19 + 3,), (600, 1000), (7,), (5000,), (70, 64), ()]
    kwargs = dict(
        learning_rate=0.003, beta_1=0.8, beta_2=0.95, weight_decay=0.2,
        momentum_dtype=mode,
    )
    starts = [normal(60 + i, s) for i, s in enumerate(shapes)]
    runs = []
    for _ in range(2):
        variables = variables_of(starts)
        optimizer = lionr.optimizer_lion(**kwargs)
        optimizer.build(variables)
        runs.append((optimizer, [*variables, *optimizer.variables]))
    (blocked, blocked_all), (looped, looped_all) = runs
    names = [v.path for v in looped.variables]

    def stored(v):
        return ops.convert_to_numpy(
            ops.cast(v, "float32") if v.dtype == "bfloat16" else v)

    codes_off = 0
    for t in range(4):
        for a, b in zip(blocked_all, looped_all):
            a.assign(b)
        grads = [ops.convert_to_tensor(normal(70 + 9 * t + i, s))
                 for i, s in enumerate(shapes)]
        blocked.apply(grads, blocked_all[: len(shapes)])
        with monkeypatch.context() as patch:
            patch.setattr(kernels, "apply_fused", lambda *a, **k: False)
            patch.setattr(kernels, "fuses_weight_decay", lambda *a: False)
            looped.apply(grads, looped_all[: len(shapes)])
        assert blocked.__dict__.get("_lionr_plans")
        assert not looped.__dict__.get("_lionr_plans")
        for a, b in zip(blocked_all[: len(shapes)], looped_all[: len(shapes)]):
            assert stored(a).tobytes() == stored(b).tobytes()
        for name, va, vb in zip(names[2:], blocked.variables[2:],
                                looped.variables[2:]):
            a, b = stored(va), stored(vb)
            assert a.dtype == b.dtype and a.shape == b.shape, name
            if a.dtype == np.int8:
                off = np.abs(a.astype(int) - b.astype(int))
                assert off.max() <= 1, (t, name)
                codes_off += int(off.sum())
                continue
            largest = np.abs(b).max()
            ulp = (_bfloat16_spacing(largest) if mode == "bfloat16"
                   else reference.ulp(largest))
            assert np.abs(a - b).max() <= 2 * ulp, (t, name)
    assert codes_off <= 10


def test_bfloat16_stores_the_rounded_float32_momentum():
    rng = np.random.default_rng(2)
    g = rng.normal(size=(300,)).astype("float32")
    variable = keras.Variable(np.ones(300, "float32"))
    optimizer = lionr.optimizer_lion(
        learning_rate=0.1, beta_2=0.9, momentum_dtype="bfloat16"
    )
    optimizer.apply([ops.convert_to_tensor(g)], [variable])
    expected_m = (np.float32(1) - np.float32(0.9)) * g
    stored = ops.convert_to_numpy(ops.cast(optimizer._slots[0].slot.value, "float32"))
    np.testing.assert_array_equal(
        stored, expected_m.astype(ml_dtypes.bfloat16).astype("float32")
    )
    np.testing.assert_array_equal(
        ops.convert_to_numpy(variable), np.float32(1) - np.float32(0.1) * np.sign(g)
    )


def _bfloat16_spacing(x):
    """The bfloat16 spacing at ``|x|`` (8 significant bits)."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    return 2.0 ** (np.floor(np.log2(np.maximum(x, 1e-30))) - 7)


def test_bfloat16_steps_follow_the_rule_on_large_tensors():
    """Steps on tensors larger than the torch step's pieces, and small ones:
    from the stored momentum, parameters within 2 float32 ulp of the float64
    rule; the stored new momentum is the rule's value rounded to bfloat16
    (half a bfloat16 spacing, plus float32 rounding)."""
    shapes = [(600, 1000), (5,), (2**19 + 3,), (300, 7)]
    lr, b1, b2, wd = 0.003, 0.8, 0.95, 0.2
    variables = variables_of([normal(60 + i, s) for i, s in enumerate(shapes)])
    optimizer = lionr.optimizer_lion(
        learning_rate=lr, beta_1=b1, beta_2=b2, weight_decay=wd,
        momentum_dtype="bfloat16",
    )
    steps = [
        [normal(70 + 13 * t + i, s) for i, s in enumerate(shapes)]
        for t in range(3)
    ]
    for step in apply_steps(optimizer, variables, steps):
        for p, m, g, p_new, m_new in step:
            m_rule = reference.step(p, m, g, lr, b1, b2, wd)[1]
            reference.assert_step_within(
                p, m, g, p_new, m_rule.astype("float32"), lr, b1, b2, wd
            )
            m_scale = np.maximum(np.abs(m), np.abs(g))
            allowed = 0.5 * _bfloat16_spacing(m_rule) + 2 * reference.ulp(m_scale)
            assert np.all(np.abs(m_new - m_rule) <= allowed)


def test_unknown_mode_is_refused_with_the_accepted_values():
    with pytest.raises(ValueError, match="momentum_dtype.*'float32'.*'bfloat16'.*'int8'.*float16"):
        lionr.optimizer_lion(momentum_dtype="float16")


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 64)).astype("float32")
    y = (x @ rng.normal(size=(64, 4)) / 8).astype("float32")
    return x, y


def _model(mode):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
         keras.layers.Dense(4)]
    )
    model.compile(
        optimizer=lionr.optimizer_lion(
            learning_rate=1e-2, weight_decay=0.01, momentum_dtype=mode
        ),
        loss="mse",
    )
    return model


@pytest.mark.parametrize("mode", MODES)
def test_fit_trains(mode):
    model = _model(mode)
    history = model.fit(*_data(), epochs=8, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("mode", MODES)
def test_save_load_restores_state_and_resumes_the_same_run(mode, tmp_path):
    x, y = _data()
    straight = _model(mode)
    straight.fit(x, y, epochs=4, batch_size=32, shuffle=False, verbose=0)

    first = _model(mode)
    first.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
    path = tmp_path / f"{mode}.keras"
    first.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, lionr.Lion)
    assert loaded.optimizer.get_config() == first.optimizer.get_config()
    for a, b in zip(first.optimizer.variables, loaded.optimizer.variables):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(
            ops.convert_to_numpy(ops.cast(a.value, "float32")),
            ops.convert_to_numpy(ops.cast(b.value, "float32")),
        )
    loaded.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
    for a, b in zip(straight.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
