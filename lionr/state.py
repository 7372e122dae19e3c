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
  update is decided. Computed as ``round(sign(m) * sqrt(|m| * k))`` with
  ``k = min(127**2 / s, FLOAT32_MAX)`` and ``(q * |q|) * (s / 127**2)``:
  one multiply per value where a division would cost several (a block
  whose ``s`` is below about 5e-35 gets smaller codes than it should).
  Tensors of fewer than ``MIN_QUANTIZED`` elements keep float32.
"""

import math

import keras
from keras import ops

from lionr import kernels
from lionr import shards

MOMENTUM_DTYPES = ("float32", "bfloat16", "int8")
BLOCK = 256
LEVELS = 127  # codes run from -LEVELS to LEVELS
FLOAT32_MAX = 3.4028234663852886e38
MIN_QUANTIZED = 4096


def slot_name(variable, suffix):
    """A name for optimizer state of ``variable``: its path, made flat."""
    path = getattr(variable, "path", None) or str(variable.name)
    return f"{path.replace('/', '_').replace(':', '_')}_{suffix}"


class Plain:
    """Momentum stored as is (``float32``) or cast (``bfloat16``), read in
    ``compute_dtype`` (default: the parameter's dtype)."""

    scratch = False  # its step needs no temporary (see kernels.after)

    def __init__(
        self, optimizer, variable, dtype=None, compute_dtype=None, layout=None
    ):
        self.compute_dtype = compute_dtype or variable.dtype
        self.slot = optimizer.add_variable(
            shape=variable.shape,
            dtype=dtype or variable.dtype,
            name=slot_name(variable, "momentum"),
            layout=layout or getattr(variable, "_layout", None),
        )
        self.cast = self.slot.dtype != self.compute_dtype

    def read(self):
        m = self.slot.value
        return ops.cast(m, self.compute_dtype) if self.cast else m

    def write(self, optimizer, m):
        """Store ``m``; returns what was stored."""
        m = ops.cast(m, self.slot.dtype) if self.cast else m
        optimizer.assign(self.slot, m)
        return m

    def advance(self, optimizer, m, g, beta_2, order):
        """Store ``m <- m * beta_2 + g * (1 - beta_2)``, computed from ``m``
        as ``read`` gave it, with ``order`` applied to the new value (see
        ``lionr.kernels.after_parameter``); returns what was stored."""
        return self.write(optimizer, order(_averaged(m, g, beta_2)))


class Blockwise:
    """Momentum stored as int8 blocks with one float32 scale per block.

    Under a ``keras.distribution`` the blocks follow the shards of the
    state's ``layout`` (default: the parameter's; see ``lionr.shards`` and
    ``lionr.placement``); otherwise they are ``BLOCK`` consecutive values of
    the flattened tensor.
    """

    scratch = True  # XLA on the CPU writes |m| before the block maxima

    def __init__(self, optimizer, variable, compute_dtype=None, layout=None):
        self.shape = tuple(variable.shape)
        self.compute_dtype = compute_dtype or variable.dtype
        self.grouping = shards.ShardedBlocks(
            self.shape, layout or getattr(variable, "_layout", None), BLOCK
        )
        layout = self.grouping.layout()
        self.codes = optimizer.add_variable(
            shape=self.grouping.stored_shape(BLOCK),
            dtype="int8",
            name=slot_name(variable, "momentum_int8"),
            layout=layout,
        )
        self.scales = optimizer.add_variable(
            shape=self.grouping.stored_shape(1),
            dtype="float32",
            name=slot_name(variable, "momentum_scale"),
            layout=layout,
        )

    def _decoded(self):
        """The momentum in float32, in the stored blocks' shape."""
        q = ops.cast(self.codes.value, "float32")
        return (q * ops.abs(q)) * (self.scales.value * (1.0 / LEVELS**2))

    def read(self):
        grouping = self.grouping
        m = ops.reshape(self._decoded(), grouping.counts + (-1,))
        if grouping.pad:
            m = m[..., : grouping.local_size]
        return ops.cast(grouping.ungroup(m), self.compute_dtype)

    def write(self, optimizer, m):
        """Store ``m`` as codes and scales; returns the scales."""
        # Whole blocks are reshaped in place and only the last, partial
        # block is padded: padding the whole tensor would make XLA keep two
        # float32 copies of the new momentum.
        grouping = self.grouping
        lead = grouping.counts
        m = grouping.group(ops.cast(m, "float32"))
        whole = grouping.local_size - grouping.local_size % BLOCK
        parts = []
        if whole:
            parts.append(
                _quantize(ops.reshape(m[..., :whole], lead + (-1, BLOCK)))
            )
        if grouping.pad:
            widths = [(0, 0)] * len(lead) + [(0, grouping.pad)]
            last = ops.pad(m[..., whole:], widths)
            parts.append(_quantize(ops.reshape(last, lead + (1, BLOCK))))
        if len(parts) == 1:
            codes, scales = parts[0]
        else:
            codes = ops.concatenate([p[0] for p in parts], axis=-2)
            scales = ops.concatenate([p[1] for p in parts], axis=-2)
        optimizer.assign(self.codes, codes)
        optimizer.assign(self.scales, scales)
        return scales

    def advance(self, optimizer, m, g, beta_2, order):
        """Store ``m <- m * beta_2 + g * (1 - beta_2)`` (``order`` applied to
        the new value, see ``lionr.kernels.after_parameter``); returns the
        scales.

        Where the blocks tile each local tensor (no padding), the new value
        is computed in the blocks' shape, from the stored codes (``read``'s
        ``m``, in the parameter's shape, is not used) and the gradient laid
        out as blocks: each new code then depends only on the old code at
        its place, and XLA writes the codes in place instead of computing
        them into a temporary and copying them. With a padded last block,
        padding the gradient would make XLA write a padded copy of it, so
        the value is computed from ``m`` in the parameter's shape and
        written by ``write``. The arithmetic is the step's either way.
        """
        grouping = self.grouping
        if grouping.pad:
            return self.write(optimizer, order(_averaged(m, g, beta_2)))
        g = ops.reshape(grouping.group(g), self.codes.shape)
        m = ops.cast(self._decoded(), self.compute_dtype)
        m_new = order(_averaged(m, g, beta_2))
        codes, scales = _quantize(ops.cast(m_new, "float32"))
        optimizer.assign(self.codes, codes)
        optimizer.assign(self.scales, scales)
        return scales


def _averaged(m, g, beta_2):
    """``m * beta_2 + g * (1 - beta_2)``, each product rounded, then the
    sum (the step's momentum update, the same on every path)."""
    return ops.add(ops.multiply(m, beta_2), ops.multiply(g, 1.0 - beta_2))


def _quantize(blocks):
    """``(codes, scales)`` of float32 ``blocks``, one block per last axis."""
    scale = _block_max(ops.abs(blocks))
    codes = ops.round(
        ops.sign(blocks) * ops.sqrt(ops.abs(blocks) * _code_factor(scale))
    )
    return ops.cast(codes, "int8"), scale


SLICES = 8  # see _block_max


def _block_max(a):
    """``max(a, axis=-1, keepdims=True)`` over blocks of ``BLOCK`` values.

    In a step that tensorflow compiles with XLA, XLA's CPU code reduces a
    row of 256 values one at a time; the maximum of ``SLICES`` strided
    slices, elementwise, runs vectorized and leaves a row of 32 to reduce
    (int8 step at 1e7 parameters: 1.75 to 1.40 times the float32 step).
    jax's XLA reduces rows with vectorized code of its own, and eager
    steps would pay a call per slice, so they reduce the row directly. The
    maximum is the same either way.
    """
    xla_tf = keras.backend.backend() == "tensorflow"
    if not (xla_tf and kernels.traced_for_xla(a)):
        return ops.max(a, axis=-1, keepdims=True)
    lead = tuple(a.shape[:-1])
    a = ops.reshape(a, lead + (SLICES, BLOCK // SLICES))
    most = a[..., 0, :]
    for i in range(1, SLICES):
        most = ops.maximum(most, a[..., i, :])
    return ops.max(most, axis=-1, keepdims=True)


def _code_factor(scale):
    """``127**2 / scale``, the factor under the square root of the codes
    (one multiply per value, no division); at most the largest float32, so
    that an all-zero block (``scale`` 0) gets codes 0."""
    return ops.minimum(LEVELS**2 / scale, FLOAT32_MAX)


def block_of(variable, momentum_dtype):
    """The block length of ``variable``'s momentum, or None unless it is
    stored in int8 blocks."""
    quantized = momentum_dtype == "int8" and (
        math.prod(variable.shape) >= MIN_QUANTIZED
    )
    return BLOCK if quantized else None


def make_slot(
    optimizer, variable, momentum_dtype, in_float32=False, layout=None
):
    """The momentum store of ``variable`` for ``momentum_dtype``.

    ``in_float32``: the step computes in float32 whatever the parameter's
    dtype (a 16-bit weight under ``lionr.rounding``); the momentum is then
    read in float32 (``"float32"``: stored in the parameter's dtype).
    ``layout``: the state's layout (default: the parameter's).
    """
    compute = "float32" if in_float32 else None
    if momentum_dtype == "bfloat16":
        return Plain(optimizer, variable, "bfloat16", compute, layout)
    if block_of(variable, momentum_dtype):
        return Blockwise(optimizer, variable, compute, layout)
    return Plain(optimizer, variable, None, compute, layout)
