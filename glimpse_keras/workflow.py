"""The end-to-end job behind `python train.py`: data, training stages, the
test evaluation of every stage and the SavedModel export, with the location
of every result.

Training and evaluation run on the active Keras backend; the export always
runs on TensorFlow (in a child process when this one runs JAX). In a
multi-process job (`parallel`) every process trains and evaluates; process
0 writes the reports and the export.
"""

import os

from glimpse_keras import evaluation, parallel, runs, training


def run(experiment, run_dir, resume=False, init_from=None, evaluate=True, export=True, overwrite=False):
    """Trains every stage, then evaluates each and exports the last model.

    Args:
        experiment: the `Experiment` of a validated `ExperimentConfig`.
        run_dir: the run folder (see `training.train` for resume/overwrite).
        resume, init_from, overwrite: see `training.train`.
        evaluate: score every stage on the test split
            (RUN/evaluation/<stage>/test_report.json).
        export: write the SavedModel (RUN/export/glimpse_clouds/<version>).

    Returns:
        dict of result name -> path or figure, printed by `train.py`, and
        "attention": the last stage's attention diagnostics (or None).
    """
    outcome = training.train(experiment, run_dir, resume=resume, init_from=init_from, overwrite=overwrite)
    model = outcome["model"]
    chief = parallel.is_chief()
    config = experiment.config
    results = {
        "run directory": run_dir,
        "resolved config": os.path.join(run_dir, runs.CONFIG),
        "final weights": outcome["final_weights"],
        "TensorBoard logs": os.path.join(run_dir, "*", "logs"),
        "converted data": outcome["converted_dir"],
    }
    if evaluate:
        # Every stage is scored, so the demo shows the global model (stage 1)
        # beside Glimpse Clouds (stage 2) on the same clips.
        for stage in config.train.stages:
            weights = runs.final_weights(run_dir, stage.name)
            if stage is config.train.stages[-1]:
                stage_model = model
            else:
                stage_model = runs.load_run(run_dir, stage.name)[0]
            report_path = runs.report_path(run_dir, stage.name)
            report = evaluation.evaluate_split(stage_model, experiment, output=report_path if chief else None,
                                               stage=stage.name, weights=weights, progress=chief)
            label = f"{stage.name} ({stage.variant})"
            results[f"{label} top-1"] = (
                f"{100 * report['top1']:.1f}% (top-5 {100 * report['top5']:.1f}%, chance "
                f"{100 * report['chance']:.1f}%, {report['videos']} test videos)"
            )
            results[f"{stage.name} report"] = report_path
        results["attention"] = report["attention"]
    if export and chief:
        results["SavedModel"] = export_run(model, experiment, run_dir)
    return results


def export_run(model, experiment, run_dir):
    """Exports the run's final model to RUN/export/glimpse_clouds; on a
    backend other than TensorFlow from its weights file in a TensorFlow child
    process. Returns the SavedModel path, or (when the child process fails)
    the error and the command to rerun.

    Raises:
        export.ExportError, io_utils.StorageError: the in-process export
            failed (e.g. a full disk).
    """
    from glimpse_keras import export as export_lib
    from glimpse_keras.backends import current_backend

    base = os.path.join(run_dir, "export", "glimpse_clouds")
    if current_backend() == "tensorflow":
        return export_lib.export_for_serving(model, base, **experiment.serving_settings())["saved_model"]
    try:
        return export_lib.export_run_in_subprocess(run_dir, base)
    except export_lib.ExportError as error:
        return f"not written ({error})"
