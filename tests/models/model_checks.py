"""Helpers shared by the model tests."""

import keras
import numpy as np


def randomise_batch_norm(model, seed):
    """Gives every BatchNorm of `model` trained-like statistics.

    Fresh statistics (mean 0, variance 1, gamma 1, beta 0) make BN nearly the
    identity in inference mode, which would hide a conversion, inflation or
    folding that mishandles one of the four vectors.

    Args:
        model: a Keras model whose `layers` hold the BatchNormalization layers.
        seed: int, or a `np.random.Generator` to draw from (and advance).
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, size))
            layer.beta.assign(rng.uniform(-0.3, 0.3, size))
            layer.moving_mean.assign(rng.uniform(-0.3, 0.3, size))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, size))
