"""The results of a search: the trials' table, best first, and the best configs."""

import csv
import io
import math
import os

from glimpse_keras import config as config_lib
from glimpse_keras.io_utils import atomic_write_json, atomic_write_text
from glimpse_keras.tuning.hypermodel import trial_config_of
from glimpse_keras.tuning.space import apply_hyperparameters

# Objective name -> direction; names are the metrics `GlimpseClouds` reports.
OBJECTIVES = {
    "val_accuracy": "max",
    "val_top5_accuracy": "max",
    "val_loss": "min",
    "val_class_loss": "min",
}


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
