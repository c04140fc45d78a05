"""Tests for glimpse_keras.models.inflation: kernels, parity with 2D networks, errors."""

import keras
import numpy as np
import pytest

from glimpse_keras.models.backbone import I3D_TEMPORAL_KERNEL_SIZES, build_backbone
from glimpse_keras.models.inflation import (
    InflationError,
    conv_bn_pairs,
    convert_torchvision_state_dict,
    inflate_from_keras_resnet50,
    inflate_kernel,
    load_imagenet_weights,
)
from tests.models.model_checks import randomise_batch_norm


def _randomise_2d(model, seed=0):
    """Random BN statistics/affine and conv biases so parity is not trivial."""
    rng = np.random.default_rng(seed)
    randomise_batch_norm(model, rng)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            fan_in = np.prod(layer.kernel.shape[:-1])
            layer.kernel.assign(rng.normal(0, np.sqrt(2 / fan_in), layer.kernel.shape))
            if layer.use_bias:
                layer.bias.assign(rng.normal(0, 0.2, layer.bias.shape))


def _frames(count, size, seed=0):
    return np.random.default_rng(seed).normal(size=(count, size, size, 3)).astype("float32")


def _assert_close_relative(actual, expected, rtol=1e-4):
    scale = np.abs(expected).max()
    assert scale > 1e-3, "reference features are degenerate"
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


# === Kernels ===


def test_inflate_kernel_centre_and_mean():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 2, 4)).astype("float32")
    centre = inflate_kernel(kernel, 3, "centre")
    assert centre.shape == (3, 3, 3, 2, 4)
    np.testing.assert_array_equal(centre[1], kernel)
    np.testing.assert_array_equal(centre[[0, 2]], 0)
    np.testing.assert_array_equal(inflate_kernel(kernel, 3, "center"), centre)
    mean = inflate_kernel(kernel, 5, "mean")
    np.testing.assert_allclose(mean, np.broadcast_to(kernel / 5, (5, 3, 3, 2, 4)))
    np.testing.assert_allclose(mean.sum(axis=0), kernel, rtol=1e-6)
    np.testing.assert_array_equal(inflate_kernel(kernel, 1, "mean")[0], kernel)
    with pytest.raises(InflationError, match="'average'"):
        inflate_kernel(kernel, 3, "average")


# === keras.applications.ResNet50 ===


@pytest.fixture(scope="module")
def resnet2d():
    model = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    _randomise_2d(model)
    return keras.Model(
        model.input,
        {"res4": model.get_layer("conv4_block6_out").output,
         "res5": model.get_layer("conv5_block3_out").output},
        name=model.name,
    )


@pytest.mark.slow_on_jax
def test_keras_centre_inflation_equals_framewise_2d(resnet2d):
    frames = _frames(3, 64)
    backbone = build_backbone("resnet50_keras", input_shape=(3, 64, 64, 3))
    mapping = inflate_from_keras_resnet50(backbone, resnet2d, mode="centre")
    assert mapping["res3_block1_shortcut_conv"] == "conv3_block1_0_conv"
    assert mapping["res5_block3_bn2"] == "conv5_block3_2_bn"
    assert len(mapping) == 2 * 53
    features = backbone(frames[None])
    reference = resnet2d(frames)
    for name in ("res4", "res5"):
        _assert_close_relative(np.asarray(features[name])[0], np.asarray(reference[name]))


@pytest.mark.slow_on_jax
def test_keras_mean_inflation_static_video_interior(resnet2d):
    # I3D pattern: 9 temporal convs up to res5, 8 up to res4; with zero temporal
    # padding a frame matches the 2D network iff it is that far from the borders.
    frame = _frames(1, 64, seed=3)
    time = 19
    backbone = build_backbone(
        "resnet50_keras", input_shape=(time, 64, 64, 3),
        temporal_kernel_sizes=I3D_TEMPORAL_KERNEL_SIZES,
    )
    inflate_from_keras_resnet50(backbone, resnet2d, mode="mean")
    assert backbone.get_layer("res3_block2_conv2").kernel.shape[0] == 1
    features = backbone(np.repeat(frame[None], time, axis=1))
    reference = resnet2d(frame)
    for name, depth in (("res4", 8), ("res5", 9)):
        result = np.asarray(features[name])[0]
        expected = np.asarray(reference[name])[0]
        for t in range(depth, time - depth):
            _assert_close_relative(result[t], expected)
        # The zero-padded border frame sees a different (partial) kernel sum.
        assert np.abs(result[0] - expected).max() > 1e-2 * np.abs(expected).max()


@pytest.mark.slow_on_jax
def test_keras_inflation_rejects_wrong_layouts(resnet2d):
    torchvision_style = build_backbone("resnet50", input_shape=(1, 64, 64, 3))
    with pytest.raises(InflationError, match="stride_layout='keras'"):
        inflate_from_keras_resnet50(torchvision_style, resnet2d)
    tiny = build_backbone("tiny", stride_layout="keras", use_conv_bias=True)
    with pytest.raises(InflationError, match=r"conv1_conv -> stem_conv.*\(7, 7, 3, 64\)"):
        inflate_from_keras_resnet50(tiny, resnet2d)
    shallow = build_backbone("resnet50_keras", output_endpoints=("res4",))
    with pytest.raises(InflationError, match="conv5_block1_0_bn"):
        inflate_from_keras_resnet50(shallow, resnet2d)


# === torchvision state_dict ===


def _torchvision_style_2d(blocks, widths, stem, expansion=4):
    """Independent 2D reference: stride on the 3x3, no bias, eps 1e-5, torch padding."""
    inputs = keras.Input((64, 64, 3))
    layers = {}

    def conv_bn(x, filters, kernel, stride, name, bn_name):
        if kernel > 1:
            x = keras.layers.ZeroPadding2D(kernel // 2)(x)
        conv = keras.layers.Conv2D(filters, kernel, stride, use_bias=False)
        bn = keras.layers.BatchNormalization(epsilon=1e-5)
        layers[name], layers[bn_name] = conv, bn
        return bn(conv(x))

    x = keras.layers.ReLU()(conv_bn(inputs, stem, 7, 2, "conv1", "bn1"))
    x = keras.layers.MaxPooling2D(3, 2)(keras.layers.ZeroPadding2D(1)(x))
    outputs = {}
    for stage, (count, width) in enumerate(zip(blocks, widths), start=1):
        for block in range(count):
            prefix = f"layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            shortcut = x
            if block == 0:
                shortcut = conv_bn(x, width * expansion, 1, stride,
                                   f"{prefix}.downsample.0", f"{prefix}.downsample.1")
            y = keras.layers.ReLU()(conv_bn(x, width, 1, 1, f"{prefix}.conv1", f"{prefix}.bn1"))
            y = keras.layers.ReLU()(
                conv_bn(y, width, 3, stride, f"{prefix}.conv2", f"{prefix}.bn2"))
            y = conv_bn(y, width * expansion, 1, 1, f"{prefix}.conv3", f"{prefix}.bn3")
            x = keras.layers.ReLU()(keras.layers.Add()([shortcut, y]))
        outputs[f"res{stage + 1}"] = x
    model = keras.Model(inputs, {"res4": outputs["res4"], "res5": outputs["res5"]})
    _randomise_2d(model, seed=5)
    state_dict = {"fc.weight": np.zeros((10, widths[-1] * expansion), np.float32),
                  "fc.bias": np.zeros((10,), np.float32)}
    for name, layer in layers.items():
        if isinstance(layer, keras.layers.Conv2D):
            state_dict[f"{name}.weight"] = np.transpose(layer.kernel.numpy(), (3, 2, 0, 1))
        else:
            gamma, beta, mean, var = layer.get_weights()
            state_dict.update({f"{name}.weight": gamma, f"{name}.bias": beta,
                               f"{name}.running_mean": mean, f"{name}.running_var": var,
                               f"{name}.num_batches_tracked": np.array(7)})
    return model, state_dict


@pytest.fixture(scope="module")
def torchvision_tiny():
    return _torchvision_style_2d((1, 1, 1, 1), (8, 16, 32, 64), 8)


def test_torchvision_centre_conversion_equals_framewise_2d(torchvision_tiny):
    reference_model, state_dict = torchvision_tiny
    backbone = build_backbone("tiny", input_shape=(2, 64, 64, 3))
    mapping = convert_torchvision_state_dict(backbone, state_dict, mode="centre")
    assert mapping["res2_block1_shortcut_conv"] == "layer1.0.downsample.0"
    assert mapping["stem_bn"] == "bn1"
    kernel = backbone.get_layer("res3_block1_conv2").kernel.numpy()
    source = np.transpose(state_dict["layer2.0.conv2.weight"], (2, 3, 1, 0))
    np.testing.assert_array_equal(kernel[1], source)
    np.testing.assert_array_equal(kernel[[0, 2]], 0)
    frames = _frames(2, 64, seed=4)
    features = backbone(frames[None])
    reference = reference_model(frames)
    for name in ("res4", "res5"):
        _assert_close_relative(np.asarray(features[name])[0], np.asarray(reference[name]))


def test_torchvision_mean_conversion_and_5d_kernels(torchvision_tiny):
    _, state_dict = torchvision_tiny
    backbone = build_backbone("tiny", input_shape=(2, 32, 32, 3))
    convert_torchvision_state_dict(backbone, state_dict, mode="mean")
    source = np.transpose(state_dict["layer4.0.conv2.weight"], (2, 3, 1, 0))
    kernel = backbone.get_layer("res5_block1_conv2").kernel.numpy()
    np.testing.assert_allclose(kernel, np.broadcast_to(source / 3, kernel.shape), rtol=1e-6)
    # An already inflated (OIDHW) checkpoint is copied as is.
    inflated = dict(state_dict)
    oidhw = np.random.default_rng(2).normal(size=(16, 16, 3, 3, 3)).astype("float32")
    inflated["layer2.0.conv2.weight"] = oidhw
    convert_torchvision_state_dict(backbone, inflated)
    np.testing.assert_array_equal(
        backbone.get_layer("res3_block1_conv2").kernel.numpy(),
        np.transpose(oidhw, (2, 3, 4, 1, 0)),
    )


def test_torchvision_conversion_errors(torchvision_tiny):
    _, state_dict = torchvision_tiny
    backbone = build_backbone("tiny", input_shape=(2, 32, 32, 3))
    missing = {k: v for k, v in state_dict.items() if k != "layer3.0.bn2.running_var"}
    with pytest.raises(InflationError, match="'layer3.0.bn2.running_var'"):
        convert_torchvision_state_dict(backbone, missing)
    wrong = dict(state_dict)
    wrong["layer1.0.conv3.weight"] = np.zeros((32, 4, 1, 1), np.float32)
    pattern = r"layer1.0.conv3.weight -> res2_block1_conv3.*\(1, 1, 4, 32\)"
    with pytest.raises(InflationError, match=pattern):
        convert_torchvision_state_dict(backbone, wrong)
    extra = dict(state_dict)
    extra["layer1.1.conv1.weight"] = np.zeros((8, 32, 1, 1), np.float32)
    with pytest.raises(InflationError, match="layer1.1.conv1.weight"):
        convert_torchvision_state_dict(backbone, extra)
    keras_style = build_backbone("tiny", stride_layout="keras")
    with pytest.raises(InflationError, match="stride_layout='torchvision'"):
        convert_torchvision_state_dict(keras_style, state_dict)
    with pytest.raises(InflationError, match="'nearest'"):
        convert_torchvision_state_dict(backbone, state_dict, mode="nearest")


def test_conv_bn_pairs_cover_every_backbone_conv():
    backbone = build_backbone("tiny", input_shape=(1, 32, 32, 3))
    pairs = conv_bn_pairs(backbone)
    convs = {layer.name for layer in backbone.layers if layer.name.endswith("conv")
             or "_conv" in layer.name}
    assert {pair["conv"] for pair in pairs} == convs
    assert len(pairs) == 1 + 4 * 4


# === Loading from a local file ===


def test_load_imagenet_weights_from_torchvision_npz(torchvision_tiny, tmp_path):
    reference_model, state_dict = torchvision_tiny
    path = str(tmp_path / "resnet.npz")
    np.savez(path, **state_dict)
    backbone = build_backbone("tiny", input_shape=(2, 64, 64, 3))
    load_imagenet_weights(backbone, path, mode="centre")
    frames = _frames(2, 64, seed=5)
    features = backbone(frames[None])
    reference = reference_model(frames)
    _assert_close_relative(np.asarray(features["res5"])[0], np.asarray(reference["res5"]))


@pytest.mark.slow_on_jax
def test_load_imagenet_weights_from_keras_h5(tmp_path):
    source = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    _randomise_2d(source, seed=3)
    path = str(tmp_path / "resnet50_notop.weights.h5")
    source.save_weights(path)
    backbone = build_backbone("resnet50_keras", input_shape=(1, 64, 64, 3))
    load_imagenet_weights(backbone, path, mode="mean")
    kernel = backbone.get_layer("res4_block2_conv2").kernel.numpy()
    expected = source.get_layer("conv4_block2_2_conv").kernel.numpy() / kernel.shape[0]
    for index in range(kernel.shape[0]):
        np.testing.assert_allclose(kernel[index], expected, rtol=1e-6)


def test_load_imagenet_weights_errors_name_the_file(tmp_path):
    backbone = build_backbone("tiny", input_shape=(2, 64, 64, 3))
    with pytest.raises(InflationError, match="missing.h5.*does not exist"):
        load_imagenet_weights(backbone, str(tmp_path / "missing.h5"))
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(InflationError, match="weights.bin.*expected a Keras ResNet50 .h5"):
        load_imagenet_weights(backbone, str(other))
