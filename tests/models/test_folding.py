"""BatchNorm folding: hand-computed weights and parity of the folded copies."""

import keras
import numpy as np
import pytest

from glimpse_keras.layers import GlimpseCloudsCore
from glimpse_keras.models.backbone import build_backbone
from glimpse_keras.models.folding import fold_backbone_batch_norm
from glimpse_keras.models.folding import fold_model_batch_norm
from glimpse_keras.models.folding import folded_conv_weights
from glimpse_keras.models.glimpse_clouds import GLOBAL_VARIANTS, GlimpseClouds
from tests.models.model_checks import randomise_batch_norm

VIDEO_SHAPE = (2, 32, 32, 3)


def test_folded_conv_weights_hand_computed():
    # One input channel, two filters: s = gamma / sqrt(var + eps).
    kernel = np.array([[2.0, -1.0]])
    gamma, beta = np.array([3.0, 0.5]), np.array([1.0, -2.0])
    mean, variance, epsilon = np.array([0.5, 4.0]), np.array([8.0, 0.0]), 1.0
    # s = [3 / 3, 0.5 / 1] = [1, 0.5]
    new_kernel, new_bias = folded_conv_weights(kernel, None, gamma, beta, mean, variance, epsilon)
    np.testing.assert_allclose(new_kernel, [[2.0, -0.5]])
    np.testing.assert_allclose(new_bias, [1.0 - 0.5, -2.0 - 2.0])
    # A convolution bias b shifts before the normalisation: (b - mean) * s + beta.
    _, new_bias = folded_conv_weights(kernel, np.array([1.5, 2.0]), gamma, beta, mean, variance, epsilon)
    np.testing.assert_allclose(new_bias, [1.0 + 1.0, -2.0 - 1.0])
    assert new_kernel.dtype == np.float32


@pytest.mark.parametrize("preset,output_stride", [("tiny", 32), ("tiny", 16), ("resnet50_keras", 32)])
def test_folded_backbone_equals_inference_mode(preset, output_stride):
    overrides = {"input_shape": VIDEO_SHAPE, "output_stride": output_stride}
    if preset != "tiny":  # the conv-bias layout, kept small
        overrides.update(stackwise_num_blocks=(1, 1, 1, 1), stackwise_num_filters=(4, 8, 8, 8), stem_filters=4)
    keras.utils.set_random_seed(0)
    backbone = build_backbone(preset, **overrides)
    randomise_batch_norm(backbone, seed=1)
    if backbone.use_conv_bias:
        for layer in backbone.layers:
            if getattr(layer, "bias", None) is not None:
                layer.bias.assign(np.random.default_rng(2).uniform(-0.5, 0.5, layer.bias.shape))
    folded = fold_backbone_batch_norm(backbone)
    video = np.random.default_rng(3).normal(size=(2,) + VIDEO_SHAPE).astype("float32")
    expected = backbone(video, training=False)
    actual = folded(video, training=False)
    for name in ("res4", "res5"):
        scale = np.abs(expected[name]).max()
        assert scale > 0.1
        np.testing.assert_allclose(actual[name], expected[name], atol=2e-5 * scale)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    assert folded.fold_batch_norm and not folded.trainable
    assert backbone.get_layer("stem_bn") is not None  # the original is untouched


def test_folded_backbone_config_round_trips():
    folded = fold_backbone_batch_norm(build_backbone("tiny", input_shape=VIDEO_SHAPE))
    rebuilt = type(folded).from_config(folded.get_config())
    assert rebuilt.fold_batch_norm
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in folded.weights]


def test_folding_twice_is_refused():
    folded = fold_backbone_batch_norm(build_backbone("tiny", input_shape=VIDEO_SHAPE))
    with pytest.raises(ValueError, match="already folded"):
        fold_backbone_batch_norm(folded)
    with pytest.raises(ValueError, match="InflatedResNet3D"):
        fold_backbone_batch_norm(keras.Sequential([keras.layers.Dense(2)]))


@pytest.mark.parametrize("variant", ["global", "global_pose", "glimpse_clouds"])
def test_folded_model_equals_the_model(variant):
    keras.utils.set_random_seed(4)
    backbone = build_backbone("tiny", input_shape=VIDEO_SHAPE)
    if variant in GLOBAL_VARIANTS:
        glimpses = {"num_glimpses": 2, "num_workers": 2}
    else:
        glimpses = {"core": GlimpseCloudsCore(num_glimpses=2, num_workers=2, zoomer_units=8, worker_units=8,
                                              fusion_hidden_units=4)}
    model = GlimpseClouds(num_classes=5, backbone=backbone, variant=variant, **glimpses)
    model.build((None,) + VIDEO_SHAPE)
    randomise_batch_norm(model.backbone, seed=5)
    folded = fold_model_batch_norm(model)
    video = np.random.default_rng(6).integers(0, 256, (3,) + VIDEO_SHAPE).astype("uint8")
    expected = model(video, training=False)
    actual = folded(video, training=False)
    for key in ("logits", "pose", "locations", "assignments"):
        np.testing.assert_allclose(actual[key], expected[key], atol=1e-4, err_msg=key)
    assert np.ptp(np.asarray(expected["logits"])) > 1e-3  # not a constant output
    assert folded.backbone.fold_batch_norm and not model.backbone.fold_batch_norm


def test_unbuilt_model_is_refused():
    model = GlimpseClouds(num_classes=3, backbone="tiny", variant="global")
    with pytest.raises(ValueError, match="must be built"):
        fold_model_batch_norm(model)
