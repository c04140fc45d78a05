import keras
import numpy as np
import pytest

from glimpse_keras.layers import WorkerClassifier
from tests.layers.layer_checks import assert_config_round_trip
from tests.layers.layer_checks import assert_save_load_same


def test_each_worker_uses_its_own_head():
    classifier = WorkerClassifier(num_classes=4, num_workers=3)
    states = np.random.default_rng(0).normal(size=(2, 5, 3, 6)).astype("float32")
    logits = np.asarray(classifier(states))
    assert logits.shape == (2, 5, 3, 4)
    kernel, bias = classifier.get_weights()
    for worker in range(3):
        np.testing.assert_allclose(
            logits[:, :, worker], states[:, :, worker] @ kernel[worker] + bias[worker], atol=1e-5
        )
    assert np.abs(kernel).max() <= 1 / np.sqrt(6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_classes"):
        WorkerClassifier(0, 3)
    with pytest.raises(ValueError, match="states must be"):
        WorkerClassifier(4, 3)(np.zeros((2, 2, 6), "float32"))


def test_config_round_trip_and_saving(tmp_path):
    classifier = WorkerClassifier(4, 2, initialization="keras")
    assert_config_round_trip(classifier)
    states = keras.Input((3, 2, 5))
    model = keras.Model(states, classifier(states))
    assert_save_load_same(
        model, np.random.default_rng(1).normal(size=(2, 3, 2, 5)).astype("float32"), tmp_path
    )
