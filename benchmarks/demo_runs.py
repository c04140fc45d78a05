"""Trains and scores variants of the demo for the experiment scripts (attention levers, paper tables).

A *setting* is a list of config overrides on a base config. For one seed, stage 1 is trained once per
distinct stage-1 configuration and shared by every run that only changes what comes after; each
run then trains its later stages from it. Every run is scored on the test split with
`evaluate.py`'s multi-clip protocol, and its report keeps the prediction of every test video, so
two runs of the same seed can be compared video by video (`glimpse_keras.statistics`).

Three kinds of second stage are compared like with like (the same stage 1, the same stage-2
budget: epochs, learning rate, batch, backbone stages trained, seed rule):
- the setting itself (Glimpse Clouds), scored with its placement controls
  (`glimpse_keras.placement`);
- the matched global model: the setting with stage 2 training the global model with the pose loss
  (`matched_global_overrides`), shared by the settings whose stage 1 and stage-2 budget agree;
- the random control: the setting with its glimpses at random places, drawn at the scales the
  attention run used (`random_control_overrides`).
A finished run is found again by its folder and not retrained, so an interrupted script resumes.
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
# What a second stage's budget is: a baseline given the same stage 2 matches these.
STAGE2_BUDGET_KEYS = ("epochs", "batch_size", "learning_rate", "freeze_backbone", "train_backbone_from",
                      "steps_per_epoch")


def quiet_console():
    """The console of `train.py` for the runs of a benchmark: framework logs
    off (GLIMPSE_VERBOSE=1 keeps them), TensorFlow imported without its
    load-time lines. Without it TensorFlow's C++ log prints, among others,
    grappler's "remapper failed" line once per stage whose backbone is partly
    frozen (see `glimpse_keras.console`)."""
    os.environ.setdefault("GLIMPSE_QUIET", "1")
    from glimpse_keras import console

    console.configure_logging()
    console.import_tensorflow_quietly()


def setting_config(base_path, overrides, seed):
    """The config of one setting and seed: the seed sets the generator's seed (`data.synthetic_seed`)
    and the training seed (`train.seed` = 1234 + seed)."""
    seeded = [f"data.synthetic_seed={seed}", f"train.seed={1234 + seed}"]
    return config_lib.load_config(base_path, list(overrides) + seeded)


def _digest(values):
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]


def stage1_key(config):
    """A digest of everything stage 1 depends on."""
    values = config.to_dict()
    key = {"data": values["data"], "stage": values["train"]["stages"][0]}
    key["model"] = {name: values["model"][name] for name in STAGE1_MODEL_KEYS}
    key["train"] = {name: values["train"][name] for name in ("seed", "precision")}
    return _digest(key)


def matched_global_overrides(config):
    """Overrides turning the last stage of `config` into the matched global model: the global model
    with the pose loss, trained with exactly that stage's budget."""
    return [f"train.stages.{len(config.train.stages) - 1}.variant=global_pose"]


def matched_global_key(config):
    """A digest of stage 1 and the last stage's budget: settings equal on it share one baseline."""
    last = config.to_dict()["train"]["stages"][-1]
    values = {"stage1": stage1_key(config), "budget": {name: last[name] for name in STAGE2_BUDGET_KEYS},
              "loss": config.to_dict()["loss"]["pose_weight"]}
    return _digest(values)


def random_control_overrides(attention_run_dir):
    """Overrides of the random-glimpse control of an attention run: random places, at the scales
    that run's glimpses used (its evaluation report's scale samples)."""
    return ["model.glimpse_type=random", f"model.glimpse_scales_from={attention_run_dir}"]


def _first_stage_only(config):
    config = copy.deepcopy(config)
    config.train.stages = config.train.stages[:1]
    return config


def _read(path):
    with open(path) as handle:
        return json.load(handle)


def _report_path(run_dir, stage_name):
    return os.path.join(run_dir, "evaluation", stage_name, "test_report.json")


def train_stage1(config, runs_dir, cache_root):
    """Trains (or finds) the stage 1 of `config` and scores it.

    Returns:
        (stage-1 run folder, its test report).
    """
    from glimpse_keras import evaluation, runs, training
    from glimpse_keras.experiment import Experiment

    stage1_dir = os.path.join(runs_dir, f"stage1_{stage1_key(config)}")
    stage1_name = config.train.stages[0].name
    report_path = _report_path(stage1_dir, stage1_name)
    if not os.path.exists(report_path):
        experiment = Experiment(_first_stage_only(config))
        outcome = training.train(experiment, stage1_dir, resume=runs.holds_run(stage1_dir), cache_root=cache_root)
        evaluation.evaluate_split(outcome["model"], experiment,
                                  output=report_path, progress=False, stage=stage1_name,
                                  weights=outcome["final_weights"])
    return stage1_dir, _read(report_path)


def train_later_stages(run_dir, config, stage1_dir, cache_root, placement_controls=False):
    """Trains (or finds) the stages after stage 1 of `config` in `run_dir`, starting from the shared
    stage 1, and scores the last one (with its placement controls when asked and it has glimpses).

    Returns:
        the last stage's test report.
    """
    from glimpse_keras import evaluation, runs, training
    from glimpse_keras.experiment import Experiment

    stage1_name = config.train.stages[0].name
    last = config.train.stages[-1].name
    report_path = _report_path(run_dir, last)
    if not os.path.exists(report_path):
        target = os.path.join(run_dir, stage1_name)
        experiment = Experiment(config)
        if not os.path.exists(target):
            experiment.resolve_glimpse_scales()
            shutil.copytree(os.path.join(stage1_dir, stage1_name), target)
            # The shared stage 1 makes this a run interrupted after stage 1:
            # resuming it trains the later stages only.
            config_lib.save_config(config, os.path.join(run_dir, runs.CONFIG))
        outcome = training.train(experiment, run_dir, resume=True, cache_root=cache_root)
        evaluation.evaluate_split(outcome["model"], experiment,
                                  output=report_path, progress=False, stage=last,
                                  weights=outcome["final_weights"], placement_controls=placement_controls)
    return _read(report_path)


def run_setting(name, config, runs_dir, cache_root, first_stage_only=False, controls=()):
    """Trains (or finds) one setting for one seed and scores it, with its controls.

    Args:
        name: the setting's name (its run folder is `<name>_seed<seed>`).
        config: its `ExperimentConfig` (see `setting_config`).
        runs_dir: where the runs go.
        cache_root: the generated and converted data's cache.
        first_stage_only: score stage 1 only (e.g. the global model without pose).
        controls: any of "matched_global" and "random": the baselines trained beside the setting.

    Returns:
        dict with "setting", "seed", "stage1" (test report of stage 1), "stage2" (of the last stage,
        or None), "attention" (its diagnostics, with "placement_controls", or None),
        "matched_global" and "random" (the controls' test reports, or None) and "minutes" spent.
    """
    started = time.time()
    seed = config.data.synthetic_seed
    stage1_dir, report1 = train_stage1(config, runs_dir, cache_root)
    result = {"setting": name, "seed": seed, "stage1": report1, "stage2": None, "attention": None,
              "matched_global": None, "random": None}
    if not first_stage_only and len(config.train.stages) > 1:
        run_dir = os.path.join(runs_dir, f"{name}_seed{seed}")
        report2 = train_later_stages(run_dir, config, stage1_dir, cache_root, placement_controls=True)
        result.update(stage2=report2, attention=report2["attention"])
        if "matched_global" in controls:
            matched = config_lib.config_from_dict(config_lib.apply_overrides(
                config.to_dict(), matched_global_overrides(config)))
            matched_dir = os.path.join(runs_dir, f"matched_global_{matched_global_key(config)}")
            result["matched_global"] = train_later_stages(matched_dir, matched, stage1_dir, cache_root)
        if "random" in controls and report2["attention"] is not None:
            random = config_lib.config_from_dict(config_lib.apply_overrides(
                config.to_dict(), random_control_overrides(run_dir)))
            random_dir = os.path.join(runs_dir, f"{name}_random_seed{seed}")
            result["random"] = train_later_stages(random_dir, random, stage1_dir, cache_root)
    result["minutes"] = (time.time() - started) / 60
    return result


def correct_by_video(report, video_ids=None):
    """0/1 per video of a test report, in the order of `video_ids` (default: the report's own)."""
    outcome = {video: int(prediction == label) for video, prediction, label
               in zip(report["video_ids"], report["predictions"], report["labels"])}
    return [outcome[video] for video in (video_ids or report["video_ids"])]


def mean_and_range(values):
    """'mean (min-max)' of percentages, or the value alone for one seed."""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{sum(values) / len(values):.1f} ({min(values):.1f}-{max(values):.1f})"
