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
from glimpse_keras.arguments import check_choice, check_int, check_number

VARIANTS = ("global", "global_pose", "glimpse_gru", "glimpse_clouds")
GLIMPSE_MAPS = ("res5", "res4")
GLOBAL_VARIANTS = ("global", "global_pose")
# The aggregation of the core of each glimpse variant (global variants have no core).
VARIANT_AGGREGATIONS = {"glimpse_gru": "gru", "glimpse_clouds": "workers"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LOSS_TERMS = ("loss", "class_loss", "pose_loss", "diversity_loss", "attraction_loss", "scale_loss")
FROZEN_BATCHNORM_MODES = ("inference", "drift")


class ModelConfigError(GlimpseError, ValueError):
    """An invalid `GlimpseClouds` constructor argument."""


class TargetsError(GlimpseError, ValueError):
    """Training targets that `GlimpseClouds.train_step` cannot use."""


# Configs saved before the core was passed as an object hold its arguments
# among the model's (and, older still, in a `core_options` dict); `from_config`
# moves them into the core. Saved name -> core argument.
_FLAT_CORE_ARGUMENTS = {
    "glimpse_type": "glimpse_type",
    "zoomer_units": "zoomer_units",
    "worker_units": "worker_units",
    "where_units": "fusion_hidden_units",
    "detach_location": "detach_location",
    "assign_axis": "assign_axis",
    "distance": "distance",
    "time_decay": "time_decay",
    "memory_capacity": "memory_capacity",
    "share_first_worker_state": "share_first_worker_state",
    "raw_location_embedding": "raw_location_embedding",
    "scale_bias": "scale_bias",
    "max_scale": "max_scale",
    "zoomer_reset_each_frame": "zoomer_reset_each_frame",
    "locator": "locator",
    "locator_keypoints": "locator_keypoints",
    "fixed_glimpse_scale": "fixed_glimpse_scale",
    "glimpse_scale_samples": "glimpse_scale_samples",
}
# Saved arguments that stay the model's and were also the core's.
_SHARED_WITH_CORE = ("num_glimpses", "num_workers", "initialization")


def core_dtype_policy(model_dtype=None):
    """The dtype policy to build a model's glimpse core (and its memory) with.

    Under a mixed (16-bit) policy the recurrent core runs in float32: its
    matmuls are matrix-vector products (batch x G rows) that oneDNN runs ~2.5x
    slower in bfloat16 on CPU, and autocasting re-casts every weight at each
    of the T*G steps (profiled: casts took more time than the matmuls;
    benchmarks/README.md). `Experiment.build_model`, the presets and the
    model's default core follow this; pass `dtype=core_dtype_policy()` to a
    core (and memory) you build yourself under mixed precision.

    Args:
        model_dtype: the model's dtype policy (name, `DTypePolicy` or its
            config), or None for the global policy.

    Returns:
        "float32" when that policy computes in float16 or bfloat16, else None
        (the global policy).
    """
    policy = keras.dtype_policies.get(model_dtype)
    return "float32" if policy.compute_dtype in ("float16", "bfloat16") else None


def _config_with_core(config):
    """A model config saved with the core's arguments among the model's (or
    in `core_options`) as one with the `core` object (None for global
    variants); the core and its memory get the names and dtype the model gave
    them then."""
    config = dict(config)
    core_config = {new: config.pop(old) for old, new in _FLAT_CORE_ARGUMENTS.items() if old in config}
    core_config.update({name: config[name] for name in _SHARED_WITH_CORE if name in config})
    # Old names in it (`decay`, ...) are translated by GlimpseCloudsCore.from_config.
    core_config.update(config.pop("core_options", None) or {})
    variant = config.get("variant", "glimpse_clouds")
    if variant in VARIANT_AGGREGATIONS:
        core_config.update(
            aggregation=VARIANT_AGGREGATIONS[variant],
            name="glimpse_clouds_core",
            dtype=core_dtype_policy(config.get("dtype")),
        )
        config["core"] = GlimpseCloudsCore.from_config(core_config)
    else:
        config["core"] = None
    return config


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

    The model is composed from its parts, as a keras-hub task is handed its
    backbone and `keras.layers.RNN` its cell:

        memory = MemorySoftAssignment(num_workers=3, num_glimpses=3, time_decay="code")
        core = GlimpseCloudsCore(num_glimpses=3, num_workers=3, memory=memory, locator="spatial")
        model = GlimpseClouds(num_classes=60, backbone="resnet50", core=core)

    `Experiment.build_model` builds them from a config (each config key
    `model.<key>` is the argument of the same name of the part that uses it)
    and `presets.build_model_from_preset("tiny", num_classes=10)` from a
    named size.

    Args:
        num_classes: int, number of action classes.
        variant: one of `VARIANTS`.
        backbone: a `BACKBONE_PRESETS` name (e.g. "resnet50", "tiny") or an
            `InflatedResNet3D` instance (e.g. with inflated ImageNet weights);
            the config always stores the serialised backbone.
        core: the glimpse core of a glimpse variant: a `GlimpseCloudsCore`
            with aggregation "gru" for "glimpse_gru", "workers" (with its
            `MemorySoftAssignment`) for "glimpse_clouds"; None builds the
            paper's core (`GlimpseCloudsCore(aggregation=..., initialization=
            initialization, dtype=core_dtype_policy(...))`, G = C = 3). Must be
            None for the global variants, which have no glimpses. The config
            stores the serialised core (with its memory).
        num_glimpses, num_workers: G and C of the "locations" and
            "assignments" outputs. A glimpse variant takes them from its core
            (None, or the core's values); a global variant returns zeros of
            these shapes (default 3), so every variant has the same outputs.
        glimpse_map: the backbone map the glimpses crop: "res5" (Z, the
            paper) or "res4" (one stage earlier: features of a smaller
            receptive field, the map c_t pools).
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
        initialization: "torch" or "keras" initialisers for the heads (and a
            default core).
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
        >>> core = GlimpseCloudsCore(zoomer_units=32, worker_units=32, fusion_hidden_units=16)
        >>> model = GlimpseClouds(num_classes=60, backbone="tiny", core=core)
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
        core=None,
        num_glimpses=None,
        num_workers=None,
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
        super().__init__(**kwargs)
        # === Validation ===
        self.num_classes = check_int("num_classes", num_classes, error=ModelConfigError)
        self.variant = check_choice("variant", variant, VARIANTS, error=ModelConfigError)
        self._check_core(core)
        self.glimpse_map = check_choice("glimpse_map", glimpse_map, GLIMPSE_MAPS, error=ModelConfigError)
        self.num_persons = check_int("num_persons", num_persons, error=ModelConfigError)
        self.num_joints = check_int("num_joints", num_joints, error=ModelConfigError)
        self.pose_loss_weight = _check_weight("pose_loss_weight", pose_loss_weight)
        self.diversity_loss_weight = _check_weight("diversity_loss_weight", diversity_loss_weight)
        self.attraction_loss_weight = _check_weight("attraction_loss_weight", attraction_loss_weight)
        self.scale_loss_weight = _check_weight("scale_loss_weight", scale_loss_weight)
        self.diversity_form = check_choice(
            "diversity_form", diversity_form, losses.DIVERSITY_FORMS, error=ModelConfigError
        )
        try:
            self._attraction_joint_slots = losses.attraction_joint_slots(attraction_joints, self.num_joints)
        except ValueError as error:
            raise ModelConfigError(f"`attraction_joints`: {error}") from None
        self.attraction_joints = attraction_joints
        self.attraction_per_axis_min = bool(attraction_per_axis_min)
        self.diversity_include_self_pairs = bool(diversity_include_self_pairs)
        self.match_single_person = bool(match_single_person)
        self.pose_matching = check_choice(
            "pose_matching", pose_matching, losses.POSE_MATCHINGS, error=ModelConfigError
        )
        self.freeze_backbone = bool(freeze_backbone)
        self.train_backbone_from = check_choice(
            "train_backbone_from", train_backbone_from, ENDPOINT_NAMES, error=ModelConfigError
        )
        self.frozen_batchnorm = check_choice(
            "frozen_batchnorm", frozen_batchnorm, FROZEN_BATCHNORM_MODES, error=ModelConfigError
        )
        self.initialization = check_initialization(initialization)
        self.input_normalization = check_choice(
            "input_normalization", input_normalization, INPUT_NORMALIZATIONS, error=ModelConfigError
        )

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
            self.core = None
            self.global_classifier = GlobalPoolClassifier(
                num_classes, initialization=initialization, dtype="float32", name="global_classifier"
            )
        else:
            if core is None:
                core = GlimpseCloudsCore(
                    aggregation=VARIANT_AGGREGATIONS[variant],
                    initialization=initialization,
                    dtype=core_dtype_policy(self.dtype_policy),
                    name="glimpse_clouds_core",
                )
            self.core = core
            self.worker_classifier = WorkerClassifier(
                num_classes,
                core.num_worker_outputs,
                initialization=initialization,
                dtype="float32",
                name="worker_classifier",
            )
        self.num_glimpses, self.num_workers = self._glimpse_shape(num_glimpses, num_workers)

        # === Metrics ===
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_TERMS}
        self.accuracy_metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.top5_metric = keras.metrics.SparseTopKCategoricalAccuracy(
            k=min(5, num_classes), name="top5_accuracy"
        )

    def _check_core(self, core):
        """Refuses a core that does not fit the variant."""
        if self.variant in GLOBAL_VARIANTS:
            if core is not None:
                raise ModelConfigError(
                    f"variant {self.variant!r} has no glimpses: `core` must be None, received "
                    f"{type(core).__name__}."
                )
            return
        if core is None:
            return
        if not isinstance(core, GlimpseCloudsCore):
            raise ModelConfigError(
                f"`core` must be a GlimpseCloudsCore or None, received {type(core).__name__}."
            )
        aggregation = VARIANT_AGGREGATIONS[self.variant]
        if core.aggregation != aggregation:
            raise ModelConfigError(
                f"variant {self.variant!r} needs a core with aggregation={aggregation!r}, received "
                f"a core with aggregation={core.aggregation!r}."
            )

    def _glimpse_shape(self, num_glimpses, num_workers):
        """(G, C) of the glimpse outputs: the core's, or the arguments (default
        3) for a global variant."""
        if self.core is None:
            return tuple(
                check_int(name, 3 if value is None else value, error=ModelConfigError)
                for name, value in (("num_glimpses", num_glimpses), ("num_workers", num_workers))
            )
        for name, value in (("num_glimpses", num_glimpses), ("num_workers", num_workers)):
            if value is not None and value != getattr(self.core, name):
                raise ModelConfigError(
                    f"`{name}`={value!r} differs from the core's {name}={getattr(self.core, name)!r}; "
                    "a glimpse variant takes it from its core (leave it None)."
                )
        return self.core.num_glimpses, self.core.num_workers

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
                "core": None if self.core is None else keras.saving.serialize_keras_object(self.core),
                "num_glimpses": self.num_glimpses,
                "num_workers": self.num_workers,
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
        return config

    @classmethod
    def from_config(cls, config):
        if "core" not in config:
            # Saved before the core was passed as an object.
            config = _config_with_core(config)
        config = dict(config)
        for name in ("backbone", "core"):
            if isinstance(config.get(name), dict):
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
