"""``cautious=True``: Lion's update kept only where its sign agrees with the
gradient's, rescaled per tensor (``lionr.cautious``), against the float64
reference ``reference.cautious_step``, on the backend's own path (compiled
jax and tensorflow, the fused torch step), for every momentum store and
16-bit weight rounding."""

import numpy as np
import pytest

import keras
from keras import ops

import lionr
import reference
from reference import momentum_of
from reference import numpy_of
from tiny import normal

LR, B1, B2, WD = 0.01, 0.9, 0.99, 0.1


def lion(**kwargs):
    return lionr.optimizer_lion(learning_rate=LR, **kwargs)


def tensor(x, dtype="float32"):
    return ops.cast(ops.convert_to_tensor(np.asarray(x, "float32")), dtype)


# ------------------------------------------------------------ the argument


@pytest.mark.backend_free
@pytest.mark.parametrize("value", ["TRUE", 1, None, 0.0])
def test_anything_but_a_boolean_is_refused(value):
    with pytest.raises(lionr.ArgumentTypeError, match="cautious"):
        lion(cautious=value)


@pytest.mark.backend_free
def test_off_by_default_and_kept_in_the_config():
    assert lion().cautious is False
    assert lion().get_config()["cautious"] is False
    config = lion(cautious=True).get_config()
    assert config["cautious"] is True
    assert lionr.Lion.from_config(config).cautious is True
    config.pop("cautious")  # a config saved before the option existed
    assert lionr.Lion.from_config(config).cautious is False


# ------------------------------------------------------------ the rule


def test_mask_is_ternary_and_scales_by_the_kept_fraction():
    from lionr import cautious

    u = tensor([1, -1, 1, 0, -1, 1, 1, -1])
    g = tensor([2, 3, -1, 5, -0.5, 0, 4, -7])
    t, scale = cautious.mask(u, g)
    np.testing.assert_array_equal(numpy_of(t), [1, 0, 0, 0, -1, 0, 1, -1])
    assert float(numpy_of(scale)) == 2.0  # 8 elements, 4 kept
    t, scale = cautious.mask(tensor([1, -1]), tensor([-1, 1]))
    np.testing.assert_array_equal(numpy_of(t), [0, 0])
    assert float(numpy_of(scale)) == 1.0  # nothing kept


SHAPES = [(40, 7), (13,), ()]


@pytest.mark.parametrize("wd", [None, WD])
def test_steps_follow_the_float64_reference(wd):
    """Three steps on three tensors (one a scalar), each step compared with
    the reference taken from the optimizer's own state: the scale is per
    tensor, and within a few float32 ulps."""
    init = [normal(i, s) for i, s in enumerate(SHAPES)]
    vs = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(init)]
    opt = lion(weight_decay=wd, cautious=True)
    opt.build(vs)
    scales = []
    for step in range(3):
        gs = [normal(10 + 7 * step + i, s) for i, s in enumerate(SHAPES)]
        before = [(numpy_of(v), momentum_of(opt, v)) for v in vs]
        opt.apply([tensor(g) for g in gs], vs)
        for v, (p, m), g in zip(vs, before, gs):
            p_ref, m_ref = reference.cautious_step(p, m, g, LR, B1, B2, wd or 0)
            np.testing.assert_allclose(numpy_of(v), p_ref, rtol=2e-6, atol=1e-7)
            np.testing.assert_allclose(momentum_of(opt, v), m_ref, rtol=2e-6,
                                       atol=1e-9)
            moved = p_ref - (p - LR * (wd or 0) * p)
            scales.append(np.abs(moved).max() / LR)
    assert len({round(s, 3) for s in scales}) > 2  # scales differ by tensor


def test_all_agreeing_is_plain_lion_bit_for_bit():
    """First step from zero momentum: ``sign(c) = sign(g)`` everywhere."""
    init = [normal(0, (64, 65)), normal(1, (9,))]
    grads = [normal(5, (64, 65)), normal(6, (9,))]
    runs = []
    for cautious in (False, True):
        vs = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(init)]
        lion(weight_decay=WD, cautious=cautious).apply(
            [tensor(g) for g in grads], vs
        )
        runs.append([numpy_of(v) for v in vs])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("wd", [None, WD])
def test_all_disagreeing_leaves_the_weight_to_its_decay(wd):
    """A large positive gradient, then a small negative one: the momentum
    keeps ``c`` positive while the gradient is negative everywhere, so the
    second step keeps nothing; only the decay moves the weight."""
    v = keras.Variable(normal(0, (50,)), name="w")
    opt = lion(weight_decay=wd, cautious=True)
    opt.apply([tensor(np.full(50, 10.0))], [v])
    p = numpy_of(v)
    opt.apply([tensor(np.full(50, -0.1))], [v])
    expected = p - np.float32(LR) * np.float32(wd or 0) * p
    np.testing.assert_allclose(numpy_of(v), expected, rtol=1e-6)
    m_ref = B2 * (1 - B2) * 10.0 + (1 - B2) * -0.1
    np.testing.assert_allclose(momentum_of(opt, v), m_ref, rtol=1e-5)


@pytest.mark.parametrize("momentum_dtype", ["bfloat16", "int8"])
def test_every_momentum_store_steps_by_the_reference(momentum_dtype):
    """The step from the momentum as stored (int8 blocks need >= 4096
    elements) follows the reference."""
    v = keras.Variable(normal(0, (80, 64)), name="w")
    opt = lion(weight_decay=WD, cautious=True, momentum_dtype=momentum_dtype)
    opt.build([v])
    for step in range(3):
        g = normal(20 + step, (80, 64))
        p, m = numpy_of(v), momentum_of(opt, v)
        opt.apply([tensor(g)], [v])
        p_ref, _ = reference.cautious_step(p, m, g, LR, B1, B2, WD)
        np.testing.assert_allclose(numpy_of(v), p_ref, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("rounding", ["nearest", "kahan", "stochastic"])
def test_bfloat16_weights_step_by_the_reference(rounding):
    """On bfloat16 weights each mode moves the weight by the cautious
    update, to within two spacings of bfloat16 (2**-6 relative, 2**-12
    near zero; the weights are small, so that a coordinate dropped or kept
    wrongly, off by lr, would show). ``"nearest"`` computes in bfloat16,
    betas included (as Keras's Lion): the reference takes the betas rounded
    to bfloat16, and a ``c`` within bfloat16's rounding of zero may take
    either sign (at most 1% of the coordinates)."""
    v = keras.Variable(normal(0, (32, 33), 0.05), dtype="bfloat16", name="w")
    opt = lion(cautious=True, weight_rounding=rounding)
    opt.build([v])
    b1, b2 = (B1, B2) if rounding != "nearest" else (0.8984375, 0.98828125)
    for step in range(2):
        g = normal(30 + step, (32, 33))
        p = numpy_of(ops.cast(v, "float32"))
        m = momentum_of(opt, v).astype("float32")
        opt.apply([tensor(g, "bfloat16")], [v])
        g16 = numpy_of(ops.cast(tensor(g, "bfloat16"), "float32"))
        p_ref, _ = reference.cautious_step(p, m, g16, LR, b1, b2)
        err = np.abs(numpy_of(ops.cast(v, "float32")) - p_ref)
        off = np.mean(err > 2**-6 * np.abs(p_ref) + 2**-12)
        assert off <= (0.01 if rounding == "nearest" else 0), off
    # the last step kept a part only, so it was scaled up
    assert np.abs(p_ref - p).max() > 1.01 * LR


def test_gradient_accumulation_takes_one_cautious_step_of_the_mean():
    v = keras.Variable(normal(0, (30, 4)), name="w")
    opt = lion(cautious=True, gradient_accumulation_steps=2)
    g1, g2 = normal(1, (30, 4)), normal(2, (30, 4))
    p = numpy_of(v)
    opt.apply([tensor(g1)], [v])
    np.testing.assert_array_equal(numpy_of(v), p)
    opt.apply([tensor(g2)], [v])
    p_ref, _ = reference.cautious_step(p, np.zeros_like(p), (g1 + g2) / 2,
                                       LR, B1, B2)
    np.testing.assert_allclose(numpy_of(v), p_ref, rtol=2e-6, atol=1e-7)


def test_the_reference_tells_cautious_from_plain():
    """The comparison above can fail: from a momentum that disagrees with
    the gradient in some coordinates, plain Lion's step is not the
    reference's cautious step."""
    p, m, g = normal(0, (100,)), normal(1, (100,)), normal(2, (100,))
    plain, _ = reference.step(p, m, g, LR, B1, B2)
    cautious, _ = reference.cautious_step(p, m, g, LR, B1, B2)
    assert np.count_nonzero(np.abs(plain - cautious) > LR / 10) > 50


def test_a_tensor_larger_than_a_torch_piece_takes_one_scale():
    """More than 2**19 elements (the fused torch step's piece on the CPU):
    one scale for the whole tensor."""
    shape = ((1 << 19) + 3000,)
    v = keras.Variable(normal(0, shape), name="w")
    opt = lion(cautious=True)
    g1, g2 = normal(1, shape), normal(2, shape)
    opt.apply([tensor(g1)], [v])
    p, m = numpy_of(v), momentum_of(opt, v)
    opt.apply([tensor(g2)], [v])
    p_ref, _ = reference.cautious_step(p, m, g2, LR, B1, B2)
    np.testing.assert_allclose(numpy_of(v), p_ref, rtol=2e-6, atol=1e-7)
