"""Python-side helpers for lionr's R tests: every array is made here, since
R arrays cannot reach NumPy 2 through older reticulate versions."""

import numpy as np

import keras


def f32(values):
    return np.asarray(values, dtype="float32")


def variables(values):
    """One trainable keras.Variable per list of numbers."""
    return [keras.Variable(f32(v)) for v in values]


def tensors(values):
    return [keras.ops.convert_to_tensor(f32(v)) for v in values]


def values(variables_):
    """The values of some variables, as flat lists of Python floats."""
    return [
        np.asarray(keras.ops.convert_to_numpy(v), dtype="float64")
        .ravel().tolist()
        for v in variables_
    ]


def lion_first_step(w, g, lr):
    """What one step of Lion from zero momentum gives, in float32."""
    w, g = f32(w), f32(g)
    return (w - np.float32(lr) * np.sign(g)).astype("float64").tolist()


def result_type(f):
    """The Python type of what the callable ``f`` returns."""
    return type(f()).__name__


def regression_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(int(n), 3)).astype("float32")
    y = (x @ f32([[1.0], [-2.0], [3.0]]) + 0.5).astype("float32")
    return x, y


def dense_model(seed=0):
    keras.utils.set_random_seed(int(seed))
    return keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])


def weights(model):
    """The model's weights, as flat lists of floats."""
    return [np.asarray(w, dtype="float64").ravel().tolist()
            for w in model.get_weights()]


def gradients(model, x, y):
    """The gradients of the mean squared error at the current weights."""
    x, y = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def loss(values):
            out, _ = model.stateless_call(values, [], x)
            return keras.ops.mean(keras.ops.square(out - y))

        grads = jax.grad(loss)([v.value for v in model.trainable_variables])
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.ops.square(model(x) - y))
        grads = tape.gradient(loss, model.trainable_variables)
    else:
        model.zero_grad()
        loss = keras.ops.mean(keras.ops.square(model(x) - y))
        loss.backward()
        grads = [v.value.grad for v in model.trainable_variables]
    return [np.asarray(keras.ops.convert_to_numpy(g), dtype="float64")
            .ravel().tolist() for g in grads]
