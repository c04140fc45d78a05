"""Hyperparameter search with keras-tuner over an `ExperimentConfig`.

The search space is plain data: each hyperparameter names a config field (its
`target`), so `GlimpseHyperModel.build(hp)` only copies the base config, writes
the drawn values into it and builds the model exactly as training does
(`Experiment.build_stage_model`). No `hp` reaches model code.

What a trial trains: the LAST stage of the config (typically the glimpse
stage), starting from a finished run of the stages before it: `init_from`
(a training run, e.g. `runs/demo`), or, without it, those stages trained once
by the search itself into OUT/init_run/ and reused by every trial and by a
resumed search. A one-stage config whose stage freezes its backbone is
refused without `init_from` (its trials would learn on random features).

Where a trial is scored: on a validation split carved from the training
split's subjects (`data.validation_fraction`, 0.2 unless the config sets one;
`Experiment.validation_holdout`); the trials and the search's own earlier
stages train on the other subjects, and the test split is never read.

A trial builds, initialises and trains its stage through `train.py`'s own
stage runner (`training.initialise_stage_model` and `training.fit_stage`:
same seeds, same clips per epoch). The search writes two configs:

- `best_config.yaml`: your config (all its stages, its own
  `validation_fraction`) with the best values. `python train.py --config
  OUT/best_config.yaml` trains the final model on the whole training split and
  scores it on the test split: the number to report.
- `best_trial_config.yaml`: exactly what the best trial trained (its stage
  alone, the validation hold-out kept). `python train.py --config
  OUT/best_trial_config.yaml --init-from INIT` (INIT: the search's
  `init_from`, or OUT/init_run; printed by `tune.py`) reproduces the best
  trial's validation score within run-to-run noise.

Output directory layout::

    OUT/glimpse_search/               keras-tuner project (oracle, one folder per trial
                                      with trial.json and the best epoch's weights)
    OUT/glimpse_search/search_settings.json  tuner kind, objective, space, base config
    OUT/init_run/                     the earlier stages, trained once (without init_from)
    OUT/results.csv, OUT/results.md   one row per trial, best first
    OUT/best_config.yaml              your config with the best values (train.py --config)
    OUT/best_trial_config.yaml        what the best trial trained: its stage alone
    OUT/best_hyperparameters.json     the best trial's id, values, score and init run

Rerunning with the same output directory resumes: finished trials are kept,
a trial that was interrupted is run again, and only the missing trials run.
"""

import copy
import csv
import dataclasses
import functools
import io
import json
import math
import os

import keras
import keras_tuner
import yaml

from glimpse_keras import checkpoints
from glimpse_keras import config as config_lib
from glimpse_keras import runs, training
from glimpse_keras.callbacks import StopOnNonFinite
from glimpse_keras.errors import GlimpseError
from glimpse_keras.experiment import Experiment
from glimpse_keras.filesystem import read_json
from glimpse_keras.io_utils import (
    StorageError,
    atomic_write_json,
    atomic_write_text,
    check_output_location,
    makedirs,
    storage_errors,
)


PROJECT_NAME = "glimpse_search"
SETTINGS_FILE = "search_settings.json"
TUNERS = ("random", "hyperband", "bayesian")
# Objective name -> direction; names are the metrics `GlimpseClouds` reports.
OBJECTIVES = {
    "val_accuracy": "max",
    "val_top5_accuracy": "max",
    "val_loss": "min",
    "val_class_loss": "min",
}
KINDS = ("int", "float", "choice")
SAMPLINGS = ("linear", "log", "reverse_log")
# `stage.<field>` addresses the tuned stage, i.e. the config's last stage.
STAGE_PREFIX = "stage."
FINISHED_STATUSES = ("COMPLETED", "FAILED", "INVALID")
# Share of the training subjects held out to score the trials, unless the
# config sets data.validation_fraction itself.
DEFAULT_VALIDATION_FRACTION = 0.2
INIT_RUN = "init_run"

# The default search space: G, C, the learning rate and the three loss
# weights, centred on the paper's values (G = C = 3, lr 1e-4, w_P = 0.1,
# w_G1 = w_G2 = 1). Every entry can be replaced or removed (set to null).
DEFAULT_SEARCH_SPACE = {
    "num_glimpses": {"type": "int", "min": 1, "max": 4, "target": "model.num_glimpses"},
    "num_workers": {"type": "int", "min": 1, "max": 4, "target": "model.num_workers"},
    "learning_rate": {
        "type": "float", "min": 1.0e-5, "max": 1.0e-3, "sampling": "log",
        "target": "stage.learning_rate",
    },
    "pose_weight": {
        "type": "float", "min": 0.01, "max": 1.0, "sampling": "log",
        "target": "loss.pose_weight",
    },
    "diversity_weight": {
        "type": "float", "min": 0.1, "max": 10.0, "sampling": "log",
        "target": "loss.diversity_weight",
    },
    "attraction_weight": {
        "type": "float", "min": 0.1, "max": 10.0, "sampling": "log",
        "target": "loss.attraction_weight",
    },
}
# Config fields that only matter when the tuned stage uses glimpses.
GLIMPSE_ONLY_TARGETS = (
    "model.num_glimpses", "model.num_workers", "loss.diversity_weight",
    "loss.attraction_weight",
)
GLOBAL_VARIANTS = ("global", "global_pose")


class SearchSpaceError(GlimpseError, ValueError):
    """A search-space entry (or a resumed search's settings) is invalid."""


class SearchError(GlimpseError, RuntimeError):
    """keras-tuner gave up (several trials in a row failed)."""


class TunerDependencyError(GlimpseError, ImportError):
    """A tuner needs a package that is not installed."""


# === Search space ===


@dataclasses.dataclass(frozen=True)
class HyperParameterSpec:
    """One tuned value and the config field it sets.

    Attributes:
        name: keras-tuner name (also the column of the results table).
        kind: 'int', 'float' or 'choice'.
        target: dotted config path, e.g. 'model.num_glimpses'; 'stage.<field>'
            means that field of the tuned (last) stage.
        min_value, max_value: inclusive bounds ('int', 'float').
        step: grid step (None = continuous float / step 1 for int).
        sampling: 'linear', 'log' or 'reverse_log' ('log' needs min > 0).
        values: the candidates of a 'choice'.
    """

    name: str
    kind: str
    target: str
    min_value: object = None
    max_value: object = None
    step: object = None
    sampling: str = "linear"
    values: tuple = ()

    def register(self, hp):
        """Declares this hyperparameter on `hp` and returns its value."""
        if self.kind == "int":
            return hp.Int(self.name, self.min_value, self.max_value,
                          step=self.step or 1, sampling=self.sampling)
        if self.kind == "float":
            return hp.Float(self.name, self.min_value, self.max_value,
                            step=self.step, sampling=self.sampling)
        return hp.Choice(self.name, list(self.values))

    def to_dict(self):
        """The YAML/JSON form accepted by `load_search_space`."""
        entry = {"type": self.kind, "target": self.target}
        if self.kind == "choice":
            entry["values"] = list(self.values)
        else:
            entry.update(min=self.min_value, max=self.max_value, sampling=self.sampling)
            if self.step is not None:
                entry["step"] = self.step
        return entry


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _spec_from_entry(name, entry):
    where = f"search space entry {name!r}"
    if not isinstance(entry, dict):
        raise SearchSpaceError(f"{where}: expected a mapping, got {entry!r}")
    allowed = {"type", "target", "min", "max", "step", "sampling", "values"}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SearchSpaceError(
            f"{where}: unknown key {unknown[0]!r} (valid: {', '.join(sorted(allowed))})"
        )
    kind = entry.get("type")
    if kind not in KINDS:
        raise SearchSpaceError(f"{where}: type must be one of {KINDS}, got {kind!r}")
    target = entry.get("target")
    if not isinstance(target, str) or "." not in target:
        raise SearchSpaceError(
            f"{where}: target must be a dotted config path such as "
            f"'model.num_glimpses' or 'stage.learning_rate', got {target!r}"
        )
    if kind == "choice":
        values = entry.get("values")
        if not isinstance(values, (list, tuple)) or not values:
            raise SearchSpaceError(f"{where}: a choice needs a non-empty list 'values', got {values!r}")
        return HyperParameterSpec(name, kind, target, values=tuple(values))
    low, high, step = entry.get("min"), entry.get("max"), entry.get("step")
    sampling = entry.get("sampling", "linear")
    if not (_is_number(low) and _is_number(high)):
        raise SearchSpaceError(f"{where}: 'min' and 'max' must be numbers, got {low!r} and {high!r}")
    if low > high:
        raise SearchSpaceError(f"{where}: min {low!r} is larger than max {high!r}")
    if kind == "int" and not (isinstance(low, int) and isinstance(high, int)):
        raise SearchSpaceError(f"{where}: an int range needs integer bounds, got {low!r}..{high!r}")
    if sampling not in SAMPLINGS:
        raise SearchSpaceError(f"{where}: sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if sampling != "linear" and low <= 0:
        raise SearchSpaceError(f"{where}: {sampling} sampling needs min > 0, got {low!r}")
    if step is not None and not (_is_number(step) and step > 0):
        raise SearchSpaceError(f"{where}: step must be a positive number, got {step!r}")
    if kind == "float":
        low, high = float(low), float(high)
    return HyperParameterSpec(name, kind, target, low, high, step, sampling)


def parse_search_space(entries):
    """Turns a `{name: entry}` mapping into specs (entries set to None are dropped).

    Raises:
        SearchSpaceError: naming the entry and the bad key or value.
    """
    if not isinstance(entries, dict):
        raise SearchSpaceError(f"search space: expected a mapping of name -> entry, got {entries!r}")
    specs = tuple(
        _spec_from_entry(str(name), entry) for name, entry in entries.items() if entry is not None
    )
    if not specs:
        raise SearchSpaceError("search space: every entry was removed; nothing to tune")
    targets = [spec.target for spec in specs]
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise SearchSpaceError(f"search space: several entries set {repeated[0]}")
    return specs


def load_search_space(path=None, overrides=()):
    """Default space <- YAML file (if any) <- `name.key=value` overrides.

    A file or override entry is merged key by key into the default entry of
    the same name (so `num_glimpses.max=6` keeps the rest); `null` removes an
    entry, a new name adds one (it then needs `type` and `target`).

    Returns:
        tuple of `HyperParameterSpec`.

    Raises:
        SearchSpaceError: naming the file, entry, key or value.
    """
    entries = copy.deepcopy(DEFAULT_SEARCH_SPACE)
    if path:
        try:
            file_entries = config_lib.read_yaml(path)
        except config_lib.ConfigError as error:
            raise SearchSpaceError(str(error).replace("config file", "search space file")) from None
        for name, entry in file_entries.items():
            _merge_entry(entries, str(name), entry, f"search space file {path!r}")
    for item in overrides or ():
        name, key, value = _parse_space_override(item)
        if key is None:
            _merge_entry(entries, name, value, f"override {item!r}")
        else:
            base = entries.get(name) or {}
            entries[name] = {**base, key: value}
    return parse_search_space(entries)


def _merge_entry(entries, name, entry, source):
    if entry is None:
        entries[name] = None
    elif isinstance(entry, dict):
        entries[name] = {**(entries.get(name) or {}), **entry}
    else:
        raise SearchSpaceError(f"{source}: entry {name!r} must be a mapping or null, got {entry!r}")


def _parse_space_override(item):
    if "=" not in item:
        raise SearchSpaceError(f"space override {item!r}: expected name.key=value or name=null")
    path, text = item.split("=", 1)
    try:
        value = config_lib.parse_yaml_value(text)
    except yaml.YAMLError as error:
        raise SearchSpaceError(f"space override {item!r}: cannot parse the value: {error}") from None
    parts = path.strip().split(".")
    if len(parts) == 1 and parts[0]:
        return parts[0], None, value
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1], value
    raise SearchSpaceError(f"space override {item!r}: expected name.key=value or name=null")


# === Hyperparameters -> config ===


def resolve_target(config, target):
    """The dotted path `target` with 'stage.' replaced by the last stage's index."""
    if target.startswith(STAGE_PREFIX):
        last = len(config.train.stages) - 1
        return f"train.stages.{last}.{target[len(STAGE_PREFIX):]}"
    return target


def _set_field(values, dotted, value, target):
    node = values
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            index = int(part) if part.isdigit() else None
            if index is None or index >= len(node):
                raise SearchSpaceError(f"target {target!r}: {where} is not a stage index")
            key = index
        elif isinstance(node, dict) and part in node:
            key = part
        else:
            raise SearchSpaceError(f"target {target!r}: the config has no field {where}")
        if depth == len(parts) - 1:
            if isinstance(node[key], (dict, list)):
                raise SearchSpaceError(f"target {target!r}: {where} is a section, not a field")
            node[key] = value
        else:
            node = node[key]


def apply_hyperparameters(config, space, values):
    """A copy of `config` with each spec's target set to `values[spec.name]`.

    Names missing from `values` keep the config's value (keras-tuner's
    conditional hyperparameters may be inactive).

    Returns:
        a validated `ExperimentConfig`.

    Raises:
        SearchSpaceError: a target that names no config field.
        ConfigError: a value outside the field's limits (naming the field).
    """
    tree = config.to_dict()
    for spec in space:
        if spec.name in values:
            value = values[spec.name]
            if hasattr(value, "item"):  # numpy scalars from the oracle
                value = value.item()
            _set_field(tree, resolve_target(config, spec.target), value, spec.target)
    return config_lib.config_from_dict(tree)


def check_search_space(config, space):
    """Checks that every bound/choice is a valid value of its config field.

    Raises:
        SearchSpaceError: naming the entry, its target and the reason.
    """
    tuned = config.train.stages[-1]
    for spec in space:
        if spec.target in GLIMPSE_ONLY_TARGETS and tuned.variant in GLOBAL_VARIANTS:
            raise SearchSpaceError(
                f"search space entry {spec.name!r}: {spec.target} has no effect because "
                f"the tuned stage {tuned.name!r} uses variant {tuned.variant!r}; remove "
                f"the entry ({spec.name}=null) or tune a glimpse stage"
            )
        candidates = spec.values if spec.kind == "choice" else (spec.min_value, spec.max_value)
        for candidate in candidates:
            try:
                apply_hyperparameters(config, (spec,), {spec.name: candidate})
            except config_lib.ConfigError as error:
                raise SearchSpaceError(
                    f"search space entry {spec.name!r}: value {candidate!r} is not valid "
                    f"for {spec.target}: {error}"
                ) from None


# === HyperModel ===


def search_config_of(config, validation_fraction=None):
    """The config the search works with: `config` with a validation split
    carved from the training subjects (`data.validation_fraction`: the
    config's own when set, else `validation_fraction`, else
    `DEFAULT_VALIDATION_FRACTION`).

    Raises:
        ConfigError: a fraction outside (0, 0.5].
    """
    tree = config.to_dict()
    fraction = validation_fraction or tree["data"]["validation_fraction"] or DEFAULT_VALIDATION_FRACTION
    if not 0 < fraction <= 0.5:
        raise config_lib.ConfigError(
            f"--validation-fraction: expected a share of the training subjects in (0, 0.5], got {fraction}"
        )
    tree["data"]["validation_fraction"] = float(fraction)
    return config_lib.config_from_dict(tree)


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


def trial_config_of(config):
    """What a trial trains: `config` with only its last stage, which starts
    from scratch or from `init_from`, scored after every epoch. `train.py
    --config` on this config (with the same `--init-from`) trains exactly what
    the trial trained."""
    tree = config.to_dict()
    tree["train"]["stages"] = tree["train"]["stages"][-1:]
    # Scored after every epoch, as the trial was (its validation split).
    tree["train"]["validate"] = True
    return config_lib.config_from_dict(tree)


class GlimpseHyperModel(keras_tuner.HyperModel):
    """Maps hyperparameters onto an `ExperimentConfig` and trains its last stage.

    Args:
        base_config: validated `ExperimentConfig`; its last stage is tuned
            (epochs, batch size, steps per epoch, variant, frozen backbone).
        converted_dir: converted TFRecords (`preparation.prepare_data`).
        space: tuple of `HyperParameterSpec` (default: `load_search_space()`).
        init_from: optional finished training run; its final model's matching
            sub-layers initialise every trial (see `training.transfer_weights`).
            It is loaded here, once.
        strategy: `tf.distribute` strategy (default: from the config).

    Raises:
        SearchSpaceError: a space that does not fit the config.
        TrainingError: `init_from` is not a finished run (naming the file).
    """

    def __init__(self, base_config, converted_dir, space=None, init_from=None, strategy=None):
        super().__init__(name="glimpse_clouds", tunable=True)
        self.base_config = base_config
        self.converted_dir = converted_dir
        self.space = tuple(space) if space is not None else load_search_space()
        self.init_from = init_from
        self.strategy = strategy or training.make_strategy(base_config.train.strategy)
        check_search_space(base_config, self.space)
        # Loaded now, not in `build`: keras-tuner turns an exception in `build`
        # into failed trials and a vague "too many failures" after a few.
        self._init_model = runs.load_run(init_from)[0] if init_from else None

    def declare(self, hp):
        """Registers the whole space on `hp`; returns {name: value}."""
        return {spec.name: spec.register(hp) for spec in self.space}

    def trial_config(self, hp):
        """The `ExperimentConfig` the trial whose values `hp` holds trains:
        the base config with those values, and only its last stage (see
        `trial_config_of`)."""
        return trial_config_of(apply_hyperparameters(self.base_config, self.space, self.declare(hp)))

    def build(self, hp):
        """Builds, compiles and initialises the tuned stage's model for the
        values in `hp`, exactly as `train.py` starts that config's stage
        (`training.initialise_stage_model`)."""
        config = self.trial_config(hp)
        experiment = Experiment(config, self.converted_dir)
        # The model is called on a dummy batch when built: keras-tuner then
        # can load trial weights into it (see TOOLCHAIN.md).
        return training.initialise_stage_model(
            experiment, config.train.stages[-1], self.strategy, self._init_model, log=lambda text: None
        )

    def datasets(self, config):
        """(train, validation) datasets of the tuned stage for `config`:
        the first epoch's training clips and the per-epoch test clips."""
        experiment = Experiment(config, self.converted_dir)
        stage = config.train.stages[-1]
        train = experiment.train_dataset(stage, training.stage_seed(config, stage))
        return train, experiment.validation_dataset(stage.batch_size)

    def fit(self, hp, model, *args, **kwargs):
        """Trains `model` on the trial's data; `kwargs` (the tuner's callbacks,
        Hyperband's `epochs`/`initial_epoch`) go to `model.fit` unchanged.

        Raises:
            keras_tuner.errors.FailedTrialError: the loss became non-finite
                (the trial is recorded as FAILED and the search goes on).
            TypeError: positional data was given (the data come from the config).
            _StoppedByStorage: a write was refused (a full disk); the search
                stops (`run_search` raises the `StorageError`).
        """
        if args:
            raise TypeError(
                "GlimpseHyperModel.fit reads its data from the config; call "
                "tuner.search() without positional data"
            )
        unknown = sorted(set(kwargs) - {"epochs", "initial_epoch", "callbacks", "verbose"})
        if unknown:
            raise TypeError(f"GlimpseHyperModel.fit: unsupported fit arguments {unknown}")
        config = self.trial_config(hp)
        stage = config.train.stages[-1]
        experiment = Experiment(config, self.converted_dir)
        guard = StopOnNonFinite()
        # The training loop of `train.py` (`training.fit_stage`): the same
        # clips per epoch, so `train.py --config` on the trial's config
        # reproduces its score.
        try:
            history = training.fit_stage(
                experiment, model, stage,
                initial_epoch=kwargs.get("initial_epoch", 0),
                epochs=kwargs.get("epochs"),
                callbacks=trial_callbacks(kwargs.get("callbacks")) + [guard],
                validation_data=experiment.validation_dataset(stage.batch_size),
                guard=guard,
                verbose=kwargs.get("verbose", 2),
            )
        except StorageError as error:  # every later trial would fail the same way: stop the search
            raise _StoppedByStorage(error) from error
        if guard.failure:
            raise keras_tuner.errors.FailedTrialError(f"trial stopped: {guard.failure}")
        return history


class _StoppedByStorage(keras_tuner.errors.FatalError):
    """A trial's write was refused: keras-tuner stops the search on it
    (any other trial error only fails the trial)."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def trial_callbacks(callbacks):
    """The tuner's callbacks that a trial can pass to every epoch's `fit`.

    A trial runs one `fit` call per epoch (`training.fit_stage`), and the
    TensorBoard hparams callback that keras-tuner adds next to a TensorBoard
    callback refuses a second `fit` ("cannot be reused across training
    sessions"); it is left out. The TensorBoard scalars of every trial stay,
    and the trials' hyperparameters are in `results.csv`.

    keras-tuner's checkpoint callback (`SaveBestEpoch`) saves the trial's
    weights through `checkpoints.save_weights` instead of straight from
    HDF5, so a full disk fails the trial with a message and never leaves a
    half-written HDF5 file open (which crashes the interpreter later).
    """
    kept = []
    for callback in callbacks or []:
        if type(callback).__module__.startswith("tensorboard.plugins.hparams"):
            continue
        if type(callback).__name__ == "SaveBestEpoch" and hasattr(callback, "filepath"):
            callback._save_model = functools.partial(_save_trial_weights, callback)
        kept.append(callback)
    return kept


def _save_trial_weights(callback):
    checkpoints.save_weights(callback.model, callback.filepath)


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


# === Results ===


def _score(trial):
    score = trial.score
    return None if score is None or not math.isfinite(score) else float(score)


def trial_rows(tuner, space):
    """One dict per trial, best first (trials without a score last).

    Keys: 'trial', 'status', one per hyperparameter of `space`, those the
    tuner adds itself (Hyperband's 'tuner/epochs', ...), 'score', 'best_step'.
    """
    direction = tuner.oracle.objective.direction
    names = [spec.name for spec in space]
    for trial in tuner.oracle.trials.values():
        names += sorted(set(trial.hyperparameters.values) - set(names))
    rows = []
    for trial in tuner.oracle.trials.values():
        row = {"trial": trial.trial_id, "status": trial.status}
        for name in names:
            row[name] = trial.hyperparameters.values.get(name)
        row["score"] = _score(trial)
        row["best_step"] = trial.best_step if row["score"] is not None else None
        rows.append(row)
    sign = -1.0 if direction == "max" else 1.0
    rows.sort(key=lambda r: (r["score"] is None, sign * (r["score"] or 0.0), r["trial"]))
    return rows


def _format(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def results_csv(rows, columns, objective):
    """CSV text of `rows` (floats in full precision; the 'score' column is
    headed by the objective's name)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([objective if column == "score" else column for column in columns])
    for row in rows:
        writer.writerow(["" if row[column] is None else row[column] for column in columns])
    return buffer.getvalue()


def results_markdown(rows, columns, objective):
    """A Markdown table of `rows` under a one-line heading."""
    header = [objective if column == "score" else column for column in columns]
    lines = [
        f"# Search results ({objective}, {OBJECTIVES[objective]}imised; best first)",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_format(row[column]) for column in columns) + " |")
    return "\n".join(lines) + "\n"


def write_results(tuner, space, base_config, output_dir, objective, final_config=None, init_from=None):
    """Writes results.csv/.md and, when a trial has a score, the best configs.

    Args:
        base_config: the config the trials were drawn from (with the
            validation hold-out); `best_trial_config.yaml` is its best trial.
        final_config: the user's config, which `best_config.yaml` is with
            the best values (default: `base_config`).
        init_from: the run the trials started from (recorded).

    Returns:
        dict of the written paths and the best trial (`best_trial`, `best_score`,
        `best_values`, `best_weights`), the latter None when no trial finished.
    """
    rows = trial_rows(tuner, space)
    if rows:
        columns = list(rows[0])
    else:
        columns = ["trial", "status"] + [spec.name for spec in space] + ["score", "best_step"]
    paths = {
        "results_csv": os.path.join(output_dir, "results.csv"),
        "results_md": os.path.join(output_dir, "results.md"),
    }
    atomic_write_text(paths["results_csv"], results_csv(rows, columns, objective))
    atomic_write_text(paths["results_md"], results_markdown(rows, columns, objective))
    summary = dict(paths, best_trial=None, best_score=None, best_values=None, best_weights=None,
                   init_from=init_from)
    scored = [row for row in rows if row["score"] is not None]
    if not scored:
        return summary
    best = scored[0]
    trial = tuner.oracle.get_trial(best["trial"])
    values = {spec.name: trial.hyperparameters.values[spec.name]
              for spec in space if spec.name in trial.hyperparameters.values}
    best_config = apply_hyperparameters(final_config or base_config, space, values)
    summary.update(
        best_config=os.path.join(output_dir, "best_config.yaml"),
        best_trial_config=os.path.join(output_dir, "best_trial_config.yaml"),
        best_hyperparameters=os.path.join(output_dir, "best_hyperparameters.json"),
        best_trial=best["trial"],
        best_score=best["score"],
        best_values=values,
        best_weights=os.path.join(tuner.get_trial_dir(best["trial"]), "checkpoint.weights.h5"),
    )
    config_lib.save_config(best_config, summary["best_config"])
    config_lib.save_config(trial_config_of(apply_hyperparameters(base_config, space, values)),
                           summary["best_trial_config"])
    summary["init_from"] = init_from
    atomic_write_json(
        summary["best_hyperparameters"],
        {"trial": best["trial"], "objective": objective, "score": best["score"],
         "values": values, "weights": summary["best_weights"],
         "trial_config": summary["best_trial_config"], "init_from": init_from},
    )
    return summary


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
            except _StoppedByStorage as stopped:  # a trial's write, named by its own message
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
