"""How the momentum is stored: float32, bfloat16 or 8-bit blocks.

Arithmetic is always done in float32 (or the parameter's own float dtype);
only the stored copy of the momentum ``m`` changes.

* ``"float32"``: ``m`` kept in the parameter's dtype (4 bytes per float32
  parameter).
* ``"bfloat16"``: ``m`` kept as bfloat16 (2 bytes per parameter).
* ``"int8"``: ``m`` cut into blocks of ``BLOCK`` values; each block keeps
  its scale ``s = max |m|`` as float32 and the codes
  ``q = round(127 * sign(m) * sqrt(|m| / s))`` as int8, read back as
  ``s * (q / 127) * |q / 127|`` (1 + 4/256 bytes per parameter). The square
  root spends the 8 bits more finely near zero, where the sign of the
  update is decided. Tensors of fewer than ``MIN_QUANTIZED`` elements keep
  float32.
"""

import math

import keras
from keras import ops

MOMENTUM_DTYPES = ("float32", "bfloat16", "int8")
BLOCK = 256
MIN_QUANTIZED = 4096


def _slot_name(variable, suffix):
    path = getattr(variable, "path", None) or str(variable.name)
    return f"{path.replace('/', '_').replace(':', '_')}_{suffix}"


def _replicated(rank):
    """A replicated layout under an active ``keras.distribution``, else None.

    Blocks do not line up with a parameter's shards, so int8 state is kept
    whole on every device.
    """
    distribution = keras.distribution.distribution()
    if distribution is None:
        return None
    return keras.distribution.TensorLayout(
        [None] * rank, distribution.device_mesh
    )


class Plain:
    """Momentum stored as is (``float32``) or cast (``bfloat16``), read in
    ``compute_dtype`` (default: the parameter's dtype)."""

    def __init__(self, optimizer, variable, dtype=None, compute_dtype=None):
        self.compute_dtype = compute_dtype or variable.dtype
        self.slot = optimizer.add_variable(
            shape=variable.shape,
            dtype=dtype or variable.dtype,
            name=_slot_name(variable, "momentum"),
            layout=getattr(variable, "_layout", None),
        )
        self.cast = self.slot.dtype != self.compute_dtype

    def read(self):
        m = self.slot.value
        return ops.cast(m, self.compute_dtype) if self.cast else m

    def write(self, optimizer, m):
        optimizer.assign(self.slot, ops.cast(m, self.slot.dtype) if self.cast else m)


class Blockwise:
    """Momentum stored as int8 blocks with one float32 scale per block."""

    def __init__(self, optimizer, variable, compute_dtype=None):
        self.shape = tuple(variable.shape)
        self.size = math.prod(self.shape)
        self.compute_dtype = compute_dtype or variable.dtype
        blocks = -(-self.size // BLOCK)
        self.pad = blocks * BLOCK - self.size
        self.codes = optimizer.add_variable(
            shape=(blocks, BLOCK),
            dtype="int8",
            name=_slot_name(variable, "momentum_int8"),
            layout=_replicated(2),
        )
        self.scales = optimizer.add_variable(
            shape=(blocks, 1),
            dtype="float32",
            name=_slot_name(variable, "momentum_scale"),
            layout=_replicated(2),
        )

    def read(self):
        q = ops.cast(self.codes.value, "float32") * (1.0 / 127.0)
        m = q * ops.abs(q) * self.scales.value
        m = ops.reshape(m, (-1,))
        if self.pad:
            m = m[: self.size]
        return ops.cast(ops.reshape(m, self.shape), self.compute_dtype)

    def write(self, optimizer, m):
        # Whole blocks are reshaped in place and only the last, partial
        # block is padded: padding the whole tensor would make XLA keep two
        # float32 copies of the new momentum. (MIN_QUANTIZED >= BLOCK, so
        # there is at least one whole block.)
        m = ops.reshape(ops.cast(m, "float32"), (-1,))
        whole = self.size - self.size % BLOCK
        codes, scales = _quantize(ops.reshape(m[:whole], (-1, BLOCK)))
        if self.pad:
            last = ops.reshape(ops.pad(m[whole:], [(0, self.pad)]), (1, BLOCK))
            last_codes, last_scale = _quantize(last)
            codes = ops.concatenate([codes, last_codes], axis=0)
            scales = ops.concatenate([scales, last_scale], axis=0)
        optimizer.assign(self.codes, codes)
        optimizer.assign(self.scales, scales)


def _quantize(blocks):
    """``(codes, scales)`` of float32 ``blocks``, one block per row."""
    scale = ops.max(ops.abs(blocks), axis=1, keepdims=True)
    safe = ops.where(scale > 0, scale, ops.ones_like(scale))
    r = blocks / safe
    codes = ops.round(ops.sign(r) * ops.sqrt(ops.abs(r)) * 127.0)
    return ops.cast(codes, "int8"), scale


def make_slot(optimizer, variable, momentum_dtype, in_float32=False):
    """The momentum store of ``variable`` for ``momentum_dtype``.

    ``in_float32``: the step computes in float32 whatever the parameter's
    dtype (a 16-bit weight under ``lionr.rounding``); the momentum is then
    read in float32 (``"float32"``: stored in the parameter's dtype).
    """
    compute = "float32" if in_float32 else None
    if momentum_dtype == "bfloat16":
        return Plain(optimizer, variable, "bfloat16", compute)
    if momentum_dtype == "int8" and math.prod(variable.shape) >= MIN_QUANTIZED:
        return Blockwise(optimizer, variable, compute)
    return Plain(optimizer, variable, None, compute)
