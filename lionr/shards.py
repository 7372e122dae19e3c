"""Where the int8 momentum's blocks lie when its parameter is sharded.

Under a ``keras.distribution`` a parameter of shape ``(d_0, ..., d_{r-1})``
may be cut along some axes ``i`` into ``s_i`` shards of ``l_i = d_i / s_i``
(``s_i`` the size of the mesh axis named in the parameter's layout). Each
device then holds a local tensor of ``L = prod(l_i)`` elements. The int8
momentum (``lionr.state.Blockwise``) quantizes every device's local tensor
on its own, flattened in row-major order and cut into ``ceil(L / BLOCK)``
blocks, the last one zero-padded. Its codes are stored as one array of
shape ``(s_a, s_b, ..., blocks, BLOCK)``, one leading axis per sharded axis
``a < b < ...`` of the parameter, sharded along those leading axes with the
parameter's mesh axis names: no block spans two devices, each device keeps
``ceil(L / BLOCK) * (BLOCK + 4)`` bytes, and the state is replicated
exactly where the parameter is.

With no sharded axis (one device, or a replicated parameter) the codes are
``(blocks, BLOCK)``, the blocks of the whole flattened tensor. When only
leading axes are sharded and each local tensor holds whole blocks, the
blocks are the same as on one device, and so are the results.

The layout is the state's (``lionr.placement``): with ``state_sharding=
"sharded"`` it cuts a dimension over the data axis too, and the blocks are
then those of each device's piece of the state. A grouping is fixed by the
shard count of every dimension (``per_axis``), which is what a saved file
records (``lionr.checkpoint``); ``ShardedBlocks.of_counts`` rebuilds it
without a mesh.
"""

import functools
import math

import keras
from keras import ops


class ShardedBlocks:
    """The block grouping of one parameter under its layout.

    ``counts``: shards per sharded axis; ``names``: their mesh axis names;
    ``local``: the local tensor's shape; ``mesh``: the device mesh, or None
    outside a distribution.
    """

    def __init__(self, shape, layout, block, _axes=None):
        self.shape = tuple(shape)
        self.block = block
        if _axes is None:
            self.mesh, self.axes = _mesh_axes(layout, len(self.shape))
            size = functools.partial(_axis_size, self.mesh)
        else:  # of_counts: (name, count) per dimension, no mesh
            self.mesh = None
            self.axes = tuple(n for n, _ in _axes)
            size = dict(_axes).get
        self.sharded = [i for i, n in enumerate(self.axes) if n is not None]
        self.counts = tuple(size(self.axes[i]) for i in self.sharded)
        self.names = tuple(self.axes[i] for i in self.sharded)
        self.local = tuple(
            d // size(n) if n is not None else d
            for d, n in zip(self.shape, self.axes)
        )
        self.per_axis = tuple(d // n for d, n in zip(self.shape, self.local))
        self.local_size = math.prod(self.local)
        self.blocks = -(-self.local_size // block)
        self.pad = self.blocks * block - self.local_size

    @classmethod
    def of_counts(cls, shape, per_axis, block):
        """The grouping with ``per_axis[i]`` shards along dimension ``i``."""
        axes = tuple(
            (f"axis{i}" if c > 1 else None, c) for i, c in enumerate(per_axis)
        )
        return cls(shape, None, block, _axes=axes)

    def stored_shape(self, width):
        """Shape of the stored array with ``width`` values per block."""
        return self.counts + (self.blocks, width)

    def layout(self):
        """The ``TensorLayout`` of the stored arrays, or None."""
        if self.mesh is None:
            return None
        axes = self.names + (None, None)
        return keras.distribution.TensorLayout(axes, self.mesh)

    def group(self, m, xp=ops):
        """``m`` (the parameter's shape) as ``counts + (local_size,)``:
        each device's local tensor, flattened. ``xp``: ``keras.ops`` or
        ``numpy``."""
        if not self.sharded:
            return xp.reshape(m, (-1,))
        split = []
        for i, (d, n) in enumerate(zip(self.shape, self.axes)):
            split.extend([d // self.local[i], self.local[i]] if n else [d])
        m = xp.reshape(m, split)
        outer, inner, at = [], [], 0
        for n in self.axes:
            if n:
                outer.append(at)
                at += 1
            inner.append(at)
            at += 1
        m = xp.transpose(m, outer + inner)
        return xp.reshape(m, self.counts + (self.local_size,))

    def ungroup(self, m, xp=ops):
        """Inverse of ``group``."""
        if not self.sharded:
            return xp.reshape(m, self.shape)
        k = len(self.counts)
        local = [self.local[i] for i in range(len(self.shape))]
        m = xp.reshape(m, self.counts + tuple(local))
        perm, outer = [], 0
        for i, n in enumerate(self.axes):
            if n:
                perm.append(outer)
                outer += 1
            perm.append(k + i)
        m = xp.transpose(m, perm)
        return xp.reshape(m, self.shape)


def _mesh_axes(layout, rank):
    """``(mesh, axes)`` of a ``TensorLayout``: the mesh axis name sharding
    each axis (None where the axis is whole); ``(mesh or None, [None]*rank)``
    when nothing is sharded or the layout is not a ``TensorLayout``."""
    distribution = keras.distribution.distribution()
    mesh = distribution.device_mesh if distribution is not None else None
    if not isinstance(layout, keras.distribution.TensorLayout):
        return mesh, (None,) * rank
    mesh = layout.device_mesh or mesh
    axes = tuple(layout.axes) + (None,) * (rank - len(layout.axes))
    axes = tuple(n if n and _axis_size(mesh, n) > 1 else None for n in axes)
    return mesh, axes


def _axis_size(mesh, name):
    return mesh.shape[list(mesh.axis_names).index(name)]
