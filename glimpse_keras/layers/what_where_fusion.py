"""'What and where' fusion of a glimpse's appearance and its location."""

import keras
from keras import ops

from glimpse_keras.layers.initialization import check_initialization
from glimpse_keras.layers.initialization import dense_initializers
from glimpse_keras.arguments import check_int
from glimpse_keras.layers.saved_configs import with_current_names


@keras.saving.register_keras_serializable(package="glimpse_keras")
class WhatWhereFusion(keras.layers.Layer):
    """Gates glimpse features by an embedding of the glimpse location.

    `v = z * Lambda(l)` (element-wise), with the MLP
    `Lambda(l) = W_2 relu(W_1 l + b_1) + b_2` mapping the 4-vector location to
    the feature size (4 -> `hidden_units` -> ReLU -> channels, no output
    activation).

    Args:
        hidden_units: int >= 1, width of the hidden layer (256 in the paper).
        raw_location_embedding: bool. False (default, the paper's reading,
            MODEL_SPEC section 11 item 6) embeds the activated
            [x, y, s_x, s_y]; True embeds the raw pre-activation vector, as the
            authors' code does (then `raw_location` must be passed). The same
            name as the config key `model.raw_location_embedding`.
        initialization: "torch" or "keras" (see `initialization.py`).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        features: float tensor (..., channels): z, the pooled glimpse.
        location: float tensor (..., 4): the activated location.
        raw_location: optional float tensor (..., 4): the raw location from
            `GlimpseLocator`; required when `raw_location_embedding=True`.

    Returns:
        v, same shape as `features`.

    Raises:
        ValueError: for a bad `hidden_units`/`initialization`, or when
            `raw_location_embedding=True` and `raw_location` is None.

    Example:
        >>> v = WhatWhereFusion(8)(ops.ones((2, 3, 16)), ops.zeros((2, 3, 4)))

    Reference:
        MODEL_SPEC.md section 3.
    """

    def __init__(
        self,
        hidden_units=256,
        raw_location_embedding=False,
        initialization="torch",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_units = check_int("hidden_units", hidden_units)
        self.raw_location_embedding = bool(raw_location_embedding)
        self.initialization = check_initialization(initialization)

    def build(self, features_shape):
        channels = int(features_shape[-1])
        hidden_kernel, hidden_bias = dense_initializers(self.initialization, 4)
        out_kernel, out_bias = dense_initializers(
            self.initialization, self.hidden_units
        )
        self.hidden_kernel = self.add_weight(
            name="hidden_kernel",
            shape=(4, self.hidden_units),
            initializer=hidden_kernel,
        )
        self.hidden_bias = self.add_weight(
            name="hidden_bias", shape=(self.hidden_units,), initializer=hidden_bias
        )
        self.output_kernel = self.add_weight(
            name="output_kernel",
            shape=(self.hidden_units, channels),
            initializer=out_kernel,
        )
        self.output_bias = self.add_weight(
            name="output_bias", shape=(channels,), initializer=out_bias
        )

    def embed(self, location):
        """Lambda(location): (..., 4) -> (..., channels)."""
        hidden = ops.relu(ops.matmul(location, self.hidden_kernel) + self.hidden_bias)
        return ops.matmul(hidden, self.output_kernel) + self.output_bias

    def call(self, features, location, raw_location=None):
        if self.raw_location_embedding:
            if raw_location is None:
                raise ValueError(
                    f"{self.name}: raw_location_embedding=True needs `raw_location`."
                )
            location = raw_location
        return features * self.embed(ops.cast(location, features.dtype))

    def compute_output_shape(self, features_shape, location_shape=None,
                             raw_location_shape=None):
        return tuple(features_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": self.hidden_units,
                "raw_location_embedding": self.raw_location_embedding,
                "initialization": self.initialization,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # A config saved with the old name `use_raw_location` loads.
        return super().from_config(with_current_names(config))
