"""The few pieces of the model that differ between Keras backends.

Everything else in `glimpse_keras.layers`, `glimpse_keras.models` and
`glimpse_keras.losses` is written in `keras.ops` and runs unchanged on every
backend. What cannot be is kept here, one module per backend, imported only
when that backend is the active one (so the model imports without
TensorFlow on a JAX machine):

- `TrainingSteps`: the mixin that gives `GlimpseClouds` its `train_step`,
  `test_step` and `predict_step` (TensorFlow: a `GradientTape` step,
  `(self, data)`; JAX: the stateless `(self, state, data)` step of the Keras
  guide "customizing what happens in fit() with JAX").
- `bias_add(x, bias)`: adds a per-channel bias to a channels-last tensor
  (TensorFlow's `BiasAdd`, which its graph optimiser fuses into the
  preceding convolution; a plain add elsewhere).
- `compile_forward(function, model)`: an inference function of the model
  compiled for repeated calls (`tf.function` / `jax.jit`).

Training is supported on "tensorflow" and "jax". On any other backend (e.g.
"torch", not tested) `fit` and `evaluate` raise `UnsupportedBackendError`.
"""

import keras

from glimpse_keras.errors import GlimpseError

TRAINING_BACKENDS = ("tensorflow", "jax")


class UnsupportedBackendError(GlimpseError, RuntimeError):
    """A backend-specific step was asked of a backend without one."""


def current_backend():
    """The active Keras backend's name ("tensorflow", "jax", "torch", ...)."""
    return keras.backend.backend()


def _backend_module():
    name = current_backend()
    if name == "tensorflow":
        from glimpse_keras.backends import tensorflow_backend

        return tensorflow_backend
    if name == "jax":
        from glimpse_keras.backends import jax_backend

        return jax_backend
    return None


class _UnsupportedSteps:
    """Training steps of a backend without an implementation: clear errors."""

    def _unsupported(self, *args, **kwargs):
        raise UnsupportedBackendError(
            f"GlimpseClouds has no training steps for the Keras backend {current_backend()!r}; "
            f"train with KERAS_BACKEND set to one of {TRAINING_BACKENDS}."
        )

    train_step = test_step = _unsupported


_module = _backend_module()
TrainingSteps = _module.TrainingSteps if _module is not None else _UnsupportedSteps


def bias_add(x, bias):
    """`x + bias` over the last axis, in `x`'s dtype.

    Args:
        x: tensor `(..., channels)`.
        bias: tensor `(channels,)`.

    Returns:
        tensor of `x`'s shape and dtype.
    """
    bias = keras.ops.cast(bias, x.dtype)
    if _module is not None:
        return _module.bias_add(x, bias)
    return x + bias


def compile_forward(function, model):
    """`function(*inputs)`, which calls `model`, compiled for repeated calls.

    Args:
        function: a function of one or more batch-first tensors (the video,
            and e.g. glimpse locations) that calls `model` (inference only)
            and returns a structure of tensors whose first axis is the batch.
        model: the built Keras model (or layer) whose variables it reads.

    Returns:
        a function with the same contract: a `tf.function` on TensorFlow
        (one trace serves every batch size); on JAX a `jax.jit` that takes
        the model's current variable values as arguments (never baked in as
        constants), writes back the state the call advanced (the seed of
        random glimpses), and pads a batch smaller than the largest seen so
        far up to that size, so a dataset whose last batch is partial
        compiles once (under a Keras data-parallel distribution the batch is
        padded to a multiple of the device count and split over the devices,
        and the outputs are gathered); `function` itself elsewhere.
    """
    if _module is not None:
        return _module.compile_forward(function, model)
    return function
