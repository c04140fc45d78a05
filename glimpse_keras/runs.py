"""The run folder: what `train.py` writes, and how every command reads it.

Layout of a run directory::

    RUN/config.yaml                    the resolved config
    RUN/environment.json               Keras backend and versions of every session
    RUN/<stage>/checkpoint.weights.h5  weights + optimizer state, every epoch
    RUN/<stage>/*.weights.h5.sha256    sha256 of each weights file, checked on load
    RUN/<stage>/state.json             the commit record of the stage (below)
    RUN/<stage>/final.weights.h5       weights when the stage finished
    RUN/<stage>/logs/                  TensorBoard (every loss term, glimpse stats)
    RUN/<stage>/history.json           per-epoch metrics
    RUN/evaluation/, RUN/export/, RUN/visualize/   what the other commands write
    RUN/../data_cache/                 generated and converted data (`data_cache`)

`state.json` is the stage's commit record; it is written last:

    {"epoch": 3, "done": false,             # epochs committed; the stage finished?
     "checkpoint_sha256": "...",            # the checkpoint of that epoch
     "final_sha256": "...",                 # once done: the final weights
     "started_from": "..." | null}          # sha256 of the previous stage's final
                                            # weights this stage started from

The end of an epoch (`commit_epoch`) writes, in this order, that epoch's
entry of `history.json`, the checkpoint (its `.sha256` just before the
rename, see `checkpoints.save_weights`), then `state.json`; `resume` reads
them back to a consistent point whatever moment a run was killed at. Every
file is written atomically.

Commands that read a run (evaluate, export, predict, visualize, the tuner)
go through `load_run`, which rebuilds the model and its `Experiment` from
the saved config.
"""

import os
import platform
import shutil
import sys

import keras

from glimpse_keras import backends, checkpoints
from glimpse_keras import config as config_lib
from glimpse_keras.errors import TrainingError
from glimpse_keras.experiment import Experiment
from glimpse_keras.filesystem import read_json
from glimpse_keras.io_utils import atomic_write_json, check_output_location, sha256_of

CONFIG = "config.yaml"
ENVIRONMENT = "environment.json"
CHECKPOINT = "checkpoint.weights.h5"
FINAL = "final.weights.h5"
STATE = "state.json"
HISTORY = "history.json"
# The folder of generated and converted data, beside the run folders.
DATA_CACHE = "data_cache"

# What `train(..., overwrite=True)` removes besides the stage folders: the
# files and folders a run writes (never anything else in the folder).
RUN_ENTRIES = (CONFIG, ENVIRONMENT, "evaluation", "export", "visualize")


def data_cache(run_dir):
    """Where the data of the run in `run_dir` are generated and converted:
    RUN/../data_cache, shared by the runs of one folder."""
    return os.path.join(os.path.dirname(os.path.abspath(run_dir)), DATA_CACHE)


def final_weights(run_dir, stage_name):
    """RUN/<stage>/final.weights.h5."""
    return os.path.join(run_dir, stage_name, FINAL)


def report_path(run_dir, stage_name, split="test"):
    """RUN/evaluation/<stage>/<split>_report.json: one report per stage."""
    return os.path.join(run_dir, "evaluation", stage_name, f"{split}_report.json")


# === The folder as a whole ===


def holds_run(run_dir):
    """True when `run_dir` holds a training run (its config.yaml)."""
    return os.path.isfile(os.path.join(run_dir, CONFIG))


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


def remove_run(run_dir, previous):
    """Removes the files of the run in `run_dir` (for `overwrite`): the
    `RUN_ENTRIES` and the stage folders of `previous` (its config, or None)."""
    names = list(RUN_ENTRIES)
    if previous is not None:
        names += [stage.name for stage in previous.train.stages]
    for name in names:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def load_run(run_dir, stage_name=None, weights=None):
    """Rebuilds a finished run's model from its saved config and weights.

    Args:
        run_dir: a directory written by `training.train`.
        stage_name: which stage (default: the last one).
        weights: weights file (default: that stage's final weights).

    Returns:
        (model, experiment): the uncompiled model with its weights, and the
        `Experiment` of the run's config (its data not prepared yet:
        `experiment.prepare_data(data_cache(run_dir))` finds them).

    Raises:
        TrainingError: naming the missing, damaged (sha256 mismatch) or
            unreadable file.
    """
    config_path = os.path.join(run_dir, CONFIG)
    if not os.path.exists(config_path):
        raise TrainingError(f"{run_dir} is not a training run: {config_path} is missing")
    experiment = Experiment(config_lib.load_config(config_path))
    stages = {stage.name: stage for stage in experiment.config.train.stages}
    stage = stages.get(stage_name) if stage_name else experiment.config.train.stages[-1]
    if stage is None:
        raise TrainingError(f"run {run_dir} has no stage {stage_name!r}; stages: {sorted(stages)}")
    if weights and not os.path.isfile(weights):
        raise TrainingError(f"weights file {weights} does not exist")
    weights = weights or final_weights(run_dir, stage.name)
    if not os.path.exists(weights):
        raise TrainingError(
            f"{weights} does not exist: stage {stage.name} of {run_dir} has not finished"
        )
    model = experiment.build_stage_model(stage, compile_model=False)
    try:
        checkpoints.load_weights(model, weights)
    except checkpoints.CheckpointError as error:
        raise TrainingError(str(error)) from error
    return model, experiment


# === The environment record ===


def backend_versions():
    """The Keras backend in use and the versions of what runs it (a dict;
    None for a framework this process has not imported)."""
    versions = {"backend": backends.current_backend(), "keras": keras.__version__,
                "python": platform.python_version()}
    for module in ("tensorflow", "jax"):
        versions[module] = getattr(sys.modules.get(module), "__version__", None)
    return versions


def read_environment(run_dir):
    """The sessions recorded in RUN/environment.json ([] when absent).

    Raises:
        TrainingError: the file cannot be read, naming it.
    """
    path = os.path.join(run_dir, ENVIRONMENT)
    if not os.path.exists(path):
        return []
    return read_json(path, list, TrainingError,
                     fix="it only records the sessions of the run: delete it (or repair it) and rerun")


def record_environment(run_dir, sessions, resume, changes=(), distribution=None):
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


# === A stage folder: its state, history and commits ===


def read_state(stage_dir):
    """The stage's `state.json` ({"epoch": 0, "done": False} when absent).

    Raises:
        checkpoints.CheckpointError: the file cannot be read, naming it.
    """
    path = os.path.join(stage_dir, STATE)
    if not os.path.exists(path):
        return {"epoch": 0, "done": False}
    return read_json(path, dict, checkpoints.CheckpointError, required={"epoch": int},
                     fix=f"delete the stage folder {stage_dir} to restart that stage")


def read_history(stage_dir, epochs):
    """The first `epochs` entries of the stage's history.json (the epochs a
    resumed stage keeps; fewer when it records fewer); [] when absent.

    Raises:
        checkpoints.CheckpointError: the file cannot be read, naming it.
    """
    path = os.path.join(stage_dir, HISTORY)
    if not os.path.exists(path):
        return []
    history = read_json(path, list, checkpoints.CheckpointError,
                        fix="it records the metrics of each epoch: restore it, or delete it to go on without "
                            "the record of the earlier epochs")
    return history[:epochs]


def append_history(stage_dir, epoch, values):
    """Records epoch `epoch`'s metrics {name: value} as entry `epoch` of
    history.json; entries past it (written ahead by an interrupted session)
    are dropped. Epochs before it that it does not record (a deleted file;
    a run of an earlier version killed before its history append) get an
    empty entry (null)."""
    path = os.path.join(stage_dir, HISTORY)
    previous = read_history(stage_dir, epoch)
    previous = previous + [None] * (epoch - len(previous))
    previous.append({key: float(value) for key, value in values.items()})
    atomic_write_json(path, previous)


def commit_epoch(model, stage_dir, epoch, values, started_from):
    """Ends epoch `epoch` (0-based) of a stage: history entry, checkpoint,
    then state.json (see the module doc for why in this order).

    Returns:
        the checkpoint's sha256.

    Raises:
        io_utils.StorageError: a refused write; the last committed epoch is
            kept as it was.
    """
    append_history(stage_dir, epoch, values)
    digest = checkpoints.save_weights(model, os.path.join(stage_dir, CHECKPOINT))
    atomic_write_json(os.path.join(stage_dir, STATE), {
        "epoch": epoch + 1, "done": False, "checkpoint_sha256": digest, "started_from": started_from,
    })
    return digest


def commit_stage(model, stage_dir, epochs, started_from):
    """Ends a stage: its final weights, then state.json marked done.

    Returns:
        the final weights' sha256.
    """
    state = read_state(stage_dir)
    digest = checkpoints.save_weights(model, os.path.join(stage_dir, FINAL))
    checkpoint = os.path.join(stage_dir, CHECKPOINT)
    # The checkpoint's own digest: it may be an epoch recovered by
    # `resume.plan_stages` that state.json did not record yet.
    atomic_write_json(os.path.join(stage_dir, STATE), {
        "epoch": max(int(epochs), int(state["epoch"])), "done": True,
        "checkpoint_sha256": sha256_of(checkpoint) if os.path.exists(checkpoint) else None,
        "final_sha256": digest, "started_from": started_from,
    })
    return digest
