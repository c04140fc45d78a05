"""The end-to-end job behind `python train.py`: data, training stages, test
evaluation and SavedModel export, with the location of every result.

Training and evaluation run on the active Keras backend; the export always
runs on TensorFlow (in a child process when this one runs JAX).
"""

import collections
import os

from glimpse_keras import diagnostics, evaluation, training
from glimpse_keras.data import pipeline, preparation


def class_names_for(config):
    """Class names of the config's dataset (NTU names for synthetic data)."""
    if config.data.dataset == "videos":
        from glimpse_keras.data import user_videos

        return user_videos.class_names(config.data.data_dir)
    if config.data.dataset == "nucla":
        from glimpse_keras.data.nucla import NUCLA_CLASS_NAMES

        names = list(NUCLA_CLASS_NAMES)
    else:
        from glimpse_keras.data.ntu import NTU60_CLASS_NAMES

        names = list(NTU60_CLASS_NAMES)
    labels = preparation.label_map(config.data)
    if labels is not None:
        names += [f"class_{index}" for index in range(len(names), max(labels) + 1)]
        return [names[label] for label in labels]
    count = config.model.num_classes
    names += [f"class_{index}" for index in range(len(names), count)]
    return names[:count]


def evaluate_model(model, config, converted_dir, split="test", clips=None, output=None, progress=True,
                   stage=None, weights=None):
    """Multi-clip evaluation of `model` on one split; writes JSON + PNG.

    Args:
        stage, weights: the stage name and weights file the model holds,
            recorded in the report.

    Returns:
        the report dict (see `evaluation.classification_report`) with the
        split's expected size, the skipped samples, the file paths and, for a
        glimpse model, "attention": the attention diagnostics of every clip
        (`diagnostics.attention_diagnostics`).

    Raises:
        evaluation.EvaluationError: when the videos evaluated are not the
            split index's count of distinct videos (one missing, or one read
            twice, e.g. from a shard listed twice).
    """
    data = config.data
    files = preparation.split_files(converted_dir, data, split)
    labels = preparation.label_map(data)
    expected = pipeline.count_split_videos(
        converted_dir, preparation.split_protocol(data), split, label_map=labels
    )
    dataset = pipeline.build_dataset(
        files,
        "test",
        num_frames=data.num_frames,
        image_size=data.image_size,
        batch_size=4,
        clips_per_video=clips or data.clips_per_video,
        label_map=labels,
    )
    attention = None
    if not model.is_global:
        attention = diagnostics.AttentionDiagnostics(assign_axis=model.core.assign_axis)
    logits, labels, ids = evaluation.collect_logits(
        model, dataset, progress=progress, diagnostics=attention
    )
    names = class_names_for(config)
    report = evaluation.classification_report(logits, labels, names)
    present = sorted(set(labels.tolist()))
    report.update(
        split=split,
        protocol=preparation.split_protocol(data),
        clips_per_video=clips or data.clips_per_video,
        split_size=expected,
        classes_present=len(present),
        chance=1.0 / max(len(present), 1),
        skipped_by_conversion=evaluation.skipped_samples(converted_dir),
        video_ids=ids,
        stage=stage,
        variant=model.variant,
        weights=weights,
        attention=attention.result() if attention is not None else None,
    )
    if len(ids) != expected:
        raise evaluation.EvaluationError(
            f"evaluated {len(ids)} videos but the {split} split lists {expected}"
        )
    # A count that matches can still hide a missing video behind a repeated one.
    repeated = sorted(video_id for video_id, count in collections.Counter(ids).items() if count > 1)
    if repeated:
        raise evaluation.EvaluationError(
            f"the {split} split yielded {len(repeated)} video(s) more than once "
            f"(e.g. {repeated[:3]}), so others may be missing"
        )
    if output:
        evaluation.write_report(report, output, names)
    return report


def run(config, run_dir, resume=False, init_from=None, evaluate=True, export=True):
    """Trains every stage, then evaluates and exports the last model.

    Returns:
        dict of result name -> path or figure, printed by `train.py`.
    """
    outcome = training.train(config, run_dir, resume=resume, init_from=init_from)
    model = outcome["model"]
    results = {
        "run directory": run_dir,
        "resolved config": os.path.join(run_dir, "config.yaml"),
        "final weights": outcome["final_weights"],
        "TensorBoard logs": os.path.join(run_dir, "*", "logs"),
        "converted data": outcome["converted_dir"],
    }
    if evaluate:
        # Every stage is scored, so the demo shows the global model (stage 1)
        # beside Glimpse Clouds (stage 2) on the same clips.
        for stage in config.train.stages:
            weights = os.path.join(run_dir, stage.name, training.FINAL)
            if stage is config.train.stages[-1]:
                stage_model = model
            else:
                stage_model = training.load_run_model(run_dir, stage.name)[0]
            report_path = os.path.join(run_dir, "evaluation", stage.name, "test_report.json")
            report = evaluate_model(stage_model, config, outcome["converted_dir"], output=report_path,
                                    stage=stage.name, weights=weights)
            label = f"{stage.name} ({stage.variant})"
            results[f"{label} top-1"] = (
                f"{100 * report['top1']:.1f}% (top-5 {100 * report['top5']:.1f}%, chance "
                f"{100 * report['chance']:.1f}%, {report['videos']} test videos)"
            )
            results[f"{stage.name} report"] = report_path
        results["attention"] = report["attention"]
    if export:
        results["SavedModel"] = _export(model, config, run_dir)
    return results


def _export(model, config, run_dir):
    """Exports the run's final model; on a backend other than TensorFlow from
    its weights file in a TensorFlow child process. Returns the SavedModel
    path, or (when the child fails) the error and the command to rerun."""
    from glimpse_keras import export as export_lib
    from glimpse_keras.backends import current_backend

    base = os.path.join(run_dir, "export", "glimpse_clouds")
    if current_backend() == "tensorflow":
        return export_lib.export_run_model(model, config, base)
    try:
        return export_lib.export_run_in_subprocess(run_dir, base)
    except export_lib.ExportError as error:
        return f"not written ({error})"
