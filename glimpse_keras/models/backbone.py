"""Inflated 3D ResNet backbone ("global model" of Glimpse Clouds).

A ResNet-50 whose bottleneck 3x3 convolutions are inflated to kx3x3 over time,
applied to channels-last video ``(batch, time, height, width, channels)``.
The stem stays 2D (per frame) and there is no temporal down-sampling, so the
time axis is preserved end to end. Architecture choices (depths, widths,
temporal kernel sizes, where the stride sits) are data: constructor arguments
collected in ``BACKBONE_PRESETS``.

Layer names are deterministic so that weights can be mapped by name
(see ``glimpse_keras.models.inflation``):

* stem: ``stem_conv``, ``stem_bn``, ``stem_relu``, ``stem_pool_pad``, ``stem_pool``
* block ``j`` (1-based) of stage ``s`` (2..5):
  ``res{s}_block{j}_conv{k}`` / ``_bn{k}`` / ``_relu{k}`` for ``k`` in 1..3
  (``conv2`` is the temporal kx3x3 convolution), ``_shortcut_conv``,
  ``_shortcut_bn``, ``_add``, ``_out``.

Reference: Baradel et al., "Glimpse Clouds", CVPR 2018, global model; the
authors' backbone is torchvision's ResNet-50 with every 3x3 inflated to 3x3x3.
"""

import keras
from keras import ops

from glimpse_keras.backends import bias_add
from glimpse_keras.arguments import check_int
from glimpse_keras.errors import GlimpseError

STRIDE_LAYOUTS = ("torchvision", "keras")
CONV_IMPLEMENTATIONS = ("conv3d", "frames")
ENDPOINT_NAMES = ("stem", "res2", "res3", "res4", "res5")
STAGE_NAMES = ENDPOINT_NAMES[1:]
OUTPUT_STRIDES = (32, 16, 8)
I3D_TEMPORAL_KERNEL_SIZES = ((3, 3, 3), (3, 1, 3, 1), (3, 1, 3, 1, 3, 1), (1, 3, 1))


class BackboneConfigError(GlimpseError, ValueError):
    """An invalid backbone constructor argument or preset name."""


def _normalise_temporal_kernel_sizes(temporal_kernel_sizes, stackwise_num_blocks):
    """Expands ``None`` / int / per-stage ints into one tuple per stage."""
    if temporal_kernel_sizes is None:
        temporal_kernel_sizes = 3
    if isinstance(temporal_kernel_sizes, int):
        temporal_kernel_sizes = [temporal_kernel_sizes] * len(stackwise_num_blocks)
    if len(temporal_kernel_sizes) != len(stackwise_num_blocks):
        raise BackboneConfigError(
            "temporal_kernel_sizes needs one entry per stage "
            f"({len(stackwise_num_blocks)}), received {temporal_kernel_sizes!r}"
        )
    result = []
    for stage, (sizes, num_blocks) in enumerate(
        zip(temporal_kernel_sizes, stackwise_num_blocks)
    ):
        if isinstance(sizes, int):
            sizes = [sizes] * num_blocks
        sizes = [int(size) for size in sizes]
        if len(sizes) != num_blocks:
            raise BackboneConfigError(
                f"temporal_kernel_sizes[{stage}] must list {num_blocks} sizes "
                f"(one per block), received {sizes!r}"
            )
        if any(size < 1 or size % 2 == 0 for size in sizes):
            raise BackboneConfigError(
                "temporal kernel sizes must be odd and positive (symmetric "
                f"padding preserves T), received {sizes!r} for stage {stage}"
            )
        result.append(sizes)
    return result


# === Layers ===


@keras.saving.register_keras_serializable(package="glimpse_keras")
class InflatedConv3D(keras.layers.Layer):
    """A ``(kt, kh, kw)`` convolution over video with PyTorch-style padding.

    Pads ``k // 2`` zeros on both sides of every axis (temporal stride 1,
    spatial stride ``strides``), so T is preserved and an even H, W is divided
    exactly by the stride, as in PyTorch. The kernel is always stored as
    ``(kt, kh, kw, in_channels, filters)`` (DHWIO) whatever the implementation.

    Args:
        filters: int, number of output channels.
        kernel_size: 3 ints ``(kt, kh, kw)``, all odd.
        strides: int, spatial stride (same for H and W).
        dilation_rate: int, spatial dilation of the kernel (same for H and
            W; time is never dilated). Needs ``strides == 1``; the padding
            grows to ``dilation_rate * (k // 2)`` so H and W are preserved.
        use_bias: bool, add a bias per output channel.
        implementation: ``"conv3d"`` (one 3D convolution) or ``"frames"``
            (one 2D convolution over the ``B*T`` frames producing ``kt``
            stacked tap outputs, then a shifted sum over time). Same numbers;
            ``"conv3d"`` measured fastest on CPU (oneDNN), see
            ``benchmarks/backbone_speed.py``.
        kernel_initializer: initializer for the kernel.
        bias_initializer: initializer for the bias.
        **kwargs: forwarded to ``keras.layers.Layer``.

    Call arguments:
        inputs: float tensor ``(batch, time, height, width, in_channels)``.

    Returns:
        ``(batch, time, height / strides, width / strides, filters)``.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        use_bias=False,
        implementation="conv3d",
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        dilation_rate=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        kernel_size = tuple(int(size) for size in kernel_size)
        check_int("dilation_rate", dilation_rate, error=BackboneConfigError)
        if dilation_rate > 1 and int(strides) != 1:
            raise BackboneConfigError(
                f"a dilated convolution must have strides=1, received "
                f"strides={strides!r} with dilation_rate={dilation_rate!r}"
            )
        if len(kernel_size) != 3 or any(k < 1 or k % 2 == 0 for k in kernel_size):
            raise BackboneConfigError(
                f"kernel_size must be 3 odd positive ints, received {kernel_size!r}"
            )
        if implementation not in CONV_IMPLEMENTATIONS:
            raise BackboneConfigError(
                f"implementation must be one of {CONV_IMPLEMENTATIONS}, "
                f"received {implementation!r}"
            )
        self.filters = int(filters)
        self.kernel_size = kernel_size
        self.strides = int(strides)
        self.dilation_rate = int(dilation_rate)
        self.use_bias = bool(use_bias)
        self.implementation = implementation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels is None:
            raise BackboneConfigError(
                f"{self.name}: the channel axis of the input must be known"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=self.kernel_size + (in_channels, self.filters),
            initializer=self.kernel_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )
        else:
            self.bias = None

    def _spatial_padding(self):
        # A stride-1 "same" convolution with an odd kernel already pads
        # symmetrically; only strided convolutions need explicit padding
        # (TF's "same" would pad (0, 1) where PyTorch pads (1, 1)).
        return "same" if self.strides == 1 else "valid"

    def _pad(self, x):
        """Pads H, W (and T for 5D inputs) by ``k // 2`` on both sides."""
        kt, kh, kw = self.kernel_size
        spatial = [[kh // 2, kh // 2], [kw // 2, kw // 2]]
        temporal = [[kt // 2, kt // 2]] if len(x.shape) == 5 else []
        if kh == kw == 1 and not (temporal and kt > 1):
            return x
        return ops.pad(x, [[0, 0]] + temporal + spatial + [[0, 0]])

    def _call_conv3d(self, inputs):
        padding = self._spatial_padding()
        x = inputs
        if padding == "valid":
            x = self._pad(x)
        return ops.conv(
            x,
            self.kernel,
            strides=(1, self.strides, self.strides),
            padding=padding,
            dilation_rate=(1, self.dilation_rate, self.dilation_rate),
        )

    def _call_frames(self, inputs):
        kt, kh, kw = self.kernel_size
        shape = ops.shape(inputs)
        batch, time, height, width = shape[0], shape[1], shape[2], shape[3]
        in_channels = inputs.shape[-1]
        frames = ops.reshape(inputs, (-1, height, width, in_channels))
        padding = self._spatial_padding()
        if padding == "valid":
            frames = self._pad(frames)
        # One 2D convolution computes all kt temporal taps at once
        # (kt * filters output channels); shifting and summing the taps over
        # time then gives the temporal convolution.
        kernel = ops.transpose(self.kernel, (1, 2, 3, 0, 4))
        kernel = ops.reshape(kernel, (kh, kw, in_channels, kt * self.filters))
        taps = ops.conv(
            frames,
            kernel,
            strides=self.strides,
            padding=padding,
            dilation_rate=self.dilation_rate,
        )
        out_shape = ops.shape(taps)
        if kt == 1:
            return ops.reshape(
                taps, (batch, time, out_shape[1], out_shape[2], self.filters)
            )
        taps = ops.reshape(
            taps, (batch, time, out_shape[1], out_shape[2], kt, self.filters)
        )
        pad = kt // 2
        taps = ops.pad(taps, [[0, 0], [pad, pad], [0, 0], [0, 0], [0, 0], [0, 0]])
        outputs = taps[:, 0:time, :, :, 0, :]
        for tap in range(1, kt):
            outputs = outputs + taps[:, tap : tap + time, :, :, tap, :]
        return outputs

    def call(self, inputs):
        if self.implementation == "frames":
            outputs = self._call_frames(inputs)
        else:
            outputs = self._call_conv3d(inputs)
        if self.bias is not None:
            # On TensorFlow a BiasAdd, which Grappler fuses with the
            # convolution (see `glimpse_keras.backends`).
            outputs = bias_add(outputs, self.bias)
        return outputs

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else (size - 1) // self.strides + 1

        batch, time, height, width, _ = input_shape
        return (batch, time, reduce(height), reduce(width), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": list(self.kernel_size),
                "strides": self.strides,
                "dilation_rate": self.dilation_rate,
                "use_bias": self.use_bias,
                "implementation": self.implementation,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config


# === Blocks ===


def _conv_bn(x, filters, kernel_size, strides, options, conv_name, bn_name, dilation_rate=1):
    folded = options["fold_batch_norm"]
    x = InflatedConv3D(
        filters,
        kernel_size,
        strides=strides,
        dilation_rate=dilation_rate,
        use_bias=options["use_conv_bias"] or folded,
        implementation=options["conv_implementation"],
        kernel_initializer=options["kernel_initializer"],
        dtype=options["dtype"],
        name=conv_name,
    )(x)
    if folded:
        return x
    return keras.layers.BatchNormalization(
        axis=-1,
        epsilon=options["bn_epsilon"],
        momentum=options["bn_momentum"],
        dtype=options["dtype"],
        name=bn_name,
    )(x)


def apply_stem(x, filters, options, name="stem"):
    """Per-frame 2D stem: 7x7/2 conv, BN, ReLU, 3x3/2 max-pool (padding 3, 1).

    Args:
        x: ``(B, T, H, W, C)`` tensor.
        filters: int, stem width (64 in ResNet-50).
        options: dict of the shared layer options (see ``InflatedResNet3D``).
        name: layer name prefix.

    Returns:
        ``(B, T, H/4, W/4, filters)`` tensor.
    """
    x = _conv_bn(x, filters, (1, 7, 7), 2, options, f"{name}_conv", f"{name}_bn")
    x = keras.layers.ReLU(dtype=options["dtype"], name=f"{name}_relu")(x)
    # Zero padding equals PyTorch's -inf max-pool padding here: inputs are >= 0.
    x = keras.layers.ZeroPadding3D(
        ((0, 0), (1, 1), (1, 1)), dtype=options["dtype"], name=f"{name}_pool_pad"
    )(x)
    return keras.layers.MaxPooling3D(
        (1, 3, 3), strides=(1, 2, 2), dtype=options["dtype"], name=f"{name}_pool"
    )(x)


def apply_bottleneck_block(
    x, filters, temporal_kernel_size, stride, options, expansion=4, name="block",
    dilation_rate=1,
):
    """Bottleneck block with a temporal ``kt x 3 x 3`` middle convolution.

    ``options["stride_layout"]`` places the spatial stride on the 3x3
    (``"torchvision"``, ResNet v1.5) or on the first 1x1 (``"keras"``, v1).
    A projection shortcut is used when the stride or the width changes.

    Args:
        x: ``(B, T, H, W, C)`` tensor.
        filters: int, bottleneck width; the block outputs ``filters * expansion``.
        temporal_kernel_size: odd int, temporal size of the middle convolution.
        stride: int, spatial stride of the block.
        options: dict of the shared layer options.
        expansion: int, output width multiplier.
        name: layer name prefix, e.g. ``"res3_block1"``.
        dilation_rate: int, spatial dilation of the middle convolution
            (``stride`` must then be 1).

    Returns:
        ``(B, T, H / stride, W / stride, filters * expansion)`` tensor.
    """
    out_channels = filters * expansion
    on_first = options["stride_layout"] == "keras"
    stride1, stride2 = (stride, 1) if on_first else (1, stride)
    if stride != 1 or x.shape[-1] != out_channels:
        shortcut = _conv_bn(
            x, out_channels, (1, 1, 1), stride, options,
            f"{name}_shortcut_conv", f"{name}_shortcut_bn",
        )
    else:
        shortcut = x
    x = _conv_bn(x, filters, (1, 1, 1), stride1, options, f"{name}_conv1", f"{name}_bn1")
    x = keras.layers.ReLU(dtype=options["dtype"], name=f"{name}_relu1")(x)
    x = _conv_bn(
        x, filters, (temporal_kernel_size, 3, 3), stride2, options,
        f"{name}_conv2", f"{name}_bn2", dilation_rate=dilation_rate,
    )
    x = keras.layers.ReLU(dtype=options["dtype"], name=f"{name}_relu2")(x)
    x = _conv_bn(
        x, out_channels, (1, 1, 1), 1, options, f"{name}_conv3", f"{name}_bn3"
    )
    x = keras.layers.Add(dtype=options["dtype"], name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(dtype=options["dtype"], name=f"{name}_out")(x)


def apply_stage(
    x, filters, temporal_kernel_sizes, stride, options, expansion=4, name="res2",
    dilation_rate=1,
):
    """A stage of bottleneck blocks; only the first block strides.

    Args:
        x: ``(B, T, H, W, C)`` tensor.
        filters: int, bottleneck width of every block.
        temporal_kernel_sizes: sequence of odd ints, one per block.
        stride: int, spatial stride of the first block.
        options: dict of the shared layer options.
        expansion: int, output width multiplier.
        name: stage name (``"res2"`` .. ``"res5"``).
        dilation_rate: int, spatial dilation of every block's middle
            convolution; a dilated stage does not stride (``stride`` 1).

    Returns:
        ``(B, T, H / stride, W / stride, filters * expansion)`` tensor.
    """
    for index, temporal_size in enumerate(temporal_kernel_sizes):
        x = apply_bottleneck_block(
            x, filters, temporal_size, stride if index == 0 else 1, options,
            expansion=expansion, name=f"{name}_block{index + 1}",
            dilation_rate=dilation_rate,
        )
    return x


# === Model ===


@keras.saving.register_keras_serializable(package="glimpse_keras")
class InflatedResNet3D(keras.Model):
    """Inflated 3D ResNet (bottleneck) backbone with named endpoints.

    Args:
        stackwise_num_blocks: 4 ints, blocks per stage (ResNet-50: 3, 4, 6, 3).
        stackwise_num_filters: 4 ints, bottleneck width per stage
            (ResNet-50: 64, 128, 256, 512).
        stem_filters: int, width of the 7x7 stem convolution.
        expansion: int, bottleneck expansion (stage output = width * expansion).
        temporal_kernel_sizes: temporal size of every block's middle (3x3)
            convolution: ``None`` (all 3, as the authors), an int for all
            blocks, or one entry per stage that is an int or a per-block
            sequence, e.g. ``I3D_TEMPORAL_KERNEL_SIZES``. Odd sizes only.
        stride_layout: ``"torchvision"`` (stride on the 3x3; ResNet v1.5, the
            authors' backbone) or ``"keras"`` (stride on the first 1x1; as
            ``keras.applications.ResNet50``).
        use_conv_bias: bool, convolutions carry biases (Keras ResNet50 does,
            torchvision does not).
        bn_epsilon: float, BatchNorm epsilon (torchvision 1e-5, Keras 1.001e-5).
        bn_momentum: float, Keras-convention moving-average momentum
            (0.9 equals PyTorch's momentum 0.1).
        output_stride: 32, 16 or 8, the downsampling of res5 relative to
            the input. 32 is ResNet's; 16 removes res5's stride and 8 also
            res4's, so a 128x128 input gives an 8x8 res5 map at output
            stride 16 (same weights, larger maps).
        output_stride_dilation: bool. True (DeepLab): a stage whose stride
            was removed dilates its 3x3 convolutions instead (2 in res5 at
            output stride 16; 2 in res4 and 4 in res5 at 8), which keeps the
            receptive fields, as pretrained weights expect. False: the
            strides are simply dropped, so the later stages see smaller,
            more local neighbourhoods.
        output_endpoints: endpoint names to return, from ``ENDPOINT_NAMES``.
            Stages after the deepest requested endpoint are not built.
        input_shape: ``(T, H, W, C)``; any of T, H, W may be ``None``. Known H
            and W must be divisible by 32.
        conv_implementation: ``"conv3d"`` or ``"frames"`` (see
            ``InflatedConv3D``); weights are identical either way.
        kernel_initializer: initializer of every convolution kernel.
        fold_batch_norm: bool, build the inference-only form: no BatchNorm
            layers, every convolution carries a bias instead (its BatchNorm's
            affine transform folded into kernel and bias by
            ``glimpse_keras.models.folding.fold_backbone_batch_norm``). Same
            layer names minus the ``_bn`` ones.
        dtype: dtype policy of every layer (``None`` = the global policy).
        **kwargs: ``name`` and ``trainable``.

    Call arguments:
        inputs: normalised float video ``(batch, T, H, W, C)``.
        training: bool, BatchNorm mode.

    Returns:
        dict endpoint name -> ``(batch, T, H / s, W / s, channels)`` with
        ``s`` = 4, 4, 8, 16, 32 for stem, res2, res3, res4, res5 (res4 and res5
        at ``min(s, output_stride)``). XLA is the
        caller's choice (``compile(jit_compile=...)`` or ``tf.function``).

    Example:
        >>> backbone = build_backbone("tiny", input_shape=(4, 64, 64, 3))
        >>> features = backbone(video)  # features["res5"]: (B, 4, 2, 2, 256)
    """

    def __init__(
        self,
        stackwise_num_blocks=(3, 4, 6, 3),
        stackwise_num_filters=(64, 128, 256, 512),
        stem_filters=64,
        expansion=4,
        temporal_kernel_sizes=None,
        stride_layout="torchvision",
        use_conv_bias=False,
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        output_endpoints=("res4", "res5"),
        output_stride=32,
        output_stride_dilation=True,
        input_shape=(None, None, None, 3),
        conv_implementation="conv3d",
        kernel_initializer="he_normal",
        fold_batch_norm=False,
        dtype=None,
        **kwargs,
    ):
        # === Validation ===
        stackwise_num_blocks = [int(n) for n in stackwise_num_blocks]
        stackwise_num_filters = [int(n) for n in stackwise_num_filters]
        if len(stackwise_num_blocks) != 4 or len(stackwise_num_filters) != 4:
            raise BackboneConfigError(
                "stackwise_num_blocks and stackwise_num_filters need 4 entries "
                f"(res2..res5), received {stackwise_num_blocks!r} and "
                f"{stackwise_num_filters!r}"
            )
        if min(stackwise_num_blocks) < 1 or min(stackwise_num_filters) < 1:
            raise BackboneConfigError(
                "block counts and widths must be positive, received "
                f"{stackwise_num_blocks!r} and {stackwise_num_filters!r}"
            )
        temporal_kernel_sizes = _normalise_temporal_kernel_sizes(
            temporal_kernel_sizes, stackwise_num_blocks
        )
        if stride_layout not in STRIDE_LAYOUTS:
            raise BackboneConfigError(
                f"stride_layout must be one of {STRIDE_LAYOUTS}, "
                f"received {stride_layout!r}"
            )
        if conv_implementation not in CONV_IMPLEMENTATIONS:
            raise BackboneConfigError(
                f"conv_implementation must be one of {CONV_IMPLEMENTATIONS}, "
                f"received {conv_implementation!r}"
            )
        if output_stride not in OUTPUT_STRIDES or isinstance(output_stride, bool):
            raise BackboneConfigError(
                f"output_stride must be one of {OUTPUT_STRIDES}, received {output_stride!r}"
            )
        output_endpoints = [str(e) for e in output_endpoints]
        unknown = [e for e in output_endpoints if e not in ENDPOINT_NAMES]
        if unknown or not output_endpoints:
            raise BackboneConfigError(
                f"output_endpoints must be a non-empty subset of {ENDPOINT_NAMES}, "
                f"received {output_endpoints!r}"
            )
        input_shape = [None if d is None else int(d) for d in input_shape]
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise BackboneConfigError(
                "input_shape must be (T, H, W, C) with C known, "
                f"received {input_shape!r}"
            )
        for axis in (1, 2):
            if input_shape[axis] is not None and input_shape[axis] % 32:
                raise BackboneConfigError(
                    f"input height and width must be divisible by 32, "
                    f"received input_shape={input_shape!r}"
                )
        if dtype is not None and not isinstance(dtype, keras.DTypePolicy):
            dtype = keras.dtype_policies.get(dtype)
        kernel_initializer = keras.initializers.get(kernel_initializer)
        options = {
            "stride_layout": stride_layout,
            "use_conv_bias": bool(use_conv_bias),
            "bn_epsilon": float(bn_epsilon),
            "bn_momentum": float(bn_momentum),
            "conv_implementation": conv_implementation,
            "kernel_initializer": kernel_initializer,
            "fold_batch_norm": bool(fold_batch_norm),
            "dtype": dtype,
        }

        # === Functional Model ===
        inputs = keras.Input(shape=tuple(input_shape), name="video")
        deepest = max(ENDPOINT_NAMES.index(e) for e in output_endpoints)
        endpoints = {}
        x = apply_stem(inputs, stem_filters, options, name="stem")
        endpoints["stem"] = x
        stride_so_far, dilation = 4, 1
        for index, stage in enumerate(STAGE_NAMES[:deepest]):
            stride = 1 if index == 0 else 2
            if stride_so_far * stride > output_stride:
                # Past the output stride a stage keeps the resolution (and,
                # with dilation, the receptive field it had when striding).
                if output_stride_dilation:
                    dilation *= stride
                stride = 1
            stride_so_far *= stride
            x = apply_stage(
                x,
                stackwise_num_filters[index],
                temporal_kernel_sizes[index],
                stride,
                options,
                expansion=int(expansion),
                name=stage,
                dilation_rate=dilation,
            )
            endpoints[stage] = x
        outputs = {name: endpoints[name] for name in output_endpoints}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.stackwise_num_blocks = stackwise_num_blocks
        self.stackwise_num_filters = stackwise_num_filters
        self.stem_filters = int(stem_filters)
        self.expansion = int(expansion)
        self.temporal_kernel_sizes = temporal_kernel_sizes
        self.stride_layout = stride_layout
        self.use_conv_bias = bool(use_conv_bias)
        self.bn_epsilon = float(bn_epsilon)
        self.bn_momentum = float(bn_momentum)
        self.output_endpoints = output_endpoints
        self.output_stride = int(output_stride)
        self.output_stride_dilation = bool(output_stride_dilation)
        self.video_shape = input_shape
        self.conv_implementation = conv_implementation
        self.kernel_initializer = kernel_initializer
        self.fold_batch_norm = bool(fold_batch_norm)
        if dtype is not None:
            self.dtype_policy = dtype
        channels = [self.stem_filters] + [
            f * self.expansion for f in stackwise_num_filters
        ]
        self.endpoint_channels = dict(zip(ENDPOINT_NAMES, channels))
        self.res4_channels = self.endpoint_channels["res4"]
        self.res5_channels = self.endpoint_channels["res5"]

    def layers_before(self, endpoint):
        """The layers of the stages before `endpoint` (e.g. "res4": stem,
        res2 and res3), by the ``<stage>_...`` names this class gives them.

        Raises:
            ValueError: `endpoint` is not one of ``ENDPOINT_NAMES``.
        """
        if endpoint not in ENDPOINT_NAMES:
            raise ValueError(f"endpoint must be one of {ENDPOINT_NAMES}, received {endpoint!r}")
        earlier = ENDPOINT_NAMES[: ENDPOINT_NAMES.index(endpoint)]
        return [layer for layer in self.layers if layer.name.split("_")[0] in earlier]

    def get_config(self):
        # Deliberately not chained to Functional.get_config (keras-hub
        # Backbone pattern): the constructor arguments are the whole config,
        # so from_config rebuilds this subclass and not a plain Functional.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "stackwise_num_blocks": list(self.stackwise_num_blocks),
            "stackwise_num_filters": list(self.stackwise_num_filters),
            "stem_filters": self.stem_filters,
            "expansion": self.expansion,
            "temporal_kernel_sizes": [list(s) for s in self.temporal_kernel_sizes],
            "stride_layout": self.stride_layout,
            "use_conv_bias": self.use_conv_bias,
            "bn_epsilon": self.bn_epsilon,
            "bn_momentum": self.bn_momentum,
            "output_endpoints": list(self.output_endpoints),
            "output_stride": self.output_stride,
            "output_stride_dilation": self.output_stride_dilation,
            "input_shape": list(self.video_shape),
            "conv_implementation": self.conv_implementation,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "fold_batch_norm": self.fold_batch_norm,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# === Presets ===

BACKBONE_PRESETS = {
    # The authors' backbone: torchvision ResNet-50 (v1.5: stride on the 3x3,
    # no conv bias, BN eps 1e-5), every 3x3 inflated to 3x3x3. Load
    # torchvision ImageNet weights with inflation.convert_torchvision_state_dict.
    "resnet50": {
        "stackwise_num_blocks": (3, 4, 6, 3),
        "stackwise_num_filters": (64, 128, 256, 512),
        "stem_filters": 64,
        "temporal_kernel_sizes": 3,
        "stride_layout": "torchvision",
        "use_conv_bias": False,
        "bn_epsilon": 1e-5,
        "bn_momentum": 0.9,
    },
    # keras.applications.ResNet50 layout (v1: stride on the first 1x1, conv
    # biases, BN eps 1.001e-5, Keras momentum 0.99), every 3x3 inflated to
    # 3x3x3. Load with inflation.inflate_from_keras_resnet50. Note the Keras
    # ImageNet weights expect caffe-style BGR inputs, not ImageNet mean/std.
    "resnet50_keras": {
        "stackwise_num_blocks": (3, 4, 6, 3),
        "stackwise_num_filters": (64, 128, 256, 512),
        "stem_filters": 64,
        "temporal_kernel_sizes": 3,
        "stride_layout": "keras",
        "use_conv_bias": True,
        "bn_epsilon": 1.001e-5,
        "bn_momentum": 0.99,
    },
    # Small torchvision-layout network for tests and the synthetic demo.
    "tiny": {
        "stackwise_num_blocks": (1, 1, 1, 1),
        "stackwise_num_filters": (8, 16, 32, 64),
        "stem_filters": 8,
        "temporal_kernel_sizes": 3,
        "stride_layout": "torchvision",
        "use_conv_bias": False,
        "bn_epsilon": 1e-5,
        "bn_momentum": 0.9,
    },
}


def build_backbone(preset, **overrides):
    """Builds an ``InflatedResNet3D`` from a preset name plus overrides.

    Args:
        preset: a key of ``BACKBONE_PRESETS``.
        **overrides: constructor arguments replacing the preset's values
            (e.g. ``input_shape=(8, 224, 224, 3)``, ``dtype="mixed_bfloat16"``).

    Returns:
        InflatedResNet3D.

    Raises:
        BackboneConfigError: unknown preset or invalid argument.
    """
    if preset not in BACKBONE_PRESETS:
        raise BackboneConfigError(
            f"unknown backbone preset {preset!r}; known: {sorted(BACKBONE_PRESETS)}"
        )
    return InflatedResNet3D(**{**BACKBONE_PRESETS[preset], **overrides})
