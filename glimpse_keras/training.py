"""Runs the training stages of an `ExperimentConfig`.

Layout of a run directory::

    RUN/config.yaml                  the resolved config
    RUN/environment.json             Keras backend and versions of every session
    RUN/<stage>/checkpoint.weights.h5  weights + optimizer state, every epoch
    RUN/<stage>/*.weights.h5.sha256  sha256 of each weights file, checked on load
    RUN/<stage>/state.json           {"epoch": completed epochs, "done": bool, sha256s}
    RUN/<stage>/final.weights.h5     weights when the stage finished
    RUN/<stage>/logs/                TensorBoard (every loss term, glimpse stats)
    RUN/<stage>/history.json         per-epoch metrics

Every file is written atomically and each epoch is committed in a fixed
order (`resume`), so a run killed at any moment resumes from its last
completed epoch (`resume=True`) with the optimizer state, epoch counter and
history it had; the temporary files of a write that was killed are removed
when the run is next started. A folder that holds a run is never trained over
unless asked (`resume` or `overwrite`), and nothing is written into the run
before the new config is validated, the data found, the output location
checked, every batch size checked against the data and, for a resume, every
file it loads verified. A write the file system refuses (full disk, ...)
raises `io_utils.StorageError` and leaves the last good checkpoint as it was.
A resume that trains a stage further (more epochs) trains the stages after it
again from the start: their earlier results came from the shorter stage.

Each stage starts from the previous stage's model (backbone, pose head and any
other sub-model of the same shape; the new heads of a later stage start
fresh); the first stage may start from inflated ImageNet weights. The stage
runner (`initialise_stage_model`, `fit_stage`) is shared with the tuner.
"""

import json
import os
import platform
import random
import sys

import keras
import numpy as np
import tensorflow as tf

from glimpse_keras import backends, checkpoints, parallel
from glimpse_keras import config as config_lib
from glimpse_keras import resume as resume_lib
from glimpse_keras.callbacks import AtomicCheckpoint, GlimpseSummary, StopOnNonFinite
from glimpse_keras.data import preparation
from glimpse_keras.filesystem import read_json
from glimpse_keras.io_utils import (
    atomic_write_json,
    check_output_location,
    clean_stale_temporaries,
    makedirs,
)
from glimpse_keras.experiment import Experiment
from glimpse_keras.models.inflation import InflationError, load_imagenet_weights
from glimpse_keras.stage_progress import StageProgress, keras_verbosity

CONFIG = "config.yaml"
CHECKPOINT = resume_lib.CHECKPOINT
FINAL = resume_lib.FINAL
STATE = resume_lib.STATE
ENVIRONMENT = "environment.json"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unreadable checkpoint, ...)."""


def set_seed(seed):
    """Seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed`)."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def make_strategy(name):
    """The distribution named in `train.strategy`.

    "mirrored" and "multi_worker" are `tf.distribute` strategies (TensorFlow
    only; "multi_worker" reads the cluster from the TF_CONFIG environment
    variable). "data_parallel" (JAX only) is `parallel.data_parallel()`, a
    `keras.distribution.DataParallel` over every device of the job, which
    becomes Keras' global distribution (joining a multi-process job first
    when the KERAS_DISTRIBUTION_* variables describe one). "default" is
    TensorFlow's default strategy (one device, on either backend).

    Raises:
        config.ConfigError: a strategy of the other backend, naming the one
            to use; multi_worker without TF_CONFIG.
    """
    parallel.check_strategy(name, backends.current_backend())
    if name == parallel.DATA_PARALLEL:
        return parallel.data_parallel()
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


def build_model(config, variant, freeze_backbone=False):
    """`Experiment(config).build_model(variant, freeze_backbone)`."""
    return Experiment(config).build_model(variant, freeze_backbone)


def build_stage_model(config, stage, strategy, compile_model=True):
    """`Experiment(config).build_stage_model(stage, strategy, compile_model)`."""
    return Experiment(config).build_stage_model(stage, strategy, compile_model)


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
        TrainingError: naming the missing, damaged (sha256 mismatch) or
            unreadable file.
    """
    config_path = os.path.join(run_dir, CONFIG)
    if not os.path.exists(config_path):
        raise TrainingError(f"{run_dir} is not a training run: {config_path} is missing")
    config = config_lib.load_config(config_path)
    stages = {stage.name: stage for stage in config.train.stages}
    stage = stages.get(stage_name) if stage_name else config.train.stages[-1]
    if stage is None:
        raise TrainingError(f"run {run_dir} has no stage {stage_name!r}; stages: {sorted(stages)}")
    if weights and not os.path.isfile(weights):
        raise TrainingError(f"weights file {weights} does not exist")
    weights = weights or os.path.join(run_dir, stage.name, FINAL)
    if not os.path.exists(weights):
        raise TrainingError(
            f"{weights} does not exist: stage {stage.name} of {run_dir} has not finished"
        )
    model = build_stage_model(config, stage, tf.distribute.get_strategy(), compile_model=False)
    try:
        checkpoints.load_weights(model, weights)
    except checkpoints.CheckpointError as error:
        raise TrainingError(str(error)) from error
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
        outputs = model.core_outputs(features["res4"], features["res5"], training=False)
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


def _read_environment(run_dir):
    """The sessions recorded in RUN/environment.json ([] when absent).

    Raises:
        TrainingError: the file cannot be read, naming it.
    """
    path = os.path.join(run_dir, ENVIRONMENT)
    if not os.path.exists(path):
        return []
    return read_json(path, list, TrainingError,
                     fix="it only records the sessions of the run: delete it (or repair it) and rerun")


def _record_environment(run_dir, sessions, resume, changes=(), distribution=None):
    """Appends this session's backend and versions, its distribution
    (`parallel.describe`: strategy, devices, processes) and, for a resumed
    session, the config changes it applied to the earlier `sessions` in
    RUN/environment.json."""
    entry = dict(backend_versions(), resumed=bool(resume))
    if distribution is not None:
        entry["distribution"] = distribution
    if changes:
        entry["config_changes"] = list(changes)
    atomic_write_json(os.path.join(run_dir, ENVIRONMENT), list(sessions) + [entry])


def _flatten(tree, prefix=""):
    """{"a": {"b": 1}, "c": [{"d": 2}]} -> {"a.b": 1, "c.0.d": 2}."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list) and all(isinstance(item, dict) for item in tree):
        items = enumerate(tree)
    else:
        return {prefix[:-1]: tree}
    flat = {}
    for key, value in items:
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


# Stage keys a resumed run may change: the epoch count, and the optimizer
# settings, which `run_stage` applies to the restored optimizer.
RESUMABLE_STAGE_KEYS = ("epochs", "learning_rate")


def _check_resumable(previous, config, path):
    """Refuses to resume with other data, architecture or stage layout.

    The checkpoints of `path`'s run would not fit (or would silently mean
    something else). Allowed: more or fewer epochs, a new learning rate (the
    restored optimizer takes it), the losses' weights and the bookkeeping
    keys of `train` (validate, jit_compile, ...).

    Returns:
        list of "key: old -> new" strings, every change that is applied.

    Raises:
        TrainingError: naming every key that differs and cannot change.
    """
    old, new = _flatten(previous.to_dict()), _flatten(config.to_dict())
    refused, applied = [], []
    for key in sorted(set(old) | set(new), key=lambda k: (k.split(".")[0], k)):
        if old.get(key) == new.get(key):
            continue
        change = f"{key}: {old.get(key, 'absent')!r} -> {new.get(key, 'absent')!r}"
        section, _, rest = key.partition(".")
        if section in ("data", "model"):
            refused.append(change)
        elif section == "train" and rest.startswith("stages"):
            field = rest.split(".")[-1]
            same_count = len(previous.train.stages) == len(config.train.stages)
            if not same_count or field not in RESUMABLE_STAGE_KEYS:
                refused.append(change)
            else:
                applied.append(change)
        elif key == "train.seed":
            refused.append(change)
        else:
            applied.append(change)
    if refused:
        raise TrainingError(
            f"--resume with a different config than {path}: {'; '.join(refused)}. "
            f"Resume with the same data, model, seed and stages (only "
            f"{', '.join(RESUMABLE_STAGE_KEYS)} of a stage may change), or use a new --output-dir."
        )
    return applied


def _read_state(stage_dir):
    try:
        return resume_lib.read_state(stage_dir)
    except checkpoints.CheckpointError as error:
        raise TrainingError(str(error)) from error


def train_dataset(config, converted_dir, stage, seed):
    """`Experiment.train_dataset`: the training clips of one epoch."""
    return Experiment(config, converted_dir).train_dataset(stage, seed)


def validation_dataset(config, converted_dir, batch_size):
    """`Experiment.validation_dataset`: one clip per video of the validation
    split (the test split, or the hold-out of `data.validation_fraction`)."""
    return Experiment(config, converted_dir).validation_dataset(batch_size)


# === The stage runner (shared by `train` and the tuner) ===


def stage_seed(config, stage):
    """The seed of `stage`: `train.seed` + 1000 x its position in the config.
    It seeds the model's initial weights and, plus the epoch number, each
    epoch's clips."""
    return config.train.seed + 1000 * config.train.stages.index(stage)


def initialise_stage_model(experiment, stage, strategy=None, previous_model=None, log=print):
    """Builds the compiled model of `stage` and gives it its starting weights.

    The one way a stage's model starts, for `train.py` and for every tuner
    trial, so that a trial's config retrained with `train.py` starts from
    the same weights: the global random state is reset to
    `stage_seed(config, stage)` first, then matching sub-models are copied
    from `previous_model` (`transfer_weights`), else the backbone is
    inflated from `model.pretrained_weights` when set, and a fresh glimpse
    core's memory distance is fitted to the glimpse features
    (`adapt_memory_metric`).

    Args:
        experiment: an `Experiment` whose data are prepared.
        stage: a `StageConfig` of its config.
        strategy: `tf.distribute` strategy or None (default strategy).
        previous_model: a model whose matching sub-layers initialise this
            stage (the previous stage, a run being fine-tuned), or None.
        log: a print-like function for what was initialised.

    Returns:
        the compiled, initialised model.

    Raises:
        TrainingError: `model.pretrained_weights` cannot be inflated.
    """
    config = experiment.config
    seed = stage_seed(config, stage)
    set_seed(seed)
    model = experiment.build_stage_model(stage, strategy)
    copied = []
    if previous_model is not None:
        copied, fresh = transfer_weights(previous_model, model)
        log(f"[{stage.name}] initialised {copied} from the previous model; new: {fresh}")
    elif config.model.pretrained_weights:
        try:
            load_imagenet_weights(model.backbone, config.model.pretrained_weights, config.model.inflation)
        except InflationError as error:
            raise TrainingError(f"model.pretrained_weights: {error}") from error
        log(f"[{stage.name}] backbone inflated ({config.model.inflation}) from {config.model.pretrained_weights}")
    if "core" not in copied:
        count = adapt_memory_metric(model, experiment.train_dataset(stage, seed))
        if count:
            log(f"[{stage.name}] memory distance initialised from {count} glimpse features")
    return model


def fit_stage(experiment, model, stage, *, initial_epoch=0, epochs=None, callbacks=(),
              validation_data=None, guard=None, after_epoch=None, verbose=None):
    """The training loop of a stage, shared by `train.py` and the tuner.

    One `fit` call per epoch, each on the training clips seeded by
    `stage_seed + epoch`, so a resumed run sees exactly the clips the
    uninterrupted run would have, and a tuner trial exactly those of
    `train.py` with the trial's config. Steps per epoch: the stage's
    `steps_per_epoch`, else one pass over the training split.

    Args:
        experiment: an `Experiment` whose data are prepared.
        model: the compiled model (`initialise_stage_model`).
        stage: a `StageConfig` of its config.
        initial_epoch: epochs already done.
        epochs: last epoch (default: `stage.epochs`).
        callbacks: Keras callbacks for every `fit` call.
        validation_data: a dataset scored after each epoch, or None.
        guard: a `StopOnNonFinite` among `callbacks`; the loop stops after
            the epoch where it fired.
        after_epoch: optional fn(epoch, {metric: value}) run after each
            completed (finite) epoch.
        verbose: Keras verbosity (default 1, or 2 when GLIMPSE_QUIET=1).

    Returns:
        a `keras.callbacks.History` holding every epoch run by this call.
    """
    config = experiment.config
    seed = stage_seed(config, stage)
    steps = stage.steps_per_epoch or _full_pass_steps(experiment, stage)
    if verbose is None:
        verbose = 1 if os.environ.get("GLIMPSE_QUIET") != "1" else 2
    merged = keras.callbacks.History()
    merged.history, merged.epoch = {}, []
    for epoch in range(initial_epoch, stage.epochs if epochs is None else epochs):
        history = model.fit(
            experiment.train_dataset(stage, seed + epoch),
            epochs=epoch + 1,
            initial_epoch=epoch,
            steps_per_epoch=steps,
            validation_data=validation_data,
            callbacks=list(callbacks),
            verbose=verbose,
        )
        if guard is not None and guard.failure:
            break
        values = {key: float(series[-1]) for key, series in history.history.items() if series}
        merged.epoch.append(epoch)
        for key, value in values.items():
            merged.history.setdefault(key, []).append(value)
        if after_epoch is not None:
            after_epoch(epoch, values)
    merged.set_model(model)
    return merged


def run_stage(config, plan, run_dir, converted_dir, previous_model, strategy, extra_callbacks=(),
              started_from=None):
    """Trains one stage of a run as `plan` says (checkpoints, logs, history).

    In a multi-process job every process trains, and reads the stage's
    checkpoint when resuming; only process 0 writes.

    Args:
        plan: the stage's `resume.StagePlan` (`resume.plan_stages`): skip it
            (load its final weights), continue from its checkpoint, or start
            (again).
        previous_model: a model whose matching sub-layers initialise this
            stage (the previous stage, or a run being fine-tuned), or None.
        extra_callbacks: further Keras callbacks for `fit`.
        started_from: sha256 of the previous stage's final weights (recorded
            in state.json, so a later resume can tell whether this stage still
            follows from them), or None.

    Returns:
        (model, sha256 of the stage's final weights).
    """
    stage = plan.stage
    experiment = Experiment(config, converted_dir)
    stage_dir = os.path.join(run_dir, stage.name)
    checkpoint_path = os.path.join(stage_dir, CHECKPOINT)
    chief = parallel.is_chief()
    if plan.note:
        print(plan.note)
    if plan.action == "redo" and chief:
        resume_lib.clear_stage(stage_dir)
    if chief:
        makedirs(stage_dir)
    if plan.action in ("skip", "continue"):
        if chief and plan.repair_checksum():
            print(f"[{stage.name}] rewrote {plan.weights}.sha256: it did not record the sha256 of the weights "
                  f"that {STATE} records (and that the file has)")
        set_seed(stage_seed(config, stage))
        model = experiment.build_stage_model(stage, strategy)
    if plan.action == "skip":
        print(f"[{stage.name}] already finished; skipping (resume)")
        _load_checked(model, plan, "final weights")
        return model, plan.sha256
    initial_epoch = 0
    if plan.action == "continue":
        _load_checked(model, plan, "checkpoint")
        # The checkpoint restores the optimizer's variables, its learning
        # rate among them: the config's (possibly changed) value wins.
        _apply_optimizer_settings(model, stage)
        initial_epoch = plan.epoch
        print(f"[{stage.name}] resumed after epoch {initial_epoch}")
    else:
        model = initialise_stage_model(experiment, stage, strategy, previous_model)
    parallel.broadcast_from_chief(model.variables + model.optimizer.variables)
    # The attention diagnostics are logged from a few test batches whether or
    # not the whole split is scored every epoch (`train.validate`).
    test_clips = _validation_clips(experiment, stage, strategy)
    nonfinite = StopOnNonFinite()
    logs = os.path.join(stage_dir, "logs")
    if chief:
        writers = [AtomicCheckpoint(stage_dir, nonfinite, started_from), keras.callbacks.TensorBoard(logs)]
    else:
        writers = []
    callbacks = [
        nonfinite,
        *writers,
        # The other processes compute the figures too (they take part in
        # every computation) but do not write them.
        GlimpseSummary(logs if chief else None, test_clips),
        *extra_callbacks,
    ]
    # One progress display over the whole stage (Keras' own is off).
    steps = stage.steps_per_epoch or _full_pass_steps(experiment, stage)
    callbacks.append(StageProgress(stage.name, stage.epochs, steps, initial_epoch))
    fit_stage(
        experiment, model, stage,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=keras_verbosity(),
        validation_data=test_clips if config.train.validate else None,
        guard=nonfinite,
    )
    if nonfinite.failure:
        good = _read_state(stage_dir)["epoch"]
        if good > 0 and os.path.exists(checkpoint_path):
            where = (
                f"The last good checkpoint is {checkpoint_path} (epoch {good}); lower the "
                f"learning rate or check the data, then rerun with --resume."
            )
        else:
            where = (
                f"No checkpoint of stage {stage.name} was written (its first epoch "
                f"failed); lower the learning rate or check the data, then rerun "
                f"with --resume (the earlier stages are kept)."
            )
        raise TrainingError(f"[{stage.name}] {nonfinite.failure}; training stopped. {where}")
    final_sha256 = resume_lib.commit_stage(model, stage_dir, stage.epochs, started_from) if chief else None
    parallel.barrier(f"{stage.name} written")
    return model, final_sha256


def _validation_clips(experiment, stage, strategy):
    """The clips scored after each epoch of `stage`: one per video of the
    validation split, in batches of the stage's batch size.

    Under data_parallel every batch must split over the devices (Keras
    places all the batches of a split with the layout of its first): one
    process leaves out the last `videos mod devices` videos, several
    processes (each taking its part of every batch) a partial last batch.
    The evaluation report (`evaluation.evaluate_split`) scores every video.

    Raises:
        TrainingError: under data_parallel with `train.validate`, a
            validation split too small to give one batch that splits.
    """
    if not isinstance(strategy, keras.distribution.DataParallel):
        return experiment.validation_dataset(stage.batch_size)
    devices, processes = parallel.device_count(strategy), parallel.process_count()
    videos = experiment.count_videos(experiment.validation_split())
    if processes > 1:
        unit, reason = stage.batch_size, f"whole batches of {stage.batch_size}, split over {processes} processes"
        clips = experiment.validation_dataset(stage.batch_size, drop_remainder=True)
    else:
        unit, reason = devices, f"a multiple of the {devices} devices"
        clips = experiment.validation_dataset(stage.batch_size)
    kept = videos - videos % unit
    if processes == 1 and kept < videos:
        clips = clips.unbatch().take(kept).batch(stage.batch_size)
    if kept == 0 and experiment.config.train.validate:
        raise TrainingError(
            f"[{stage.name}] the validation split has {videos} videos; the score after each epoch needs "
            f"{reason}: set train.validate=false or lower train.stages.*.batch_size"
        )
    if kept < videos and parallel.is_chief():
        print(f"[{stage.name}] the score after each epoch covers {kept} of the {videos} validation videos "
              f"({reason}); the evaluation report scores all of them")
    return clips


def _load_checked(model, plan, what):
    """Loads the weights file of `plan` (verified by `resume.plan_stages`)."""
    try:
        checkpoints.load_weights(model, plan.weights, what, sha256=plan.sha256)
    except checkpoints.CheckpointError as error:
        raise TrainingError(
            f"{error}; delete it (and {STATE}) to restart stage {plan.stage.name} from scratch"
        ) from error


def _apply_optimizer_settings(model, stage):
    """Sets the optimizer settings of `stage` on a restored optimizer."""
    model.optimizer.learning_rate = stage.learning_rate


def _check_stage_data(experiment, stage):
    """Checks, before a job writes anything, that the data can feed `stage`:
    one pass over the training split holds a batch (without
    `steps_per_epoch`), and the split scored after each epoch exists.

    Raises:
        TrainingError: a batch larger than the training split.
        preparation.DataDirError: a split the converted data lack.
    """
    from glimpse_keras.data import pipeline

    try:
        if not stage.steps_per_epoch:
            _full_pass_steps(experiment, stage)
        experiment.split_files(experiment.validation_split())
    except pipeline.SplitNotFoundError as error:
        raise preparation.DataDirError(str(error)) from error


def _full_pass_steps(experiment, stage):
    """Batches in one pass over the training split (the last partial batch
    is dropped), so progress bars know the epoch length."""
    videos = experiment.count_videos("train")
    if videos < stage.batch_size:
        raise TrainingError(
            f"[{stage.name}] the training split has {videos} videos, fewer than "
            f"batch_size={stage.batch_size}; lower train.stages.*.batch_size"
        )
    return videos // stage.batch_size


def holds_run(run_dir):
    """True when `run_dir` holds a training run (its config.yaml)."""
    return os.path.isfile(os.path.join(run_dir, CONFIG))


# What `train(..., overwrite=True)` removes besides the stage folders: the
# files and folders a run writes (never anything else in the folder).
RUN_ENTRIES = (CONFIG, ENVIRONMENT, "evaluation", "export", "visualize")


def check_run_dir(run_dir, resume=False, overwrite=False):
    """Checks that a new job may use `run_dir`, before anything is written.

    Args:
        run_dir: the output folder.
        resume: the job continues the run in `run_dir`, which must exist.
        overwrite: the job replaces the run in `run_dir`.

    Returns:
        the `ExperimentConfig` of the run already in `run_dir`, or None.

    Raises:
        TrainingError: a run is there and neither `resume` nor `overwrite`,
            or `resume` and no run is there, or both flags.
        io_utils.StorageError: `run_dir` cannot be created or written.
    """
    if resume and overwrite:
        raise TrainingError("--resume and --overwrite exclude each other")
    check_output_location(run_dir, directory=True)
    config_path = os.path.join(run_dir, CONFIG)
    if holds_run(run_dir):
        if not (resume or overwrite):
            raise TrainingError(
                f"{run_dir} already holds a run ({config_path}); pass --resume to continue "
                f"it, --overwrite to replace it, or choose another --output-dir"
            )
        try:
            return config_lib.load_config(config_path)
        except config_lib.ConfigError as error:
            if overwrite:
                return None
            raise TrainingError(f"cannot resume {run_dir}: {error}") from error
    if resume:
        raise TrainingError(
            f"--resume: {run_dir} holds no run ({config_path} is missing); check the "
            f"--output-dir, or leave out --resume to start a new run there"
        )
    return None


def _remove_run(run_dir, previous):
    """Removes the files of the run in `run_dir` (for `overwrite`)."""
    import shutil

    names = list(RUN_ENTRIES)
    if previous is not None:
        names += [stage.name for stage in previous.train.stages]
    for name in names:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def train(config, run_dir, resume=False, init_from=None, cache_root=None, callbacks=(),
          overwrite=False):
    """Runs every stage of `config.train.stages` in order.

    Nothing is written into `run_dir` before `config` is checked against the
    run already there, the output location is checked, the data are found
    (or converted) and fit every batch size, the strategy and `init_from`
    model exist and, for a resume, every file it loads is verified.

    Args:
        config: validated `ExperimentConfig`.
        run_dir: output directory of the run (created).
        resume: continue from the checkpoints found in `run_dir`, which must
            hold a run; changed learning rates and epoch counts are applied
            and recorded in RUN/environment.json, other changes refused; the
            stages after one that trains further start again
            (`resume.plan_stages`).
        init_from: optional run directory whose final model initialises the
            first stage (e.g. an NTU run for N-UCLA fine-tuning; classifiers
            whose size differs start fresh).
        cache_root: where generated/converted data live; default beside
            `run_dir`.
        callbacks: further Keras callbacks given to every stage's `fit`.
        overwrite: replace a run already in `run_dir` (without it, and
            without `resume`, such a folder is refused).

    Returns:
        dict with "converted_dir", "final_weights" (of the last stage) and
        "model" (the trained model).

    Raises:
        TrainingError: see `check_run_dir` and `_check_resumable`; a
            non-finite loss; a damaged checkpoint.
        io_utils.StorageError: a write was refused (full disk, ...); the
            last good checkpoint is kept.
    """
    # First, before JAX computes anything: a multi-process job is joined.
    strategy = make_strategy(config.train.strategy)
    if config.train.strategy == parallel.DATA_PARALLEL:
        parallel.check_batch_sizes(config.train.stages, parallel.device_count(strategy))
        parallel.check_same_job(json.dumps(config.to_dict(), sort_keys=True), "their config")
    previous = check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    message = Experiment(config).resolve_glimpse_scales()
    if message:
        print(message)
    config_path = os.path.join(run_dir, CONFIG)
    changes = _check_resumable(previous, config, config_path) if resume else []
    set_seed(config.train.seed)
    keras.mixed_precision.set_global_policy(config.train.precision)
    cache_root = cache_root or os.path.join(os.path.dirname(os.path.abspath(run_dir)), "data_cache")
    experiment = Experiment(config)
    # Every process has checked the run folder before process 0 (done first
    # here) goes on to write into it.
    converted_dir = parallel.chief_first(lambda: experiment.prepare_data(cache_root), "data prepared")
    model = load_run_model(init_from)[0] if init_from else None
    try:
        plans = resume_lib.plan_stages(config, run_dir, resume)
    except checkpoints.CheckpointError as error:
        raise TrainingError(f"cannot resume {run_dir}: {error}") from error
    with preparation.shard_errors(converted_dir):
        for plan in plans:
            if plan.action != "skip":
                _check_stage_data(experiment, plan.stage)
    sessions = _read_environment(run_dir) if resume else []
    # Everything is checked: from here on the run folder is written (by
    # process 0 of a multi-process job).
    if parallel.is_chief():
        if overwrite and os.path.isdir(run_dir):
            _remove_run(run_dir, previous)
        makedirs(run_dir)
        for path in clean_stale_temporaries(run_dir):
            print(f"removed {path}, left by an interrupted write")
        config_lib.save_config(config, config_path)
        _record_environment(run_dir, sessions, resume, changes, parallel.describe(config.train.strategy, strategy))
    for change in changes:
        print(f"--resume applies {change}")
    final_sha256 = None
    with preparation.shard_errors(converted_dir):  # a damaged shard is named, the last checkpoint kept
        for plan in plans:
            model, final_sha256 = run_stage(config, plan, run_dir, converted_dir, model, strategy, callbacks,
                                            started_from=final_sha256)
    last = config.train.stages[-1].name
    return {
        "converted_dir": converted_dir,
        "final_weights": os.path.join(run_dir, last, FINAL),
        "model": model,
    }
