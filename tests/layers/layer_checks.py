"""Shared checks for the glimpse layers: config round trip and .keras save/load."""

import json
import os

import keras
import numpy as np


def assert_config_round_trip(layer):
    """from_config(get_config()) rebuilds a layer with a JSON-identical config."""
    config = layer.get_config()
    rebuilt = type(layer).from_config(json.loads(json.dumps(config)))
    assert json.dumps(rebuilt.get_config(), sort_keys=True) == json.dumps(
        config, sort_keys=True
    )
    return rebuilt


def assert_save_load_same(model, inputs, directory, atol=1e-6):
    """A `.keras` save/load round trip gives the same outputs on `inputs`."""
    path = os.path.join(str(directory), "model.keras")
    expected = model(inputs)
    model.save(path)
    loaded = keras.models.load_model(path)
    actual = loaded(inputs)
    flat_expected = keras.tree.flatten(expected)
    flat_actual = keras.tree.flatten(actual)
    assert len(flat_expected) == len(flat_actual)
    for want, got in zip(flat_expected, flat_actual):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=atol)
    return loaded
