import math

import keras
import numpy as np
import pytest

from glimpse_keras.layers import GlimpseCrop
from tests.backend_testing import float64_enabled
from tests.backend_testing import gradients
from tests.layers.layer_checks import assert_config_round_trip
from tests.layers.layer_checks import assert_save_load_same


def reference_crop(feature_map, locations, k, align_corners=True):
    """Scalar-loop bilinear sampler with zero padding (grid_sample semantics)."""
    batch, height, width, channels = feature_map.shape
    num = locations.shape[1]
    out = np.zeros((batch, num, k, k, channels))
    base = np.linspace(-1.0, 1.0, k) if k > 1 else np.zeros(1)

    def to_pixel(u, size):
        if align_corners:
            return (u + 1.0) / 2.0 * (size - 1)
        return ((u + 1.0) * size - 1.0) / 2.0

    for b in range(batch):
        for n in range(num):
            x, y, sx, sy = locations[b, n]
            for i in range(k):
                py = to_pixel(sy * base[i] + y, height)
                for j in range(k):
                    px = to_pixel(sx * base[j] + x, width)
                    x0, y0 = math.floor(px), math.floor(py)
                    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
                        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
                            if 0 <= yy < height and 0 <= xx < width:
                                out[b, n, i, j] += wy * wx * feature_map[b, yy, xx]
    return out


def ramp(height=5, width=5):
    """f[y, x] = x + 10 y, shape (1, height, width, 1)."""
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return (xs + 10.0 * ys).astype("float32")[None, :, :, None]


def test_identity_location_returns_the_map():
    feature_map = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype("float32")
    locations = np.tile(np.array([0.0, 0.0, 1.0, 1.0], "float32"), (2, 1, 1))
    out = GlimpseCrop()(feature_map, locations)
    assert out.shape == (2, 1, 5, 6, 3)
    np.testing.assert_allclose(out[:, 0], feature_map, atol=1e-6)


def test_half_scale_crop_of_ramp_is_hand_computed():
    locations = np.array([[[0.0, 0.0, 0.5, 0.5]]], "float32")
    out = np.asarray(GlimpseCrop(output_size=4)(ramp(), locations))[0, 0, :, :, 0]
    # Sample points 0.5 * (-1, -1/3, 1/3, 1) map to pixels (1, 5/3, 7/3, 3).
    pixels = np.array([1.0, 5.0 / 3.0, 7.0 / 3.0, 3.0])
    np.testing.assert_allclose(out, pixels[None, :] + 10.0 * pixels[:, None], atol=1e-5)


def test_samples_outside_the_map_are_zero():
    crop = GlimpseCrop(output_size=3)
    far = np.array([[[3.0, 3.0, 0.5, 0.5]]], "float32")
    np.testing.assert_array_equal(np.asarray(crop(ramp(), far)), 0.0)
    # Columns at pixels 3.5, 4.5, 5.5 on row 2: 3.5 + 20, half of (4 + 20), 0.
    edge = np.array([[[1.25, 0.0, 0.5, 0.0]]], "float32")
    row = np.asarray(crop(ramp(), edge))[0, 0, 1, :, 0]
    np.testing.assert_allclose(row, [23.5, 12.0, 0.0], atol=1e-5)


@pytest.mark.parametrize("align_corners", [True, False])
def test_matches_scalar_reference_sampler(align_corners):
    rng = np.random.default_rng(1)
    feature_map = rng.normal(size=(2, 4, 5, 3))
    locations = np.concatenate(
        [rng.uniform(-1.2, 1.2, size=(2, 3, 2)), rng.uniform(0.1, 1.3, size=(2, 3, 2))],
        axis=-1,
    )
    with float64_enabled():
        crop = GlimpseCrop(output_size=3, align_corners=align_corners, dtype="float64")
        np.testing.assert_allclose(
            np.asarray(crop(feature_map, locations)),
            reference_crop(feature_map, locations, 3, align_corners),
            atol=1e-10,
        )


def test_pooled_is_mean_of_crop_and_glimpses_are_independent():
    rng = np.random.default_rng(2)
    feature_map = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    locations = rng.uniform(-0.8, 0.8, size=(2, 3, 4)).astype("float32")
    full = np.asarray(GlimpseCrop(output_size=4)(feature_map, locations))
    pooled = np.asarray(GlimpseCrop(output_size=4, pooled=True)(feature_map, locations))
    np.testing.assert_allclose(pooled, full.mean(axis=(2, 3)), atol=1e-5)
    alone = np.asarray(GlimpseCrop(output_size=4)(feature_map, locations[:, 1:2]))
    np.testing.assert_allclose(alone[:, 0], full[:, 1], atol=1e-6)


def central_differences(function, base, count, step=1e-6):
    """Numerical gradient of `function` at `base` for its first `count` entries."""
    numeric = np.zeros_like(base)
    for flat in range(count):
        index = np.unravel_index(flat, base.shape)
        plus, minus = base.copy(), base.copy()
        plus[index] += step
        minus[index] -= step
        numeric[index] = (function(plus) - function(minus)) / (2 * step)
    return numeric


def test_gradients_match_finite_differences():
    with float64_enabled():
        _check_crop_gradients_against_finite_differences()


def _check_crop_gradients_against_finite_differences():
    rng = np.random.default_rng(3)
    feature_map = rng.normal(size=(1, 4, 5, 2))
    # Off-grid values keep every sample away from the kinks at integer pixels;
    # the second glimpse (scale 1.07) reaches outside the map.
    locations = np.array([[[0.13, -0.21, 0.61, 0.47], [-0.37, 0.29, 0.83, 1.07]]])
    crop = GlimpseCrop(output_size=3, dtype="float64")
    weights = rng.normal(size=(1, 2, 3, 3, 2))

    def loss(feature_map, locations):
        return keras.ops.sum(crop(feature_map, locations) * weights)

    grad_map, grad_loc = gradients(loss, [feature_map, locations])
    numeric_loc = central_differences(
        lambda loc: float(loss(feature_map, loc)), locations, 8
    )
    numeric_map = central_differences(
        lambda fmap: float(loss(fmap, locations)), feature_map, 40
    )
    np.testing.assert_allclose(grad_loc, numeric_loc, atol=1e-6)
    np.testing.assert_allclose(grad_map, numeric_map, atol=1e-6)
    assert np.abs(grad_loc).min() > 1e-4


def test_detach_location_stops_only_the_location_gradient():
    rng = np.random.default_rng(4)
    feature_map = rng.normal(size=(1, 4, 4, 2)).astype("float32")
    locations = np.array([[[0.1, 0.2, 0.6, 0.7]]], "float32")
    for detach in (False, True):
        crop = GlimpseCrop(output_size=3, detach_location=detach)

        def loss(feature_map, locations):
            out = crop(feature_map, locations)
            return keras.ops.sum(out * out)

        grad_map, grad_loc = gradients(loss, [feature_map, locations])
        assert np.abs(grad_map).sum() > 0
        if detach:
            assert grad_loc is None or np.all(grad_loc == 0)
        else:
            assert np.abs(grad_loc).sum() > 0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="output_size"):
        GlimpseCrop(output_size=0)
    with pytest.raises(ValueError, match="locations"):
        GlimpseCrop()(np.zeros((1, 4, 4, 2), "float32"), np.zeros((1, 2, 3), "float32"))
    with pytest.raises(ValueError, match="feature_map"):
        GlimpseCrop()(np.zeros((4, 4, 2), "float32"), np.zeros((1, 2, 4), "float32"))


def test_config_round_trip_and_saving(tmp_path):
    crop = GlimpseCrop(output_size=3, align_corners=False, detach_location=True, pooled=False)
    assert_config_round_trip(crop)
    feature_input = keras.Input((5, 5, 2))
    location_input = keras.Input((2, 4))
    output = crop(feature_input, location_input)
    assert output.shape == (None, 2, 3, 3, 2)
    model = keras.Model([feature_input, location_input], output)
    rng = np.random.default_rng(5)
    inputs = [
        rng.normal(size=(2, 5, 5, 2)).astype("float32"),
        rng.uniform(-1, 1, size=(2, 2, 4)).astype("float32"),
    ]
    assert_save_load_same(model, inputs, tmp_path)
