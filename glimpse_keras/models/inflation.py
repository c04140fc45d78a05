"""Inflate 2D ResNet-50 ImageNet weights into an ``InflatedResNet3D``.

Two sources are supported, each into the backbone layout it matches:

* ``keras.applications.ResNet50`` (stride on the first 1x1, conv biases) into
  a ``"keras"`` stride-layout backbone (preset ``"resnet50_keras"``);
* a torchvision ResNet-50 ``state_dict`` (as numpy arrays; stride on the 3x3,
  no conv biases) into a ``"torchvision"`` backbone (preset ``"resnet50"``),
  converting OIHW kernels to HWIO and inflating them to DHWIO.

A 2D kernel ``W`` is inflated to temporal size ``kt`` either by ``"centre"``
(``W`` in the middle slice, zeros elsewhere: the 3D network then equals the
frame-wise 2D network on any video) or ``"mean"`` (``W / kt`` in every slice:
equal on a static video away from the zero-padded temporal borders).
BatchNorm parameters and statistics are copied unchanged; classifier weights
are ignored.
"""

import re

import numpy as np

from glimpse_keras.errors import GlimpseError
from glimpse_keras.models.backbone import STAGE_NAMES

INFLATION_MODES = ("centre", "mean")
_MODE_ALIASES = {"centre": "centre", "center": "centre", "mean": "mean"}


class InflationError(GlimpseError, ValueError):
    """Source weights do not fit the backbone (names the layer/key and shapes)."""


def _check_mode(mode):
    if mode not in _MODE_ALIASES:
        raise InflationError(
            f"mode must be one of {INFLATION_MODES} ('center' accepted), "
            f"received {mode!r}"
        )
    return _MODE_ALIASES[mode]


def inflate_kernel(kernel2d, temporal_size, mode="centre"):
    """Inflates a 2D HWIO kernel to a DHWIO kernel.

    Args:
        kernel2d: array ``(kh, kw, in_channels, out_channels)``.
        temporal_size: odd int ``kt``.
        mode: ``"centre"`` (``"center"``) or ``"mean"``.

    Returns:
        float32 array ``(kt, kh, kw, in_channels, out_channels)``.

    Raises:
        InflationError: unknown mode or a kernel that is not 4D.
    """
    mode = _check_mode(mode)
    kernel2d = np.asarray(kernel2d, dtype=np.float32)
    if kernel2d.ndim != 4:
        raise InflationError(f"expected a 4D HWIO kernel, received shape {kernel2d.shape}")
    if mode == "mean":
        return np.repeat(kernel2d[None] / temporal_size, temporal_size, axis=0)
    kernel3d = np.zeros((temporal_size,) + kernel2d.shape, np.float32)
    kernel3d[temporal_size // 2] = kernel2d
    return kernel3d


def conv_bn_pairs(backbone):
    """Lists the backbone's convolution/BatchNorm pairs with their source names.

    Args:
        backbone: InflatedResNet3D.

    Returns:
        list of dicts with keys ``conv``, ``bn`` (backbone layer names),
        ``keras_conv``, ``keras_bn`` (``keras.applications.ResNet50`` layer
        names) and ``torch`` (torchvision prefixes ``(conv, bn)``), stem first,
        then blocks in order.
    """
    pairs = [
        {
            "conv": "stem_conv", "bn": "stem_bn",
            "keras_conv": "conv1_conv", "keras_bn": "conv1_bn",
            "torch": ("conv1", "bn1"),
        }
    ]
    built = {layer.name for layer in backbone.layers}
    for stage_index, stage in enumerate(STAGE_NAMES):
        stage_number = stage_index + 2
        for block in range(1, backbone.stackwise_num_blocks[stage_index] + 1):
            prefix = f"{stage}_block{block}"
            if f"{prefix}_conv1" not in built:
                return pairs
            keras_prefix = f"conv{stage_number}_block{block}"
            torch_prefix = f"layer{stage_index + 1}.{block - 1}"
            if f"{prefix}_shortcut_conv" in built:
                pairs.append(
                    {
                        "conv": f"{prefix}_shortcut_conv",
                        "bn": f"{prefix}_shortcut_bn",
                        "keras_conv": f"{keras_prefix}_0_conv",
                        "keras_bn": f"{keras_prefix}_0_bn",
                        "torch": (
                            f"{torch_prefix}.downsample.0",
                            f"{torch_prefix}.downsample.1",
                        ),
                    }
                )
            for k in (1, 2, 3):
                pairs.append(
                    {
                        "conv": f"{prefix}_conv{k}", "bn": f"{prefix}_bn{k}",
                        "keras_conv": f"{keras_prefix}_{k}_conv",
                        "keras_bn": f"{keras_prefix}_{k}_bn",
                        "torch": (f"{torch_prefix}.conv{k}", f"{torch_prefix}.bn{k}"),
                    }
                )
    return pairs


def _check_layout(backbone, stride_layout, use_conv_bias, source, allow_layout_mismatch):
    if allow_layout_mismatch:
        return
    if backbone.stride_layout != stride_layout:
        raise InflationError(
            f"{source} weights need a backbone with stride_layout="
            f"{stride_layout!r}, this backbone has {backbone.stride_layout!r} "
            "(pass allow_layout_mismatch=True to load them anyway)"
        )
    if backbone.use_conv_bias != use_conv_bias:
        raise InflationError(
            f"{source} convolutions {'have' if use_conv_bias else 'have no'} "
            f"biases but the backbone has use_conv_bias={backbone.use_conv_bias} "
            "(pass allow_layout_mismatch=True to load them anyway)"
        )


def _set_conv(layer, kernel2d, bias, mode, source_name):
    kernel_shape = tuple(layer.kernel.shape)
    kernel2d = np.asarray(kernel2d, np.float32)
    if kernel2d.ndim == 5:
        kernel = kernel2d
    else:
        if tuple(kernel2d.shape) != kernel_shape[1:]:
            raise InflationError(
                f"{source_name} -> {layer.name}: 2D kernel shape "
                f"{tuple(kernel2d.shape)} does not fit {kernel_shape}"
            )
        kernel = inflate_kernel(kernel2d, kernel_shape[0], mode)
    if tuple(kernel.shape) != kernel_shape:
        raise InflationError(
            f"{source_name} -> {layer.name}: kernel shape {tuple(kernel.shape)} "
            f"does not fit {kernel_shape}"
        )
    layer.kernel.assign(kernel)
    if layer.bias is not None:
        if bias is None:
            raise InflationError(
                f"{source_name} -> {layer.name}: the backbone convolution has a "
                "bias but the source has none"
            )
        bias = np.asarray(bias, np.float32)
        if bias.shape != tuple(layer.bias.shape):
            raise InflationError(
                f"{source_name} -> {layer.name}: bias shape {bias.shape} does not "
                f"fit {tuple(layer.bias.shape)}"
            )
        layer.bias.assign(bias)


def _set_bn(layer, gamma, beta, mean, variance, source_name):
    values = [np.asarray(v, np.float32) for v in (gamma, beta, mean, variance)]
    expected = tuple(layer.gamma.shape)
    for label, value in zip(("gamma", "beta", "mean", "variance"), values):
        if value.shape != expected:
            raise InflationError(
                f"{source_name} -> {layer.name}: BatchNorm {label} shape "
                f"{value.shape} does not fit {expected}"
            )
    layer.set_weights(values)


def inflate_from_keras_resnet50(
    backbone, resnet2d, mode="centre", allow_layout_mismatch=False
):
    """Copies ``keras.applications.ResNet50`` conv/BN weights into the backbone.

    Every backbone convolution/BatchNorm gets the matching Keras layer
    (``conv{s}_block{j}_{k}_conv``, ``_0_`` for shortcuts, ``conv1_*`` for the
    stem); every Keras convolution must be used, so a depth mismatch is an
    error rather than a partial copy. The Keras ImageNet weights expect
    caffe-style BGR mean-subtracted inputs: feed the backbone accordingly.

    Args:
        backbone: InflatedResNet3D with ``stride_layout="keras"`` (preset
            ``"resnet50_keras"``), built up to the same stages as ``resnet2d``.
        resnet2d: a ``keras.applications.ResNet50`` model (any ``include_top``).
        mode: ``"centre"`` (``"center"``) or ``"mean"``.
        allow_layout_mismatch: copy into a ``"torchvision"`` layout backbone
            anyway (the result is then a different network).

    Returns:
        dict backbone layer name -> source layer name, for every layer set.

    Raises:
        InflationError: wrong layout or mode, a missing or unused source layer,
            or a shape mismatch (naming the layers and shapes).
    """
    mode = _check_mode(mode)
    _check_layout(backbone, "keras", True, "keras.applications.ResNet50",
                  allow_layout_mismatch)
    source_layers = {layer.name: layer for layer in resnet2d.layers}
    mapping = {}
    for pair in conv_bn_pairs(backbone):
        for key in ("keras_conv", "keras_bn"):
            if pair[key] not in source_layers:
                raise InflationError(
                    f"source model {resnet2d.name!r} has no layer {pair[key]!r} "
                    f"(needed for backbone layer {pair[key[6:]]!r})"
                )
        conv = source_layers[pair["keras_conv"]]
        conv_weights = conv.get_weights()
        _set_conv(
            backbone.get_layer(pair["conv"]), conv_weights[0],
            conv_weights[1] if len(conv_weights) > 1 else None, mode, conv.name,
        )
        bn = source_layers[pair["keras_bn"]]
        _set_bn(backbone.get_layer(pair["bn"]), *bn.get_weights(), bn.name)
        mapping[pair["conv"]] = pair["keras_conv"]
        mapping[pair["bn"]] = pair["keras_bn"]
    unused = sorted(
        name for name, layer in source_layers.items()
        if re.fullmatch(r"conv\d.*_(conv|bn)", name) and name not in mapping.values()
    )
    if unused:
        raise InflationError(
            f"source layers {unused[:4]}{'...' if len(unused) > 4 else ''} have no "
            "counterpart in the backbone (different depth or missing endpoints?)"
        )
    return mapping


def convert_torchvision_state_dict(
    backbone, state_dict, mode="centre", allow_layout_mismatch=False
):
    """Loads a torchvision ResNet ``state_dict`` (numpy arrays) into the backbone.

    Keys follow torchvision: ``conv1.weight``, ``bn1.{weight,bias,running_mean,
    running_var}``, ``layer{i}.{j}.conv{k}.weight``, ``layer{i}.{j}.bn{k}.*``,
    ``layer{i}.{j}.downsample.{0,1}.*``. 4D kernels are OIHW and are transposed
    to HWIO and inflated; 5D kernels (OIDHW, an already inflated checkpoint)
    are transposed to DHWIO and copied. ``fc.*`` and ``*.num_batches_tracked``
    are ignored; any other unused key is an error.

    Args:
        backbone: InflatedResNet3D with ``stride_layout="torchvision"`` and no
            conv biases (preset ``"resnet50"``).
        state_dict: mapping key -> numpy array (e.g. ``{k: v.numpy() for k, v
            in torch_model.state_dict().items()}``).
        mode: ``"centre"`` (``"center"``) or ``"mean"``.
        allow_layout_mismatch: load into a ``"keras"`` layout backbone anyway.

    Returns:
        dict backbone layer name -> torchvision key prefix, for every layer set.

    Raises:
        InflationError: wrong layout or mode, a missing or unused key, or a
            shape mismatch (naming the key, the layer and the shapes).
    """
    mode = _check_mode(mode)
    _check_layout(backbone, "torchvision", False, "torchvision", allow_layout_mismatch)
    used = set()

    def take(key):
        if key not in state_dict:
            raise InflationError(f"state_dict has no key {key!r}")
        used.add(key)
        return np.asarray(state_dict[key], np.float32)

    mapping = {}
    for pair in conv_bn_pairs(backbone):
        conv_prefix, bn_prefix = pair["torch"]
        weight = take(f"{conv_prefix}.weight")
        if weight.ndim == 4:
            weight = np.transpose(weight, (2, 3, 1, 0))
        elif weight.ndim == 5:
            weight = np.transpose(weight, (2, 3, 4, 1, 0))
        else:
            raise InflationError(
                f"{conv_prefix}.weight: expected a 4D or 5D kernel, received "
                f"shape {weight.shape}"
            )
        conv_layer = backbone.get_layer(pair["conv"])
        bias_key = f"{conv_prefix}.bias"
        bias = None
        if conv_layer.bias is not None:
            if bias_key in state_dict or not allow_layout_mismatch:
                bias = take(bias_key)
            else:
                bias = np.zeros(conv_layer.bias.shape, np.float32)
        _set_conv(conv_layer, weight, bias, mode, f"{conv_prefix}.weight")
        _set_bn(
            backbone.get_layer(pair["bn"]),
            take(f"{bn_prefix}.weight"), take(f"{bn_prefix}.bias"),
            take(f"{bn_prefix}.running_mean"), take(f"{bn_prefix}.running_var"),
            bn_prefix,
        )
        mapping[pair["conv"]] = conv_prefix
        mapping[pair["bn"]] = bn_prefix
    unused = sorted(
        key for key in state_dict
        if key not in used and not key.startswith("fc.")
        and not key.endswith("num_batches_tracked")
    )
    if unused:
        raise InflationError(
            f"state_dict keys {unused[:4]}{'...' if len(unused) > 4 else ''} have "
            "no counterpart in the backbone (different depth or missing endpoints?)"
        )
    return mapping


def load_imagenet_weights(backbone, path, mode="centre"):
    """Inflates 2D ImageNet ResNet-50 weights from a local file.

    No download ever happens: the file must exist.

    Args:
        backbone: InflatedResNet3D whose layout matches the file.
        path: either a Keras ``ResNet50`` weights file (``.h5``, with or
            without the top, e.g. from ``~/.keras/models/``), for a
            ``"resnet50_keras"`` backbone; or a ``.npz`` of a torchvision
            ``state_dict`` (``np.savez(path, **{k: v.numpy() for k, v in
            torch.load("resnet50-19c8e357.pth").items()})``), for a
            ``"resnet50"`` backbone.
        mode: ``"centre"`` or ``"mean"`` inflation.

    Returns:
        the layer mapping of the inflation function used.

    Raises:
        InflationError: for a missing file, an unknown extension or weights
            that do not fit the backbone.
    """
    import os

    if not os.path.isfile(path):
        raise InflationError(f"pretrained weights file {path!r} does not exist")
    if path.endswith(".npz"):
        with np.load(path) as archive:
            state_dict = {key: archive[key] for key in archive.files}
        return convert_torchvision_state_dict(backbone, state_dict, mode)
    if path.endswith(".h5"):
        import keras

        errors = []
        for include_top in (False, True):
            try:
                resnet2d = keras.applications.ResNet50(
                    weights=path, include_top=include_top, input_shape=(224, 224, 3)
                )
            except ValueError as error:
                errors.append(str(error))
                continue
            return inflate_from_keras_resnet50(backbone, resnet2d, mode)
        raise InflationError(
            f"{path!r} is not a keras.applications.ResNet50 weights file: {errors[-1]}"
        )
    raise InflationError(
        f"pretrained weights file {path!r}: expected a Keras ResNet50 .h5 file or a "
        ".npz of a torchvision state_dict"
    )
