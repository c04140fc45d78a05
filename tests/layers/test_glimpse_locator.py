import keras
import numpy as np
import pytest

from glimpse_keras.layers import GlimpseLocator
from tests.layers.layer_checks import assert_config_round_trip
from tests.layers.layer_checks import assert_save_load_same


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_golden_values_from_constant_weights():
    locator = GlimpseLocator()
    context = np.array([[1.0, -2.0, 0.5]], "float32")
    state = np.array([[0.25, -1.0]], "float32")
    locator(context, state)
    kernel = np.arange(20, dtype="float32").reshape(5, 4) / 20.0 - 0.5
    bias = np.array([0.2, -0.3, 0.5, -1.0], "float32")
    locator.set_weights([kernel, bias])
    location, raw = locator(context, state)
    # [c ; h] = (1, -2, 0.5, 0.25, -1): raw = joint @ kernel + bias.
    expected_raw = np.array([[1.0, -2.0, 0.5, 0.25, -1.0]]) @ kernel + bias
    np.testing.assert_allclose(raw, expected_raw, atol=1e-6)
    expected = np.concatenate(
        [np.tanh(expected_raw[:, :2]), sigmoid(expected_raw[:, 2:] + 3.0)], axis=-1
    )
    np.testing.assert_allclose(location, expected, atol=1e-6)


def test_initial_scale_is_about_095_and_torch_init_bounds():
    keras_init = GlimpseLocator(initialization="keras")
    location, _ = keras_init(np.zeros((2, 6), "float32"), np.zeros((2, 4), "float32"))
    np.testing.assert_allclose(location[:, 2:], sigmoid(3.0), atol=1e-6)
    np.testing.assert_allclose(location[:, :2], 0.0, atol=1e-6)
    torch_init = GlimpseLocator(initialization="torch")
    torch_init(np.zeros((2, 6), "float32"), np.zeros((2, 4), "float32"))
    kernel, bias = torch_init.get_weights()
    assert kernel.shape == (10, 4)
    assert np.abs(kernel).max() <= 1 / np.sqrt(10) and np.abs(bias).max() <= 1 / np.sqrt(10)
    assert np.abs(kernel).max() > 0.5 / np.sqrt(10)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="initialization"):
        GlimpseLocator(initialization="xavier")
    with pytest.raises(ValueError, match="scale_bias"):
        GlimpseLocator(scale_bias="3")


def test_config_round_trip_and_saving(tmp_path):
    locator = GlimpseLocator(scale_bias=2.0, initialization="keras")
    assert_config_round_trip(locator)
    context, state = keras.Input((6,)), keras.Input((4,))
    model = keras.Model([context, state], locator(context, state))
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(3, 6)).astype("float32"), rng.normal(size=(3, 4)).astype("float32")]
    assert_save_load_same(model, inputs, tmp_path)
