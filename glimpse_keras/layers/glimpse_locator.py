"""Glimpse location head: where the next glimpse looks."""

import keras
from keras import ops

from glimpse_keras.layers.initialization import check_initialization
from glimpse_keras.layers.initialization import dense_initializers
from glimpse_keras.arguments import check_number


@keras.saving.register_keras_serializable(package="glimpse_keras")
class GlimpseLocator(keras.layers.Layer):
    """Predicts a glimpse [x, y, s_x, s_y] from the frame context and zoomer state.

    One linear map of the concatenation [c_t ; h] gives a raw 4-vector
    `raw = W [c_t ; h] + b`, activated as
    `x, y = tanh(raw[0:2])` (centre in [-1, 1], x along the width) and
    `s_x, s_y = max_scale * sigmoid(raw[2:4] + scale_bias)` (half-extent in
    (0, max_scale)). With the defaults `scale_bias=3`, `max_scale=1` (the
    authors') and small weights the first glimpses cover about 95% of the map.

    Args:
        scale_bias: float, offset added to the raw scale before the sigmoid.
        max_scale: float in (0, 1], the largest scale a glimpse can take
            (1: the whole map, as the authors).
        initialization: "torch" (PyTorch Linear default U(+-1/sqrt(fan_in)),
            as trained by the authors) or "keras" (Glorot kernel, zero bias).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        context: float tensor (batch, context_dim): c_t, the spatial mean of
            the res4 map at frame t.
        state: float tensor (batch, state_dim): h, the zoomer GRU state.

    Returns:
        A tuple `(location, raw_location)`, both (batch, 4): the activated
        [x, y, s_x, s_y] and the raw pre-activation vector (without the
        `scale_bias`).

    Raises:
        ValueError: for an unknown `initialization` or a non-numeric
            `scale_bias`, or a `max_scale` outside (0, 1].

    Example:
        >>> loc, raw = GlimpseLocator()(ops.zeros((2, 16)), ops.zeros((2, 8)))

    Reference:
        MODEL_SPEC.md section 2 ("Location head"); poster: l_g = W_l^T [h_g, c].
    """

    def __init__(self, scale_bias=3.0, max_scale=1.0, initialization="torch", **kwargs):
        super().__init__(**kwargs)
        self.scale_bias = check_number("scale_bias", scale_bias)
        self.max_scale = check_number("max_scale", max_scale, minimum=0.0, maximum=1.0, above_minimum=True)
        self.initialization = check_initialization(initialization)

    def build(self, context_shape, state_shape):
        fan_in = int(context_shape[-1]) + int(state_shape[-1])
        kernel_init, bias_init = dense_initializers(self.initialization, fan_in)
        self.kernel = self.add_weight(
            name="kernel", shape=(fan_in, 4), initializer=kernel_init
        )
        self.bias = self.add_weight(
            name="bias", shape=(4,), initializer=bias_init
        )

    def call(self, context, state):
        joint = ops.concatenate([context, state], axis=-1)
        raw = ops.matmul(joint, self.kernel) + self.bias
        location = ops.concatenate(
            [
                ops.tanh(raw[..., :2]),
                self.max_scale * ops.sigmoid(raw[..., 2:] + self.scale_bias),
            ],
            axis=-1,
        )
        return location, raw

    def compute_output_shape(self, context_shape, state_shape):
        shape = tuple(context_shape[:-1]) + (4,)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "scale_bias": self.scale_bias,
                "max_scale": self.max_scale,
                "initialization": self.initialization,
            }
        )
        return config
