"""What ``lionr.checkpoint`` writes and reads on one device: the int8
grouping key, files of lionr 0.3.0 (no key), and int8 codes written under
another device layout (decoded and encoded again, or moved block by block
where the blocks are the same). Multi-device files: test_state_sharding.py.
"""

import numpy as np
import pytest

import keras

import lionr
from lionr import checkpoint
from lionr import shards
from lionr import state
import reference


def _optimizer(shape=(64, 128)):
    variable = keras.Variable(np.zeros(shape, "float32"), name="w")
    optimizer = lionr.Lion(momentum_dtype="int8")
    optimizer.build([variable])
    return optimizer, variable


def _quantize(m, grouping):
    """Codes and scales of float32 ``m`` under ``grouping``, as
    lionr.state documents them (numpy, independent of the code)."""
    local = grouping.group(m, np).reshape(grouping.counts + (-1,))
    if grouping.pad:
        widths = [(0, 0)] * len(grouping.counts) + [(0, grouping.pad)]
        local = np.pad(local, widths)
    blocks = local.reshape(grouping.counts + (grouping.blocks, 256))
    return reference.int8_blocks(blocks)


def _momentum(shape=(64, 128)):
    return np.random.default_rng(3).normal(size=shape).astype("float32")


def _store(optimizer):
    store = {}
    checkpoint.save(optimizer, store)
    return store


def test_save_writes_the_grouping_of_int8_codes():
    optimizer, _ = _optimizer()
    store = _store(optimizer)
    slot = optimizer._slots[0]
    codes = [i for i, v in enumerate(optimizer.variables) if v is slot.codes]
    assert list(store[checkpoint.GROUPING.format(codes[0])]) == [1, 1]
    assert sum(k.isdigit() for k in store) == len(optimizer.variables)


def test_a_lionr_0_3_0_file_loads_bit_exactly():
    """No grouping key, codes of the current shape: loaded as they are."""
    optimizer, _ = _optimizer()
    slot = optimizer._slots[0]
    m = keras.ops.convert_to_tensor(_momentum())
    slot.write(optimizer, m)
    store = {k: v for k, v in _store(optimizer).items() if k.isdigit()}
    fresh, _ = _optimizer()
    checkpoint.load(fresh, store)
    for a, b in zip(fresh.variables, optimizer.variables):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a.value),
            keras.ops.convert_to_numpy(b.value),
        )


def _foreign_store(per_axis, shape=(64, 128), grouping_key=True):
    """A store of ``_optimizer(shape)`` whose int8 codes were written under
    ``per_axis`` shards, and the momentum they encode."""
    optimizer, _ = _optimizer(shape)
    store = _store(optimizer)
    slot = optimizer._slots[0]
    index = {id(v): i for i, v in enumerate(optimizer.variables)}
    ci, si = index[id(slot.codes)], index[id(slot.scales)]
    then = shards.ShardedBlocks.of_counts(shape, per_axis, state.BLOCK)
    m = _momentum(shape)
    store[str(ci)], store[str(si)] = _quantize(m, then)
    key = checkpoint.GROUPING.format(ci)
    if grouping_key:
        store[key] = np.asarray(per_axis)
    else:
        del store[key]
    return store, then, m


def _loaded(store, shape=(64, 128)):
    fresh, _ = _optimizer(shape)
    checkpoint.load(fresh, store)
    slot = fresh._slots[0]
    read = keras.ops.convert_to_numpy(slot.read())
    codes = keras.ops.convert_to_numpy(slot.codes.value)
    return read, codes


def test_codes_of_the_same_blocks_move_bit_exactly():
    """8 shards of dimension 0 of (64, 128): 4 whole blocks each, the
    blocks of the unsharded tensor, loaded as the same bytes."""
    store, then, m = _foreign_store((8, 1))
    read, codes = _loaded(store)
    whole = shards.ShardedBlocks.of_counts((64, 128), (1, 1), state.BLOCK)
    np.testing.assert_array_equal(codes, _quantize(m, whole)[0])
    decoded = checkpoint.decode(then, *_quantize(m, then))
    np.testing.assert_array_equal(read, decoded)


def test_codes_of_other_blocks_are_encoded_again():
    """4 shards of dimension 1 (64 x 32 each): other blocks. The momentum
    is decoded under them and encoded under the current blocks: the codes
    are those of the decoded tensor, and read back within one 8-bit level
    of the block's largest value of what was saved."""
    store, then, m = _foreign_store((1, 4))
    codes_then, scales_then = _quantize(m, then)
    decoded = checkpoint.decode(then, codes_then, scales_then)
    read, codes = _loaded(store)
    whole = shards.ShardedBlocks.of_counts((64, 128), (1, 1), state.BLOCK)
    # the backend's float32 square root may round a tie the other way
    want = _quantize(decoded, whole)[0].astype(int)
    assert np.max(np.abs(codes.astype(int) - want)) <= 1
    assert np.mean(codes == want) >= 0.999
    assert np.max(np.abs(read - decoded)) <= 2 / 127 * np.max(np.abs(decoded))
    assert not np.array_equal(read, decoded)  # it was encoded again


def test_a_lionr_0_3_0_file_of_another_layout_is_inferred():
    """Codes (4, 24, 256) for a (66, 128) parameter: only dimension 1
    divides by 4, so that is how the file was cut."""
    store, then, m = _foreign_store((1, 4), (66, 128), grouping_key=False)
    read, _ = _loaded(store, (66, 128))
    codes_then, scales_then = _quantize(m, then)
    decoded = checkpoint.decode(then, codes_then, scales_then)
    assert np.max(np.abs(read - decoded)) <= 2 / 127 * np.max(np.abs(decoded))


def test_an_ambiguous_lionr_0_3_0_file_is_refused_with_a_reason():
    store, _, _ = _foreign_store((1, 4), grouping_key=False)
    with pytest.raises(ValueError, match="cannot tell how the saved codes"):
        _loaded(store)


def test_state_sharding_is_saved_in_the_config():
    optimizer = lionr.Lion(state_sharding="replicated")
    config = optimizer.get_config()
    assert config["state_sharding"] == "replicated"
    assert lionr.Lion.from_config(config).state_sharding == "replicated"
    assert lionr.Lion().state_sharding == "sharded"
