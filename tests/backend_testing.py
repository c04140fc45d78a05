"""Gradients, compiled functions and arrays in tests, on TensorFlow or JAX.

The layer, loss and model tests run under both backends (README: the test
command runs them once per backend); the few places where a test needs
something Keras does not expose (a gradient, a compiled function) go
through these helpers.
"""

import contextlib

import keras
import numpy as np

BACKEND = keras.backend.backend()


def to_numpy(value):
    """A backend tensor, Keras variable or array as a NumPy array."""
    if isinstance(value, keras.Variable):
        value = value.value
    return np.asarray(keras.ops.convert_to_numpy(value))


def compiled(function):
    """`function` traced into one graph: `tf.function` or `jax.jit`."""
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    import tensorflow as tf

    return tf.function(function)


def gradients(function, sources):
    """Gradients of the scalar `function(*sources)` with respect to `sources`.

    Args:
        function: takes one tensor per source and returns a scalar tensor.
        sources: list of arrays or Keras variables. For a variable the
            gradient is taken with respect to its value wherever the layers
            that own it read it, as in a training step.

    Returns:
        list of NumPy arrays, one per source; None where TensorFlow reports
        no path from the source to the value (JAX returns zeros there).
    """
    values = [to_numpy(source) for source in sources]
    if BACKEND == "jax":
        import jax

        def loss(*arguments):
            mapping = [
                (source, argument)
                for source, argument in zip(sources, arguments)
                if isinstance(source, keras.Variable)
            ]
            with keras.StatelessScope(state_mapping=mapping):
                return function(*arguments)

        result = jax.grad(loss, argnums=tuple(range(len(sources))))(*values)
        return [np.asarray(gradient) for gradient in result]
    import tensorflow as tf

    # A Keras variable's `value` is its tf.Variable, which the layers read.
    tensors = [
        source.value if isinstance(source, keras.Variable) else tf.constant(value)
        for source, value in zip(sources, values)
    ]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        result = function(*tensors)
    return [None if gradient is None else gradient.numpy() for gradient in tape.gradient(result, tensors)]


def float64_enabled():
    """A context in which float64 layers compute in float64 (JAX truncates
    64-bit types to 32 bits unless enabled)."""
    if BACKEND == "jax":
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()
