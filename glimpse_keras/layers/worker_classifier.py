"""Per-worker linear classifiers computed as one einsum."""

import keras
from keras import ops

from glimpse_keras.arguments import check_int
from glimpse_keras.layers.initialization import check_initialization
from glimpse_keras.layers.initialization import dense_initializers


@keras.saving.register_keras_serializable(package="glimpse_keras")
class WorkerClassifier(keras.layers.Layer):
    """C separate Dense heads, head c applied to worker c's state.

    `logits[..., c, :] = states[..., c, :] W_c + b_c`. Averaging the logits
    over time and workers (the authors' output, MODEL_SPEC section 5) is left
    to the model.

    Args:
        num_classes: int >= 1.
        num_workers: int >= 1, the number C of heads (the worker axis size).
        initialization: "torch" or "keras" (see `initialization.py`).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        states: float tensor (..., num_workers, units), e.g. the core's
            `worker_states` (batch, time, num_workers, units).

    Returns:
        Logits (..., num_workers, num_classes).

    Raises:
        ValueError: for bad arguments or a worker axis of the wrong size.

    Example:
        >>> logits = WorkerClassifier(60, 3)(ops.ones((2, 8, 3, 16)))  # (2,8,3,60)
    """

    def __init__(self, num_classes, num_workers, initialization="torch", **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes)
        self.num_workers = check_int("num_workers", num_workers)
        self.initialization = check_initialization(initialization)

    def build(self, states_shape):
        if states_shape[-2] is not None and states_shape[-2] != self.num_workers:
            raise ValueError(
                f"{self.name}: states must be (..., {self.num_workers}, units), "
                f"received shape {tuple(states_shape)}."
            )
        units = int(states_shape[-1])
        kernel_init, bias_init = dense_initializers(self.initialization, units)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.num_workers, units, self.num_classes),
            initializer=kernel_init,
        )
        self.bias = self.add_weight(
            name="bias",
            shape=(self.num_workers, self.num_classes),
            initializer=bias_init,
        )

    def call(self, states):
        return ops.einsum("...cu,cuk->...ck", states, self.kernel) + self.bias

    def compute_output_shape(self, states_shape):
        return tuple(states_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "num_workers": self.num_workers,
                "initialization": self.initialization,
            }
        )
        return config
