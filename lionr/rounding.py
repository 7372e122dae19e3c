"""How a new weight value is rounded into a 16-bit float weight.

Lion moves each weight by ``lr`` (about 1e-4) per step. A bfloat16 weight
keeps 8 significant bits, so near 0.1 its spacing is about 5e-4 and a step
rounded to nearest is mostly lost. ``weight_rounding`` chooses what happens
to the rounding error of a 16-bit weight (bfloat16 or float16); float32
weights, and weights of any dtype in ``"nearest"`` mode, take Keras's step
unchanged and get no state here.

* ``"nearest"``: Keras's step in the weight's own dtype: the decoupled
  weight decay ``p <- p - p*wd*lr`` rounded, then ``p <- p - lr*s`` rounded
  (``s`` the sign of Lion's interpolation). Bit-identical to
  ``keras.optimizers.Lion`` on jax and tensorflow; on torch Keras's Lion
  keeps the betas as Python floats where lionr rounds them to the weight's
  dtype, as on the other backends.

For the two other modes the step is computed in float32 and rounded once.
With ``w`` the weight as float32, ``s`` the sign computed in float32 from a
float32 momentum and gradient, and ``wd`` zero for weights without decay::

    w' = (w - w*wd*lr) - lr*s               (float32)

* ``"kahan"`` (compensated summation): a buffer ``e`` of the weight's dtype
  (same shape, same layout) keeps what rounding lost, and is added back at
  the next step: ``w = p + e``; ``p <- rn(w')``; ``e <- rn(w' - p)``, with
  ``rn`` round-to-nearest-even into the weight's dtype. (The difference
  ``w' - p`` is exact in float32; only storing ``e`` rounds.) 2 bytes per
  parameter.
* ``"stochastic"``: ``p <- sr(w')``, rounded down or up to a neighbour with
  probabilities given by the distances, so that ``E[sr(x)] = x``. For
  bfloat16, the upper 16 bits of a float32: add 16 uniform random bits to
  the low half of ``w'``'s bits and cut the low half off (on the magnitude,
  so negative values round the same way; values past the largest finite
  bfloat16 can round to infinity, infinities stay, NaN stays NaN). The bits
  are a hash of the optimizer's seed, the step, the variable and the
  element (``lionr.random_bits``): the same on every backend, a few integer
  operations per element. The seed is the first element of the state of a
  ``keras.random.SeedGenerator`` tracked as an optimizer variable: saved
  and restored with the optimizer, seeded from Keras's global seed
  (``keras.utils.set_random_seed``). No state per parameter. Float16
  weights are refused in this mode (their bits are not a float32's upper
  half); ``"kahan"`` serves them.

The weight's momentum is read and the sign computed in float32 in these
modes; ``lionr.state`` decides how the momentum is stored.
"""

import keras
from keras import ops

from lionr import checks
from lionr import random_bits
from lionr import state

WEIGHT_ROUNDINGS = ("nearest", "kahan", "stochastic")
SIXTEEN_BIT = ("bfloat16", "float16")


def rounds(variable, mode):
    """True when ``mode`` changes how ``variable`` is updated."""
    return mode != "nearest" and str(variable.dtype) in SIXTEEN_BIT


def round_nearest(x, dtype):
    """``x`` rounded to nearest (ties to even) into ``dtype``."""
    return ops.cast(x, dtype)


def round_stochastic(x, key):
    """Float32 ``x`` rounded at random into bfloat16, unbiased.

    ``key``: the int32 scalar of ``lionr.random_bits.key``; element ``i``
    of the flattened ``x`` draws ``random_bits.bits16(i, key)``.
    """
    x = ops.cast(x, "float32")
    noise = random_bits.bits16_like(ops.shape(x), key)
    return ops.cast(cut_with_noise(x, noise), "bfloat16")


def cut_with_noise(x, noise):
    """Float32 ``x`` with 16-bit ``noise`` added to the low half of its bits
    and the low half cut off (a float32 holding a bfloat16 value; NaN kept).
    """
    bits = ops.view(x, "int32")
    # Adding to the low half carries into the upper half with probability
    # (low half) / 2**16; for negative x the bits are the magnitude's, so
    # the carry moves away from zero as it does for positive x. Only NaN
    # bits (exponent all ones, mantissa nonzero) could carry past the top.
    cut = ops.bitwise_and(ops.add(bits, noise), -(1 << 16))
    rounded = ops.view(cut, "float32")
    return ops.where(ops.isnan(x), x, rounded)


class Kahan:
    """The compensation buffer ``e`` of one weight (weight's dtype)."""

    scratch = True  # XLA on the CPU writes w' before rounding it twice

    def __init__(self, optimizer, variable, layout=None):
        self.dtype = variable.dtype
        self.error = optimizer.add_variable(
            shape=variable.shape,
            dtype=variable.dtype,
            name=state.slot_name(variable, "rounding_error"),
            layout=layout or getattr(variable, "_layout", None),
        )

    def read(self, variable):
        """The float32 weight ``w = p + e``."""
        return ops.add(
            ops.cast(variable, "float32"), ops.cast(self.error, "float32")
        )

    def write(self, optimizer, variable, w, place=None):
        p = _held(place, round_nearest(w, self.dtype))
        e = round_nearest(ops.subtract(w, ops.cast(p, "float32")), self.dtype)
        optimizer.assign(variable, _gathered(place, p))
        optimizer.assign(self.error, e)
        return e


class Stochastic:
    """Stochastic rounding of one bfloat16 weight, the ``index``-th of the
    optimizer's variables, with bits keyed by ``seed`` (see ``make_seed``)."""

    scratch = False

    def __init__(self, variable, seed, index):
        if str(variable.dtype) != "bfloat16":
            # Stochastic rounding here cuts float32 bits to bfloat16's.
            checks.for_weight(
                "weight_rounding", "stochastic", ("nearest", "kahan"),
                variable.path, variable.dtype,
            )
        self.seed, self.index = seed, index

    def key(self, optimizer):
        """This weight's ``random_bits.key`` at the optimizer's step."""
        return random_bits.key(
            seed_value(self.seed), optimizer.iterations, self.index
        )

    def read(self, variable):
        return ops.cast(variable, "float32")

    def write(self, optimizer, variable, w, place=None):
        p = _held(place, round_stochastic(w, self.key(optimizer)))
        optimizer.assign(variable, _gathered(place, p))
        return p


def make_seed(optimizer):
    """The optimizer's ``SeedGenerator``, its state tracked as an optimizer
    variable (saved, restored, and threaded through compiled steps). Its
    state is ``[seed, 0]``; only the seed is read (``seed_value``) and the
    state never changes."""
    seed = keras.random.SeedGenerator(name=f"{optimizer.name}_rounding_seed")
    optimizer._track_variable(seed.state)
    return seed


def seed_value(seed):
    """The seed of the ``SeedGenerator`` ``seed``, as an int32 scalar."""
    return ops.cast(seed.state.value[0], "int32")


def make_stores(optimizer, variables, mode, skip, layouts=None):
    """One store per variable (None where ``mode`` changes nothing or
    ``skip(variable)``): ``Kahan`` or ``Stochastic``. ``layouts``: the
    state's layout per variable (default: each parameter's)."""
    wanted = [rounds(v, mode) and not skip(v) for v in variables]
    layouts = layouts or [None] * len(variables)
    if mode == "kahan":
        return [
            Kahan(optimizer, v, lay) if w else None
            for v, w, lay in zip(variables, wanted, layouts)
        ]
    if mode == "stochastic" and any(wanted):
        seed = make_seed(optimizer)
        return [
            Stochastic(v, seed, i) if w else None
            for i, (v, w) in enumerate(zip(variables, wanted))
        ]
    return [None for _ in variables]


def lion_step(store, optimizer, variable, step, decay, place=None):
    """``w' = (w - w*decay) - step`` in float32, rounded by ``store``.

    ``step``: ``lr * sign(c)`` in float32; ``decay``: ``wd * lr`` as a
    float32 scalar, or None. ``place``: the ``lionr.placement.Placement``
    of ``variable``; where its state is cut beyond the parameter, ``w'`` is
    computed and rounded on each device's piece and the new 16-bit values
    are gathered (16 bits per parameter). Returns the last tensor the
    store wrote.
    """
    w = store.read(variable)
    if decay is not None:
        w = ops.subtract(w, ops.multiply(w, decay))
    w = _held(place, ops.subtract(w, step))
    return store.write(optimizer, variable, w, place)


def _held(place, x):
    """``x`` laid out like the state where ``place`` spreads it."""
    return place.on_state(x) if place is not None else x


def _gathered(place, x):
    """16-bit ``x`` laid out like the parameter again, gathered as its
    16-bit patterns: gathered as floats, XLA would move the rounding cast
    past the gather and move float32 values."""
    if place is None or not place.spread:
        return x
    import jax

    pairs = jax.lax.bitcast_convert_type(x, "uint8")
    pairs = place.gather_bytes(pairs)
    return jax.lax.bitcast_convert_type(pairs, x.dtype)
