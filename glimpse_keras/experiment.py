"""The experiment: one validated config turned into everything a job needs.

In the spirit of TF Model Garden's `Task`, `Experiment` is the single place
where an `ExperimentConfig` becomes objects: the model of a stage (with its
compiled optimizer), the converted data and its datasets (train, per-epoch
validation, multi-clip test), the class names and the export/serving
settings. `train.py`, `evaluate.py`, `export.py`, `tune.py`, the visualiser
and the benchmarks all go through it, so they cannot disagree on what a
config means.

    experiment = Experiment(config_lib.load_config("configs/tiny.yaml"))
    converted_dir = experiment.prepare_data("runs/data_cache")
    model = experiment.build_stage_model(experiment.config.train.stages[0])
    dataset = experiment.train_dataset(experiment.config.train.stages[0], seed=0)

It depends on the config, data and model layers only (never on training,
evaluation, export or tuning), so any of those may import it.
"""

import os

import keras
import numpy as np

from glimpse_keras import backends, filesystem
from glimpse_keras.data import datasets, pipeline, preparation
from glimpse_keras.layers.glimpse_clouds_core import GlimpseCloudsCore
from glimpse_keras.layers.memory_soft_assignment import MemorySoftAssignment
from glimpse_keras.models.backbone import build_backbone
from glimpse_keras.models.glimpse_clouds import VARIANT_AGGREGATIONS, GlimpseClouds, core_dtype_policy
from glimpse_keras.models.presets import get_model_preset

# The split carved from the training subjects (`data.validation_fraction`).
VALIDATION_SPLIT = "validation"
# Fixed: every job on the same data holds out the same subjects.
HOLDOUT_SEED = 0
# Identities of the training records, by training file list (see
# `Experiment._train_identities`).
_IDENTITIES = {}


class Experiment:
    """A validated `ExperimentConfig` and the objects built from it.

    Args:
        config: an `ExperimentConfig` (from `config.load_config`, which
            validates it).
        converted_dir: the converted data, when already known (e.g. given by
            a caller that prepared it); otherwise `prepare_data` sets it.

    Attributes:
        config: the config.
        converted_dir: str or None, the converted TFRecords in use.
    """

    def __init__(self, config, converted_dir=None):
        self.config = config
        self.converted_dir = converted_dir
        self._identities = None
        self._holdout = None

    # === Data ===

    def adapt_to_data(self):
        """Fits the config to what its data say of themselves
        (`DatasetAdapter.data_facts`; user videos: the class count from the
        folder, the pose losses off when no video has keypoints), in place,
        before anything is built or written.

        Returns:
            messages to print once (what was read and what was changed, and why).

        Raises:
            config.ConfigError: naming the key or file that does not fit.
        """
        facts = self.dataset.data_facts(self.config.data)
        if facts is None:
            return []
        model, loss, data = self.config.model, self.config.loss, self.config.data
        described = list(facts.description)
        changed = model.num_classes != len(facts.class_names)
        if changed:
            described[0] += f": model.num_classes set to {len(facts.class_names)}"
            model.num_classes = len(facts.class_names)
        # Said when something changed or is left out, not on every call.
        messages = described if changed or len(described) > 1 else []
        if facts.videos_with_pose == 0:
            if loss.pose_weight or loss.attraction_weight:
                messages.append(
                    f"{data.dataset}: no keypoint file (<video>.json, COCO-17) beside the {facts.videos} videos of "
                    f"{data.data_dir}: the pose loss and the glimpse attraction loss are OFF (loss.pose_weight=0, "
                    "loss.attraction_weight=0); glimpses are learnt from the class labels alone"
                )
            loss.pose_weight = 0.0
            loss.attraction_weight = 0.0
        elif facts.videos_with_pose < facts.videos:
            messages.append(f"{data.dataset}: {facts.videos_with_pose} of {facts.videos} videos have keypoints; "
                            "the others' pose is masked")
        return messages

    @property
    def dataset(self):
        """The adapter of the config's dataset family (`data.datasets`)."""
        return datasets.get(self.config.data.dataset)

    @property
    def label_map(self):
        """Stored labels kept, in class order (`preparation.label_map`)."""
        return preparation.label_map(self.config.data)

    @property
    def protocol(self):
        """The split protocol of the converted indexes."""
        return preparation.split_protocol(self.config.data)

    @property
    def class_names(self):
        """The model's class names, index = model output (NTU names for
        synthetic data, the data's own for user videos; `class_<i>` past the
        known names)."""
        names = list(self.dataset.class_names_for(self.config.data, self.converted_dir))
        labels = self.label_map
        if labels is not None:
            names += [f"class_{index}" for index in range(len(names), max(labels) + 1)]
            return [names[label] for label in labels]
        count = self.config.model.num_classes
        names += [f"class_{index}" for index in range(len(names), count)]
        return names[:count]

    def prepare_data(self, cache_root):
        """Finds or builds the converted data (`preparation.prepare_data`),
        checks it against the config (stored frame size, dataset) and
        remembers it.

        Returns:
            the converted directory (str).

        Raises:
            preparation.DataDirError: no data, or data converted with other
                settings than the config's (naming the file and the keys).
        """
        self.converted_dir = preparation.prepare_data(self.config.data, cache_root)
        return self.converted_dir

    def _converted(self):
        if self.converted_dir is None:
            raise RuntimeError("Experiment.prepare_data must run before the datasets are built")
        return self.converted_dir

    # A validation split carved from the training split (data.validation_fraction).

    def _train_identities(self):
        """(video id, label, subject) of the training split's records, read
        once per converted directory and protocol in this process."""
        if self._identities is None:
            files = preparation.split_files(self._converted(), self.config.data, "train")
            key = tuple((path, filesystem.getmtime(path)) for path in files)
            if key not in _IDENTITIES:
                _IDENTITIES[key] = pipeline.read_identities(files)
            self._identities = _IDENTITIES[key]
        return self._identities

    def validation_holdout(self):
        """Video ids of the validation split carved from the training split,
        or None when `data.validation_fraction` is 0.

        Whole subjects are held out (round(fraction x subjects), at least one
        and not all), drawn with a fixed seed from the subjects of the
        training split, so the validation videos show people the training
        never saw and every job on the same data holds out the same ones.
        Data without subject ids (your own videos: one subject) hold out
        whole videos instead. The test split is never touched.

        Raises:
            preparation.DataDirError: the training split has fewer than two
                subjects (or videos) to divide.
        """
        fraction = self.config.data.validation_fraction
        if not fraction:
            return None
        if self._holdout is None:
            identities = self._train_identities()
            subjects = sorted({subject for _, _, subject in identities})
            by_subject = len(subjects) >= 2
            groups = subjects if by_subject else sorted({video_id for video_id, _, _ in identities})
            if len(groups) < 2:
                raise preparation.DataDirError(
                    f"data.validation_fraction: the training split of {self._converted()} has "
                    f"{len(groups)} {'subject' if by_subject else 'video'}(s); at least 2 are needed "
                    f"to hold some out for validation"
                )
            count = min(len(groups) - 1, max(1, round(fraction * len(groups))))
            order = np.random.default_rng(HOLDOUT_SEED).permutation(len(groups))
            held = {groups[index] for index in order[:count]}
            self._holdout = frozenset(
                video_id for video_id, _, subject in identities
                if (subject if by_subject else video_id) in held
            )
        return self._holdout

    def _split_source(self, split):
        """(files, include_ids, exclude_ids) of `split`: "validation" is the
        carved hold-out of the training files; "train" excludes it."""
        holdout = self.validation_holdout()
        if split == VALIDATION_SPLIT:
            if holdout is None:
                raise preparation.DataDirError(
                    "no validation split: set data.validation_fraction (e.g. 0.2) to carve one from "
                    "the training subjects"
                )
            return preparation.split_files(self._converted(), self.config.data, "train"), holdout, None
        files = preparation.split_files(self._converted(), self.config.data, split)
        return files, None, (holdout if split == "train" else None)

    def split_files(self, split):
        """TFRecord files of one split (raises `pipeline.SplitNotFoundError`);
        the training files for the carved "validation" split."""
        return self._split_source(split)[0]

    def count_videos(self, split):
        """Distinct videos of `split` that the class subset (and the
        validation hold-out) keeps."""
        holdout = self.validation_holdout()
        if holdout is None or split not in ("train", VALIDATION_SPLIT):
            return pipeline.count_split_videos(self._converted(), self.protocol, split, label_map=self.label_map)
        labels = None if self.label_map is None else set(self.label_map)
        return sum(
            1 for video_id, label, _ in self._train_identities()
            if (video_id in holdout) == (split == VALIDATION_SPLIT) and (labels is None or label in labels)
        )

    def train_dataset(self, stage, seed):
        """The training clips of one epoch of `stage`, shuffled and augmented
        from `seed` (repeated when the stage has `steps_per_epoch`), without
        the validation hold-out."""
        data = self.config.data
        files, _, exclude = self._split_source("train")
        return pipeline.build_dataset(
            files,
            "train",
            num_frames=data.num_frames,
            image_size=data.image_size,
            batch_size=stage.batch_size,
            flip=data.flip,
            shuffle_buffer=data.shuffle_buffer,
            seed=seed,
            repeat=bool(stage.steps_per_epoch),
            label_map=self.label_map,
            exclude_ids=exclude,
        )

    def validation_split(self):
        """The split scored after each epoch: "validation" (carved from the
        training subjects) when `data.validation_fraction` is set, else "test"."""
        return VALIDATION_SPLIT if self.config.data.validation_fraction else "test"

    def validation_dataset(self, batch_size, drop_remainder=False):
        """One clip per video of `validation_split()` (bin-centre frames,
        centre crop); without the last partial batch when `drop_remainder`."""
        data = self.config.data
        files, include, exclude = self._split_source(self.validation_split())
        return pipeline.build_dataset(
            files,
            "eval",
            num_frames=data.num_frames,
            image_size=data.image_size,
            batch_size=batch_size,
            drop_remainder=drop_remainder,
            label_map=self.label_map,
            include_ids=include,
            exclude_ids=exclude,
        )

    def test_dataset(self, split="test", clips=None, batch_size=4):
        """K clips per video of `split`, with the video ids; K = `clips` or
        `data.clips_per_video`, cut as `data.test_sampling` says (fixed
        offsets and centre crop, or random ones drawn from `train.seed` and
        the video id)."""
        data = self.config.data
        files, include, exclude = self._split_source(split)
        return pipeline.build_dataset(
            files,
            "test",
            num_frames=data.num_frames,
            image_size=data.image_size,
            batch_size=batch_size,
            clips_per_video=clips or data.clips_per_video,
            test_sampling=data.test_sampling,
            seed=self.config.train.seed,
            label_map=self.label_map,
            include_ids=include,
            exclude_ids=exclude,
        )

    # === Model ===

    def resolve_glimpse_scales(self):
        """Fills `model.glimpse_scale_samples` from `model.glimpse_scales_from`
        (in place, once), so the run's saved config holds the scales itself.

        Returns:
            a message to print, or None when there was nothing to resolve.

        Raises:
            config.ConfigError: the named run or report holds no glimpse scales.
        """
        model_config = self.config.model
        if model_config.glimpse_scale_samples or not model_config.glimpse_scales_from:
            return None
        model_config.glimpse_scale_samples = glimpse_scales_from(model_config.glimpse_scales_from)
        return (f"model.glimpse_scales_from: random glimpses draw their scales from "
                f"{len(model_config.glimpse_scale_samples)} glimpses of {model_config.glimpse_scales_from}")

    def build_model(self, variant, freeze_backbone=False, train_backbone_from="stem",
                    frozen_batchnorm="inference"):
        """The one place where the config becomes the model's parts: the
        backbone, the memory, the glimpse core and the model, each config key
        `model.<key>` given to the part that uses it under its own name (the
        loss keys `loss.<key>` and the stage's freezing go to the model).

        Returns:
            an unbuilt `GlimpseClouds` of `variant` (no core for a global
            variant, no memory for "glimpse_gru").
        """
        model_config, loss = self.config.model, self.config.loss
        preset = get_model_preset(model_config.preset)
        # Built first, as the model would: the same seed gives the same weights.
        backbone = build_backbone(
            model_config.backbone or preset["backbone"],
            output_stride=model_config.output_stride,
            output_stride_dilation=model_config.output_stride_dilation,
        )
        core = None
        if variant in VARIANT_AGGREGATIONS:
            core = self._build_core(VARIANT_AGGREGATIONS[variant], preset["core"])
        return GlimpseClouds(
            num_classes=model_config.num_classes,
            variant=variant,
            backbone=backbone,
            core=core,
            num_glimpses=model_config.num_glimpses,
            num_workers=model_config.num_workers,
            glimpse_map=model_config.glimpse_map,
            pose_loss_weight=loss.pose_weight,
            diversity_loss_weight=loss.diversity_weight,
            attraction_loss_weight=loss.attraction_weight,
            scale_loss_weight=loss.scale_weight,
            diversity_form=loss.diversity_form,
            attraction_joints=loss.attraction_joints,
            diversity_include_self_pairs=loss.diversity_include_self_pairs,
            attraction_per_axis_min=loss.attraction_per_axis_min,
            pose_matching=loss.pose_matching,
            match_single_person=loss.match_single_person,
            freeze_backbone=freeze_backbone,
            train_backbone_from=train_backbone_from,
            frozen_batchnorm=frozen_batchnorm,
            input_normalization=model_config.input_normalization,
            name="glimpse_clouds",
        )

    def _build_core(self, aggregation, sizes):
        """The glimpse core of the config (with its memory for aggregation
        "workers"), sized by `sizes` (the preset's zoomer_units,
        worker_units, fusion_hidden_units), in float32 under a mixed policy
        (`core_dtype_policy`)."""
        model_config = self.config.model
        dtype = core_dtype_policy()
        memory = None
        if aggregation == "workers":
            memory = MemorySoftAssignment(
                num_workers=model_config.num_workers,
                num_glimpses=model_config.num_glimpses,
                assign_axis=model_config.assign_axis,
                distance=model_config.distance,
                time_decay=model_config.time_decay,
                memory_capacity=model_config.memory_capacity,
                name="memory",
                dtype=dtype,
            )
        return GlimpseCloudsCore(
            num_glimpses=model_config.num_glimpses,
            num_workers=model_config.num_workers,
            zoomer_units=sizes["zoomer_units"],
            worker_units=sizes["worker_units"],
            fusion_hidden_units=sizes["fusion_hidden_units"],
            glimpse_type=model_config.glimpse_type,
            aggregation=aggregation,
            memory=memory,
            detach_location=model_config.detach_location,
            share_first_worker_state=model_config.share_first_worker_state,
            raw_location_embedding=model_config.raw_location_embedding,
            zoomer_reset_each_frame=model_config.zoomer_reset_each_frame,
            scale_bias=model_config.scale_bias,
            max_scale=model_config.max_scale,
            locator=model_config.locator,
            locator_keypoints=model_config.locator_keypoints,
            fixed_glimpse_scale=model_config.fixed_glimpse_scale,
            glimpse_scale_samples=model_config.glimpse_scale_samples or None,
            name="glimpse_clouds_core",
            dtype=dtype,
        )

    def build_stage_model(self, stage, strategy=None, compile_model=True):
        """Builds (and by default compiles) the model of one stage.

        The optimizer (Adam at `stage.learning_rate`) has its variables
        created up front so that a checkpoint, which holds them, loads into
        a fresh model. `train.jit_compile` applies to TensorFlow; on JAX the
        steps are always jitted (JAX without `jit` runs op by op).

        Args:
            stage: a `StageConfig` of this config.
            strategy: a `tf.distribute` strategy or a Keras `Distribution`
                (its `scope()` is entered to create the variables), or None
                for TensorFlow's default strategy.
            compile_model: compile with the stage's optimizer.
        """
        import tensorflow as tf

        strategy = strategy or tf.distribute.get_strategy()
        data = self.config.data
        with strategy.scope():
            model = self.build_model(
                stage.variant, stage.freeze_backbone, stage.train_backbone_from, stage.frozen_batchnorm
            )
            model(
                np.zeros((1, data.num_frames, data.image_size, data.image_size, 3), "uint8"),
                training=False,
            )
            if compile_model:
                jit_compile = self.config.train.jit_compile
                if backends.current_backend() == "jax":
                    jit_compile = True
                model.compile(
                    optimizer=keras.optimizers.Adam(stage.learning_rate),
                    jit_compile=jit_compile,
                )
                model.optimizer.build(model.trainable_variables)
        return model

    def stage(self, name=None):
        """The `StageConfig` named `name` (default: the last stage).

        Raises:
            KeyError: naming the stages there are.
        """
        stages = {stage.name: stage for stage in self.config.train.stages}
        if name is None:
            return self.config.train.stages[-1]
        if name not in stages:
            raise KeyError(f"no stage {name!r}; stages: {sorted(stages)}")
        return stages[name]

    # === Export / serving ===

    def serving_settings(self, clips=None):
        """`export.export_model` keyword arguments for this config's clips:
        num_frames, image_size, stored_size, clips_per_video, class_names,
        clip_seconds (the typical duration of the training videos, or None;
        `DatasetAdapter.clip_seconds`)."""
        data = self.config.data
        return {
            "num_frames": data.num_frames,
            "image_size": data.image_size,
            "stored_size": data.stored_size,
            "clips_per_video": clips or data.clips_per_video,
            "class_names": self.class_names,
            "clip_seconds": self.dataset.clip_seconds(data),
        }


def glimpse_scales_from(path):
    """The [s_x, s_y] scale samples of an attention run's evaluation.

    Args:
        path: an evaluation report (JSON, whose "attention" holds
            "scale_samples") or a run folder (the report of its last stage on
            the test split, RUN/evaluation/<stage>/test_report.json).

    Returns:
        list of [s_x, s_y] pairs.

    Raises:
        config.ConfigError: naming the path when it holds no scales.
    """
    import json

    from glimpse_keras.config import ConfigError, load_config

    key = "model.glimpse_scales_from"
    report_path = path
    if filesystem.isdir(path):
        run_config = os.path.join(path, "config.yaml")
        if not filesystem.isfile(run_config):
            raise ConfigError(f"{key}: {path!r} is neither a run folder (no config.yaml) nor a report")
        stage = load_config(run_config).train.stages[-1].name
        report_path = os.path.join(path, "evaluation", stage, "test_report.json")
    try:
        with filesystem.open(report_path) as handle:
            report = json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{key}: cannot read the evaluation report {report_path!r}: {error}") from None
    samples = ((report.get("attention") or {}) if isinstance(report, dict) else {}).get("scale_samples")
    if not samples:
        raise ConfigError(
            f"{key}: {report_path!r} holds no glimpse scales (attention.scale_samples): evaluate an "
            "attention run with this version first"
        )
    return [[float(s_x), float(s_y)] for s_x, s_y in samples]
