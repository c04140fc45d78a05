"""Trains and scores variants of the demo for the experiment scripts (attention levers, paper tables).

A *setting* is a list of config overrides on a base config. For one seed, `run_setting` trains stage 1
once per distinct stage-1 configuration (shared by every setting that only changes what comes after)
and then the setting's later stages, and scores both the first and the last stage on the test split
with `evaluate.py`'s multi-clip protocol (glimpse models with their attention diagnostics). A finished
run is found again by its folder and not retrained, so an interrupted script resumes.
"""

import copy
import hashlib
import json
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from glimpse_keras import config as config_lib  # noqa: E402

# Config keys that change stage 1; settings equal on these share one stage-1 run.
STAGE1_MODEL_KEYS = ("preset", "backbone", "output_stride", "output_stride_dilation", "pretrained_weights",
                     "inflation",
                     "input_normalization", "num_classes")


def setting_config(base_path, overrides, seed):
    """The config of one setting and seed: the seed sets the generator's seed (`data.synthetic_seed`)
    and the training seed (`train.seed` = 1234 + seed)."""
    seeded = [f"data.synthetic_seed={seed}", f"train.seed={1234 + seed}"]
    return config_lib.load_config(base_path, list(overrides) + seeded)


def stage1_key(config):
    """A digest of everything stage 1 depends on."""
    values = config.to_dict()
    key = {"data": values["data"], "stage": values["train"]["stages"][0]}
    key["model"] = {name: values["model"][name] for name in STAGE1_MODEL_KEYS}
    key["train"] = {name: values["train"][name] for name in ("seed", "precision")}
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def _first_stage_only(config):
    config = copy.deepcopy(config)
    config.train.stages = config.train.stages[:1]
    return config


def _read(path):
    with open(path) as handle:
        return json.load(handle)


def run_setting(name, config, runs_dir, cache_root, first_stage_only=False):
    """Trains (or finds) one setting for one seed and scores it.

    Args:
        name: the setting's name (its run folder is `<name>_seed<seed>`).
        config: its `ExperimentConfig` (see `setting_config`).
        runs_dir: where the runs go.
        cache_root: the generated and converted data's cache.
        first_stage_only: score stage 1 only (e.g. the global model without pose).

    Returns:
        dict with "setting", "seed", "stage1" (test report of stage 1), "stage2" (of the last stage, or
        None), "attention" (its diagnostics, or None) and "minutes" spent in this call.
    """
    from glimpse_keras import evaluation, training
    from glimpse_keras.experiment import Experiment

    started = time.time()
    stage1_dir = os.path.join(runs_dir, f"stage1_{stage1_key(config)}")
    stage1_name = config.train.stages[0].name
    first = _first_stage_only(config)
    report1_path = os.path.join(stage1_dir, "evaluation", stage1_name, "test_report.json")
    if not os.path.exists(report1_path):
        outcome = training.train(first, stage1_dir, resume=training.holds_run(stage1_dir), cache_root=cache_root)
        evaluation.evaluate_split(outcome["model"], Experiment(first, outcome["converted_dir"]),
                                  output=report1_path, progress=False, stage=stage1_name,
                                  weights=outcome["final_weights"])
    report2 = None
    if not first_stage_only and len(config.train.stages) > 1:
        run_dir = os.path.join(runs_dir, f"{name}_seed{config.data.synthetic_seed}")
        last = config.train.stages[-1].name
        report2_path = os.path.join(run_dir, "evaluation", last, "test_report.json")
        if not os.path.exists(report2_path):
            target = os.path.join(run_dir, stage1_name)
            if not os.path.exists(target):
                shutil.copytree(os.path.join(stage1_dir, stage1_name), target)
                # The shared stage 1 makes this a run interrupted after stage 1:
                # resuming it trains the later stages only.
                config_lib.save_config(config, os.path.join(run_dir, training.CONFIG))
            outcome = training.train(config, run_dir, resume=True, cache_root=cache_root)
            evaluation.evaluate_split(outcome["model"], Experiment(config, outcome["converted_dir"]),
                                      output=report2_path, progress=False, stage=last,
                                      weights=outcome["final_weights"])
        report2 = _read(report2_path)
    return {"setting": name, "seed": config.data.synthetic_seed, "stage1": _read(report1_path),
            "stage2": report2, "attention": None if report2 is None else report2["attention"],
            "minutes": (time.time() - started) / 60}


def mean_and_range(values):
    """'mean (min-max)' of percentages, or the value alone for one seed."""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{sum(values) / len(values):.1f} ({min(values):.1f}-{max(values):.1f})"
