"""The collectives of a Keras model's compiled jax train step, from its
optimized HLO.

``train_step_hlo(model, x, y)`` compiles ``model.train_step`` as Keras's
jax trainer does for ``fit`` (``jax.jit`` with donated state and, under a
distribution, the variables' shardings as output shardings) for one batch
``(x, y)`` and returns the optimized HLO text. ``collectives(text)`` lists
every collective in it: its kind (``all-reduce``, ``all-gather``,
``reduce-scatter``, ``all-to-all``, ``collective-permute``), and each
result array's dtype and element count (a combined collective gives
several). Used by ``tests/python/test_state_sharding.py`` and
``benchmarks/state_per_device.py``.
"""

import math
import re

KINDS = (
    "all-reduce", "all-gather", "reduce-scatter", "all-to-all",
    "collective-permute",
)
BITS = {
    "pred": 8, "s8": 8, "u8": 8, "s16": 16, "u16": 16, "bf16": 16,
    "f16": 16, "s32": 32, "u32": 32, "f32": 32, "s64": 64, "u64": 64,
    "f64": 64,
}
_LINE = re.compile(
    r"=\s*(?P<type>\([^=]*?\)|\S+)\s+(?P<kind>" + "|".join(KINDS)
    + r")(?P<start>-start)?\("
)
_ARRAY = re.compile(r"(\w+)\[([\d,]*)\]")


def collectives(text):
    """``[(kind, dtype, elements)]``, one per array a collective produces
    (a ``-start``/``-done`` pair counted once)."""
    found = []
    for line in text.splitlines():
        match = _LINE.search(line)
        if match is None:
            continue
        arrays = _ARRAY.findall(match.group("type"))
        if match.group("start") and match.group("kind") != "all-reduce":
            # async start: (operands..., results...); keep the results
            arrays = arrays[len(arrays) // 2:]
        for dtype, dims in arrays:
            if dtype in BITS:
                size = math.prod(int(d) for d in dims.split(",") if d)
                found.append((match.group("kind"), dtype, size))
    return found


def bits(found, kinds=KINDS):
    """Total bits the listed collectives produce, per device."""
    return sum(BITS[d] * n for k, d, n in found if k in kinds)


def train_step_hlo(model, x, y):
    """Optimized HLO of ``model``'s jax train step for the batch ``(x, y)``
    (the model compiled, its optimizer built)."""
    import jax

    import keras
    from keras.src.backend.jax import trainer

    out_shardings = None
    if keras.distribution.distribution() is not None:
        out_shardings = (None, model._get_state_sharding_spec())
    step = jax.jit(
        model.train_step, donate_argnums=0, out_shardings=out_shardings
    )
    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )
    data = trainer._distribute_data((x, y, None))
    return step.lower(state, data).compile().as_text()
