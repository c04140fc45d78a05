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

The package, by concern: `space` (the search space and how drawn values
become a config), `hypermodel` (the keras-tuner `HyperModel`: a trial's
config, model and training), `results` (the trials' table and the best
configs) and `search` (the tuner, the settings of a resumable search, the
earlier stages trained once, `run_search`). Every name is importable from
`glimpse_keras.tuning`.
"""

from glimpse_keras.tuning.hypermodel import (
    DEFAULT_VALIDATION_FRACTION,
    GlimpseHyperModel,
    search_config_of,
    trial_callbacks,
    trial_config_of,
)
from glimpse_keras.tuning.results import (
    OBJECTIVES,
    results_csv,
    results_markdown,
    trial_rows,
    write_results,
)
from glimpse_keras.tuning.search import (
    FINISHED_STATUSES,
    INIT_RUN,
    PROJECT_NAME,
    SETTINGS_FILE,
    TUNERS,
    SearchError,
    TunerDependencyError,
    check_or_save_settings,
    check_tuner_settings,
    initial_run,
    make_tuner,
    run_search,
    search_settings,
)
from glimpse_keras.tuning.space import (
    DEFAULT_SEARCH_SPACE,
    GLIMPSE_ONLY_TARGETS,
    KINDS,
    SAMPLINGS,
    STAGE_PREFIX,
    HyperParameterSpec,
    SearchSpaceError,
    apply_hyperparameters,
    check_search_space,
    load_search_space,
    parse_search_space,
    resolve_target,
)
