"""Tests for glimpse_keras.models.backbone (tiny shapes, seconds)."""

import json

import keras
import numpy as np
import pytest

from glimpse_keras.models.backbone import (
    BACKBONE_PRESETS,
    I3D_TEMPORAL_KERNEL_SIZES,
    BackboneConfigError,
    InflatedConv3D,
    InflatedResNet3D,
    build_backbone,
)
from tests.models.model_checks import randomise_batch_norm


def _video(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _randomise(model, seed=0):
    """Random kernels plus non-trivial BatchNorm statistics."""
    rng = np.random.default_rng(seed)
    randomise_batch_norm(model, rng)
    for layer in model.layers:
        if isinstance(layer, InflatedConv3D):
            fan_in = np.prod(layer.kernel.shape[:-1])
            layer.kernel.assign(
                rng.normal(0, np.sqrt(2 / fan_in), layer.kernel.shape)
            )
            if layer.bias is not None:
                layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape))


def _reference_conv3d(x, kernel, stride):
    """Direct loops: PyTorch semantics, k//2 zero padding on every axis."""
    kt, kh, kw, _, cout = kernel.shape
    pt, ph, pw = kt // 2, kh // 2, kw // 2
    xp = np.pad(x, ((0, 0), (pt, pt), (ph, ph), (pw, pw), (0, 0)))
    batch, time, height, width, _ = x.shape
    out_h, out_w = (height + 2 * ph - kh) // stride + 1, (width + 2 * pw - kw) // stride + 1
    out = np.zeros((batch, time, out_h, out_w, cout))
    for t in range(time):
        for i in range(out_h):
            for j in range(out_w):
                patch = xp[:, t:t + kt, i * stride:i * stride + kh, j * stride:j * stride + kw]
                out[:, t, i, j] = np.tensordot(patch, kernel, axes=4)
    return out


# === InflatedConv3D ===


def test_layers_before_an_endpoint_are_the_earlier_stages():
    backbone = build_backbone("tiny", input_shape=(4, 64, 64, 3))
    before_res4 = backbone.layers_before("res4")
    assert {layer.name.split("_")[0] for layer in before_res4} == {"stem", "res2", "res3"}
    # Every layer of those stages, the input layer left out.
    assert len(before_res4) == sum(
        layer.name.startswith(("stem_", "res2_", "res3_")) for layer in backbone.layers
    )
    assert backbone.layers_before("stem") == []
    with pytest.raises(ValueError, match="'res6'"):
        backbone.layers_before("res6")


@pytest.mark.parametrize("implementation", ["conv3d", "frames"])
@pytest.mark.parametrize("kernel_size,stride", [((3, 3, 3), 1), ((3, 3, 3), 2),
                                                ((1, 7, 7), 2), ((1, 1, 1), 2),
                                                ((5, 1, 1), 1)])
def test_inflated_conv_matches_pytorch_style_reference(implementation, kernel_size, stride):
    x = _video((2, 4, 6, 6, 3))
    layer = InflatedConv3D(5, kernel_size, strides=stride, use_bias=True,
                           implementation=implementation)
    layer.build(x.shape)
    rng = np.random.default_rng(1)
    layer.kernel.assign(rng.normal(size=layer.kernel.shape))
    layer.bias.assign(rng.normal(size=(5,)))
    expected = _reference_conv3d(x, layer.kernel.numpy(), stride) + layer.bias.numpy()
    result = keras.ops.convert_to_numpy(layer(x))
    assert result.shape == expected.shape == (2, 4, 6 // stride, 6 // stride, 5)
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("implementation", ["conv3d", "frames"])
def test_dilated_conv_equals_the_spread_kernel(implementation):
    # A 3x3 kernel dilated by 2 is the 5x5 kernel with zeros between its taps.
    x = _video((1, 3, 7, 7, 2))
    layer = InflatedConv3D(3, (3, 3, 3), dilation_rate=2, implementation=implementation)
    layer.build(x.shape)
    kernel = np.random.default_rng(1).normal(size=layer.kernel.shape)
    layer.kernel.assign(kernel)
    spread = np.zeros((3, 5, 5, 2, 3))
    spread[:, ::2, ::2] = kernel
    expected = _reference_conv3d(x, spread, 1)
    result = keras.ops.convert_to_numpy(layer(x))
    assert result.shape == (1, 3, 7, 7, 3)
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs,message",
    [({"dilation_rate": 2, "strides": 2}, "strides=2 with dilation_rate=2"),
     ({"dilation_rate": 0}, "`dilation_rate` must be a positive int, received dilation_rate=0")],
)
def test_inflated_conv_rejects_bad_dilation(kwargs, message):
    with pytest.raises(BackboneConfigError, match=message):
        InflatedConv3D(4, (3, 3, 3), **kwargs)


def test_inflated_conv_rejects_even_kernel():
    with pytest.raises(BackboneConfigError, match=r"\(2, 3, 3\)"):
        InflatedConv3D(4, (2, 3, 3))


# === Model shapes ===


def test_tiny_preset_endpoints():
    backbone = build_backbone("tiny", input_shape=(4, 64, 64, 3))
    outputs = backbone(_video((2, 4, 64, 64, 3)))
    assert sorted(outputs) == ["res4", "res5"]
    assert tuple(outputs["res4"].shape) == (2, 4, 4, 4, backbone.res4_channels)
    assert tuple(outputs["res5"].shape) == (2, 4, 2, 2, backbone.res5_channels)
    assert (backbone.res4_channels, backbone.res5_channels) == (128, 256)


@pytest.mark.parametrize("implementation", ["conv3d", "frames"])
def test_all_endpoints_dynamic_shape_keras_layout(implementation):
    backbone = build_backbone(
        "tiny", stride_layout="keras", use_conv_bias=True,
        conv_implementation=implementation,
        output_endpoints=("stem", "res2", "res3", "res4", "res5"),
        input_shape=(None, None, None, 3),
    )
    outputs = backbone(_video((1, 3, 32, 64, 3)))
    shapes = {name: tuple(value.shape) for name, value in outputs.items()}
    assert shapes == {
        "stem": (1, 3, 8, 16, 8), "res2": (1, 3, 8, 16, 32),
        "res3": (1, 3, 4, 8, 64), "res4": (1, 3, 2, 4, 128),
        "res5": (1, 3, 1, 2, 256),
    }


@pytest.mark.parametrize("output_stride,res4_side,res5_side", [(32, 4, 2), (16, 4, 4), (8, 8, 8)])
def test_output_stride_sets_the_map_sizes_with_the_same_weights(output_stride, res4_side, res5_side):
    reference = build_backbone("tiny", input_shape=(2, 64, 64, 3))
    backbone = build_backbone("tiny", input_shape=(2, 64, 64, 3), output_stride=output_stride)
    outputs = backbone(_video((1, 2, 64, 64, 3)))
    assert outputs["res4"].shape[2:4] == (res4_side, res4_side)
    assert outputs["res5"].shape[2:4] == (res5_side, res5_side)
    assert [w.shape for w in backbone.weights] == [w.shape for w in reference.weights]
    dilations = {layer.name: layer.dilation_rate for layer in backbone.layers if isinstance(layer, InflatedConv3D)}
    expected_res5 = {32: 1, 16: 2, 8: 4}[output_stride]
    assert dilations["res5_block1_conv2"] == expected_res5
    assert dilations["res4_block1_conv2"] == (2 if output_stride == 8 else 1)
    assert dilations["res3_block1_conv2"] == 1


def test_output_stride_without_dilation_only_drops_the_strides():
    backbone = build_backbone("tiny", input_shape=(2, 64, 64, 3), output_stride=8, output_stride_dilation=False)
    outputs = backbone(_video((1, 2, 64, 64, 3)))
    assert outputs["res5"].shape[2:4] == (8, 8)
    assert {layer.dilation_rate for layer in backbone.layers if isinstance(layer, InflatedConv3D)} == {1}
    rebuilt = InflatedResNet3D.from_config(backbone.get_config())
    assert rebuilt.output_stride == 8 and rebuilt.output_stride_dilation is False


def test_output_stride_rejects_other_values():
    with pytest.raises(BackboneConfigError, match="output_stride must be one of .*received 4"):
        build_backbone("tiny", output_stride=4)


def test_stride_layout_places_the_stride():
    torchvision = build_backbone("tiny", input_shape=(2, 64, 64, 3),
                                 output_endpoints=("res3",))
    keras_style = build_backbone("tiny", input_shape=(2, 64, 64, 3),
                                 output_endpoints=("res3",), stride_layout="keras")
    assert torchvision.get_layer("res3_block1_conv1").strides == 1
    assert torchvision.get_layer("res3_block1_conv2").strides == 2
    assert keras_style.get_layer("res3_block1_conv1").strides == 2
    assert keras_style.get_layer("res3_block1_conv2").strides == 1
    assert torchvision.get_layer("res2_block1_conv2").strides == 1
    # Stages after the deepest endpoint are not built.
    assert "res4_block1_conv1" not in {layer.name for layer in torchvision.layers}


def test_i3d_temporal_pattern_reduced_width():
    backbone = InflatedResNet3D(
        stackwise_num_filters=(2, 4, 8, 16), stem_filters=4,
        temporal_kernel_sizes=I3D_TEMPORAL_KERNEL_SIZES,
        input_shape=(3, 32, 32, 3),
    )
    for stage, sizes in zip(("res2", "res3", "res4", "res5"), I3D_TEMPORAL_KERNEL_SIZES):
        for block, size in enumerate(sizes, start=1):
            layer = backbone.get_layer(f"{stage}_block{block}_conv2")
            assert layer.kernel_size == (size, 3, 3)
    outputs = backbone(_video((1, 3, 32, 32, 3)))
    assert tuple(outputs["res5"].shape) == (1, 3, 1, 1, 64)


def test_temporal_receptive_field():
    """kt=1 keeps frames independent; kt=3 mixes neighbouring frames."""
    video = _video((1, 5, 32, 32, 3))
    changed = video.copy()
    changed[:, 0] += 1.0
    for kt, expect_mixing in ((1, False), (3, True)):
        backbone = build_backbone("tiny", input_shape=(5, 32, 32, 3),
                                  temporal_kernel_sizes=kt, output_endpoints=("res2",))
        _randomise(backbone)
        before = np.asarray(backbone(video)["res2"])
        after = np.asarray(backbone(changed)["res2"])
        assert np.abs(after[:, 0] - before[:, 0]).max() > 1e-3
        np.testing.assert_array_equal(after[:, 2:], before[:, 2:])
        assert (np.abs(after[:, 1] - before[:, 1]).max() > 1e-3) == expect_mixing


def test_implementations_agree_on_a_model():
    video = _video((2, 3, 64, 64, 3))
    outputs = {}
    for implementation in ("conv3d", "frames"):
        backbone = build_backbone("tiny", input_shape=(3, 64, 64, 3),
                                  conv_implementation=implementation)
        _randomise(backbone)
        outputs[implementation] = backbone(video)
    for name in ("res4", "res5"):
        np.testing.assert_allclose(outputs["frames"][name], outputs["conv3d"][name],
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.slow_on_jax
def test_resnet50_parameter_counts():
    # torchvision resnet50 has 23,508,032 parameters without fc; inflating
    # every 3x3 to 3x3x3 adds twice the 3x3 kernels (11,317,248).
    backbone = build_backbone("resnet50")
    trainable = sum(int(np.prod(w.shape)) for w in backbone.trainable_weights)
    assert trainable == 23_508_032 + 2 * 11_317_248
    keras_style = build_backbone("resnet50_keras")
    trainable = sum(int(np.prod(w.shape)) for w in keras_style.trainable_weights)
    # keras.applications.ResNet50(include_top=False) trainable: 23,534,592.
    assert trainable == 23_534_592 + 2 * 11_317_248
    assert (backbone.res4_channels, backbone.res5_channels) == (1024, 2048)


# === Golden numbers ===


def test_golden_numbers_deterministic_weights():
    """Regression pin: deterministic weights and input, fixed output numbers."""
    backbone = build_backbone("tiny", input_shape=(2, 32, 32, 3))
    for index, weight in enumerate(backbone.weights):
        size = int(np.prod(weight.shape))
        pattern = np.sin(np.arange(size) * 0.37 + index)
        if "variance" in weight.path:
            pattern = 1.0 + 0.5 * np.abs(pattern)
        elif "kernel" in weight.path:
            pattern = pattern / np.sqrt(np.prod(weight.shape[:-1]))
        weight.assign(pattern.reshape(weight.shape).astype("float32"))
    video = np.cos(np.arange(2 * 32 * 32 * 3) * 0.05).reshape(1, 2, 32, 32, 3)
    outputs = backbone(video.astype("float32"))
    res4, res5 = np.asarray(outputs["res4"]), np.asarray(outputs["res5"])
    np.testing.assert_allclose(
        [res4.sum(), res4[0, 1, 1, 0, :4].sum(), res5.sum(), res5[0, 0, 0, 0, 0],
         res5[0, 1, 0, 0, 9]],
        [502.62292, 4.156905, 295.41824, 2.0414443, 0.41625488], rtol=1e-4,
    )


# === Config and saving ===


@pytest.mark.parametrize("overrides", [
    {},
    {"stride_layout": "keras", "use_conv_bias": True, "bn_epsilon": 1.001e-5,
     "temporal_kernel_sizes": [1, 3, [3], 1], "dtype": "mixed_bfloat16",
     "output_endpoints": ("res3", "res5"), "conv_implementation": "frames", "output_stride": 16},
])
def test_config_round_trip_is_json_identical(overrides):
    backbone = build_backbone("tiny", input_shape=(2, 32, 32, 3), **overrides)
    config = backbone.get_config()
    restored = InflatedResNet3D.from_config(config)
    assert isinstance(restored, InflatedResNet3D)
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    serialized = keras.saving.serialize_keras_object(backbone)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(revived, InflatedResNet3D)
    assert json.dumps(revived.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    assert set(dir(revived)) == set(dir(backbone))


def test_keras_file_save_load_same_outputs(tmp_path):
    backbone = build_backbone("tiny", input_shape=(None, 32, 32, 3),
                              stride_layout="keras", use_conv_bias=True)
    _randomise(backbone)
    video = _video((2, 3, 32, 32, 3))
    expected = backbone(video)
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, InflatedResNet3D)
    result = restored(video)
    for name in ("res4", "res5"):
        np.testing.assert_allclose(result[name], expected[name], rtol=1e-6, atol=1e-6)


def test_mixed_bfloat16_policy():
    backbone = build_backbone("tiny", input_shape=(2, 32, 32, 3), dtype="mixed_bfloat16")
    outputs = backbone(_video((1, 2, 32, 32, 3)))
    assert outputs["res5"].dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in backbone.weights)


# === Validation ===


@pytest.mark.parametrize("kwargs,message", [
    ({"input_shape": (4, 48, 64, 3)}, "divisible by 32"),
    ({"temporal_kernel_sizes": [3, 2, 3, 3]}, r"\[2\]"),
    ({"temporal_kernel_sizes": [3, 3, 3]}, "one entry per stage"),
    ({"temporal_kernel_sizes": [3, [3, 3], 3, 3]}, r"\[3, 3\]"),
    ({"stride_layout": "caffe"}, "'caffe'"),
    ({"output_endpoints": ("res6",)}, "res6"),
    ({"conv_implementation": "fft"}, "'fft'"),
    ({"stackwise_num_blocks": (1, 1, 1)}, r"\[1, 1, 1\]"),
    ({"input_shape": (4, 64, 64, None)}, "C known"),
])
def test_invalid_arguments_name_the_value(kwargs, message):
    with pytest.raises(BackboneConfigError, match=message):
        build_backbone("tiny", **kwargs)


def test_unknown_preset():
    with pytest.raises(BackboneConfigError, match="'resnet18'"):
        build_backbone("resnet18")
    assert {"resnet50", "resnet50_keras", "tiny"} <= set(BACKBONE_PRESETS)
