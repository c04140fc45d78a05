"""Runs the training stages of an `ExperimentConfig`.

Layout of a run directory::

    RUN/config.yaml                  the resolved config
    RUN/environment.json             Keras backend and versions of every session
    RUN/<stage>/checkpoint.weights.h5  weights + optimizer state, every epoch
    RUN/<stage>/state.json           {"epoch": completed epochs, "done": bool}
    RUN/<stage>/final.weights.h5     weights when the stage finished
    RUN/<stage>/logs/                TensorBoard (every loss term, glimpse stats)
    RUN/<stage>/history.json         per-epoch metrics

Every file is written atomically, so a run killed at any moment resumes from
its last completed epoch (`resume=True`) with the optimizer state and epoch
counter it had. Each stage starts from the previous stage's model (backbone,
pose head and any other sub-model of the same shape; the new heads of a later
stage start fresh); the first stage may start from inflated ImageNet weights.
"""

import json
import os
import platform
import random
import sys

import keras
import numpy as np
import tensorflow as tf

from glimpse_keras import backends
from glimpse_keras import config as config_lib
from glimpse_keras.callbacks import (
    AtomicCheckpoint,
    GlimpseSummary,
    StopOnNonFinite,
    save_weights_atomically,
)
from glimpse_keras.data import pipeline, preparation
from glimpse_keras.io_utils import atomic_write_json
from glimpse_keras.models.backbone import build_backbone
from glimpse_keras.models.glimpse_clouds import GlimpseClouds
from glimpse_keras.models.inflation import InflationError, load_imagenet_weights
from glimpse_keras.models.presets import get_model_preset
from glimpse_keras.stage_progress import StageProgress, keras_verbosity

CHECKPOINT = "checkpoint.weights.h5"
FINAL = "final.weights.h5"
STATE = "state.json"
ENVIRONMENT = "environment.json"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unreadable checkpoint, ...)."""


def set_seed(seed):
    """Seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed`)."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def make_strategy(name):
    """The `tf.distribute` strategy named in `train.strategy`.

    "multi_worker" reads the cluster from the TF_CONFIG environment variable.
    Both need the TensorFlow backend; on JAX only "default" (one device).
    """
    backend = backends.current_backend()
    if name in ("mirrored", "multi_worker") and backend != "tensorflow":
        raise config_lib.ConfigError(
            f"train.strategy: {name} is a tf.distribute strategy and needs the TensorFlow "
            f"backend, but Keras runs on {backend!r}; use train.strategy=default"
        )
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise config_lib.ConfigError(
                "train.strategy: multi_worker needs the TF_CONFIG environment "
                "variable describing the cluster"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def core_options(model_config):
    """Paper-vs-code switches of the config as `GlimpseCloudsCore` arguments."""
    options = {
        "detach_location": model_config.detach_location,
        "assign_axis": model_config.assign_axis,
        "distance": model_config.distance,
        "decay": "recency" if model_config.time_decay == "recent" else "code",
        "share_first_worker_state": model_config.share_first_worker_state,
        "use_raw_location": model_config.raw_location_embedding,
        "scale_bias": model_config.scale_bias,
        "max_scale": model_config.max_scale,
        "zoomer_reset_each_frame": model_config.zoomer_reset_each_frame,
    }
    if model_config.memory_capacity:
        options["memory_frames"] = model_config.memory_capacity
    return options


def build_model(config, variant, freeze_backbone=False):
    """The one place where the config becomes model constructor arguments."""
    model_config = config.model
    kwargs = get_model_preset(model_config.preset)["kwargs"]
    if model_config.backbone:
        kwargs["backbone"] = model_config.backbone
    if model_config.output_stride != 32:
        kwargs["backbone"] = build_backbone(
            kwargs["backbone"],
            output_stride=model_config.output_stride,
            output_stride_dilation=model_config.output_stride_dilation,
        )
    kwargs.update(
        num_classes=model_config.num_classes,
        variant=variant,
        num_glimpses=model_config.num_glimpses,
        num_workers=model_config.num_workers,
        glimpse_type=model_config.glimpse_type,
        pose_loss_weight=config.loss.pose_weight,
        diversity_loss_weight=config.loss.diversity_weight,
        attraction_loss_weight=config.loss.attraction_weight,
        scale_loss_weight=config.loss.scale_weight,
        diversity_form=config.loss.diversity_form,
        freeze_backbone=freeze_backbone,
        input_normalization=model_config.input_normalization,
        core_options=core_options(model_config),
        name="glimpse_clouds",
    )
    return GlimpseClouds(**kwargs)


def build_stage_model(config, stage, strategy, compile_model=True):
    """Builds (and by default compiles) the model of one stage.

    The optimizer's variables are created up front so that a checkpoint,
    which holds them, loads into a fresh model. `train.jit_compile` applies
    to TensorFlow; on JAX the steps are always jitted (JAX without `jit`
    runs op by op).
    """
    data = config.data
    with strategy.scope():
        model = build_model(config, stage.variant, stage.freeze_backbone)
        model(
            np.zeros((1, data.num_frames, data.image_size, data.image_size, 3), "uint8"),
            training=False,
        )
        if compile_model:
            jit_compile = config.train.jit_compile
            if backends.current_backend() == "jax":
                jit_compile = True
            model.compile(
                optimizer=keras.optimizers.Adam(stage.learning_rate),
                jit_compile=jit_compile,
            )
            model.optimizer.build(model.trainable_variables)
    return model


SUBMODELS = ("backbone", "pose_head", "core", "worker_classifier", "global_classifier")


def transfer_weights(source, target):
    """Copies each sub-model of `source` (backbone, pose head, glimpse core,
    classifiers) into `target` when it exists in both with the same shapes.

    Used between stages (stage 2 keeps the stage-1 backbone and pose head and
    adds the glimpse core and worker heads) and for fine-tuning on another
    dataset (classifiers of another size start fresh).

    Returns:
        (copied, fresh): lists of sub-model names.
    """
    copied, fresh = [], []
    for name in SUBMODELS:
        layer = getattr(target, name, None)
        if layer is None:
            continue
        match = getattr(source, name, None)
        weights = match.get_weights() if match is not None else None
        shapes = [tuple(w.shape) for w in layer.weights]
        if weights is None or [tuple(w.shape) for w in weights] != shapes:
            fresh.append(name)
            continue
        layer.set_weights(weights)
        copied.append(name)
    return copied, fresh


def load_run_model(run_dir, stage_name=None, weights=None):
    """Rebuilds a finished run's model from its saved config and weights.

    Args:
        run_dir: a directory written by `train`.
        stage_name: which stage (default: the last one).
        weights: weights file (default: that stage's final weights).

    Returns:
        (model, config).

    Raises:
        TrainingError: naming the missing or unreadable file.
    """
    config_path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(config_path):
        raise TrainingError(f"{run_dir} is not a training run: {config_path} is missing")
    config = config_lib.load_config(config_path)
    stages = {stage.name: stage for stage in config.train.stages}
    stage = stages.get(stage_name) if stage_name else config.train.stages[-1]
    if stage is None:
        raise TrainingError(f"run {run_dir} has no stage {stage_name!r}; stages: {sorted(stages)}")
    weights = weights or os.path.join(run_dir, stage.name, FINAL)
    if not os.path.exists(weights):
        raise TrainingError(
            f"{weights} does not exist: stage {stage.name} of {run_dir} has not finished"
        )
    model = build_stage_model(config, stage, tf.distribute.get_strategy(), compile_model=False)
    try:
        model.load_weights(weights)
    except Exception as error:  # h5py and keras raise many kinds here
        raise TrainingError(f"cannot load weights {weights}: {error}") from error
    return model, config


def adapt_memory_metric(model, dataset, batches=8):
    """Initialises the memory's learned distance from glimpse features.

    Spec section 11.2: A (phi(x, y) = |A (x - y)|) starts from a regularised
    inverse covariance (per-feature variances with shrinkage) of the fused
    glimpse features v_{t,g} of a few training batches, computed with the
    current (stage-1) backbone, instead of the authors' singular per-batch
    covariance. A then trains with everything else and is saved.

    Returns:
        number of feature vectors used (0 when the model has no learned
        memory distance).
    """
    memory = getattr(getattr(model, "core", None), "memory", None)
    if memory is None or memory.distance != "learned":
        return 0
    samples = []
    for inputs, _ in dataset.take(batches):
        video = inputs["video"] if isinstance(inputs, dict) else inputs
        features = model.backbone_features(video, training=False)
        context = keras.ops.mean(features["res4"], axis=(2, 3))
        outputs = model.core(features["res5"], context, training=False)
        glimpses = np.asarray(keras.ops.convert_to_numpy(outputs["glimpse_features"]), "float64")
        samples.append(glimpses.reshape(-1, glimpses.shape[-1]))
    if not samples:
        return 0
    samples = np.concatenate(samples)
    memory.adapt_metric(samples)
    return len(samples)


def backend_versions():
    """The Keras backend in use and the versions of what runs it (a dict;
    None for a framework this process has not imported)."""
    versions = {"backend": backends.current_backend(), "keras": keras.__version__,
                "python": platform.python_version()}
    for module in ("tensorflow", "jax"):
        versions[module] = getattr(sys.modules.get(module), "__version__", None)
    return versions


def _record_environment(run_dir, resume):
    """Appends this session's backend and versions to RUN/environment.json."""
    path = os.path.join(run_dir, ENVIRONMENT)
    sessions = []
    if resume and os.path.exists(path):
        with open(path) as handle:
            sessions = json.load(handle)
    sessions.append(dict(backend_versions(), resumed=bool(resume)))
    atomic_write_json(path, sessions)


def _check_resumable(previous, config, path):
    """Refuses to resume with other data or another architecture.

    The checkpoints of `path`'s run would not fit (or would silently mean
    something else); schedule changes such as more epochs are allowed.
    """
    changed = []
    for section in ("data", "model"):
        old, new = previous.to_dict()[section], config.to_dict()[section]
        changed += [f"{section}.{key}: {old[key]!r} -> {new[key]!r}" for key in old if old[key] != new[key]]
    if changed:
        raise TrainingError(
            f"--resume with a different config than {path}: {'; '.join(changed)}. "
            f"Resume with the same data and model settings, or use a new --output-dir."
        )


def _read_state(stage_dir):
    path = os.path.join(stage_dir, STATE)
    if not os.path.exists(path):
        return {"epoch": 0, "done": False}
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise TrainingError(
            f"cannot read {path} ({error}); delete the stage folder "
            f"{stage_dir} to restart that stage"
        ) from error


def train_dataset(config, converted_dir, stage, seed):
    """The training clips of one epoch, shuffled and augmented from `seed`."""
    data = config.data
    return pipeline.build_dataset(
        preparation.split_files(converted_dir, data, "train"),
        "train",
        num_frames=data.num_frames,
        image_size=data.image_size,
        batch_size=stage.batch_size,
        flip=data.flip,
        shuffle_buffer=data.shuffle_buffer,
        seed=seed,
        repeat=bool(stage.steps_per_epoch),
        label_map=preparation.label_map(data),
    )


def validation_dataset(config, converted_dir, batch_size):
    """One clip per test video (bin-centre frames, centre crop)."""
    data = config.data
    return pipeline.build_dataset(
        preparation.split_files(converted_dir, data, "test"),
        "eval",
        num_frames=data.num_frames,
        image_size=data.image_size,
        batch_size=batch_size,
        label_map=preparation.label_map(data),
    )


def run_stage(config, stage, run_dir, converted_dir, previous_model, resume, strategy,
              extra_callbacks=()):
    """Trains one stage.

    Args:
        previous_model: a model whose matching sub-layers initialise this
            stage (the previous stage, or a run being fine-tuned), or None.
        extra_callbacks: further Keras callbacks for `fit`.

    Returns:
        the trained model.
    """
    stage_dir = os.path.join(run_dir, stage.name)
    final_path = os.path.join(stage_dir, FINAL)
    checkpoint_path = os.path.join(stage_dir, CHECKPOINT)
    state = _read_state(stage_dir) if resume else {"epoch": 0, "done": False}
    os.makedirs(stage_dir, exist_ok=True)
    model = build_stage_model(config, stage, strategy)
    if resume and state.get("done") and state["epoch"] >= stage.epochs and os.path.exists(final_path):
        print(f"[{stage.name}] already finished; skipping (resume)")
        model.load_weights(final_path)
        return model
    initial_epoch = 0
    if resume and state["epoch"] > 0 and os.path.exists(checkpoint_path):
        try:
            model.load_weights(checkpoint_path)
        except Exception as error:  # h5py/keras raise many kinds here
            raise TrainingError(
                f"checkpoint {checkpoint_path} is unreadable ({error}); delete "
                f"it (and {STATE}) to restart stage {stage.name} from scratch"
            ) from error
        initial_epoch = int(state["epoch"])
        print(f"[{stage.name}] resumed after epoch {initial_epoch}")
    else:
        copied = []
        if previous_model is not None:
            copied, fresh = transfer_weights(previous_model, model)
            print(f"[{stage.name}] initialised {copied} from the previous model; new: {fresh}")
        elif config.model.pretrained_weights:
            try:
                load_imagenet_weights(
                    model.backbone, config.model.pretrained_weights, config.model.inflation
                )
            except InflationError as error:
                raise TrainingError(f"model.pretrained_weights: {error}") from error
            print(
                f"[{stage.name}] backbone inflated ({config.model.inflation}) from "
                f"{config.model.pretrained_weights}"
            )
        if "core" not in copied:
            seed = config.train.seed + 1000 * config.train.stages.index(stage)
            count = adapt_memory_metric(model, train_dataset(config, converted_dir, stage, seed))
            if count:
                print(f"[{stage.name}] memory distance initialised from {count} glimpse features")
    # The attention diagnostics are logged from a few test batches whether or
    # not the whole split is scored every epoch (`train.validate`).
    test_clips = validation_dataset(config, converted_dir, stage.batch_size)
    validation_data = test_clips if config.train.validate else None
    nonfinite = StopOnNonFinite()
    callbacks = [
        nonfinite,
        AtomicCheckpoint(stage_dir, CHECKPOINT, STATE, nonfinite),
        keras.callbacks.TensorBoard(os.path.join(stage_dir, "logs")),
        GlimpseSummary(os.path.join(stage_dir, "logs"), test_clips),
        *extra_callbacks,
    ]
    stage_seed = config.train.seed + 1000 * config.train.stages.index(stage)
    steps = stage.steps_per_epoch or _full_pass_steps(config, converted_dir, stage)
    callbacks.append(StageProgress(stage.name, stage.epochs, steps, initial_epoch))
    # One fit call per epoch, each on a dataset seeded by the epoch number, so a
    # resumed run sees exactly the clips the uninterrupted run would have.
    for epoch in range(initial_epoch, stage.epochs):
        history = model.fit(
            train_dataset(config, converted_dir, stage, stage_seed + epoch),
            epochs=epoch + 1,
            initial_epoch=epoch,
            steps_per_epoch=steps,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=keras_verbosity(),  # StageProgress reports instead
        )
        if nonfinite.failure:
            raise TrainingError(
                f"[{stage.name}] {nonfinite.failure}; training stopped. The last "
                f"good checkpoint is {checkpoint_path} (epoch "
                f"{_read_state(stage_dir)['epoch']}); lower the learning rate or "
                f"check the data, then rerun with --resume."
            )
        _append_history(stage_dir, history.history, epoch)
    save_weights_atomically(model, final_path)
    atomic_write_json(os.path.join(stage_dir, STATE), {"epoch": stage.epochs, "done": True})
    return model


def _full_pass_steps(config, converted_dir, stage):
    """Batches in one pass over the training split (the last partial batch
    is dropped), so progress bars know the epoch length."""
    protocol = preparation.split_protocol(config.data)
    videos = pipeline.count_split_videos(
        converted_dir, protocol, "train", label_map=preparation.label_map(config.data)
    )
    if videos < stage.batch_size:
        raise TrainingError(
            f"[{stage.name}] the training split has {videos} videos, fewer than "
            f"batch_size={stage.batch_size}; lower train.stages.*.batch_size"
        )
    return videos // stage.batch_size


def _append_history(stage_dir, history, initial_epoch):
    path = os.path.join(stage_dir, "history.json")
    previous = []
    if os.path.exists(path):
        with open(path) as handle:
            previous = json.load(handle)
    previous = previous[:initial_epoch]
    epochs = len(next(iter(history.values()), []))
    for index in range(epochs):
        previous.append({key: float(values[index]) for key, values in history.items()})
    atomic_write_json(path, previous)


def train(config, run_dir, resume=False, init_from=None, cache_root=None, callbacks=()):
    """Runs every stage of `config.train.stages` in order.

    Args:
        config: validated `ExperimentConfig`.
        run_dir: output directory of the run (created).
        resume: continue from the checkpoints found in `run_dir`.
        init_from: optional run directory whose final model initialises the
            first stage (e.g. an NTU run for N-UCLA fine-tuning; classifiers
            whose size differs start fresh).
        cache_root: where generated/converted data live; default beside
            `run_dir`.
        callbacks: further Keras callbacks given to every stage's `fit`.

    Returns:
        dict with "converted_dir", "final_weights" (of the last stage) and
        "model" (the trained model).
    """
    set_seed(config.train.seed)
    keras.mixed_precision.set_global_policy(config.train.precision)
    os.makedirs(run_dir, exist_ok=True)
    config_path = os.path.join(run_dir, "config.yaml")
    if resume and os.path.exists(config_path):
        _check_resumable(config_lib.load_config(config_path), config, config_path)
    config_lib.save_config(config, config_path)
    _record_environment(run_dir, resume)
    cache_root = cache_root or os.path.join(os.path.dirname(os.path.abspath(run_dir)), "data_cache")
    converted_dir = preparation.prepare_data(config.data, cache_root)
    strategy = make_strategy(config.train.strategy)
    model = load_run_model(init_from)[0] if init_from else None
    for stage in config.train.stages:
        model = run_stage(config, stage, run_dir, converted_dir, model, resume, strategy, callbacks)
    last = config.train.stages[-1].name
    return {
        "converted_dir": converted_dir,
        "final_weights": os.path.join(run_dir, last, FINAL),
        "model": model,
    }
