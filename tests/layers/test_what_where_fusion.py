import keras
import numpy as np
import pytest

from glimpse_keras.layers import WhatWhereFusion
from tests.layers.layer_checks import assert_config_round_trip
from tests.layers.layer_checks import assert_save_load_same


def _set_known_weights(fusion):
    hidden_kernel = np.array(
        [[1.0, -1.0, 0.5], [0.0, 2.0, -1.0], [1.0, 1.0, 1.0], [-2.0, 0.0, 0.5]], "float32"
    )
    hidden_bias = np.array([0.1, -0.2, 0.0], "float32")
    output_kernel = np.array([[1.0, 0.0], [0.5, -1.0], [-1.0, 2.0]], "float32")
    output_bias = np.array([0.5, -0.5], "float32")
    fusion.set_weights([hidden_kernel, hidden_bias, output_kernel, output_bias])
    return hidden_kernel, hidden_bias, output_kernel, output_bias


def test_golden_values_from_known_weights():
    fusion = WhatWhereFusion(hidden_units=3)
    features = np.array([[2.0, -3.0]], "float32")
    location = np.array([[0.5, -0.5, 0.8, 0.9]], "float32")
    fusion(features, location)
    _set_known_weights(fusion)
    # l W1 = (0.5 + 0.8 - 1.8, -0.5 - 1.0 + 0.8, 0.25 + 0.5 + 0.8 + 0.45)
    #      = (-0.5, -0.7, 2.0); relu(l W1 + b1) = (0, 0, 2.0)
    # Lambda = 2.0 * (-1, 2) + (0.5, -0.5) = (-1.5, 3.5); v = z * Lambda.
    np.testing.assert_allclose(fusion(features, location), [[-3.0, -10.5]], atol=1e-6)


def test_raw_location_option_selects_the_raw_vector():
    location = np.array([[0.5, -0.5, 0.8, 0.9]], "float32")
    raw = np.array([[0.0, 0.0, 0.0, 0.0]], "float32")
    features = np.array([[2.0, -3.0]], "float32")
    activated = WhatWhereFusion(hidden_units=3)
    uses_raw = WhatWhereFusion(hidden_units=3, raw_location_embedding=True)
    activated(features, location, raw)
    uses_raw(features, location, raw)
    _set_known_weights(activated)
    _, hidden_bias, output_kernel, output_bias = _set_known_weights(uses_raw)
    expected_raw = features * (np.maximum(hidden_bias, 0) @ output_kernel + output_bias)
    np.testing.assert_allclose(uses_raw(features, location, raw), expected_raw, atol=1e-6)
    np.testing.assert_allclose(activated(features, location, raw), [[-3.0, -10.5]], atol=1e-6)
    with pytest.raises(ValueError, match="raw_location"):
        uses_raw(features, location)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="hidden_units"):
        WhatWhereFusion(hidden_units=0)
    with pytest.raises(ValueError, match="initialization"):
        WhatWhereFusion(initialization="he")


def test_config_round_trip_and_saving(tmp_path):
    fusion = WhatWhereFusion(hidden_units=5, raw_location_embedding=True)
    assert_config_round_trip(fusion)
    features, location, raw = keras.Input((3, 7)), keras.Input((3, 4)), keras.Input((3, 4))
    output = fusion(features, location, raw)
    assert output.shape == (None, 3, 7)
    model = keras.Model([features, location, raw], output)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=s).astype("float32") for s in ((2, 3, 7), (2, 3, 4), (2, 3, 4))]
    assert_save_load_same(model, inputs, tmp_path)


def test_raw_location_embedding_is_the_config_name_and_use_raw_location_loads_from_old_configs():
    config = WhatWhereFusion(hidden_units=3, raw_location_embedding=True).get_config()
    assert config["raw_location_embedding"] is True and "use_raw_location" not in config
    with pytest.raises(ValueError, match="use_raw_location"):
        WhatWhereFusion(hidden_units=3, use_raw_location=True)
    # A layer saved with the old name (its config) loads.
    config["use_raw_location"] = config.pop("raw_location_embedding")
    assert WhatWhereFusion.from_config(config).raw_location_embedding
