"""Cheap random bits for stochastic rounding: a counter-based integer hash.

Rounding at random needs 16 bits per element that are uniform and
independent of the value rounded, not a cipher. Here they are a hash of
``(seed, step, variable, element)``, computed in int32 with wrapping
multiplies and arithmetic right shifts, operations that jax, tensorflow and
torch (and numpy) carry out alike, so every backend draws the same bits::

    mix(x)  = x ^ (x >> 16);  x *= C1;  x ^= x >> 15;  x *= C2;  x ^ (x >> 16)
    key     = mix(mix(seed ^ mix(step)) + variable * G)          (a scalar)
    x       = (index + key) * C1;  x ^= x >> 15;  x *= C2;  x ^= x >> 16;  x *= C3
    bits    = (x >> 16) & 0xFFFF                                 (per element)

with ``C1 = 0x7feb352d``, ``C2 = 0x846ca68b`` (the multipliers of
Wellons' "lowbias32"), ``C3 = 0x31848bab`` (of his "triple32") and
``G = 0x9e3779b9``; ``>>`` is the arithmetic shift (an xor with it is still
a bijection), and the last one is masked, so the 16 bits are the high half
of the last product. ``mix`` runs once per variable and step; each element
costs an add, three multiplies, three shifts, two xors and an and. (With
one round fewer, the counts of the 65,536 values over 2**20 consecutive
indices spread more than random draws' would: a chi-square about 2.2 of
its standard deviations from random over 12 keys; with this one, 0.8.)

``index`` is the element's position in the flattened, whole (unsharded)
variable and ``variable`` its position in the optimizer's variable list, so
replicas of a data-parallel weight and the shards of a sharded one draw the
bits the whole weight would. ``seed`` is kept in the optimizer's state and
``step`` is its iteration count: the bits are reproducible and resume
exactly after saving and loading. Counts wrap at 2**31 steps and elements.
"""

import math

from keras import ops

C1 = 0x7FEB352D
C2 = 0x846CA68B - (1 << 32)  # as int32
C3 = 0x31848BAB
GOLDEN = 0x9E3779B9 - (1 << 32)
LOW16 = 0xFFFF


def _xorshift(x, k):
    return ops.bitwise_xor(x, ops.right_shift(x, k))


def mix(x):
    """A full-avalanche int32 hash of int32 ``x`` (tensor, any shape)."""
    x = ops.multiply(_xorshift(x, 16), C1)
    x = ops.multiply(_xorshift(x, 15), C2)
    return _xorshift(x, 16)


def key(seed, step, variable):
    """The int32 scalar key of one variable at one step.

    ``seed``, ``step``: int32 scalars (tensors); ``variable``: an int.
    """
    seed = ops.cast(seed, "int32")
    step = ops.cast(step, "int32")
    base = mix(ops.bitwise_xor(seed, mix(step)))
    salt = ops.multiply(ops.convert_to_tensor(variable, "int32"), GOLDEN)
    return mix(ops.add(base, salt))


def bits16(index, key):
    """Uniform int32 values in ``[0, 2**16)`` for int32 ``index`` under
    int32 scalar ``key``."""
    x = ops.multiply(ops.add(index, key), C1)
    x = ops.multiply(_xorshift(x, 15), C2)
    x = ops.multiply(_xorshift(x, 16), C3)
    return ops.bitwise_and(ops.right_shift(x, 16), LOW16)


def bits16_like(shape, key):
    """``bits16`` of every element of a tensor of ``shape`` (row-major flat
    indices)."""
    n = math.prod(int(d) for d in shape)
    index = ops.reshape(ops.arange(n, dtype="int32"), tuple(shape))
    return bits16(index, key)
