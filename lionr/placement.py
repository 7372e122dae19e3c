"""Where a parameter's optimizer state lives under a ``keras.distribution``.

Keras gives every optimizer variable its parameter's layout, so under
data parallelism (a mesh axis of ``N`` devices over which the batch is
split and the parameters are replicated) every device holds all the state.
``state_sharding`` chooses:

* ``"sharded"`` (default): a parameter replicated over the data axis (the
  distribution's ``batch_dim_name``: ``DataParallel``'s only axis,
  ``ModelParallel``'s batch axis) gets its state (momentum of any
  ``momentum_dtype``, int8 codes and scales, Kahan buffer) cut along that
  axis too, on its first dimension that is whole in the parameter's layout
  and whose length ``N`` divides. Each device then holds ``1/N`` of what it
  held. Where no dimension divides (a bias of 10 values on 8 devices), the
  state stays replicated. The int8 blocks are those of each device's piece
  (``lionr.shards``): no block spans two devices. So that the results stay
  those of the replicated state, int8 momentum is cut only where its blocks
  stay the same: along a dimension before which the parameter's piece has
  only dimensions of length 1 (its first, for a replicated parameter), into
  pieces of whole blocks; otherwise that parameter's state stays as it is.
* ``"replicated"``: the state has the parameter's layout, as Keras does.

Outside a distribution, or with a data axis of one device, both are the
same. The step for a parameter whose state is sharded beyond it is
computed where the state lives; ``lionr.exchange`` gathers its result.
"""

import math

import keras

STATE_SHARDINGS = ("sharded", "replicated")


class Placement:
    """The layouts of one parameter and of its optimizer state.

    ``param``: the parameter's ``TensorLayout`` (or None); ``state``: its
    state's; ``spread``: True when the state is cut over the data axis
    ``data_axis`` beyond the parameter (then ``state`` differs from
    ``param``).
    """

    def __init__(self, variable, mode, block=None):
        self.param = getattr(variable, "_layout", None)
        self.state = self.param
        self.data_axis = None
        self.spread = False
        if mode != "sharded" or not isinstance(
            self.param, (keras.distribution.TensorLayout, type(None))
        ):
            return  # a backend sharding given by hand is left as it is
        found = _data_axis()
        if found is None:
            return
        name, size, mesh = found
        shape = tuple(variable.shape)
        axes = _axes(self.param, len(shape))
        if any(name in _names(a) for a in axes):
            return  # already cut over the data axis
        local = [d // _count(mesh, a) for d, a in zip(shape, axes)]
        for i, (d, a) in enumerate(zip(shape, axes)):
            if block is not None and not _same_blocks(local, i, size, block):
                continue
            if _whole(mesh, a) and d % size == 0:
                axes = axes[:i] + (name,) + axes[i + 1:]
                self.state = keras.distribution.TensorLayout(axes, mesh)
                self.data_axis = name
                self.spread = True
                return

    def on_state(self, x):
        """``x`` (the parameter's shape) laid out like the state."""
        return _constrain(x, self.state) if self.spread else x

    def on_param(self, x):
        """``x`` (the parameter's shape) laid out like the parameter."""
        return _constrain(x, self.param) if self.spread else x

    def gather_bytes(self, x):
        """``x`` (the parameter's shape plus one trailing axis, laid out like
        the state) laid out like the parameter: the gather is made on ``x``
        itself, whatever its dtype."""
        if not self.spread:
            return x
        x = _constrain(x, _widened(self.state, len(x.shape)))
        return _constrain(x, _widened(self.param, len(x.shape)))


def _widened(layout, rank):
    """``layout`` with whole trailing dimensions up to ``rank``."""
    axes = _axes(layout, rank - 1) + (None,)
    return keras.distribution.TensorLayout(axes, layout.device_mesh)


def _data_axis():
    """``(name, size, mesh)`` of the distribution's data axis, or None when
    there is no distribution or the axis has one device."""
    distribution = keras.distribution.distribution()
    if distribution is None:
        return None
    mesh = distribution.device_mesh
    name = getattr(distribution, "batch_dim_name", None)
    if mesh is None or name not in list(mesh.axis_names):
        return None
    size = mesh.shape[list(mesh.axis_names).index(name)]
    return (name, size, mesh) if size > 1 else None


def _axes(layout, rank):
    """The mesh axes of ``layout`` per dimension (None: whole)."""
    if not isinstance(layout, keras.distribution.TensorLayout):
        return (None,) * rank
    axes = tuple(layout.axes)
    return axes + (None,) * (rank - len(axes))


def _names(entry):
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def _same_blocks(local, i, size, block):
    """True when cutting dimension ``i`` of a piece of shape ``local`` into
    ``size`` keeps its blocks of ``block`` values: each new piece is a run
    of whole blocks of the old piece, flattened."""
    before, total = math.prod(local[:i]), math.prod(local)
    return before == 1 and (total // size) % block == 0


def _count(mesh, entry):
    names = list(mesh.axis_names)
    count = 1
    for n in _names(entry):
        count *= mesh.shape[names.index(n)]
    return count


def _whole(mesh, entry):
    """True when a dimension laid out by ``entry`` is not cut."""
    return _count(mesh, entry) == 1


def _constrain(x, layout):
    if layout is None:
        return x
    return keras.distribution.distribute_tensor(x, layout)
