"""The search loop: the tuner, the settings a resumed search must keep, the
earlier stages trained once, and `run_search`, which ties them together."""

import json
import os

import keras
import keras_tuner

from glimpse_keras import config as config_lib
from glimpse_keras import runs, training
from glimpse_keras.errors import GlimpseError
from glimpse_keras.experiment import Experiment
from glimpse_keras.filesystem import read_json
from glimpse_keras.io_utils import atomic_write_json, check_output_location, makedirs, storage_errors
from glimpse_keras.tuning.hypermodel import GlimpseHyperModel, StoppedByStorage, search_config_of
from glimpse_keras.tuning.results import OBJECTIVES, write_results
from glimpse_keras.tuning.space import SearchSpaceError, check_search_space, load_search_space

PROJECT_NAME = "glimpse_search"
SETTINGS_FILE = "search_settings.json"
TUNERS = ("random", "hyperband", "bayesian")
FINISHED_STATUSES = ("COMPLETED", "FAILED", "INVALID")
INIT_RUN = "init_run"


class SearchError(GlimpseError, RuntimeError):
    """keras-tuner gave up (several trials in a row failed)."""


class TunerDependencyError(GlimpseError, ImportError):
    """A tuner needs a package that is not installed."""


# === Tuners ===


def make_tuner(kind, hypermodel, *, objective="val_accuracy", max_trials=10, directory,
               seed=None, hyperband_max_epochs=None, hyperband_factor=3, overwrite=False):
    """A keras-tuner tuner over `hypermodel` in `directory/PROJECT_NAME`.

    Args:
        kind: 'random', 'hyperband' or 'bayesian'.
        objective: a key of `OBJECTIVES`.
        max_trials: trials in total, counting those already in `directory`
            (random, bayesian; Hyperband sets its own count from its budget).
        hyperband_max_epochs: Hyperband's largest budget (default: the tuned
            stage's epochs; must be >= 2).
        overwrite: False resumes a search found in `directory`.

    Raises:
        SearchSpaceError: unknown kind/objective or a bad budget.
        TunerDependencyError: 'bayesian' without scipy/scikit-learn.
    """
    check_tuner_settings(kind, objective, max_trials, hyperband_max_epochs, hypermodel.base_config)
    common = {
        "objective": keras_tuner.Objective(objective, OBJECTIVES[objective]),
        "directory": directory,
        "project_name": PROJECT_NAME,
        "seed": seed,
        "overwrite": overwrite,
    }
    if kind == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if kind == "hyperband":
        max_epochs = hyperband_max_epochs or hypermodel.base_config.train.stages[-1].epochs
        return keras_tuner.Hyperband(
            hypermodel, max_epochs=max_epochs, factor=hyperband_factor, **common
        )
    return keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials, **common)


def check_tuner_settings(kind, objective, max_trials, hyperband_max_epochs, config):
    """Checks the settings of `make_tuner` (before any work of a search).

    Args:
        config: the search's `ExperimentConfig` (its last stage is tuned).

    Raises:
        SearchSpaceError: unknown kind/objective or a bad budget, naming it.
        TunerDependencyError: 'bayesian' without scipy/scikit-learn.
    """
    if kind not in TUNERS:
        raise SearchSpaceError(f"tuner: expected one of {TUNERS}, got {kind!r}")
    if objective not in OBJECTIVES:
        raise SearchSpaceError(f"objective: expected one of {sorted(OBJECTIVES)}, got {objective!r}")
    if not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1:
        raise SearchSpaceError(f"max_trials: expected an integer >= 1, got {max_trials!r}")
    if kind == "hyperband":
        max_epochs = hyperband_max_epochs or config.train.stages[-1].epochs
        if max_epochs < 2:
            raise SearchSpaceError(
                f"hyperband: max_epochs must be >= 2 (the tuned stage trains "
                f"{max_epochs} epoch(s)); raise the stage's epochs or pass --hyperband-max-epochs"
            )
    if kind == "bayesian":
        missing = [name for name in ("scipy", "sklearn") if not _importable(name)]
        if missing:
            packages = " ".join("scikit-learn" if name == "sklearn" else name for name in missing)
            raise TunerDependencyError(
                f"the bayesian tuner needs {', '.join(missing)}: pip install {packages} "
                f"(or use --tuner random / hyperband)"
            )


def _importable(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# === Settings of a resumable search ===


def search_settings(kind, objective, space, base_config):
    """What must not change when a search is resumed (JSON-ready)."""
    return {
        "tuner": kind,
        "objective": objective,
        "space": {spec.name: spec.to_dict() for spec in space},
        "base_config": base_config.to_dict(),
    }


def check_or_save_settings(output_dir, settings):
    """Saves `settings` for a new search, or checks them against a resumed one.

    Raises:
        SearchSpaceError: the output directory holds a search with other
            settings (naming the first difference).
    """
    path = os.path.join(output_dir, PROJECT_NAME, SETTINGS_FILE)
    if os.path.exists(path):
        saved = read_json(path, dict, SearchSpaceError,
                          fix=f"it records the settings of the search in {output_dir}: restore it, or use a new "
                              f"--output-dir")
        # Round-trip through JSON so tuples and lists compare equal.
        current = json.loads(json.dumps(settings))
        for key in ("tuner", "objective", "space", "base_config"):
            if saved.get(key) != current[key]:
                raise SearchSpaceError(
                    f"{output_dir} holds a search with a different {key.replace('_', ' ')} "
                    f"({path}); resume it with the same settings or use a new --output-dir"
                )
        return
    if os.path.isdir(os.path.join(output_dir, PROJECT_NAME)) and os.listdir(
        os.path.join(output_dir, PROJECT_NAME)
    ):
        raise SearchSpaceError(
            f"{os.path.join(output_dir, PROJECT_NAME)} exists but has no {SETTINGS_FILE}: "
            f"it was not written by this tool; use a new --output-dir"
        )
    atomic_write_json(path, settings)


# === The earlier stages, trained once ===


def initial_run(config, output_dir, cache_root=None, log=print):
    """The finished run the trials start from when no `init_from` is given:
    the stages before the tuned one, trained once by `training.train` (the
    code of `train.py`) into OUT/init_run, or reused when already there.

    Args:
        config: the search config (with its validation hold-out, so these
            stages never see the validation subjects either).

    Returns:
        the run folder, or None for a one-stage config (its trials start
        from scratch).

    Raises:
        SearchError: a one-stage config whose stage freezes its backbone
            (it would learn on random features): give `init_from`.
        TrainingError, DataDirError: from training.
    """
    stages = config.train.stages
    if len(stages) < 2:
        if stages[-1].freeze_backbone:
            raise SearchError(
                f"train.stages: the tuned stage {stages[-1].name!r} freezes its backbone and no earlier "
                f"stage trains it; give --init-from RUN_DIR (a finished stage-1 run, e.g. runs/demo) or a "
                f"config whose earlier stages train the backbone"
            )
        return None
    tree = config.to_dict()
    tree["train"]["stages"] = tree["train"]["stages"][:-1]
    run_dir = os.path.join(output_dir, INIT_RUN)
    names = ", ".join(stage.name for stage in stages[:-1])
    resume = runs.holds_run(run_dir)
    log(f"[search] {'reusing' if resume else 'training'} the stage(s) before the tuned one ({names}) "
        f"once, in {run_dir}; every trial starts from them")
    training.train(Experiment(config_lib.config_from_dict(tree)), run_dir, resume=resume, cache_root=cache_root)
    return run_dir



# === The whole search ===


def run_search(config, output_dir, *, tuner="random", max_trials=10, space=None,
               objective="val_accuracy", init_from=None, cache_root=None,
               hyperband_max_epochs=None, tensorboard_dir=None, validation_fraction=None,
               log=print):
    """Prepares the data and the trials' starting run once, runs (or
    resumes) a search, writes the results.

    Args:
        config: validated `ExperimentConfig` (its last stage is tuned).
        validation_fraction: share of the training subjects the trials are
            scored on (see `search_config_of`).
        output_dir: search directory; an existing search in it is resumed.
        tuner: 'random', 'hyperband' or 'bayesian'.
        max_trials: trials in total including finished ones (not Hyperband).
        space: tuple of `HyperParameterSpec` (default: `load_search_space()`).
        objective: a key of `OBJECTIVES`.
        init_from: a finished training run initialising every trial;
            default: the earlier stages trained once (`initial_run`).
        cache_root: generated/converted data (default: OUT/../data_cache, as
            for training runs).
        hyperband_max_epochs: see `make_tuner`.
        tensorboard_dir: optional TensorBoard log root (one folder per trial).

    Returns:
        dict from `write_results` plus `trials_run` (ids of the trials this
        call ran to an end, including retried interrupted ones), `num_trials`,
        `converted_dir` and `init_from` (the run the trials started from).

    Raises:
        SearchSpaceError, TunerDependencyError, ConfigError, DataDirError,
        SearchError (too many failed trials; the results are written first).
    """
    space = tuple(space) if space is not None else load_search_space()
    search_config = search_config_of(config, validation_fraction)
    check_search_space(search_config, space)
    # Everything the search needs is checked before any work is done.
    check_tuner_settings(tuner, objective, max_trials, hyperband_max_epochs, search_config)
    check_output_location(output_dir, directory=True)
    makedirs(output_dir)
    check_or_save_settings(output_dir, search_settings(tuner, objective, space, search_config))
    keras.mixed_precision.set_global_policy(search_config.train.precision)
    cache_root = cache_root or runs.data_cache(output_dir)
    experiment = Experiment(search_config)
    converted_dir = experiment.prepare_data(cache_root)
    held_out = experiment.validation_holdout()
    log(f"[search] trials are scored on {len(held_out)} validation videos held out from the training "
        f"split ({experiment.count_videos('train')} training videos left); the test split is not read")
    if init_from is None:
        init_from = initial_run(search_config, output_dir, cache_root, log=log)
    hypermodel = GlimpseHyperModel(search_config, converted_dir, space, init_from=init_from)
    try:
        search_tuner = make_tuner(
            tuner, hypermodel, objective=objective, max_trials=max_trials, directory=output_dir,
            seed=config.train.seed, hyperband_max_epochs=hyperband_max_epochs,
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as error:  # keras-tuner reloads its files
        raise SearchError(
            f"cannot resume the search in {os.path.join(output_dir, PROJECT_NAME)}: a file keras-tuner "
            f"wrote there cannot be read ({type(error).__name__}: {error}); restore it, or use a new "
            f"--output-dir"
        ) from error
    finished = {trial_id for trial_id, trial in search_tuner.oracle.trials.items()
                if trial.status in FINISHED_STATUSES}
    callbacks = [keras.callbacks.TensorBoard(tensorboard_dir)] if tensorboard_dir else []
    try:
        with storage_errors(search_tuner.project_dir):  # keras-tuner's own files
            try:
                search_tuner.search(callbacks=callbacks)
            except StoppedByStorage as stopped:  # a trial's write, named by its own message
                raise stopped.error from None
    except RuntimeError as error:  # keras-tuner: too many failed trials in a row
        paths = write_results(search_tuner, space, search_config, output_dir, objective,
                              final_config=config, init_from=init_from)
        raise SearchError(
            f"the search stopped: {str(error).splitlines()[0]} The trials' status "
            f"is in {paths['results_md']}; each failed trial's message is in its "
            f"trial.json under {search_tuner.project_dir}."
        ) from error
    summary = write_results(search_tuner, space, search_config, output_dir, objective,
                            final_config=config, init_from=init_from)
    summary["trials_run"] = sorted(
        trial_id for trial_id, trial in search_tuner.oracle.trials.items()
        if trial_id not in finished and trial.status in FINISHED_STATUSES
    )
    summary["num_trials"] = len(search_tuner.oracle.trials)
    summary["converted_dir"] = converted_dir
    summary["init_from"] = init_from
    return summary
