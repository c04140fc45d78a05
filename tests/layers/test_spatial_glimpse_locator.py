import keras
import numpy as np
import pytest

from glimpse_keras.layers import GlimpseCrop
from glimpse_keras.layers import SpatialGlimpseLocator
from glimpse_keras.layers import SpatialKeypoints
from glimpse_keras.layers.spatial_glimpse_locator import cell_centres
from tests.backend_testing import gradients
from tests.backend_testing import to_numpy
from tests.layers.layer_checks import assert_config_round_trip
from tests.layers.layer_checks import assert_save_load_same


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_cell_centres_follow_the_crop_convention():
    aligned = to_numpy(cell_centres(2, 3, align_corners=True))
    np.testing.assert_allclose(aligned, [[-1, -1], [0, -1], [1, -1], [-1, 1], [0, 1], [1, 1]], atol=1e-7)
    edges = to_numpy(cell_centres(2, 2, align_corners=False))
    np.testing.assert_allclose(edges, [[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]], atol=1e-7)
    # A glimpse centred on a cell's centre reads exactly that cell (scale 0: one sample point).
    feature_map = np.arange(2 * 3 * 1, dtype="float32").reshape(1, 2, 3, 1)
    crop = GlimpseCrop(output_size=1, pooled=True)
    for cell, (x, y) in enumerate(aligned):
        value = to_numpy(crop(feature_map, np.array([[[x, y, 0.0, 0.0]]], "float32")))
        np.testing.assert_allclose(value[0, 0, 0], cell, atol=1e-6)


def _one_hot_map(height, width, cell, channels=4, strength=1.0):
    feature_map = np.zeros((1, height, width, channels), "float32")
    feature_map[0, cell // width, cell % width, 0] = strength
    return feature_map


def test_soft_argmax_lands_on_the_cell_the_query_matches():
    locator = SpatialGlimpseLocator(key_units=2, scale_bias=0.0, max_scale=0.5)
    context, state = np.ones((1, 3), "float32"), np.zeros((1, 2), "float32")
    feature_map = _one_hot_map(3, 4, cell=6, strength=1.0)
    locator(context, state, feature_map)
    # key = channel 0 on key unit 0; query = 100 on unit 0 from the first context input.
    key_kernel = np.zeros((4, 2), "float32")
    key_kernel[0, 0] = 1.0
    query_kernel = np.zeros((5, 2), "float32")
    query_kernel[0, 0] = 100.0 * np.sqrt(2.0)
    scale_kernel = np.zeros((5, 2), "float32")
    scale_offset = np.array([0.0, np.log(3.0)], "float32")
    locator.query_kernel.assign(query_kernel)
    locator.query_bias.assign(np.zeros(2, "float32"))
    locator.scale_kernel.assign(scale_kernel)
    locator.scale_offset.assign(scale_offset)
    locator.key_kernel.assign(key_kernel)
    location, raw = locator(context, state, feature_map)
    location, raw = to_numpy(location), to_numpy(raw)
    # Cell 6 of a 3x4 map is row 1, column 2: x = -1 + 2 * 2/3, y = 0.
    np.testing.assert_allclose(location[0, :2], [1.0 / 3.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(location[0, 2:], [0.5 * 0.5, 0.5 * 0.75], atol=1e-6)
    np.testing.assert_allclose(raw[0], [np.arctanh(1.0 / 3.0), 0.0, 0.0, np.log(3.0)], atol=1e-3)
    # With a query of zero every cell weighs the same: the centre is the map's centre.
    locator.query_kernel.assign(np.zeros((5, 2), "float32"))
    centre = to_numpy(locator(context, state, feature_map)[0])[0, :2]
    np.testing.assert_allclose(centre, [0.0, 0.0], atol=1e-6)


def test_the_centre_follows_the_content_from_video_to_video():
    locator = SpatialGlimpseLocator(key_units=2, scale_bias=0.0)
    context, state = np.ones((2, 3), "float32"), np.zeros((2, 2), "float32")
    maps = np.concatenate([_one_hot_map(4, 4, cell=0), _one_hot_map(4, 4, cell=15)])
    locator(context, state, maps)
    key_kernel = np.zeros((4, 2), "float32")
    key_kernel[0, 0] = 1.0
    query_kernel = np.zeros((5, 2), "float32")
    query_kernel[0, 0] = 200.0
    locator.key_kernel.assign(key_kernel)
    locator.query_kernel.assign(query_kernel)
    locator.query_bias.assign(np.zeros(2, "float32"))
    location = to_numpy(locator(context, state, maps)[0])
    np.testing.assert_allclose(location[0, :2], [-1.0, -1.0], atol=1e-3)
    np.testing.assert_allclose(location[1, :2], [1.0, 1.0], atol=1e-3)


def test_the_centre_is_differentiable_in_the_keys_the_query_and_the_map():
    keras.utils.set_random_seed(0)
    locator = SpatialGlimpseLocator(key_units=3)
    rng = np.random.default_rng(0)
    context = rng.normal(size=(2, 3)).astype("float32")
    state = rng.normal(size=(2, 2)).astype("float32")
    feature_map = keras.ops.convert_to_tensor(rng.normal(size=(2, 3, 3, 4)).astype("float32"))
    locator(context, state, feature_map)

    def centre_x(key_kernel, query_kernel):
        return keras.ops.sum(locator(context, state, feature_map)[0][:, 0])

    grads = gradients(centre_x, [locator.key_kernel, locator.query_kernel])
    assert all(grad is not None and float(np.abs(to_numpy(grad)).sum()) > 0 for grad in grads)


def test_keypoints_are_the_expected_positions_of_their_softmax():
    keypoints = SpatialKeypoints(2, initialization="keras")
    feature_map = np.zeros((1, 3, 3, 2), "float32")
    feature_map[0, 0, 2, 0] = 1.0  # channel 0 peaks at row 0, column 2: (x, y) = (1, -1)
    feature_map[0, 2, 0, 1] = 1.0  # channel 1 peaks at row 2, column 0: (-1, 1)
    keypoints(feature_map)
    keypoints.kernel.assign(np.eye(2, dtype="float32") * 50.0)
    np.testing.assert_allclose(to_numpy(keypoints(feature_map)), [[1.0, -1.0, -1.0, 1.0]], atol=1e-4)
    keypoints.kernel.assign(np.zeros((2, 2), "float32"))
    np.testing.assert_allclose(to_numpy(keypoints(feature_map)), np.zeros((1, 4)), atol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="key_units=0"):
        SpatialGlimpseLocator(key_units=0)
    with pytest.raises(ValueError, match="max_scale=2"):
        SpatialGlimpseLocator(max_scale=2)
    with pytest.raises(ValueError, match="num_keypoints=0"):
        SpatialKeypoints(0)


def test_config_round_trip_and_saving(tmp_path):
    locator = SpatialGlimpseLocator(key_units=5, scale_bias=0.0, max_scale=0.5, align_corners=False)
    assert_config_round_trip(locator)
    assert_config_round_trip(SpatialKeypoints(3, align_corners=False, initialization="keras"))
    context, state, feature_map = keras.Input((6,)), keras.Input((4,)), keras.Input((3, 3, 2))
    keypoints = SpatialKeypoints(2)(feature_map)
    model = keras.Model([context, state, feature_map],
                        [*locator(context, state, feature_map), keypoints])
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(3, 6)).astype("float32"), rng.normal(size=(3, 4)).astype("float32"),
              rng.normal(size=(3, 3, 3, 2)).astype("float32")]
    assert_save_load_same(model, inputs, tmp_path)
