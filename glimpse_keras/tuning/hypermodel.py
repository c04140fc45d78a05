"""The keras-tuner `HyperModel`: a trial's config, model and training.

A trial trains the LAST stage of the search config, with the drawn values
written into it (`space.apply_hyperparameters`), through `train.py`'s own stage
runner (`training.initialise_stage_model` and `training.fit_stage`: same seeds,
same clips per epoch), scored on the validation split `search_config_of`
carves from the training subjects.
"""

import functools

import keras_tuner

from glimpse_keras import checkpoints
from glimpse_keras import config as config_lib
from glimpse_keras import runs, training
from glimpse_keras.callbacks import StopOnNonFinite
from glimpse_keras.experiment import Experiment
from glimpse_keras.io_utils import StorageError
from glimpse_keras.tuning.space import apply_hyperparameters, check_search_space, load_search_space

# Share of the training subjects held out to score the trials, unless the
# config sets data.validation_fraction itself.
DEFAULT_VALIDATION_FRACTION = 0.2


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
            StoppedByStorage: a write was refused (a full disk); the search
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
            raise StoppedByStorage(error) from error
        if guard.failure:
            raise keras_tuner.errors.FailedTrialError(f"trial stopped: {guard.failure}")
        return history


class StoppedByStorage(keras_tuner.errors.FatalError):
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
