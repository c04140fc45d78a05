"""Inference-only copies with every BatchNorm folded into its convolution.

In inference mode a BatchNorm after a convolution is an affine map per output
channel, ``y = (conv(x) + b - mean) * gamma / sqrt(var + eps) + beta``, so
it can be folded into the convolution: kernel ``W * s`` and bias
``(b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``. The folded
network computes the same function (up to float rounding) without the
multiply/add passes over every activation map, and lets oneDNN fuse the bias
and ReLU into the convolution: ``benchmarks/model_speed.py`` measures the
gain. The copies are for inference only (serving, evaluation): they have no
batch statistics to train with.
"""

import keras
import numpy as np

from glimpse_keras.models.backbone import InflatedConv3D
from glimpse_keras.models.backbone import InflatedResNet3D


def _batch_norm_name(conv_name):
    """``res3_block1_conv2`` -> ``res3_block1_bn2``; ``stem_conv`` -> ``stem_bn``."""
    prefix, _, suffix = conv_name.rpartition("_conv")
    return f"{prefix}_bn{suffix}"


def folded_conv_weights(kernel, bias, gamma, beta, mean, variance, epsilon):
    """Kernel and bias of a convolution followed by an inference BatchNorm.

    Computed in float64 and returned as float32.

    Args:
        kernel: array ``(..., in_channels, filters)``.
        bias: array ``(filters,)`` or None (no convolution bias).
        gamma, beta, mean, variance: arrays ``(filters,)``, the BatchNorm's
            scale, offset, moving mean and moving variance.
        epsilon: float, the BatchNorm's epsilon.

    Returns:
        (kernel, bias): float32 arrays of the shapes ``kernel.shape`` and
        ``(filters,)``.
    """
    scale = np.asarray(gamma, "float64") / np.sqrt(
        np.asarray(variance, "float64") + float(epsilon)
    )
    offset = np.zeros_like(scale) if bias is None else np.asarray(bias, "float64")
    new_bias = (offset - np.asarray(mean, "float64")) * scale + np.asarray(beta, "float64")
    new_kernel = np.asarray(kernel, "float64") * scale
    return new_kernel.astype("float32"), new_bias.astype("float32")


def fold_backbone_batch_norm(backbone):
    """An inference-only copy of `backbone` with its BatchNorms folded.

    Args:
        backbone: a built ``InflatedResNet3D`` with BatchNorm layers.

    Returns:
        A new ``InflatedResNet3D`` (``fold_batch_norm=True``, not trainable)
        whose outputs equal ``backbone(x, training=False)`` up to float
        rounding. `backbone` is not modified.

    Raises:
        ValueError: if `backbone` is not an ``InflatedResNet3D`` or is
            already folded.
    """
    if not isinstance(backbone, InflatedResNet3D):
        raise ValueError(
            "fold_backbone_batch_norm needs an InflatedResNet3D, received "
            f"{type(backbone).__name__}."
        )
    if backbone.fold_batch_norm:
        raise ValueError(f"backbone {backbone.name!r} is already folded.")
    config = dict(backbone.get_config(), fold_batch_norm=True)
    config["name"] = f"{backbone.name}_folded"
    folded = InflatedResNet3D.from_config(config)
    for layer in folded.layers:
        if not isinstance(layer, InflatedConv3D):
            continue
        source = backbone.get_layer(layer.name)
        norm = backbone.get_layer(_batch_norm_name(layer.name))
        kernel, bias = folded_conv_weights(
            keras.ops.convert_to_numpy(source.kernel),
            None if source.bias is None else keras.ops.convert_to_numpy(source.bias),
            keras.ops.convert_to_numpy(norm.gamma),
            keras.ops.convert_to_numpy(norm.beta),
            keras.ops.convert_to_numpy(norm.moving_mean),
            keras.ops.convert_to_numpy(norm.moving_variance),
            norm.epsilon,
        )
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
    folded.trainable = False
    return folded


def fold_model_batch_norm(model):
    """An inference-only copy of a `GlimpseClouds` model, backbone folded.

    Every weight outside the backbone is copied unchanged.

    Args:
        model: a built ``GlimpseClouds``.

    Returns:
        A new built ``GlimpseClouds`` (not trainable) whose
        ``model(video, training=False)`` outputs equal the original's up to
        float rounding. `model` is not modified.

    Raises:
        ValueError: if the model is not built or its backbone is already
            folded.
    """
    if not model.built:
        raise ValueError(f"model {model.name!r} must be built before folding.")
    backbone = fold_backbone_batch_norm(model.backbone)
    config = dict(model.get_config(), backbone=backbone)
    folded = type(model).from_config(config)
    # The weights do not depend on T, H, W: the smallest clip the backbone
    # accepts builds them cheaply.
    time, height, width, channels = model.backbone.video_shape
    folded.build((None, time or 1, height or 32, width or 32, channels))
    sources = model._flatten_layers(include_self=False, recursive=False)
    targets = folded._flatten_layers(include_self=False, recursive=False)
    for source, target in zip(sources, targets):
        if source is model.backbone:
            continue
        if type(source) is not type(target) or source.name != target.name:
            raise ValueError(
                f"cannot pair layer {source.name!r} ({type(source).__name__}) "
                f"with {target.name!r} ({type(target).__name__}) while folding."
            )
        target.set_weights(source.get_weights())
    folded.trainable = False
    return folded
