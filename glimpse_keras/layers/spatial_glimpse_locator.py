"""Glimpse location head that can see where things are: a soft-argmax over the map's cells."""

import math

import keras
from keras import ops

from glimpse_keras.arguments import check_int, check_number
from glimpse_keras.layers.initialization import check_initialization
from glimpse_keras.layers.initialization import dense_initializers


def cell_centres(height, width, align_corners=True):
    """Centres of the cells of a `height` x `width` map in the crop's [-1, 1] frame.

    Uses the coordinate convention of `GlimpseCrop`: with `align_corners`,
    -1 and +1 are the centres of the first and last cells; without, the outer
    edges of the map.

    Returns:
        float32 tensor (height * width, 2) of [x, y], row-major (x along the
        width).
    """
    def axis(size):
        index = ops.cast(ops.arange(size), "float32")
        if align_corners:
            return index / max(size - 1, 1) * 2.0 - 1.0 if size > 1 else index * 0.0
        return (2.0 * index + 1.0) / size - 1.0

    xs, ys = axis(width), axis(height)
    x = ops.tile(xs[None, :], (height, 1))
    y = ops.tile(ys[:, None], (1, width))
    return ops.reshape(ops.stack([x, y], axis=-1), (height * width, 2))


@keras.saving.register_keras_serializable(package="glimpse_keras")
class SpatialGlimpseLocator(keras.layers.Layer):
    """Predicts a glimpse [x, y, s_x, s_y] by attending over the cells of a map.

    `GlimpseLocator` (the paper's head) sees the frame only through c_t, the
    spatial *mean* of the res4 map, so nothing in its input says where things
    are in this frame. This head keeps the map: every cell (i, j) of the
    frame's map F gets a key `k_ij = W_k F_ij`, the frame context and the
    zoomer state give a query `q = W_q [c_t ; h] + b_q`, and the centre is the
    expected cell position under `p = softmax_ij(k_ij . q / sqrt(key_units))`:

        (x, y) = sum_ij p_ij centre_ij        (a soft-argmax, in [-1, 1])
        s_x, s_y = max_scale * sigmoid(W_s [c_t ; h] + b_s + scale_bias)

    Successive glimpses of a frame query with successive zoomer states, so
    they can pick different cells. Everything is differentiable: the
    attraction and classification losses train the keys and the query (what
    kind of cell to look at), and the centre follows that cell in every video.

    Args:
        key_units: int, size of the keys and the query.
        scale_bias, max_scale: as `GlimpseLocator`.
        align_corners: bool, the coordinate convention of the crop (see
            `cell_centres`).
        initialization: "torch" or "keras" (see `GlimpseLocator`).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        context: float tensor (batch, context_dim): c_t.
        state: float tensor (batch, state_dim): h, the zoomer state.
        feature_map: float tensor (batch, height, width, channels): the
            frame's map (res4), static height and width.

    Returns:
        A tuple `(location, raw_location)`, both (batch, 4): the activated
        [x, y, s_x, s_y] and the raw vector [atanh(x), atanh(y), raw s_x,
        raw s_y] (raw scales without `scale_bias`, as `GlimpseLocator`).

    Raises:
        ValueError: for a bad argument (named with its value).

    Example:
        >>> locator = SpatialGlimpseLocator(key_units=8)
        >>> location, raw = locator(ops.zeros((2, 16)), ops.zeros((2, 8)), ops.ones((2, 4, 4, 16)))
    """

    def __init__(self, key_units=64, scale_bias=3.0, max_scale=1.0, align_corners=True,
                 initialization="torch", **kwargs):
        super().__init__(**kwargs)
        self.key_units = check_int("key_units", key_units)
        self.scale_bias = check_number("scale_bias", scale_bias)
        self.max_scale = check_number("max_scale", max_scale, minimum=0.0, maximum=1.0, above_minimum=True)
        self.align_corners = bool(align_corners)
        self.initialization = check_initialization(initialization)

    def build(self, context_shape, state_shape, feature_map_shape):
        fan_in = int(context_shape[-1]) + int(state_shape[-1])
        kernel_init, bias_init = dense_initializers(self.initialization, fan_in)
        self.query_kernel = self.add_weight(name="query_kernel", shape=(fan_in, self.key_units),
                                            initializer=kernel_init)
        self.query_bias = self.add_weight(name="query_bias", shape=(self.key_units,), initializer=bias_init)
        self.scale_kernel = self.add_weight(name="scale_kernel", shape=(fan_in, 2), initializer=kernel_init)
        self.scale_offset = self.add_weight(name="scale_offset", shape=(2,), initializer=bias_init)
        channels = int(feature_map_shape[-1])
        key_init, _ = dense_initializers(self.initialization, channels)
        self.key_kernel = self.add_weight(name="key_kernel", shape=(channels, self.key_units),
                                          initializer=key_init)

    def call(self, context, state, feature_map):
        _, height, width, channels = feature_map.shape
        cells = ops.reshape(feature_map, (-1, height * width, channels))
        keys = ops.matmul(cells, self.key_kernel)
        joint = ops.concatenate([context, state], axis=-1)
        query = ops.matmul(joint, self.query_kernel) + self.query_bias
        scores = ops.einsum("bnk,bk->bn", keys, query) / math.sqrt(self.key_units)
        weights = ops.softmax(scores, axis=-1)
        grid = ops.cast(cell_centres(height, width, self.align_corners), weights.dtype)
        centre = ops.matmul(weights, grid)
        raw_scale = ops.matmul(joint, self.scale_kernel) + self.scale_offset
        scale = self.max_scale * ops.sigmoid(raw_scale + self.scale_bias)
        # The raw centre only feeds Lambda with `raw_location_embedding`.
        limit = 1.0 - 1e-6
        clipped = ops.clip(centre, -limit, limit)
        raw_centre = 0.5 * ops.log((1.0 + clipped) / (1.0 - clipped))
        return ops.concatenate([centre, scale], axis=-1), ops.concatenate([raw_centre, raw_scale], axis=-1)

    def compute_output_shape(self, context_shape, state_shape, feature_map_shape):
        shape = tuple(context_shape[:-1]) + (4,)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update({
            "key_units": self.key_units,
            "scale_bias": self.scale_bias,
            "max_scale": self.max_scale,
            "align_corners": self.align_corners,
            "initialization": self.initialization,
        })
        return config


@keras.saving.register_keras_serializable(package="glimpse_keras")
class SpatialKeypoints(keras.layers.Layer):
    """Where the map's strongest responses are: K learned spatial-softmax keypoints.

    Each keypoint k is a 1x1 projection of the map, `a_ij^k = w_k . F_ij + b_k`,
    turned into a distribution over the cells by a softmax, and summarised by
    its expected position `sum_ij softmax(a^k)_ij centre_ij` (Levine et al.,
    "End-to-End Training of Deep Visuomotor Policies", 2016). Appended to the
    locator's input, these 2K coordinates tell it where things are in the
    frame.

    Args:
        num_keypoints: int >= 1, K.
        align_corners: bool, the crop's coordinate convention (`cell_centres`).
        initialization: "torch" or "keras".
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        feature_map: float tensor (batch, height, width, channels).

    Returns:
        float tensor (batch, 2K): [x_1, y_1, ..., x_K, y_K] in [-1, 1].
    """

    def __init__(self, num_keypoints, align_corners=True, initialization="torch", **kwargs):
        super().__init__(**kwargs)
        self.num_keypoints = check_int("num_keypoints", num_keypoints)
        self.align_corners = bool(align_corners)
        self.initialization = check_initialization(initialization)

    def build(self, feature_map_shape):
        channels = int(feature_map_shape[-1])
        kernel_init, bias_init = dense_initializers(self.initialization, channels)
        self.kernel = self.add_weight(name="kernel", shape=(channels, self.num_keypoints),
                                      initializer=kernel_init)
        self.bias = self.add_weight(name="bias", shape=(self.num_keypoints,), initializer=bias_init)

    def call(self, feature_map):
        _, height, width, channels = feature_map.shape
        cells = ops.reshape(feature_map, (-1, height * width, channels))
        scores = ops.matmul(cells, self.kernel) + self.bias  # (batch, cells, K)
        weights = ops.softmax(scores, axis=1)
        grid = ops.cast(cell_centres(height, width, self.align_corners), weights.dtype)
        positions = ops.einsum("bnk,nd->bkd", weights, grid)
        return ops.reshape(positions, (-1, 2 * self.num_keypoints))

    def compute_output_shape(self, feature_map_shape):
        return (feature_map_shape[0], 2 * self.num_keypoints)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_keypoints": self.num_keypoints,
            "align_corners": self.align_corners,
            "initialization": self.initialization,
        })
        return config
