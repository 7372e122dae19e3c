"""Optimizer state in a saved file, loadable under any device layout.

What the file holds, under the keys Keras uses (``"0"``, ``"1"``, ... in the
order of ``optimizer.variables``):

* every variable as its whole (global) array: the iteration count, the
  float32 and bfloat16 momentum, the Kahan buffers, the random-seed state.
  These do not depend on the devices: they load under any layout.
* int8 momentum: its codes and scales as stored, shape ``counts + (blocks,
  256)`` (``lionr.shards``), and under ``"lionr_grouping_<i>"`` (``i`` the
  codes' key) the shard count of every dimension of the parameter that
  the blocks were cut under (all ones on one device).

Loading int8 momentum: when the blocks now are the ones the file was
written under (the same grouping, or another one whose blocks hold the
same values in the same order, as for a leading dimension cut into whole
blocks, in any order of the blocks), the codes and scales load
bit-exactly. Otherwise the momentum is
decoded under the file's grouping into the whole float32 tensor and
encoded again under the current one, as a step would write it: the one
rounding of a new encode, at most a few of the 8-bit levels of each block.
Files of lionr 0.3.0 have no grouping key: they load as before where the
shapes match, and otherwise the grouping is inferred from the codes' shape
when only one grouping fits (else a ``ValueError`` says why).
"""

import itertools
import math
import warnings

import numpy as np

from keras import ops

from lionr import shards
from lionr import state

GROUPING = "lionr_grouping_{}"


def save(optimizer, store):
    """Write ``optimizer``'s variables (whole arrays) and int8 groupings."""
    for i, variable in enumerate(optimizer.variables):
        store[str(i)] = whole(variable)
    for codes, _, slot in _blockwise(optimizer):
        store[GROUPING.format(codes)] = np.asarray(
            slot.grouping.per_axis, "int64"
        )


def load(optimizer, store):
    """Read what ``save`` (or lionr 0.3.0, or Keras) wrote."""
    keys = [k for k in store.keys() if k.isdigit()]
    variables = optimizer.variables
    if len(keys) != len(variables):
        warnings.warn(
            f"Skipping variable loading for optimizer '{optimizer.name}', "
            f"because it has {len(variables)} variables whereas the saved "
            f"optimizer has {len(keys)} variables.",
            stacklevel=3,
        )
        return
    blockwise = {codes: (scales, slot) for codes, scales, slot in _blockwise(
        optimizer)}
    skip = {scales for scales, _ in blockwise.values()}
    for i, variable in enumerate(variables):
        if i in blockwise:
            scales, slot = blockwise[i]
            saved = GROUPING.format(i)
            per_axis = store[saved] if saved in store else None
            _load_blocks(slot, optimizer, store[str(i)], store[str(scales)],
                         per_axis)
        elif i not in skip:
            variable.assign(store[str(i)])


def whole(variable):
    """The global array of ``variable`` as numpy, gathered from every
    process when it is cut across processes."""
    value = variable.value
    if getattr(value, "is_fully_addressable", True):
        return ops.convert_to_numpy(value)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(value, tiled=True))


def _blockwise(optimizer):
    """``(codes index, scales index, slot)`` of every int8 momentum."""
    index = {id(v): i for i, v in enumerate(optimizer.variables)}
    return [
        (index[id(s.codes)], index[id(s.scales)], s)
        for s in getattr(optimizer, "_slots", [])
        if isinstance(s, state.Blockwise)
    ]


def _load_blocks(slot, optimizer, codes, scales, per_axis):
    now = slot.grouping
    codes, scales = np.asarray(codes), np.asarray(scales)
    if per_axis is None:  # lionr 0.3.0
        if codes.shape == now.stored_shape(state.BLOCK):
            per_axis = now.per_axis
        else:
            per_axis = _infer(slot.shape, codes.shape)
    then = shards.ShardedBlocks.of_counts(
        slot.shape, tuple(int(c) for c in np.asarray(per_axis)), state.BLOCK
    )
    if then.stored_shape(state.BLOCK) != codes.shape:
        raise ValueError(
            f"int8 momentum of shape {slot.shape}: the saved codes have shape "
            f"{codes.shape}, not that of their grouping {then.per_axis}."
        )
    order = _block_order(then, now)
    if order is not None:
        codes = codes.reshape(-1, state.BLOCK)[order]
        scales = scales.reshape(-1, 1)[order]
        slot.codes.assign(codes.reshape(now.stored_shape(state.BLOCK)))
        slot.scales.assign(scales.reshape(now.stored_shape(1)))
        return
    slot.write(optimizer, ops.convert_to_tensor(decode(then, codes, scales)))


def decode(grouping, codes, scales):
    """The float32 momentum (parameter's shape) that int8 ``codes`` and
    ``scales`` hold under ``grouping``, as ``Blockwise.read`` computes it."""
    q = codes.astype("float32")
    m = (q * np.abs(q)) * (scales * np.float32(1.0 / state.LEVELS**2))
    m = m.reshape(grouping.counts + (-1,))[..., : grouping.local_size]
    return grouping.ungroup(m, np)


def _block_order(a, b):
    """Where grouping ``b``'s blocks hold the same elements, in the same
    order, as blocks of grouping ``a`` (then their codes are the same
    bytes): for each block of ``b``, the index of that block of ``a``.
    None when some block of ``b`` is no block of ``a``."""
    if a.per_axis == b.per_axis:
        return np.arange(a.blocks * math.prod(a.counts))
    if a.blocks * math.prod(a.counts) != b.blocks * math.prod(b.counts):
        return None
    ea, eb = _element_blocks(a), _element_blocks(b)
    by_first = np.argsort(ea[:, 0])  # a's blocks by their first element
    at = np.searchsorted(ea[by_first, 0], eb[:, 0])
    order = by_first[np.minimum(at, len(by_first) - 1)]
    return order if np.array_equal(ea[order], eb) else None


def _element_blocks(grouping):
    """The index of the element in every slot of every block (-1: pad)."""
    size = math.prod(grouping.shape)
    index = np.arange(size, dtype="int64").reshape(grouping.shape)
    index = grouping.group(index, np)
    if grouping.pad:
        widths = [(0, 0)] * len(grouping.counts) + [(0, grouping.pad)]
        index = np.pad(index, widths, constant_values=-1)
    return index.reshape(-1, grouping.block)


def _infer(shape, codes_shape):
    """The per-dimension shard counts of a lionr 0.3.0 file's codes."""
    counts, blocks = tuple(codes_shape[:-2]), codes_shape[-2]
    fits = []
    for axes in itertools.combinations(range(len(shape)), len(counts)):
        per_axis = [1] * len(shape)
        for a, c in zip(axes, counts):
            per_axis[a] = c
        if any(d % c for d, c in zip(shape, per_axis)):
            continue
        local = math.prod(d // c for d, c in zip(shape, per_axis))
        if -(-local // state.BLOCK) == blocks:
            fits.append(tuple(per_axis))
    if len(fits) != 1:
        raise ValueError(
            f"int8 momentum of shape {tuple(shape)}: cannot tell how the "
            f"saved codes of shape {tuple(codes_shape)} were cut "
            f"({len(fits)} groupings fit); load the file under the layout "
            "it was saved with."
        )
    return fits[0]
