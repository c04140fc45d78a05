"""Deprecated: the old home of the train.py job, kept for one release.

Use instead:
    pipeline_runner.run            -> glimpse_keras.workflow.run
    pipeline_runner.evaluate_model -> glimpse_keras.evaluation.evaluate_split
                                      (takes an `Experiment`)
    pipeline_runner.class_names_for -> glimpse_keras.experiment.Experiment(config).class_names
"""

import warnings


def _deprecated(old, new):
    warnings.warn(f"glimpse_keras.pipeline_runner.{old} is deprecated and will be removed in the next "
                  f"release; use {new}", DeprecationWarning, stacklevel=3)


def class_names_for(config):
    """Deprecated: `Experiment(config).class_names`."""
    from glimpse_keras.experiment import Experiment

    _deprecated("class_names_for", "glimpse_keras.experiment.Experiment(config).class_names")
    return Experiment(config).class_names


def evaluate_model(model, config, converted_dir, split="test", clips=None, output=None, progress=True,
                   stage=None, weights=None):
    """Deprecated: `evaluation.evaluate_split(model, Experiment(config, converted_dir), ...)`."""
    from glimpse_keras import evaluation
    from glimpse_keras.experiment import Experiment

    _deprecated("evaluate_model", "glimpse_keras.evaluation.evaluate_split")
    return evaluation.evaluate_split(model, Experiment(config, converted_dir), split=split, clips=clips,
                                     output=output, progress=progress, stage=stage, weights=weights)


def run(config, run_dir, resume=False, init_from=None, evaluate=True, export=True, overwrite=False):
    """Deprecated: `glimpse_keras.workflow.run`."""
    from glimpse_keras import workflow

    _deprecated("run", "glimpse_keras.workflow.run")
    return workflow.run(config, run_dir, resume=resume, init_from=init_from, evaluate=evaluate,
                        export=export, overwrite=overwrite)
