"""Multi-clip evaluation: accuracy, per-class accuracy, confusion matrix.

Every video of the split is evaluated once with K clips (fixed temporal
offsets and centre crop, or with `data.test_sampling: random` the authors'
random frames and crops, seeded); the raw logits of its clips are averaged, as
the authors average their 5 test clips. Nothing is dropped silently: the report
counts the videos evaluated against the split index and lists every sample
the converter skipped, with its reason.
"""

import json
import os

import numpy as np

from glimpse_keras import console, filesystem
from glimpse_keras.backends import compile_forward
from glimpse_keras.data import preparation
from glimpse_keras.errors import GlimpseError
from glimpse_keras.io_utils import atomic_path, atomic_write_json
from glimpse_keras.models.folding import fold_model_batch_norm


class EvaluationError(GlimpseError, RuntimeError):
    """The evaluation could not account for every video of the split."""


def evaluate_split(model, experiment, split="test", clips=None, output=None, progress=True,
                   stage=None, weights=None, placement_controls=False, placement_seed=0):
    """Multi-clip evaluation of `model` on one split of the experiment's
    converted data; writes the JSON report and confusion PNG when `output`.

    Args:
        model: a built `GlimpseClouds`.
        experiment: an `experiment.Experiment` whose data are prepared.
        split: split name ("test", "train").
        clips: clips per video (default: `data.clips_per_video`).
        output: report JSON path, or None to write nothing.
        progress: show a progress bar.
        stage, weights: the stage name and weights file the model holds,
            recorded in the report so it says what it scored.
        placement_controls: for a glimpse model, also score it with its
            glimpse places swapped (`placement.score_placements`: the
            dataset-mean schedule, another video's places, random centres,
            the hand joints), a second pass over the split.
        placement_seed: seeds those swaps.

    Returns:
        the report dict (see `classification_report`) with the split's
        expected size, the skipped samples, the file paths, the stage and
        weights, "predictions" and "labels" per video (in the order of
        "video_ids") and, for a glimpse model, "attention": the attention
        diagnostics of every clip (`diagnostics.attention_diagnostics`),
        with "placement_controls" when asked for.

    Raises:
        EvaluationError: when the videos evaluated are not the split
            index's count of distinct videos (one missing, or one read
            twice, e.g. from a shard listed twice).
    """
    import collections

    from glimpse_keras import diagnostics as diagnostics_lib

    data = experiment.config.data
    converted_dir = experiment.converted_dir
    expected = experiment.count_videos(split)
    dataset = experiment.test_dataset(split, clips)
    attention = None
    if not model.is_global:
        attention = diagnostics_lib.AttentionDiagnostics(assign_axis=model.core.assign_axis)
    placements = placement_controls and not model.is_global
    if placements and not model.backbone.fold_batch_norm:
        # Both passes run the same (faster, folded) copy, as `collect_logits` would.
        model = fold_model_batch_norm(model)
    own = [] if placements else None
    with preparation.shard_errors(experiment.converted_dir):  # a damaged shard is named
        logits, labels, ids = collect_logits(model, dataset, progress=progress, diagnostics=attention,
                                             locations=own)
    names = experiment.class_names
    report = classification_report(logits, labels, names)
    present = sorted(set(labels.tolist()))
    report.update(
        split=split,
        protocol=experiment.protocol,
        clips_per_video=clips or data.clips_per_video,
        test_sampling=data.test_sampling,
        split_size=expected,
        classes_present=len(present),
        chance=1.0 / max(len(present), 1),
        skipped_by_conversion=skipped_samples(converted_dir),
        video_ids=ids,
        stage=stage,
        variant=model.variant,
        weights=weights,
        predictions=logits.argmax(axis=1).tolist() if len(logits) else [],
        labels=labels.tolist(),
        attention=attention.result() if attention is not None else None,
    )
    if len(ids) != expected:
        raise EvaluationError(f"evaluated {len(ids)} videos but the {split} split lists {expected}")
    # A count that matches can still hide a missing video behind a repeated one.
    repeated = sorted(video_id for video_id, count in collections.Counter(ids).items() if count > 1)
    if repeated:
        raise EvaluationError(
            f"the {split} split yielded {len(repeated)} video(s) more than once "
            f"(e.g. {repeated[:3]}), so others may be missing"
        )
    if placements:
        from glimpse_keras import placement

        report["attention"]["placement_controls"] = placement.score_placements(
            model, experiment.test_dataset(split, clips),
            np.concatenate([batch[0] for batch in own]), np.concatenate([batch[1] for batch in own]),
            ids, seed=placement_seed, progress=progress,
        )
    if output:
        write_report(report, output, names)
    return report


def collect_logits(model, dataset, progress=True, fold_batch_norm=True, diagnostics=None,
                   locations=None):
    """Runs `model` over a 'test'-mode dataset.

    The forward pass is compiled by the backend (`tf.function` on
    TensorFlow, about 2x faster than eager calls; `jax.jit` on JAX).

    Args:
        model: a GlimpseClouds model (accepts (B, K, T, H, W, 3) videos and
            averages logits over the K clips).
        dataset: batches of ({"video": (B, K, T, H, W, 3)},
            {"label": (B,), "video_id": (B,)}).
        progress: bool, show a progress bar.
        fold_batch_norm: bool, run the copy of `model` whose backbone
            BatchNorms are folded into its convolutions (same logits up to
            float rounding, faster; `models.folding`).
        diagnostics: an `diagnostics.AttentionDiagnostics` that receives every
            clip's glimpse locations, assignments and ground-truth pose, or
            None.
        locations: a list that receives, per batch, the pair (locations,
            raw_locations), each (B, K, T, G, 4) float32, or None.

    Returns:
        (logits float32 (N, classes), labels int (N,), ids list[str]).
    """
    if fold_batch_norm and not model.backbone.fold_batch_norm:
        model = fold_model_batch_norm(model)
    keys = ["logits"]
    if diagnostics is not None:
        keys += ["locations", "assignments"]
    if locations is not None:
        keys += ["locations", "raw_locations"]

    def outputs_of(video):
        outputs = model(video, training=False)
        return {key: outputs[key] for key in keys}

    forward = compile_forward(outputs_of, model)
    logits, labels, ids = [], [], []
    batches = console.progress(dataset, desc="evaluating", unit="batch", disable=not progress)
    for inputs, targets in batches:
        outputs = forward(inputs["video"])
        logits.append(np.asarray(outputs["logits"], dtype=np.float32))
        if diagnostics is not None:
            diagnostics.update(
                outputs["locations"], outputs["assignments"], targets.get("pose"), targets.get("pose_mask")
            )
        if locations is not None:
            locations.append((np.asarray(outputs["locations"], np.float32),
                              np.asarray(outputs["raw_locations"], np.float32)))
        labels.append(np.asarray(targets["label"]))
        ids.extend(v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(targets["video_id"]))
    if not logits:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64), []
    return np.concatenate(logits), np.concatenate(labels).astype(np.int64), ids


def classification_report(logits, labels, class_names):
    """Top-1/top-5 accuracy, per-class accuracy and the confusion matrix.

    Args:
        logits: (N, K) scores.
        labels: (N,) ints in [0, K).
        class_names: K names.

    Returns:
        dict with "top1", "top5" (fractions), "per_class" (list of dicts with
        name, videos, accuracy or None when the class has no video) and
        "confusion" (K x K list, rows = true class, columns = predicted).
    """
    num_classes = len(class_names)
    predictions = logits.argmax(axis=1) if len(logits) else np.zeros((0,), np.int64)
    k = min(5, num_classes)
    top5 = np.argsort(-logits, axis=1)[:, :k] if len(logits) else np.zeros((0, k), np.int64)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    per_class = []
    for index, name in enumerate(class_names):
        total = int(confusion[index].sum())
        per_class.append(
            {
                "class": index,
                "name": name,
                "videos": total,
                "accuracy": float(confusion[index, index] / total) if total else None,
            }
        )
    count = len(labels)
    return {
        "videos": count,
        "top1": float((predictions == labels).mean()) if count else 0.0,
        "top5": float((top5 == labels[:, None]).any(axis=1).mean()) if count else 0.0,
        "chance": 1.0 / num_classes,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def skipped_samples(converted_dir):
    """Samples the converter skipped, as a list of {"sample", "reason"}."""
    path = os.path.join(converted_dir, "conversion_errors.json")
    if not filesystem.exists(path):
        return []
    try:
        with filesystem.open(path) as handle:
            data = json.load(handle)
        entries = data.get("errors", data) if isinstance(data, dict) else data
        return [
            {"sample": entry.get("sample") or entry.get("file") or entry.get("path"), "reason": entry.get("reason")}
            for entry in entries
        ]
    except (OSError, ValueError, AttributeError, TypeError) as error:  # not JSON, or not the converter's
        raise EvaluationError(
            f"cannot read {path} ({error}): it lists the videos the converter skipped, which every report "
            f"names; restore it or convert the data again"
        ) from error


def save_confusion_png(confusion, class_names, path, title="Confusion matrix"):
    """Draws the confusion matrix (row-normalised colours, counts written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(confusion)
    rows = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, np.maximum(rows, 1))
    size = max(4.0, 0.45 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, labels=class_names, rotation=90, fontsize=7)
    axes.set_yticks(ticks, labels=class_names, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    if len(class_names) <= 30:
        for (row, column), value in np.ndenumerate(confusion):
            if value:
                colour = "white" if normalised[row, column] > 0.5 else "black"
                axes.text(column, row, str(value), ha="center", va="center", fontsize=6, color=colour)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def write_report(report, output_json, class_names):
    """Writes the JSON report and the confusion PNG beside it.

    The report records both paths ("report_json", "confusion_png").
    """
    png = os.path.splitext(output_json)[0] + "_confusion.png"
    report.update(report_json=output_json, confusion_png=png)
    save_confusion_png(report["confusion"], class_names, png)
    atomic_write_json(output_json, report)
    return report
