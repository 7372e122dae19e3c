"""The sign update exchanged in 2 bits per parameter (jax).

When a parameter's state is cut over the data axis beyond the parameter
(``lionr.placement``), each device computes Lion's update ``u`` only for
the piece of the parameter whose momentum it holds. ``u`` is ternary,
``u in {-1, 0, +1}``, so two bit planes carry it: ``pos = u > 0`` and
``nz = u != 0``. Each device packs its piece's planes 8 values per byte,
the packed bytes are laid out like the parameter (an all-gather of
``2 * n / 8`` bytes over the data axis for ``n`` values), and every device
unpacks the whole update and applies it to its replica::

    p <- p - lr * u

in the weight's dtype, the same arithmetic as without sharding, so the
weights are bit-identical on every device and to a replicated run (a
cautious update's per-tensor scale is folded into ``lr``). The unused
code ``pos = 1, nz = 0`` carries NaN, so a NaN update still reaches the
weight as it would unsharded.

Without packing, XLA may move the cast of the signs past the collective
and gather float32 values; the byte planes keep the exchange at 2 bits.
"""

from keras import ops

from lionr import shards


def packed_update(u, placement):
    """``u`` (ternary or NaN, laid out like the state) as a tensor laid out
    like the parameter, through a 2-bit exchange."""
    import jax.numpy as jnp

    grouping = shards.ShardedBlocks(tuple(u.shape), placement.state, 8)
    g = grouping.group(u)
    if grouping.pad:
        widths = [(0, 0)] * len(grouping.counts) + [(0, grouping.pad)]
        g = jnp.pad(g, widths)
    nan = jnp.isnan(g)
    planes = jnp.stack([(g > 0) | nan, (g != 0) & ~nan], axis=-2)
    packed = _constrain(_pack(planes), grouping.layout())  # each its own
    packed = _constrain(packed, _gathered_layout(grouping, placement))
    bits = _unpack(packed)[..., : grouping.local_size]
    pos, nz = bits[..., 0, :], bits[..., 1, :]
    one = jnp.where(pos, 1.0, -1.0).astype(u.dtype)
    rest = jnp.where(pos, jnp.nan, 0.0).astype(u.dtype)
    full = grouping.ungroup(jnp.where(nz, one, rest))
    return placement.on_param(full)


def apply_update(optimizer, variable, u, learning_rate, placement):
    """``variable <- variable - lr * u``, with ``u`` computed where the state
    lives and exchanged in 2 bits."""
    u = packed_update(u, placement)
    optimizer.assign_sub(variable, ops.multiply(learning_rate, u))


def _pack(bits):
    """Booleans ``(..., 8k)`` as ``uint8`` ``(..., k)``, bit ``j`` of a byte
    the ``j``-th of its 8 values. Computed in ``uint8`` throughout: from a
    wider sum, XLA moves the narrowing cast past the gather."""
    import jax.numpy as jnp

    bits = bits.reshape(bits.shape[:-1] + (-1, 8)).astype(jnp.uint8)
    shifts = jnp.arange(8, dtype=jnp.uint8)
    return jnp.sum(jnp.left_shift(bits, shifts), axis=-1, dtype=jnp.uint8)


def _unpack(packed):
    """Inverse of ``_pack``."""
    import jax.numpy as jnp

    shifts = jnp.arange(8, dtype=jnp.uint8)
    bits = jnp.right_shift(packed[..., None], shifts) & jnp.uint8(1)
    return bits.reshape(packed.shape[:-1] + (-1,)).astype(bool)


def _gathered_layout(grouping, placement):
    """The packed planes' layout (``counts + (2, bytes)``) with the data
    axis gathered: the parameter's own cuts stay."""
    import keras

    axes = tuple(
        None if n == placement.data_axis else n for n in grouping.names
    )
    return keras.distribution.TensorLayout(axes + (None, None), grouping.mesh)


def _constrain(x, layout):
    import keras

    return keras.distribution.distribute_tensor(x, layout)
