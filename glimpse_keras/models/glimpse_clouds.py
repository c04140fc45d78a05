"""The Glimpse Clouds model: backbone, glimpse/worker core, heads and losses.

`GlimpseClouds` is a subclassed `keras.Model` with a custom `train_step` that
adds the four named loss terms of the paper
`L = L_D + w_P L_P + w_G1 L_diversity + w_G2 L_attraction` (MODEL_SPEC.md
sections 5, 6 and 11), plus an optional prior for small glimpses
`w_S L_scale`, and one metric tracker per term.

Reference: Baradel et al., "Glimpse Clouds: Human Activity Recognition from
Unstructured Feature Points", CVPR 2018.
"""

import keras
from keras import ops

from glimpse_keras import losses
from glimpse_keras.backends import TrainingSteps
from glimpse_keras.errors import GlimpseError
from glimpse_keras.layers.glimpse_clouds_core import GlimpseCloudsCore
from glimpse_keras.layers.initialization import check_initialization
from glimpse_keras.layers.worker_classifier import WorkerClassifier
from glimpse_keras.models.backbone import ENDPOINT_NAMES
from glimpse_keras.models.backbone import InflatedResNet3D
from glimpse_keras.models.backbone import build_backbone
from glimpse_keras.models.heads import GlobalPoolClassifier
from glimpse_keras.models.heads import PoseHead
from glimpse_keras.arguments import check_int, check_number

VARIANTS = ("global", "global_pose", "glimpse_gru", "glimpse_clouds")
GLIMPSE_MAPS = ("res5", "res4")
GLOBAL_VARIANTS = ("global", "global_pose")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LOSS_TERMS = ("loss", "class_loss", "pose_loss", "diversity_loss", "attraction_loss", "scale_loss")
FROZEN_BATCHNORM_MODES = ("inference", "drift")


class ModelConfigError(GlimpseError, ValueError):
    """An invalid `GlimpseClouds` constructor argument."""


class TargetsError(GlimpseError, ValueError):
    """Training targets that `GlimpseClouds.train_step` cannot use."""


# Arguments of the model that are arguments of `GlimpseCloudsCore` with the
# same name and values, and config keys `model.<name>` (one vocabulary).
CORE_ARGUMENTS = {
    "detach_location": False,
    "assign_axis": "glimpses",
    "distance": "learned",
    "time_decay": "recent",
    "memory_capacity": 0,
    "share_first_worker_state": False,
    "raw_location_embedding": False,
    "scale_bias": 3.0,
    "max_scale": 1.0,
    "zoomer_reset_each_frame": False,
    "locator": "linear",
    "locator_keypoints": 0,
    "fixed_glimpse_scale": 0.5,
}
# Old `core_options` keys that were renamed, and how their values map.
_RENAMED_CORE_OPTIONS = {
    "decay": ("time_decay", lambda value: "recent" if value == "recency" else value),
    "use_raw_location": ("raw_location_embedding", bool),
    "memory_frames": ("memory_capacity", lambda value: value or 0),
}


def _check_positive_int(name, value):
    return check_int(name, value, error=ModelConfigError)


def _check_weight(name, value):
    return check_number(name, value, minimum=0, error=ModelConfigError)


def _let_batchnorm_statistics_drift(layers):
    """Makes the BatchNorm layers among frozen `layers` update their moving
    statistics in training (the authors' frozen stage 2), with their scale
    and offset still frozen.

    A Keras BatchNorm normalises with batch statistics and updates its moving
    ones only when it is trainable and called with `training=True`; marking
    the layer trainable and its variables not is how its statistics drift
    while the optimizer never sees them.
    """
    for layer in layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = True
            for variable in layer.trainable_variables:
                variable.trainable = False


INPUT_NORMALIZATIONS = ("imagenet", "caffe")
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def normalise_video(video, mode="imagenet"):
    """Maps `[0, 255]` RGB video to the backbone's input convention.

    Args:
        video: uint8 or float tensor `(..., 3)` with values in [0, 255], RGB.
        mode: "imagenet": `(video / 255 - mean) / std` with the ImageNet mean
            (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), RGB (the
            torchvision weights the authors start from); "caffe": channels
            reversed to BGR minus the mean (103.939, 116.779, 123.68), the
            convention of `keras.applications.ResNet50`'s ImageNet weights.

    Returns:
        float32 tensor of the same shape.
    """
    video = ops.cast(video, "float32")
    if mode == "caffe":
        return ops.flip(video, axis=-1) - ops.convert_to_tensor(CAFFE_BGR_MEAN, "float32")
    mean = ops.convert_to_tensor(IMAGENET_MEAN, "float32")
    std = ops.convert_to_tensor(IMAGENET_STD, "float32")
    return (video / 255.0 - mean) / std


@keras.saving.register_keras_serializable(package="glimpse_keras")
class GlimpseClouds(TrainingSteps, keras.Model):
    """Glimpse Clouds action recognition model and its ablation variants.

    The uint8 (or [0, 255] float) RGB clip is standardised inside the model and
    runs through the inflated 3D ResNet backbone. `c_t`, the spatial mean of
    the res4 map, feeds the pose head (and the glimpse locator); Z, the res5
    map, is either average-pooled into a linear classifier (global variants)
    or attended by G glimpses per frame whose features are softly assigned to
    C worker GRUs; each worker has its own linear classifier and the raw
    logits are averaged over time and workers.

    Variants:
        "global": backbone + average pooling + linear classifier; loss L_D.
        "global_pose": the same plus the pose head trained with L_P (the
            authors' stage 1).
        "glimpse_gru": glimpses summed into a single GRU (the core's
            `aggregation="gru"`), L_D + L_P + glimpse losses.
        "glimpse_clouds": the full model (stage 2 when `freeze_backbone`).

    Args:
        num_classes: int, number of action classes.
        variant: one of `VARIANTS`.
        backbone: a `BACKBONE_PRESETS` name (e.g. "resnet50", "tiny") or an
            `InflatedResNet3D` instance (e.g. with inflated ImageNet weights);
            the config always stores the serialised backbone.
        num_glimpses: int G, glimpses per frame.
        num_workers: int C, worker GRUs (G and C are independent).
        glimpse_type: "attention" | "tube" | "random" | "saliency", passed to
            the core (see `GlimpseCloudsCore`).
        zoomer_units: int, hidden size of the glimpse (zoomer) GRU.
        worker_units: int, hidden size of every worker GRU.
        where_units: int, hidden size of the what/where fusion MLP (lambda),
            the core's `fusion_hidden_units`.
        detach_location, assign_axis, distance, time_decay, memory_capacity,
        share_first_worker_state, raw_location_embedding, scale_bias,
        max_scale, zoomer_reset_each_frame, locator, locator_keypoints,
        fixed_glimpse_scale: the paper-vs-code switches and the levers of
            `GlimpseCloudsCore`, passed to it unchanged; each has the name and
            values of the config key `model.<name>` (e.g. `time_decay`
            "recent" | "code", `locator` "linear" | "spatial"). Under a mixed
            (16-bit) policy the core runs in float32.
        glimpse_map: the backbone map the glimpses crop: "res5" (Z, the
            paper) or "res4" (one stage earlier: features of a smaller
            receptive field, the map c_t pools).
        glimpse_scale_samples: None or a list of [s_x, s_y] pairs: the scales
            that "random" glimpses are drawn from (`GlimpseCloudsCore`); the
            config names the run they come from
            (`model.glimpse_scales_from`).
        core_options: deprecated (kept for one release, with a
            DeprecationWarning): a dict of core arguments, the old spelling of
            the arguments above (old names `decay` "recency" | "code",
            `use_raw_location` and `memory_frames` are translated). Other core
            arguments in it are still forwarded to the core.
        num_persons: int, person slots of the pose head (2 for NTU).
        num_joints: int, joints per person (25 for NTU).
        pose_loss_weight: float w_P (authors: 0.1); forced to 0 for "global".
        diversity_loss_weight: float w_G1 (authors: 1); 0 for global variants.
        attraction_loss_weight: float w_G2 (authors: 1); 0 for global variants.
        scale_loss_weight: float w_S of `losses.glimpse_scale_loss`, a prior
            for small glimpses (0: off, as the authors); 0 for global variants.
        diversity_form: "inverse" (the authors' code, 1 / (1 + spread)) or
            "exponential" (mean exp(-distance), the paper's Eq. 15); see
            `losses.glimpse_diversity_loss`.
        attraction_joints: "all" (the authors) or "hands": the joints that
            attract the glimpses (`losses.attraction_joint_slots`).
        attraction_per_axis_min: bool, the authors' per-axis attraction minimum
            instead of the Euclidean nearest joint.
        diversity_include_self_pairs: bool, average the diversity spread over
            all G*G glimpse pairs as the authors' code does.
        match_single_person: bool, see `losses.pose_loss`.
        pose_matching: "total" (ours) or "first_person" (the authors' code):
            how two GT persons are paired with the two pose slots, see
            `losses.pose_loss`.
        freeze_backbone: bool. When True the backbone's weights are
            non-trainable and its outputs pass through `stop_gradient`, so a
            training step only differentiates the heads (stage 2 costs little
            more than inference); with `frozen_batchnorm="inference"` it
            always runs with `training=False` (BatchNorm statistics frozen).
        train_backbone_from: "stem" (the whole backbone trains) or a later
            backbone stage ("res2" .. "res5"): the stages before it are
            non-trainable (no gradient is computed through them; their
            BatchNorm as `frozen_batchnorm` says). Ignored with
            `freeze_backbone`.
        frozen_batchnorm: how the BatchNorm layers of the frozen part of the
            backbone (all of it with `freeze_backbone`, else the stages before
            `train_backbone_from`) run in training: "inference" (ours: moving
            statistics used and kept) or "drift" (the authors' frozen stage 2,
            MODEL_SPEC.md sections 8 and 11.13: batch statistics used and the
            moving statistics updated, while scale, offset and kernels stay
            frozen). Inference and evaluation always use the moving
            statistics.
        initialization: "torch" or "keras" initialisers for the heads and core.
        input_normalization: "imagenet" (RGB mean/std, for torchvision
            weights) or "caffe" (BGR mean subtraction, for
            `keras.applications.ResNet50` weights); see `normalise_video`.
        **kwargs: forwarded to `keras.Model` (`name`, `dtype`, ...).

    Call arguments:
        inputs: video `(batch, T, H, W, 3)` uint8 or float in [0, 255], or a
            dict with that tensor under "video". A rank-6 video
            `(batch, clips, T, H, W, 3)` is evaluated clip by clip: the logits
            are averaged over clips, the other outputs keep the clip axis.
        training: bool.

    Returns:
        dict with
        "logits": `(batch, num_classes)` float32 raw logits;
        "pose": `(batch, T, num_persons, num_joints, 2)` float32 in [-1, 1];
        "locations": `(batch, T, G, 4)` glimpse `[x, y, s_x, s_y]` (zeros for
        global variants);
        "raw_locations": `(batch, T, G, 4)` their pre-activation values (the
        locator's raw output; zeros for global variants);
        "assignments": `(batch, T, C, G)` soft assignment of glimpses to
        workers (zeros for global variants; for "glimpse_gru" the worker axis
        has size 1 and holds ones: every glimpse is summed into the GRU).

    Metrics (names shown by `fit`/`evaluate`): "loss", "class_loss", and for
    every variant but "global" "pose_loss"; for glimpse variants also
    "diversity_loss", "attraction_loss" and "scale_loss"; then "accuracy" and
    "top5_accuracy". Loss terms are the unweighted values; "loss" is the
    weighted total that is minimised.

    Raises:
        ModelConfigError: for an invalid argument (named with its value).

    Example:
        >>> model = GlimpseClouds(num_classes=60, backbone="tiny")
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-4))
        >>> model.fit(dataset)  # ({"video": uint8}, {"label", "pose", "pose_mask"})

    Reference:
        MODEL_SPEC.md sections 1-6, 8 and 11.
    """

    def __init__(
        self,
        num_classes=60,
        variant="glimpse_clouds",
        backbone="resnet50",
        num_glimpses=3,
        num_workers=3,
        glimpse_type="attention",
        zoomer_units=512,
        worker_units=512,
        where_units=256,
        detach_location=False,
        assign_axis="glimpses",
        distance="learned",
        time_decay="recent",
        memory_capacity=0,
        share_first_worker_state=False,
        raw_location_embedding=False,
        scale_bias=3.0,
        max_scale=1.0,
        zoomer_reset_each_frame=False,
        locator="linear",
        locator_keypoints=0,
        fixed_glimpse_scale=0.5,
        glimpse_scale_samples=None,
        glimpse_map="res5",
        num_persons=2,
        num_joints=25,
        pose_loss_weight=0.1,
        diversity_loss_weight=1.0,
        attraction_loss_weight=1.0,
        scale_loss_weight=0.0,
        diversity_form="inverse",
        attraction_joints="all",
        attraction_per_axis_min=False,
        diversity_include_self_pairs=False,
        match_single_person=True,
        pose_matching="total",
        freeze_backbone=False,
        train_backbone_from="stem",
        frozen_batchnorm="inference",
        initialization="torch",
        input_normalization="imagenet",
        **kwargs,
    ):
        core_arguments = {
            "detach_location": detach_location,
            "assign_axis": assign_axis,
            "distance": distance,
            "time_decay": time_decay,
            "memory_capacity": memory_capacity,
            "share_first_worker_state": share_first_worker_state,
            "raw_location_embedding": raw_location_embedding,
            "scale_bias": scale_bias,
            "max_scale": max_scale,
            "zoomer_reset_each_frame": zoomer_reset_each_frame,
            "locator": locator,
            "locator_keypoints": locator_keypoints,
            "fixed_glimpse_scale": fixed_glimpse_scale,
        }
        extra_core_arguments = self._deprecated_core_options(kwargs, core_arguments)
        super().__init__(**kwargs)
        # === Validation ===
        if variant not in VARIANTS:
            raise ModelConfigError(f"`variant` must be one of {VARIANTS}, received variant={variant!r}.")
        self.num_classes = _check_positive_int("num_classes", num_classes)
        self.variant = variant
        self.num_glimpses = _check_positive_int("num_glimpses", num_glimpses)
        self.num_workers = _check_positive_int("num_workers", num_workers)
        self.glimpse_type = glimpse_type
        self.zoomer_units = _check_positive_int("zoomer_units", zoomer_units)
        self.worker_units = _check_positive_int("worker_units", worker_units)
        self.where_units = _check_positive_int("where_units", where_units)
        for name, value in core_arguments.items():
            setattr(self, name, value)
        self.glimpse_scale_samples = glimpse_scale_samples
        if glimpse_map not in GLIMPSE_MAPS:
            raise ModelConfigError(f"`glimpse_map` must be one of {GLIMPSE_MAPS}, received glimpse_map={glimpse_map!r}.")
        self.glimpse_map = glimpse_map
        # Core arguments other than the above, from a deprecated `core_options`.
        self._extra_core_arguments = extra_core_arguments
        self.num_persons = _check_positive_int("num_persons", num_persons)
        self.num_joints = _check_positive_int("num_joints", num_joints)
        self.pose_loss_weight = _check_weight("pose_loss_weight", pose_loss_weight)
        self.diversity_loss_weight = _check_weight("diversity_loss_weight", diversity_loss_weight)
        self.attraction_loss_weight = _check_weight("attraction_loss_weight", attraction_loss_weight)
        self.scale_loss_weight = _check_weight("scale_loss_weight", scale_loss_weight)
        if diversity_form not in losses.DIVERSITY_FORMS:
            raise ModelConfigError(
                f"`diversity_form` must be one of {losses.DIVERSITY_FORMS}, received "
                f"diversity_form={diversity_form!r}."
            )
        self.diversity_form = diversity_form
        try:
            self._attraction_joint_slots = losses.attraction_joint_slots(attraction_joints, self.num_joints)
        except ValueError as error:
            raise ModelConfigError(f"`attraction_joints`: {error}") from None
        self.attraction_joints = attraction_joints
        self.attraction_per_axis_min = bool(attraction_per_axis_min)
        self.diversity_include_self_pairs = bool(diversity_include_self_pairs)
        self.match_single_person = bool(match_single_person)
        if pose_matching not in losses.POSE_MATCHINGS:
            raise ModelConfigError(
                f"`pose_matching` must be one of {losses.POSE_MATCHINGS}, received "
                f"pose_matching={pose_matching!r}."
            )
        self.pose_matching = pose_matching
        self.freeze_backbone = bool(freeze_backbone)
        if train_backbone_from not in ENDPOINT_NAMES:
            raise ModelConfigError(
                f"`train_backbone_from` must be one of {ENDPOINT_NAMES}, received "
                f"train_backbone_from={train_backbone_from!r}."
            )
        self.train_backbone_from = train_backbone_from
        if frozen_batchnorm not in FROZEN_BATCHNORM_MODES:
            raise ModelConfigError(
                f"`frozen_batchnorm` must be one of {FROZEN_BATCHNORM_MODES}, received "
                f"frozen_batchnorm={frozen_batchnorm!r}."
            )
        self.frozen_batchnorm = frozen_batchnorm
        self.initialization = check_initialization(initialization)
        if input_normalization not in INPUT_NORMALIZATIONS:
            raise ModelConfigError(
                f"`input_normalization` must be one of {INPUT_NORMALIZATIONS}, received "
                f"input_normalization={input_normalization!r}."
            )
        self.input_normalization = input_normalization

        # === Layers ===
        if isinstance(backbone, str):
            backbone = build_backbone(backbone)
        elif isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        if not isinstance(backbone, InflatedResNet3D):
            raise ModelConfigError(
                "`backbone` must be a backbone preset name or an InflatedResNet3D, "
                f"received {type(backbone).__name__}."
            )
        missing = {"res4", "res5"} - set(backbone.output_endpoints)
        if missing:
            raise ModelConfigError(
                f"the backbone must output res4 and res5, its output_endpoints are "
                f"{backbone.output_endpoints!r}."
            )
        self.backbone = backbone
        if self.freeze_backbone:
            self.backbone.trainable = False
            frozen = self.backbone.layers
        else:
            frozen = self.backbone.layers_before(train_backbone_from)
            for layer in frozen:
                layer.trainable = False
        if frozen_batchnorm == "drift":
            _let_batchnorm_statistics_drift(frozen)
        # The heads that produce losses run in float32 under mixed precision.
        self.pose_head = PoseHead(
            num_persons, num_joints, initialization=initialization, dtype="float32", name="pose_head"
        )
        if variant == "global":
            # No pose loss in this variant: keep the head out of the optimiser.
            self.pose_head.trainable = False
        if self.is_global:
            self.global_classifier = GlobalPoolClassifier(
                num_classes, initialization=initialization, dtype="float32", name="global_classifier"
            )
        else:
            aggregation = "gru" if variant == "glimpse_gru" else "workers"
            # Under mixed precision the recurrent core runs in float32: its
            # matmuls are matrix-vector products (batch x G rows) that oneDNN
            # runs ~2.5x slower in bfloat16 on CPU, and autocasting re-casts
            # every weight at each of the T*G steps (profiled: casts took more
            # time than the matmuls; benchmarks/README.md).
            core_arguments = self._core_arguments(aggregation)
            if self.compute_dtype in ("float16", "bfloat16"):
                core_arguments.setdefault("dtype", "float32")
            self.core = GlimpseCloudsCore(**core_arguments, name="glimpse_clouds_core")
            self.worker_classifier = WorkerClassifier(
                num_classes,
                1 if aggregation == "gru" else num_workers,
                initialization=initialization,
                dtype="float32",
                name="worker_classifier",
            )

        # === Metrics ===
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_TERMS}
        self.accuracy_metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.top5_metric = keras.metrics.SparseTopKCategoricalAccuracy(
            k=min(5, num_classes), name="top5_accuracy"
        )

    def _core_arguments(self, aggregation):
        arguments = {
            "num_glimpses": self.num_glimpses,
            "num_workers": self.num_workers,
            "glimpse_type": self.glimpse_type,
            "aggregation": aggregation,
            "zoomer_units": self.zoomer_units,
            "worker_units": self.worker_units,
            "fusion_hidden_units": self.where_units,
            "glimpse_scale_samples": self.glimpse_scale_samples,
            "initialization": self.initialization,
        }
        clash = set(arguments) & set(self._extra_core_arguments)
        if clash:
            raise ModelConfigError(
                f"`core_options` must not repeat model arguments, received {sorted(clash)}."
            )
        arguments.update({name: getattr(self, name) for name in CORE_ARGUMENTS})
        arguments.update(self._extra_core_arguments)
        return arguments

    @staticmethod
    def _deprecated_core_options(kwargs, core_arguments):
        """Moves a deprecated `core_options` dict of `kwargs` into
        `core_arguments` (in place, old names translated) and returns the
        core arguments it holds that the model does not name."""
        if "core_options" not in kwargs:
            return {}
        options = kwargs.pop("core_options")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise ModelConfigError(f"`core_options` must be a dict or None, received {options!r}.")
        import warnings

        warnings.warn(
            "GlimpseClouds: `core_options` is deprecated; pass the core's arguments to the model "
            f"with the names of the config keys model.<name>: {sorted(CORE_ARGUMENTS)}.",
            DeprecationWarning,
            stacklevel=3,
        )
        extra = {}
        for key, value in options.items():
            if key in _RENAMED_CORE_OPTIONS:
                key, convert = _RENAMED_CORE_OPTIONS[key]
                value = convert(value)
            if key not in CORE_ARGUMENTS:
                extra[key] = value
                continue
            if core_arguments[key] != CORE_ARGUMENTS[key] and core_arguments[key] != value:
                raise ModelConfigError(
                    f"`{key}` is given both as an argument ({core_arguments[key]!r}) and in "
                    f"`core_options` ({value!r}); pass it once, as the argument."
                )
            core_arguments[key] = value
        return extra

    @property
    def core_options(self):
        """Deprecated: the core's arguments set by the model, as one dict."""
        options = {name: getattr(self, name) for name in CORE_ARGUMENTS}
        options.update(self._extra_core_arguments)
        return options

    @property
    def is_global(self):
        """True for the variants without glimpses ("global", "global_pose")."""
        return self.variant in GLOBAL_VARIANTS

    @property
    def effective_loss_weights(self):
        """The weights actually applied: dict term -> float (0 when inactive)."""
        glimpse = 0.0 if self.is_global else 1.0
        return {
            "class_loss": 1.0,
            "pose_loss": 0.0 if self.variant == "global" else self.pose_loss_weight,
            "diversity_loss": glimpse * self.diversity_loss_weight,
            "attraction_loss": glimpse * self.attraction_loss_weight,
            "scale_loss": glimpse * self.scale_loss_weight,
        }

    # === Forward pass ===

    def build(self, inputs_shape):
        # Keras' automatic build traces `call` symbolically, where the core's
        # randomly initialised weights cannot be created; a concrete forward
        # pass on one all-zero clip creates every weight instead (this is also
        # what `load_model` relies on to restore weights).
        shape = inputs_shape["video"] if isinstance(inputs_shape, dict) else inputs_shape
        shape = tuple(shape)
        if len(shape) == 6:
            shape = (shape[0],) + shape[2:]
        if len(shape) != 5 or any(dim is None for dim in shape[1:]):
            raise ValueError(
                "GlimpseClouds needs a video shape (batch, T, H, W, 3) with known T, H, W to "
                f"build, received {shape}."
            )
        self.call(ops.zeros((1,) + shape[1:], "uint8"), training=False)
        super().build(inputs_shape)

    def call(self, inputs, training=None):
        video = inputs["video"] if isinstance(inputs, dict) else inputs
        if len(video.shape) == 6:
            return self._call_multi_clip(video, training)
        if len(video.shape) != 5:
            raise ValueError(
                f"GlimpseClouds expects video (batch, T, H, W, 3) or (batch, clips, T, H, W, 3), "
                f"received shape {video.shape}."
            )
        features = self.backbone_features(video, training=training)
        res4, res5 = features["res4"], features["res5"]
        if self.freeze_backbone:
            res4, res5 = ops.stop_gradient(res4), ops.stop_gradient(res5)
        return self.call_on_features(res4, res5, training=training)

    def backbone_features(self, video, training=None):
        """The backbone's endpoints for a `(batch, T, H, W, 3)` [0, 255] video.

        A frozen backbone runs in inference mode unless its BatchNorm
        statistics drift (`frozen_batchnorm="drift"`).
        """
        return self.backbone(
            ops.cast(normalise_video(video, self.input_normalization), self.backbone.compute_dtype),
            training=False if self.backbone_features_are_fixed else training,
        )

    @property
    def backbone_features_are_fixed(self):
        """True when training cannot change what the backbone computes for a
        clip: the backbone is frozen and its BatchNorm runs in inference mode
        (`frozen_batchnorm="inference"`). Only then may the features of a
        clip be computed once and reused (`call_on_features`)."""
        return self.freeze_backbone and self.frozen_batchnorm == "inference"

    def call_on_features(self, res4, res5, training=None, locations=None, raw_locations=None):
        """Runs everything after the backbone on its res4 and res5 maps.

        `call` is `call_on_features(*backbone(video))`; when
        `backbone_features_are_fixed` (a frozen backbone whose BatchNorm
        statistics do not drift; stage 2 without augmentation) the maps can
        be computed once and cached, and a training step then only runs this
        part.

        Args:
            res4: `(batch, T, H/16, W/16, channels4)` backbone res4 map.
            res5: `(batch, T, H/32, W/32, channels5)` backbone res5 map.
            training: bool.
            locations: None, or `(batch, T, G, 4)` glimpse places to use
                instead of the model's own (a placement swap; glimpse
                variants only). The model's own "locations" and
                "raw_locations" reproduce its outputs exactly.
            raw_locations: None, or the matching pre-activation values
                (default: inverse activations of `locations`).

        Returns:
            The dict of `call` ("logits", "pose", "locations",
            "raw_locations", "assignments").
        """
        context = ops.mean(res4, axis=(2, 3))
        pose = self.pose_head(context)
        if self.is_global:
            logits = self.global_classifier(res5)
            frames = ops.zeros_like(ops.cast(context[:, :, :1, None], "float32"))
            locations = ops.tile(frames, (1, 1, self.num_glimpses, 4))
            raw_locations = locations
            assignments = ops.tile(frames, (1, 1, self.num_workers, self.num_glimpses))
        else:
            core_outputs = self.core_outputs(res4, res5, training, locations, raw_locations)
            per_step = self.worker_classifier(core_outputs["worker_states"])
            logits = ops.mean(per_step, axis=(1, 2))
            locations = ops.cast(core_outputs["locations"], "float32")
            raw_locations = ops.cast(core_outputs["raw_locations"], "float32")
            assignments = ops.cast(core_outputs["assignments"], "float32")
        return {
            "logits": ops.cast(logits, "float32"),
            "pose": ops.cast(pose, "float32"),
            "locations": locations,
            "raw_locations": raw_locations,
            "assignments": assignments,
        }

    def core_outputs(self, res4, res5, training=None, locations=None, raw_locations=None):
        """The glimpse core's outputs (`GlimpseCloudsCore`) on the backbone's
        maps: the glimpses crop Z = res5 (or res4, `glimpse_map`), c_t is the
        spatial mean of res4, and res4 itself goes to a locator that reads it.
        Glimpse variants only; arguments as `call_on_features`."""
        dtype = self.core.compute_dtype
        cropped = res5 if self.glimpse_map == "res5" else res4
        return self.core(
            ops.cast(cropped, dtype),
            ops.cast(ops.mean(res4, axis=(2, 3)), dtype),
            training=training,
            context_map=ops.cast(res4, dtype) if self.core.needs_context_map else None,
            locations=locations,
            raw_locations=raw_locations,
        )

    def _call_multi_clip(self, video, training):
        shape = ops.shape(video)
        batch, clips = shape[0], shape[1]
        outputs = self.call(ops.reshape(video, (-1,) + tuple(video.shape[2:])), training=training)
        result = {}
        for key, value in outputs.items():
            unfolded = ops.reshape(value, (batch, clips) + tuple(value.shape[1:]))
            result[key] = ops.mean(unfolded, axis=1) if key == "logits" else unfolded
        return result

    # === Losses and training ===

    def compute_loss_terms(self, targets, outputs):
        """Computes every loss term and the weighted total.

        Args:
            targets: dict with "label" int `(batch,)` and, unless the variant
                is "global", "pose" `(batch, [clips,] T, P, J, 2)` and
                "pose_mask" `(batch, [clips,] T, P, J)`; or a bare label
                tensor for the "global" variant.
            outputs: the dict returned by `call`.

        Returns:
            dict term -> scalar float32: "loss" (weighted total) and the
            unweighted "class_loss", "pose_loss", "diversity_loss",
            "attraction_loss", "scale_loss" (0 for terms inactive in this
            variant).

        Raises:
            TargetsError: if a target the variant needs is missing.
        """
        if not isinstance(targets, dict):
            targets = {"label": targets}
        weights = self.effective_loss_weights
        needs_pose = weights["pose_loss"] > 0 or weights["attraction_loss"] > 0
        required = ("label", "pose", "pose_mask") if needs_pose else ("label",)
        missing = [key for key in required if key not in targets]
        if missing:
            raise TargetsError(
                f"variant {self.variant!r} needs targets {list(required)}, missing {missing} "
                f"(received keys {sorted(targets)})."
            )
        zero = ops.zeros((), "float32")
        terms = {"class_loss": losses.classification_loss(targets["label"], outputs["logits"])}
        terms["pose_loss"] = zero
        terms["diversity_loss"] = zero
        terms["attraction_loss"] = zero
        terms["scale_loss"] = zero
        if needs_pose:
            pose = self._fold_clips(outputs["pose"], 5)
            target_pose = self._fold_clips(targets["pose"], 5)
            mask = self._fold_clips(targets["pose_mask"], 4)
        if weights["pose_loss"] > 0:
            terms["pose_loss"] = losses.pose_loss(
                pose,
                target_pose,
                mask,
                match_single_person=self.match_single_person,
                pose_matching=self.pose_matching,
            )
        if not self.is_global:
            locations = self._fold_clips(outputs["locations"], 4)
            terms["diversity_loss"] = losses.glimpse_diversity_loss(
                locations,
                include_self_pairs=self.diversity_include_self_pairs,
                form=self.diversity_form,
            )
            terms["scale_loss"] = losses.glimpse_scale_loss(locations)
            if weights["attraction_loss"] > 0:
                terms["attraction_loss"] = losses.glimpse_attraction_loss(
                    locations,
                    target_pose,
                    mask,
                    per_axis_min=self.attraction_per_axis_min,
                    joint_slots=self._attraction_joint_slots,
                )
        total = terms["class_loss"]
        for name in ("pose_loss", "diversity_loss", "attraction_loss", "scale_loss"):
            if weights[name] > 0:
                total = total + weights[name] * terms[name]
        terms["loss"] = total
        return terms

    @staticmethod
    def _fold_clips(tensor, rank):
        """Merges a test-time clip axis into the batch axis."""
        if len(tensor.shape) == rank + 1:
            return ops.reshape(tensor, (-1,) + tuple(tensor.shape[2:]))
        return tensor

    # `train_step`, `test_step` and `predict_step` come from the backend's
    # `TrainingSteps` (their signatures differ between TensorFlow and JAX);
    # the loss and metrics they compute are defined here, once.

    def _unpack_data(self, data, with_targets=True):
        """`(inputs, targets)` of a batch, or `inputs` alone.

        Raises:
            TargetsError: if the batch carries sample weights.
        """
        inputs, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if not with_targets:
            return inputs
        if sample_weight is not None:
            raise TargetsError("GlimpseClouds does not support sample weights; received some.")
        return inputs, targets

    @staticmethod
    def _loss_to_minimise(terms, extra_losses):
        """The weighted total of `terms` plus any losses added by layers."""
        loss = terms["loss"]
        for extra in extra_losses:
            loss = loss + ops.cast(extra, "float32")
        return loss

    def _update_metrics(self, terms, targets, outputs):
        labels = targets["label"] if isinstance(targets, dict) else targets
        for metric in self.metrics:
            if metric.name in terms:
                metric.update_state(terms[metric.name])
        self.accuracy_metric.update_state(labels, outputs["logits"])
        self.top5_metric.update_state(labels, outputs["logits"])
        return {metric.name: metric.result() for metric in self.metrics}

    @property
    def metrics(self):
        names = ["loss", "class_loss"]
        if self.variant != "global":
            names.append("pose_loss")
        if not self.is_global:
            names += ["diversity_loss", "attraction_loss", "scale_loss"]
        return [self.loss_trackers[name] for name in names] + [self.accuracy_metric, self.top5_metric]

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "variant": self.variant,
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_glimpses": self.num_glimpses,
                "num_workers": self.num_workers,
                "glimpse_type": self.glimpse_type,
                "zoomer_units": self.zoomer_units,
                "worker_units": self.worker_units,
                "where_units": self.where_units,
                **{name: getattr(self, name) for name in CORE_ARGUMENTS},
                "glimpse_scale_samples": self.glimpse_scale_samples,
                "glimpse_map": self.glimpse_map,
                "num_persons": self.num_persons,
                "num_joints": self.num_joints,
                "pose_loss_weight": self.pose_loss_weight,
                "diversity_loss_weight": self.diversity_loss_weight,
                "attraction_loss_weight": self.attraction_loss_weight,
                "scale_loss_weight": self.scale_loss_weight,
                "diversity_form": self.diversity_form,
                "attraction_joints": self.attraction_joints,
                "attraction_per_axis_min": self.attraction_per_axis_min,
                "diversity_include_self_pairs": self.diversity_include_self_pairs,
                "match_single_person": self.match_single_person,
                "pose_matching": self.pose_matching,
                "freeze_backbone": self.freeze_backbone,
                "train_backbone_from": self.train_backbone_from,
                "frozen_batchnorm": self.frozen_batchnorm,
                "initialization": self.initialization,
                "input_normalization": self.input_normalization,
            }
        )
        if self._extra_core_arguments:
            # Only a model built with a deprecated `core_options` holding
            # other core arguments: keep them (the old spelling) on save.
            config["core_options"] = dict(self._extra_core_arguments)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
