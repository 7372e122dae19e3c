"""The step as Keras's trainers compile it: on jax, ``jit`` of
``stateless_apply`` with the parameter and optimizer buffers donated; on
tensorflow, ``tf.function(jit_compile=True)`` around ``apply`` on resource
variables. Both go through XLA. On jax also as custom loops compile it:
without donation, and donated state first (the buffers of parameters and
momenta then cross, see ``DONATIONS``)."""

import math
import re

import numpy as np
import pytest

import keras

import lionr
from lionr import kernels
import reference
from reference import numpy_of
from tiny import BACKEND
from tiny import normal

pytestmark = pytest.mark.skipif(
    BACKEND not in ("jax", "tensorflow"), reason="XLA-compiled steps only"
)

SHAPES = [(64, 32), (2048,), (7,)]
# jax: which buffers a step donates. "state first" is
# jit(stateless_apply, donate_argnums=(0, 2)): the donated inputs come
# state first, the outputs parameters first, and jax gives each output the
# first donated buffer of its shape, so parameters land in the momenta's
# buffers and momenta in the parameters'.
DONATIONS = ("parameters first", "none", "state first")


class CompiledStep:
    """One optimizer over variables of ``shapes``, stepped as Keras's
    trainer of the current backend steps it."""

    def __init__(self, optimizer, shapes=SHAPES, donate=DONATIONS[0]):
        self.variables = [
            keras.Variable(normal(80 + i, s), name=f"w{i}")
            for i, s in enumerate(shapes)
        ]
        optimizer.build(self.variables)
        self.optimizer = optimizer
        if BACKEND == "jax":
            import jax

            def step(trainable, state, grads):
                return optimizer.stateless_apply(state, grads, trainable)

            if donate == "state first":
                crossed = jax.jit(
                    optimizer.stateless_apply, donate_argnums=(0, 2)
                )

                def step(trainable, state, grads):
                    return crossed(state, grads, trainable)

                self.compiled = crossed
                self.call = step
            else:
                argnums = (0, 1) if donate == "parameters first" else ()
                self.compiled = self.call = jax.jit(
                    step, donate_argnums=argnums
                )
            self.donate = donate
            self.trainable = [v.value for v in self.variables]
            self.state = [v.value for v in optimizer.variables]
        else:
            import tensorflow as tf

            @tf.function(jit_compile=True)
            def step(grads):
                optimizer.apply(grads, self.variables)

            self.compiled = step

    def set_weights(self, values):
        if BACKEND == "jax":
            self.trainable = [np.array(v) for v in values]
        else:
            for variable, value in zip(self.variables, values):
                variable.assign(value)

    def weights(self):
        if BACKEND == "jax":
            return [np.array(t) for t in self.trainable]
        return [numpy_of(v) for v in self.variables]

    def __call__(self, grads):
        if BACKEND == "jax":
            self.trainable, self.state = self.call(
                self.trainable, self.state, grads
            )
        else:
            self.compiled([np.asarray(g) for g in grads])

    def values(self):
        """Parameters, then every optimizer variable, as numpy arrays."""
        if BACKEND == "jax":
            arrays = (*self.trainable, *self.state)
        else:
            arrays = (*self.variables, *self.optimizer.variables)
        return [numpy_of(a) for a in arrays]

    def optimized_hlo(self):
        grads = [np.zeros(v.shape, "float32") for v in self.variables]
        if BACKEND == "jax":
            args = (self.trainable, self.state, grads)
            if self.donate == "state first":
                args = (self.state, grads, self.trainable)
            return self.compiled.lower(*args).compile().as_text()
        return self.compiled.experimental_get_compiler_ir(grads)(
            stage="optimized_hlo"
        )


def copies(optimizer, donate=DONATIONS[0]):
    """How many ``copy`` instructions of arrays XLA leaves in the optimized
    step (copies of scalars, such as the learning rate, are not counted)."""
    text = CompiledStep(optimizer, donate=donate).optimized_hlo()
    return len(re.findall(r"= \S+\[\d[^\]]*\]\S* copy\(", text))


def test_no_momentum_copy_in_the_compiled_step():
    if not kernels._on_cpu():
        pytest.skip("measured on XLA's CPU compiler")
    # Keras's Lion shows what a copy looks like: one per momentum.
    assert copies(keras.optimizers.Lion(weight_decay=0.01)) == len(SHAPES)
    for mode in ("float32", "bfloat16"):
        assert copies(lionr.Lion(weight_decay=0.01, momentum_dtype=mode)) == 0


def donations():
    return DONATIONS if BACKEND == "jax" else DONATIONS[:1]


@pytest.mark.parametrize("donate", donations())
def test_no_copy_keras_lion_does_not_make(donate):
    """However the buffers are donated, lionr's step copies no more arrays
    than Keras's Lion's (where Keras's copies, lionr's ordering cannot
    avoid every copy: with crossed buffers one array must be saved)."""
    if not kernels._on_cpu():
        pytest.skip("measured on XLA's CPU compiler")
    keras_copies = copies(keras.optimizers.Lion(weight_decay=0.01), donate)
    assert copies(lionr.Lion(weight_decay=0.01), donate) <= keras_copies


@pytest.mark.parametrize("donate", donations())
def test_compiled_steps_equal_keras_lion_bit_for_bit(donate):
    """Five compiled steps, with NaN, infinite and -0.0 values among the
    weights and gradients: parameters and momenta have the same bits."""
    kwargs = dict(learning_rate=0.01, beta_1=0.8, beta_2=0.95, weight_decay=0.1)
    results = []
    for optimizer in (lionr.Lion(**kwargs), keras.optimizers.Lion(**kwargs)):
        step = CompiledStep(optimizer, donate=donate)
        weights = step.weights()
        weights[0][0, :3] = [np.nan, np.inf, -0.0]
        step.set_weights(weights)
        for t in range(5):
            grads = [normal(90 + 7 * t + i, s) for i, s in enumerate(SHAPES)]
            grads[1][:4] = [-0.0, np.inf, -np.inf, np.nan]
            step(grads)
        results.append(step.values())
    assert len(results[0]) == len(results[1])
    for a, b in zip(*results):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def test_ordering_operations_only_where_xla_compiles():
    """``after_parameter`` adds its two operations only while a step is
    traced for XLA (on the CPU); eagerly, and in a tensorflow graph that XLA
    does not compile, it hands back the momentum itself."""
    if not kernels._on_cpu():
        pytest.skip("the ordering is applied on XLA's CPU compiler")
    variable = keras.Variable(np.ones(4, "float32"))
    m = keras.ops.convert_to_tensor(np.full(4, 0.5, "float32"))
    seen = {}

    def probe(where, m):
        out = kernels.after_parameter(m, variable)
        seen[where] = out is m
        return out

    probe("eager", m)
    if BACKEND == "jax":
        import jax

        jax.jit(lambda m: probe("xla", m))(m)
    else:
        import tensorflow as tf

        tf.function(lambda m: probe("graph", m))(m)
        tf.function(lambda m: probe("xla", m), jit_compile=True)(m)
    assert seen.pop("xla") is False
    assert all(seen.values()), seen


TEMPORARY_CASES = {
    "int8 momentum": ("float32", dict(momentum_dtype="int8")),
    "kahan rounding": ("bfloat16", dict(weight_rounding="kahan")),
}


@pytest.mark.parametrize("case", list(TEMPORARY_CASES))
def test_steps_that_need_a_temporary_share_one(case):
    """The int8 step writes ``|m|`` and the kahan step ``w'`` as large as
    their parameter; ordered one variable after another
    (``kernels.after``), XLA gives all of them one buffer the size of one
    variable's, where side by side they would take the sum. Read from the
    compiled step's own memory analysis."""
    if BACKEND != "jax" or not kernels._on_cpu():
        pytest.skip("jax's compiled memory analysis, on the CPU")
    import jax

    dtype, options = TEMPORARY_CASES[case]
    shapes = [(256, 256)] * 4
    variables = [
        keras.Variable(normal(i, s), dtype=dtype) for i, s in enumerate(shapes)
    ]
    optimizer = lionr.Lion(weight_decay=0.01, **options)
    optimizer.build(variables)
    step = jax.jit(
        lambda p, s, g: optimizer.stateless_apply(s, g, p),
        donate_argnums=(0, 1),
    )
    grads = [np.ones(s, dtype) for s in shapes]
    state = [v.value for v in optimizer.variables]
    compiled = step.lower([v.value for v in variables], state, grads).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    one = 4 * 256 * 256  # one variable's float32 temporary
    assert temp < 2 * one, (temp, one)


def _int8_reference(m):
    """Codes and scales of flat float32 ``m``, its last block padded."""
    return reference.int8_blocks(np.pad(m, (0, (-m.size) % 256)).reshape(-1, 256))


def _int8_decoded(codes, scales, size):
    return reference.int8_decoded(codes, scales).ravel()[:size]


def test_compiled_int8_steps_store_the_rule_bit_for_bit():
    """Compiled as Keras's trainer compiles it, the int8 momentum after each
    step holds the codes and scales of ``m * b2 + g * (1 - b2)`` (float32,
    from the decoded old momentum), computed here in numpy: for a tensor
    whose blocks tile it (written in the blocks' shape) and for one with a
    padded last block; on tensorflow the block maxima come from strided
    slices. XLA on a CPU with fused multiply-add contracts ``g * (1 - b2)``
    into the sum (one rounding); either rounding is accepted, the same for
    the whole tensor."""
    shapes = [(64, 64), (5000,)]
    optimizer = lionr.Lion(momentum_dtype="int8", beta_2=0.95)
    step = CompiledStep(optimizer, shapes=shapes)
    slots = [optimizer._slots[i] for i in range(len(shapes))]
    where = {id(v): i for i, v in enumerate(optimizer.variables)}
    b2 = np.float32(0.95)
    rest = np.float32(1) - b2
    memory = [np.zeros(math.prod(s), "float32") for s in shapes]
    for t in range(3):
        grads = [normal(40 + 5 * t + i, s) for i, s in enumerate(shapes)]
        grads[0][0, :3] = [0.0, -0.0, 1e-30]
        step(grads)
        state = step.values()[len(shapes):]
        for i, (slot, g) in enumerate(zip(slots, grads)):
            kept = memory[i] * b2
            rounded_twice = kept + g.ravel() * rest
            fused = (kept.astype("float64") + g.ravel().astype("float64")
                     * np.float64(rest)).astype("float32")
            codes = state[where[id(slot.codes)]]
            scales = state[where[id(slot.scales)]]
            wanted = [_int8_reference(m) for m in (rounded_twice, fused)]
            assert any(
                np.array_equal(codes, c) and np.array_equal(scales, s)
                for c, s in wanted
            ), (t, i)
            memory[i] = _int8_decoded(codes, scales, g.size)
