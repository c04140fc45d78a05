"""Runs the training stages of an `ExperimentConfig` into a run folder
(`runs` describes its files).

Every file is written atomically and each epoch is committed in a fixed
order (`runs.commit_epoch`), so a run killed at any moment resumes from its last
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
import random

import keras
import numpy as np
import tensorflow as tf

from glimpse_keras import backends, checkpoints, parallel, runs
from glimpse_keras import config as config_lib
from glimpse_keras import resume as resume_lib
from glimpse_keras.callbacks import AtomicCheckpoint, GlimpseSummary, StopOnNonFinite
from glimpse_keras.data import preparation
from glimpse_keras.errors import DataDirError, TrainingError
from glimpse_keras.io_utils import clean_stale_temporaries, makedirs
from glimpse_keras.models.inflation import InflationError, load_imagenet_weights
from glimpse_keras.stage_progress import StageProgress, keras_verbosity
from glimpse_keras.visualize import draw_clip_strip


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


def run_stage(experiment, plan, run_dir, previous_model, strategy, extra_callbacks=(), started_from=None):
    """Trains one stage of a run as `plan` says (checkpoints, logs, history).

    In a multi-process job every process trains, and reads the stage's
    checkpoint when resuming; only process 0 writes.

    Args:
        experiment: the run's `Experiment`, its data prepared.
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
    config = experiment.config
    stage_dir = os.path.join(run_dir, stage.name)
    checkpoint_path = os.path.join(stage_dir, runs.CHECKPOINT)
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
                  f"that {runs.STATE} records (and that the file has)")
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
        GlimpseSummary(logs if chief else None, test_clips, draw_clip=draw_clip_strip),
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
        try:
            good = runs.read_state(stage_dir)["epoch"]
        except checkpoints.CheckpointError as error:
            raise TrainingError(str(error)) from error
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
    final_sha256 = runs.commit_stage(model, stage_dir, stage.epochs, started_from) if chief else None
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
            f"{error}; delete it (and {runs.STATE}) to restart stage {plan.stage.name} from scratch"
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
        DataDirError: a split the converted data lack.
    """
    from glimpse_keras.data import pipeline

    try:
        if not stage.steps_per_epoch:
            _full_pass_steps(experiment, stage)
        experiment.split_files(experiment.validation_split())
    except pipeline.SplitNotFoundError as error:
        raise DataDirError(str(error)) from error


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


def train(experiment, run_dir, resume=False, init_from=None, cache_root=None, callbacks=(),
          overwrite=False):
    """Runs every stage of `experiment.config.train.stages` in order.

    Nothing is written into `run_dir` before the config is checked against
    the run already there, the output location is checked, the data are
    found (or converted) and fit every batch size, the strategy and
    `init_from` model exist and, for a resume, every file it loads is
    verified.

    Args:
        experiment: the `Experiment` of a validated `ExperimentConfig`; its
            data are prepared here (`experiment.converted_dir` is set).
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
            `run_dir` (`runs.data_cache`).
        callbacks: further Keras callbacks given to every stage's `fit`.
        overwrite: replace a run already in `run_dir` (without it, and
            without `resume`, such a folder is refused).

    Returns:
        dict with "converted_dir", "final_weights" (of the last stage) and
        "model" (the trained model).

    Raises:
        TrainingError: see `runs.check_run_dir` and
            `resume.check_resumable`; a non-finite loss; a damaged checkpoint.
        io_utils.StorageError: a write was refused (full disk, ...); the
            last good checkpoint is kept.
    """
    config = experiment.config
    # First, before JAX computes anything: a multi-process job is joined.
    strategy = make_strategy(config.train.strategy)
    if config.train.strategy == parallel.DATA_PARALLEL:
        parallel.check_batch_sizes(config.train.stages, parallel.device_count(strategy))
        parallel.check_same_job(json.dumps(config.to_dict(), sort_keys=True), "their config")
    previous = runs.check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    message = experiment.resolve_glimpse_scales()
    if message:
        print(message)
    config_path = os.path.join(run_dir, runs.CONFIG)
    changes = resume_lib.check_resumable(previous, config, config_path) if resume else []
    set_seed(config.train.seed)
    keras.mixed_precision.set_global_policy(config.train.precision)
    cache_root = cache_root or runs.data_cache(run_dir)
    # Every process has checked the run folder before process 0 (done first
    # here) goes on to write into it.
    converted_dir = parallel.chief_first(lambda: experiment.prepare_data(cache_root), "data prepared")
    model = runs.load_run(init_from)[0] if init_from else None
    try:
        plans = resume_lib.plan_stages(config, run_dir, resume)
    except checkpoints.CheckpointError as error:
        raise TrainingError(f"cannot resume {run_dir}: {error}") from error
    with preparation.shard_errors(converted_dir):
        for plan in plans:
            if plan.action != "skip":
                _check_stage_data(experiment, plan.stage)
    sessions = runs.read_environment(run_dir) if resume else []
    # Everything is checked: from here on the run folder is written (by
    # process 0 of a multi-process job).
    if parallel.is_chief():
        if overwrite and os.path.isdir(run_dir):
            runs.remove_run(run_dir, previous)
        makedirs(run_dir)
        for path in clean_stale_temporaries(run_dir):
            print(f"removed {path}, left by an interrupted write")
        config_lib.save_config(config, config_path)
        runs.record_environment(run_dir, sessions, resume, changes, parallel.describe(config.train.strategy, strategy))
    for change in changes:
        print(f"--resume applies {change}")
    final_sha256 = None
    with preparation.shard_errors(converted_dir):  # a damaged shard is named, the last checkpoint kept
        for plan in plans:
            model, final_sha256 = run_stage(experiment, plan, run_dir, model, strategy, callbacks,
                                            started_from=final_sha256)
    return {
        "converted_dir": converted_dir,
        "final_weights": runs.final_weights(run_dir, config.train.stages[-1].name),
        "model": model,
    }
