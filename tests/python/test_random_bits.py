"""``lionr.random_bits``: the same bits on every backend as an independent
reference in Python integers, and bits that look uniform and independent
(mean, neighbours, consecutive steps) and round without bias."""

import numpy as np
import pytest

from keras import ops

from lionr import random_bits
from lionr import rounding
from reference import numpy_of

M32 = (1 << 32) - 1


def ref_sar(x, k):
    """Arithmetic right shift of the 32-bit pattern ``x`` (unsigned int)."""
    signed = x - (1 << 32) if x >> 31 else x
    return (signed >> k) & M32


def ref_mix(x):
    x ^= ref_sar(x, 16)
    x = (x * 0x7FEB352D) & M32
    x ^= ref_sar(x, 15)
    x = (x * 0x846CA68B) & M32
    return x ^ ref_sar(x, 16)


def ref_key(seed, step, variable):
    base = ref_mix((seed & M32) ^ ref_mix(step & M32))
    return ref_mix((base + variable * 0x9E3779B9) & M32)


def ref_bits(index, key):
    x = ((index + key) * 0x7FEB352D) & M32
    x ^= ref_sar(x, 15)
    x = (x * 0x846CA68B) & M32
    x ^= ref_sar(x, 16)
    x = (x * 0x31848BAB) & M32
    return ref_sar(x, 16) & 0xFFFF


# (seed, step, variable) and the first bits, computed once with the
# reference above and kept, so that a change of the function is seen even if
# reference and code were changed together.
GOLDEN = {
    (12345, 0, 0): [30842, 17603, 35072, 45447],
    (12345, 1, 0): [48840, 37168, 18655, 53114],
    (987654321, 77, 3): [54024, 57196, 3223, 32012],
}


def backend_bits(seed, step, variable, n):
    k = random_bits.key(
        ops.convert_to_tensor(seed, "int32"),
        ops.convert_to_tensor(step, "int32"),
        variable,
    )
    return numpy_of(k), numpy_of(random_bits.bits16_like((n,), k))


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_bits_equal_the_integer_reference_and_the_golden_values(case):
    seed, step, variable = case
    n = 4096
    key, bits = backend_bits(seed, step, variable, n)
    want_key = ref_key(seed, step, variable)
    assert int(key) & M32 == want_key
    # The whole range of indices near 2**31 wraps like the reference.
    want = [ref_bits(i, want_key) for i in range(n)]
    np.testing.assert_array_equal(bits, want)
    assert list(bits[:4]) == GOLDEN[case]


def test_large_indices_wrap_as_the_reference():
    k = ref_key(5, 9, 1)
    index = np.array([2**31 - 2, 2**31 - 1, 0, 2**30 + 7], np.int64)
    signed = ((index + 2**31) % 2**32 - 2**31).astype(np.int32)
    got = numpy_of(random_bits.bits16(
        ops.convert_to_tensor(signed), ops.convert_to_tensor(
            np.int32(k - (1 << 32) if k >> 31 else k))
    ))
    np.testing.assert_array_equal(got, [ref_bits(int(i), k) for i in index])


N = 1 << 20  # elements per draw
SIGMAS = 5  # bound in standard errors: a false alarm about once in 10**6


def uniform(step, variable=0, seed=4242):
    _, bits = backend_bits(seed, step, variable, N)
    return (bits.astype(np.float64) + 0.5) / 65536.0


def correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / np.sqrt((a * a).mean() * (b * b).mean()))


def test_bits_are_uniform_and_uncorrelated():
    """Mean 1/2 (standard error sqrt(1/12 / N)); correlation of neighbours,
    of consecutive steps and of two variables within SIGMAS / sqrt(N); every
    16-bit value drawn about N / 65536 times (chi-square)."""
    u0, u1, v0 = uniform(0), uniform(1), uniform(0, variable=1)
    bound = SIGMAS / np.sqrt(N)
    assert abs(u0.mean() - 0.5) < SIGMAS * np.sqrt(1 / 12 / N)
    assert abs(correlation(u0[:-1], u0[1:])) < bound
    assert abs(correlation(u0, u1)) < bound
    assert abs(correlation(u0, v0)) < bound
    counts = np.bincount((u0 * 65536).astype(int), minlength=65536)
    chi2 = ((counts - N / 65536) ** 2 / (N / 65536)).sum()
    # chi-square with 65535 degrees of freedom: mean 65535, sd 362
    assert abs(chi2 - 65535) < SIGMAS * 362


@pytest.mark.parametrize("q", [0.5, 0.1, 1 / 256])
def test_stochastic_rounding_is_unbiased(q):
    """Values a fraction ``q`` of a spacing above a bfloat16 value: the mean
    rounding error over N elements, in spacings, within SIGMAS standard
    errors (sqrt(q (1-q) / N)) of 0, at several steps."""
    lo = 0.298828125  # a bfloat16 value; the next one is 2**-9 above
    hi = lo + 2.0**-9
    x = np.float32(lo + q * (hi - lo))
    for step in range(3):
        k = random_bits.key(
            ops.convert_to_tensor(7, "int32"),
            ops.convert_to_tensor(step, "int32"), 0,
        )
        d = numpy_of(ops.cast(rounding.round_stochastic(
            ops.full((N,), x, "float32"), k), "float32")).astype(np.float64)
        assert set(np.unique(d)) == {lo, hi}
        error = (d - float(x)).mean() / (hi - lo)
        assert abs(error) < SIGMAS * np.sqrt(q * (1 - q) / N), (step, error)
