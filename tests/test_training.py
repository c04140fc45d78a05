"""train.py / evaluate.py end to end on the tiny synthetic set: stages,
resume, checkpoint errors, non-finite losses and config errors."""

import json
import os
import types

import keras
import numpy as np
import pytest

import evaluate as evaluate_cli
import train as train_cli
from glimpse_keras import config as config_lib
from glimpse_keras import runs, training
from glimpse_keras.experiment import Experiment
from glimpse_keras.data import preparation

TINY_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "tiny.yaml")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A directory whose data_cache/ holds the converted tiny synthetic set."""
    root = tmp_path_factory.mktemp("training")
    os.environ["GLIMPSE_QUIET"] = "1"
    config = config_lib.load_config(TINY_CONFIG)
    preparation.prepare_data(config.data, str(root / "data_cache"))
    return root


def tiny_config(*overrides):
    return config_lib.load_config(TINY_CONFIG, list(overrides))


def test_smoke_two_stages_then_evaluate(workspace, capsys):
    run = str(workspace / "smoke")
    code = train_cli.main(["--config", TINY_CONFIG, "--output-dir", run, "--no-export"])
    assert code == 0
    report = json.load(open(os.path.join(run, "evaluation", "stage2", "test_report.json")))
    assert (report["stage"], report["variant"]) == ("stage2", "glimpse_clouds")
    assert report["weights"] == os.path.join(run, "stage2", "final.weights.h5")
    global_report = json.load(open(os.path.join(run, "evaluation", "stage1", "test_report.json")))
    assert (global_report["variant"], global_report["attention"]) == ("global_pose", None)
    assert global_report["videos"] == report["videos"]
    # The attention diagnostics of every test clip, printed at the end too.
    assert report["attention"]["clips"] == report["videos"] * 2  # 2 clips per video in tiny.yaml
    assert 0.0 <= report["attention"]["on_body_rate"] <= 1.0
    assert "glimpse centres within 0.15 of a visible joint" in capsys.readouterr().out
    # Every test video of the split is evaluated, none dropped.
    assert report["videos"] == report["split_size"] > 0
    assert 0.0 <= report["top1"] <= report["top5"] <= 1.0
    assert sum(sum(row) for row in report["confusion"]) == report["videos"]
    # The synthetic tiny preset corrupts exactly one AVI: it is listed.
    assert len(report["skipped_by_conversion"]) == 1
    for stage in ("stage1", "stage2"):
        state = json.load(open(os.path.join(run, stage, "state.json")))
        assert (state["epoch"], state["done"]) == (1, True)
        history = json.load(open(os.path.join(run, stage, "history.json")))
        assert all(np.isfinite(value) for value in history[-1].values())
    assert "attraction_loss" in history[-1] and "diversity_loss" in history[-1]
    assert os.listdir(os.path.join(run, "stage2", "logs"))

    # evaluate.py on the finished run gives the same numbers.
    output = str(workspace / "smoke_eval.json")
    assert evaluate_cli.main(["--run", run, "--output", output]) == 0
    again = json.load(open(output))
    assert again["videos"] == report["videos"]
    assert again["top1"] == pytest.approx(report["top1"])
    assert os.path.exists(again["confusion_png"])
    # --test-sampling random: the authors' random clips, recorded in the report.
    capsys.readouterr()
    randomised = str(workspace / "smoke_eval_random.json")
    assert evaluate_cli.main(["--run", run, "--output", randomised, "--test-sampling", "random"]) == 0
    assert "2 clips each, random frames and crops)" in capsys.readouterr().out
    randomised = json.load(open(randomised))
    assert (again["test_sampling"], randomised["test_sampling"]) == ("fixed", "random")
    assert randomised["video_ids"] == again["video_ids"]

    # evaluate.py --stage keeps one report per stage and says which weights it scored.
    stage2_report = open(os.path.join(run, "evaluation", "stage2", "test_report.json")).read()
    assert evaluate_cli.main(["--run", run, "--stage", "stage1"]) == 0
    assert open(os.path.join(run, "evaluation", "stage2", "test_report.json")).read() == stage2_report
    stage1 = json.load(open(os.path.join(run, "evaluation", "stage1", "test_report.json")))
    assert (stage1["stage"], stage1["weights"]) == ("stage1", os.path.join(run, "stage1", "final.weights.h5"))

    # An impossible --output is refused before the evaluation runs.
    blocker = workspace / "a_file"
    blocker.write_text("x")
    assert evaluate_cli.main(["--run", run, "--output", str(blocker / "report.json")]) == 1
    assert "a_file is a file, not a folder" in capsys.readouterr().err


class _Interrupt(keras.callbacks.Callback):
    """Simulates a kill at the start of epoch `at` (after the checkpoint of
    the previous epoch was written)."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt("killed")


def _stage_config():
    return tiny_config(
        "train.stages=[{name: only, variant: glimpse_clouds, epochs: 2, batch_size: 4, "
        "steps_per_epoch: 2, learning_rate: 0.001}]",
        "train.validate=false",
    )


@pytest.fixture(scope="module")
def stage_run(workspace):
    """A finished run of `_stage_config()` (one glimpse stage, 2 epochs),
    trained once for the tests that only read it or copy it."""
    run = str(workspace / "straight")
    training.train(Experiment(_stage_config()), run, cache_root=str(workspace / "data_cache"))
    return run


def _final_weights(path):
    model, _ = runs.load_run(path)
    return [np.asarray(w) for w in model.weights]


def test_resume_matches_uninterrupted_run(workspace, stage_run):
    config = _stage_config()
    cache = str(workspace / "data_cache")
    straight = stage_run

    resumed = str(workspace / "resumed")
    with pytest.raises(KeyboardInterrupt):
        training.train(Experiment(config), resumed, cache_root=cache, callbacks=[_Interrupt(at=1)])
    state = json.load(open(os.path.join(resumed, "only", "state.json")))
    assert (state["epoch"], state["done"]) == (1, False)
    assert not os.path.exists(os.path.join(resumed, "only", runs.FINAL))

    training.train(Experiment(config), resumed, resume=True, cache_root=cache)
    state = json.load(open(os.path.join(resumed, "only", "state.json")))
    assert (state["epoch"], state["done"]) == (2, True)
    history = json.load(open(os.path.join(resumed, "only", "history.json")))
    assert len(history) == 2
    for expected, got in zip(_final_weights(straight), _final_weights(resumed)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_corrupt_checkpoint_gives_a_clear_error(workspace):
    config = _stage_config()
    run = str(workspace / "corrupt")
    stage_dir = os.path.join(run, "only")
    os.makedirs(stage_dir)
    config_lib.save_config(config, os.path.join(run, "config.yaml"))
    with open(os.path.join(stage_dir, runs.CHECKPOINT), "wb") as handle:
        handle.write(b"not an hdf5 file")
    with open(os.path.join(stage_dir, runs.STATE), "w") as handle:
        json.dump({"epoch": 1, "done": False}, handle)
    with pytest.raises(training.TrainingError, match="checkpoint .*checkpoint.weights.h5 is unreadable"):
        training.train(Experiment(config), run, resume=True, cache_root=str(workspace / "data_cache"))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(workspace):
    config = tiny_config(
        "train.stages=[{name: only, variant: global_pose, epochs: 3, batch_size: 4, "
        "steps_per_epoch: 2, learning_rate: 0.001}]",
        "train.validate=false",
    )
    run = str(workspace / "nonfinite")

    class PoisonAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                for variable in self.model.pose_head.trainable_variables:
                    variable.assign(np.full(variable.shape, np.nan, "float32"))

    with pytest.raises(training.TrainingError, match="non-finite loss at epoch 2.*epoch 1"):
        training.train(Experiment(config), run, cache_root=str(workspace / "data_cache"),
                       callbacks=[PoisonAfterFirstEpoch()])
    state = json.load(open(os.path.join(run, "only", "state.json")))
    assert (state["epoch"], state["done"]) == (1, False)
    model = Experiment(config).build_stage_model(config.train.stages[0], training.make_strategy("default"))
    model.load_weights(os.path.join(run, "only", runs.CHECKPOINT))
    assert all(np.isfinite(np.asarray(w)).all() for w in model.weights)


def test_stage_two_starts_from_stage_one_backbone(workspace):
    config = tiny_config()
    stage1, stage2 = config.train.stages
    strategy = training.make_strategy("default")
    first = Experiment(config).build_stage_model(stage1, strategy)
    second = Experiment(config).build_stage_model(stage2, strategy)
    copied, fresh = training.transfer_weights(first, second)
    assert copied == ["backbone", "pose_head"]
    assert fresh == ["core", "worker_classifier"]
    for a, b in zip(first.backbone.weights, second.backbone.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "model.num_glimpses=0"], "model.num_glimpses: expected a value >= 1, got 0"),
        (["--set", "model.nonsense=1"], "unknown key model.nonsense"),
        (["--set", "train.precision=float8"], "train.precision: expected one of"),
    ],
)
def test_cli_config_errors_name_key_and_value(argv, message, capsys, tmp_path):
    code = train_cli.main(["--config", TINY_CONFIG, "--output-dir", str(tmp_path)] + argv)
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_missing_data_dir_explains_what_is_expected(capsys, tmp_path):
    code = train_cli.main(["--dataset", "ntu", "--data-dir", str(tmp_path / "nothing"),
                           "--config", TINY_CONFIG, "--output-dir", str(tmp_path / "run")])
    assert code == 1
    err = capsys.readouterr().err
    assert "nothing" in err and "nturgb+d_rgb" in err and "python train.py" in err


def test_evaluate_cli_on_missing_run(capsys, tmp_path):
    assert evaluate_cli.main(["--run", str(tmp_path)]) == 1
    assert "is not a training run" in capsys.readouterr().err


def test_evaluation_refuses_a_repeated_video_even_when_the_count_matches(monkeypatch):
    from glimpse_keras import evaluation
    from glimpse_keras.experiment import Experiment

    # Three videos read for a three-video split, but "b" twice and "c" never.
    logits = np.eye(3, dtype=np.float32)
    monkeypatch.setattr(Experiment, "count_videos", lambda self, split: 3)
    monkeypatch.setattr(Experiment, "test_dataset", lambda self, split, clips: None)
    monkeypatch.setattr(
        evaluation, "collect_logits",
        lambda *args, **kwargs: (logits, np.array([0, 1, 1]), ["a", "b", "b"]),
    )
    experiment = Experiment(tiny_config("model.num_classes=3"), "unused")
    model = types.SimpleNamespace(is_global=True, variant="global")
    with pytest.raises(evaluation.EvaluationError, match=r"more than once \(e.g. \['b'\]\)"):
        evaluation.evaluate_split(model, experiment, progress=False)
    monkeypatch.setattr(
        evaluation, "collect_logits",
        lambda *args, **kwargs: (logits, np.array([0, 1, 2]), ["a", "b", "c"]),
    )
    report = evaluation.evaluate_split(model, experiment, progress=False)
    assert (report["videos"], report["top1"], report["video_ids"]) == (3, 1.0, ["a", "b", "c"])


def test_mirrored_strategy_trains(workspace):
    config = tiny_config(
        "train.strategy=mirrored",
        "train.validate=false",
        "train.stages=[{name: only, variant: glimpse_clouds, epochs: 1, batch_size: 4, "
        "steps_per_epoch: 1, learning_rate: 0.001}]",
    )
    run = str(workspace / "mirrored")
    outcome = training.train(Experiment(config), run, cache_root=str(workspace / "data_cache"))
    state = json.load(open(os.path.join(run, "only", "state.json")))
    assert (state["epoch"], state["done"]) == (1, True)
    assert outcome["model"].distribute_strategy.num_replicas_in_sync >= 1


def test_multi_worker_strategy_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(config_lib.ConfigError, match="TF_CONFIG"):
        training.make_strategy("multi_worker")


def test_first_stage_starts_from_inflated_imagenet_weights(workspace, tmp_path):
    from tests.models.test_inflation import _torchvision_style_2d

    _, state_dict = _torchvision_style_2d((1, 1, 1, 1), (8, 16, 32, 64), 8)
    path = str(tmp_path / "imagenet.npz")
    np.savez(path, **state_dict)
    config = tiny_config(
        f"model.pretrained_weights={path}",
        "train.validate=false",
        "train.stages=[{name: only, variant: global_pose, epochs: 1, batch_size: 4, "
        "steps_per_epoch: 1, learning_rate: 0.0}]",
    )
    run = str(workspace / "pretrained")
    model = training.train(Experiment(config), run, cache_root=str(workspace / "data_cache"))["model"]
    kernel = np.asarray(model.backbone.get_layer("res3_block1_conv2").kernel)
    np.testing.assert_array_equal(kernel[1], np.transpose(state_dict["layer2.0.conv2.weight"], (2, 3, 1, 0)))
    np.testing.assert_array_equal(kernel[[0, 2]], 0)

    broken = tiny_config(f"model.pretrained_weights={tmp_path / 'nope.npz'}", "train.validate=false")
    with pytest.raises(training.TrainingError, match="model.pretrained_weights: .*nope.npz.*does not exist"):
        training.train(Experiment(broken), str(workspace / "broken"), cache_root=str(workspace / "data_cache"))


def test_resume_refuses_a_changed_model_but_allows_more_epochs(workspace, stage_run):
    import shutil

    cache = str(workspace / "data_cache")
    run = str(workspace / "changed")
    shutil.copytree(stage_run, run)  # a finished 2-epoch run, trained once for the module
    other = tiny_config(
        "model.num_glimpses=2",
        "train.stages=[{name: only, variant: glimpse_clouds, epochs: 2, batch_size: 4, "
        "steps_per_epoch: 2, learning_rate: 0.001}]",
        "train.validate=false",
    )
    with pytest.raises(training.TrainingError, match="model.num_glimpses: 3 -> 2"):
        training.train(Experiment(other), run, resume=True, cache_root=cache)
    longer = tiny_config(
        "train.stages=[{name: only, variant: glimpse_clouds, epochs: 3, batch_size: 4, "
        "steps_per_epoch: 2, learning_rate: 0.001}]",
        "train.validate=false",
    )
    training.train(Experiment(longer), run, resume=True, cache_root=cache)
    state = json.load(open(os.path.join(run, "only", "state.json")))
    assert (state["epoch"], state["done"]) == (3, True)


@pytest.mark.slow
def test_nucla_fine_tunes_an_ntu_run_with_new_ten_way_heads(workspace, stage_run, tmp_path):
    import subprocess
    import sys

    cache = str(workspace / "data_cache")
    ntu_run = stage_run  # only read

    raw = str(tmp_path / "nucla_raw")
    subprocess.run([sys.executable, "-m", "glimpse_keras.data.synthetic", "--format", "nucla",
                    "--preset", "tiny", "--output", raw, "--quiet"], check=True)
    config = tiny_config(
        "data.dataset=nucla",
        f"data.data_dir={raw}",
        "model.num_classes=10",
        "train.validate=false",
        "train.stages=[{name: heads, variant: glimpse_clouds, epochs: 1, batch_size: 4, "
        "steps_per_epoch: 1, learning_rate: 0.001, freeze_backbone: true}]",
    )
    source, _ = runs.load_run(ntu_run)
    model = training.train(Experiment(config), str(workspace / "nucla"), init_from=ntu_run, cache_root=cache)["model"]
    # Backbone, pose head and glimpse core come from the NTU run; the 10-way
    # worker classifier is new.
    for a, b in zip(source.backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert model.worker_classifier.weights[0].shape[-1] == 10
    assert source.worker_classifier.weights[0].shape[-1] == 60


# === Runs are never damaged; files are safe (issue 12) ===


def _one_stage(epochs=1, learning_rate=0.001, batch_size=4, variant="global_pose"):
    return tiny_config(
        f"train.stages=[{{name: only, variant: {variant}, epochs: {epochs}, batch_size: {batch_size}, "
        f"steps_per_epoch: 1, learning_rate: {learning_rate}}}]",
        "train.validate=false",
    )


def _write_yaml(config, path):
    config_lib.save_config(config, str(path))
    return str(path)


@pytest.fixture(scope="module")
def finished_run(workspace):
    """A finished one-stage run (global model, 1 epoch)."""
    run = str(workspace / "finished")
    training.train(Experiment(_one_stage()), run, cache_root=str(workspace / "data_cache"))
    return run


def _snapshot(run):
    return {
        os.path.relpath(os.path.join(folder, name), run): open(os.path.join(folder, name), "rb").read()
        for folder, _, names in os.walk(run)
        for name in names
    }


def test_train_refuses_a_folder_holding_a_run(finished_run, workspace, capsys, tmp_path):
    before = _snapshot(finished_run)
    config = _write_yaml(_one_stage(), tmp_path / "same.yaml")
    code = train_cli.main(["--config", config, "--output-dir", finished_run, "--no-export"])
    assert code == 1
    assert "already holds a run" in capsys.readouterr().err
    assert _snapshot(finished_run) == before


def test_a_failed_job_leaves_the_run_untouched(finished_run, capsys, tmp_path):
    before = _snapshot(finished_run)
    config = _write_yaml(_one_stage(), tmp_path / "same.yaml")
    for flag in ("--overwrite", "--resume"):
        code = train_cli.main(["--dataset", "ntu", "--data-dir", str(tmp_path / "nothing"), "--config", config,
                               "--output-dir", finished_run, flag, "--no-export"])
        assert code == 1
        assert "nothing" in capsys.readouterr().err
        assert _snapshot(finished_run) == before


def test_resume_refuses_a_folder_without_a_run(capsys, tmp_path):
    code = train_cli.main(["--config", TINY_CONFIG, "--output-dir", str(tmp_path / "typo"), "--resume"])
    assert code == 1
    assert "holds no run" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "typo")


def test_config_that_is_a_folder_gets_a_clear_error(finished_run, capsys):
    code = train_cli.main(["--config", finished_run, "--output-dir", finished_run + "_other"])
    assert code == 2
    err = capsys.readouterr().err
    assert "is a folder, not a YAML file" in err and "config.yaml" in err


def test_resume_applies_and_records_a_new_learning_rate(workspace):
    cache = str(workspace / "data_cache")
    run = str(workspace / "new_rate")
    with pytest.raises(KeyboardInterrupt):
        training.train(Experiment(_one_stage(epochs=2)), run, cache_root=cache, callbacks=[_Interrupt(at=1)])

    class Rate(keras.callbacks.Callback):
        rates = []

        def on_epoch_begin(self, epoch, logs=None):
            self.rates.append(float(np.asarray(self.model.optimizer.learning_rate)))

    model = training.train(Experiment(_one_stage(epochs=2, learning_rate=0.0005)), run, resume=True, cache_root=cache,
                           callbacks=[Rate()])["model"]
    assert Rate.rates == [pytest.approx(0.0005)]
    assert float(np.asarray(model.optimizer.learning_rate)) == pytest.approx(0.0005)
    sessions = json.load(open(os.path.join(run, runs.ENVIRONMENT)))
    assert sessions[-1]["config_changes"] == ["train.stages.0.learning_rate: 0.001 -> 0.0005"]
    assert config_lib.load_config(os.path.join(run, "config.yaml")).train.stages[0].learning_rate == 0.0005


def test_resume_refuses_other_optimizer_settings_naming_the_key(finished_run, workspace):
    with pytest.raises(training.TrainingError, match=r"train.stages.0.batch_size: 4 -> 2"):
        training.train(Experiment(_one_stage(batch_size=2)), finished_run, resume=True,
                       cache_root=str(workspace / "data_cache"))


def test_nan_in_the_first_epoch_names_no_missing_checkpoint(workspace):
    run = str(workspace / "nan_first")

    class PoisonAtStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            for variable in self.model.pose_head.trainable_variables:
                variable.assign(np.full(variable.shape, np.nan, "float32"))

    with pytest.raises(training.TrainingError) as caught:
        training.train(Experiment(_one_stage(epochs=2)), run, cache_root=str(workspace / "data_cache"),
                       callbacks=[PoisonAtStart()])
    message = str(caught.value)
    assert "No checkpoint of stage only was written" in message
    assert "last good checkpoint" not in message
    assert not os.path.exists(os.path.join(run, "only", runs.CHECKPOINT))


def test_full_disk_gives_a_clear_error_and_keeps_the_last_checkpoint(workspace, monkeypatch, capsys, tmp_path):
    import errno

    from glimpse_keras import io_utils

    saves = []
    original = keras.Model.save_weights

    def fill_disk(self, path, *args, **kwargs):
        saves.append(path)
        if len(saves) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", fill_disk)
    run = str(workspace / "full_disk")
    config = _write_yaml(_one_stage(epochs=3), tmp_path / "three.yaml")
    code = train_cli.main(["--config", config, "--output-dir", run, "--no-export", "--no-evaluate"])
    assert code == 1
    err = capsys.readouterr().err
    assert "checkpoint.weights.h5: No space left on device" in err
    state = json.load(open(os.path.join(run, "only", "state.json")))
    assert (state["epoch"], state["done"]) == (1, False)
    checkpoint = os.path.join(run, "only", runs.CHECKPOINT)
    assert io_utils.verify_checksum(checkpoint) is True
    assert not [name for name in os.listdir(os.path.join(run, "only")) if name.startswith(".tmp-")]


def test_flipped_bytes_in_weights_are_refused(finished_run, workspace, capsys):
    import shutil

    run = str(workspace / "flipped")
    shutil.copytree(finished_run, run)
    weights = os.path.join(run, "only", runs.FINAL)
    data = bytearray(open(weights, "rb").read())
    data[len(data) // 2] ^= 0x10
    open(weights, "wb").write(bytes(data))
    with pytest.raises(training.TrainingError, match=r"final.weights.h5 is damaged: its sha256 is"):
        runs.load_run(run)
    assert evaluate_cli.main(["--run", run]) == 1
    assert "is damaged" in capsys.readouterr().err


def test_run_files_get_umask_permissions_and_stale_temporaries_go(finished_run, workspace):
    import shutil
    import stat

    run = str(workspace / "perms")
    shutil.copytree(finished_run, run)
    stale = os.path.join(run, "only", ".tmp-killed-checkpoint.weights.h5")
    open(stale, "wb").write(b"half a file")
    previous = os.umask(0o022)
    try:
        training.train(Experiment(_one_stage(epochs=2)), run, resume=True, cache_root=str(workspace / "data_cache"))
    finally:
        os.umask(previous)
    assert not os.path.exists(stale)
    for name in (runs.CHECKPOINT, runs.FINAL, runs.STATE):
        assert stat.S_IMODE(os.stat(os.path.join(run, "only", name)).st_mode) == 0o644, name
    assert stat.S_IMODE(os.stat(os.path.join(run, "config.yaml")).st_mode) == 0o644


def test_overwrite_replaces_a_run(finished_run, workspace, tmp_path):
    import shutil

    run = str(workspace / "overwritten")
    shutil.copytree(finished_run, run)
    os.makedirs(os.path.join(run, "oldstage"))
    other = tiny_config(
        "train.stages=[{name: again, variant: global_pose, epochs: 1, batch_size: 4, "
        "steps_per_epoch: 1, learning_rate: 0.001}]",
        "train.validate=false",
    )
    training.train(Experiment(other), run, overwrite=True, cache_root=str(workspace / "data_cache"))
    assert not os.path.exists(os.path.join(run, "only"))  # the old run's stage
    assert os.path.exists(os.path.join(run, "oldstage"))  # not the run's: kept
    assert os.path.exists(os.path.join(run, "again", runs.FINAL))


def test_config_keys_reach_the_core_under_their_own_names():
    import dataclasses
    import inspect

    from glimpse_keras import experiment as experiment_lib
    from glimpse_keras.layers import GlimpseCloudsCore, MemorySoftAssignment

    # One vocabulary: each model switch is a config key model.<name> and an
    # argument of the part that uses it, with one default.
    core_keys = ("detach_location", "share_first_worker_state", "raw_location_embedding", "scale_bias",
                 "max_scale", "zoomer_reset_each_frame", "locator", "locator_keypoints", "fixed_glimpse_scale",
                 "num_glimpses", "num_workers", "glimpse_type")
    memory_keys = ("assign_axis", "distance", "time_decay", "memory_capacity")
    model_keys = {field.name: field.default for field in dataclasses.fields(config_lib.ModelConfig)}
    for part, keys in ((GlimpseCloudsCore, core_keys), (MemorySoftAssignment, memory_keys)):
        parameters = inspect.signature(part).parameters
        for name in keys:
            default = parameters[name].default
            assert default is inspect.Parameter.empty or default == model_keys[name], name
    config = tiny_config(
        "model.time_decay=code", "model.raw_location_embedding=true", "model.memory_capacity=2",
        "model.assign_axis=workers", "model.max_scale=0.5", "model.locator=spatial", "model.num_glimpses=2",
    )
    model = experiment_lib.Experiment(config).build_model("glimpse_clouds")
    assert model.core.memory.time_decay == "code" and model.core.memory.name == "memory"
    assert model.core.raw_location_embedding and model.core.fusion.raw_location_embedding
    assert model.core.memory.memory_capacity == 2 and model.core.memory.assign_axis == "workers"
    assert model.core.locator.max_scale == 0.5 and model.core.locator_type == "spatial"
    assert (model.num_glimpses, model.core.num_glimpses, model.core.memory.num_glimpses) == (2, 2, 2)
    for name in core_keys:
        assert getattr(model.core, "locator_type" if name == "locator" else name) == getattr(config.model, name), name
    for name in memory_keys:
        assert getattr(model.core.memory, name) == getattr(config.model, name), name
    gru = experiment_lib.Experiment(config).build_model("glimpse_gru")
    assert gru.core.aggregation == "gru" and gru.core.memory is None and gru.core.raw_location_embedding
    stage1 = experiment_lib.Experiment(config).build_model("global_pose")
    assert stage1.core is None and (stage1.num_glimpses, stage1.num_workers) == (2, config.model.num_workers)
    hands = experiment_lib.Experiment(tiny_config("loss.attraction_joints=hands")).build_model("glimpse_clouds")
    assert hands.attraction_joints == "hands" and hands.get_config()["attraction_joints"] == "hands"
    assert hands._attraction_joint_slots == (6, 7, 10, 11, 21, 22, 23, 24)
    # The model's attraction term uses the hands only: a glimpse on the head costs
    # its squared distance to the nearest hand joint.
    locations = np.zeros((1, 1, 3, 4), "float32")
    locations[..., :2] = [0.0, -0.8]
    pose = np.zeros((1, 1, 2, 25, 2), "float32")
    pose[0, 0, 0, 3] = [0.0, -0.8]
    pose[0, 0, 0, [6, 7, 10, 11, 21, 22, 23, 24]] = [0.5, 0.2]
    mask = np.zeros((1, 1, 2, 25), "float32")
    mask[:, :, 0] = 1.0  # one person
    outputs = {"logits": np.zeros((1, model.num_classes), "float32"), "pose": pose, "locations": locations}
    targets = {"label": np.zeros((1,), "int32"), "pose": pose, "pose_mask": mask}
    every = model.compute_loss_terms(targets, outputs)["attraction_loss"]
    to_hands = hands.compute_loss_terms(targets, outputs)["attraction_loss"]
    assert float(every) == 0.0
    np.testing.assert_allclose(float(to_hands), 3 * (0.5**2 + 1.0**2), rtol=1e-6)
