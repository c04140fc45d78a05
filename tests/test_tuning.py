"""Tests of the keras-tuner search (glimpse_keras/tuning/, tune.py).

Default tests check the search space, the hyperparameter -> config -> model
mapping, the results table and the resume checks without training. The
searches that train (about 30 s per trial on 2 cores) are marked slow.
"""

import csv
import json
import math
import os

import keras_tuner
import numpy as np
import pytest

import tune
from glimpse_keras import config as config_lib
from glimpse_keras import runs, training, tuning
from glimpse_keras.experiment import Experiment


def tiny_config(**data):
    """Two stages (global pose, then glimpses); only the last one is tuned."""
    values = {
        "data": {"dataset": "synthetic", "synthetic_preset": "tiny", "num_frames": 4,
                 "image_size": 64, "stored_size": 72, "shuffle_buffer": 8, **data},
        "model": {"preset": "tiny"},
        "train": {"stages": [
            {"name": "stage1", "variant": "global_pose", "epochs": 1, "batch_size": 2,
             "learning_rate": 1e-4},
            {"name": "stage2", "variant": "glimpse_clouds", "epochs": 1, "batch_size": 2,
             "learning_rate": 1e-4, "steps_per_epoch": 2, "freeze_backbone": True},
        ]},
    }
    return config_lib.config_from_dict(values)


VALUES = {"num_glimpses": 2, "num_workers": 1, "learning_rate": 3e-4,
          "pose_weight": 0.5, "diversity_weight": 2.0, "attraction_weight": 0.25}


# === Search space ===


def test_default_space_covers_glimpses_workers_rate_and_weights():
    space = {spec.name: spec for spec in tuning.load_search_space()}
    assert set(space) == set(VALUES)
    assert (space["num_glimpses"].kind, space["num_glimpses"].min_value,
            space["num_glimpses"].max_value) == ("int", 1, 4)
    assert space["learning_rate"].sampling == "log"
    assert space["learning_rate"].target == "stage.learning_rate"


def test_space_overrides_merge_into_defaults(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "num_workers: {max: 6}\n"
        "batch_size: {type: choice, values: [2, 4], target: stage.batch_size}\n"
        "diversity_weight: null\n"
    )
    space = {spec.name: spec for spec in tuning.load_search_space(
        str(path), ["num_glimpses.max=5", "learning_rate.min=1e-6", "pose_weight=null"])}
    assert set(space) == {"num_glimpses", "num_workers", "learning_rate",
                          "attraction_weight", "batch_size"}
    assert (space["num_workers"].min_value, space["num_workers"].max_value) == (1, 6)
    assert space["num_glimpses"].max_value == 5
    # '1e-6' has no dot, which PyYAML reads as a string; it must be a number.
    assert space["learning_rate"].min_value == pytest.approx(1e-6)
    assert space["batch_size"].values == (2, 4)


@pytest.mark.parametrize(
    "override, message",
    [
        ("num_glimpses.min=5", "min 5 is larger than max 4"),
        ("learning_rate.min=0", "log sampling needs min > 0"),
        ("num_workers.max=2.5", "integer bounds"),
        ("num_workers.type=grid", "type must be one of"),
        ("num_workers.colour=3", "unknown key 'colour'"),
        ("new_thing.type=int", "target must be a dotted config path"),
        ("num_glimpses", "expected name.key=value"),
    ],
)
def test_bad_space_entries_are_named(override, message):
    with pytest.raises(tuning.SearchSpaceError, match=message):
        tuning.load_search_space(overrides=[override])


def test_space_that_does_not_fit_the_config_is_rejected():
    config = tiny_config()
    space = tuning.load_search_space(overrides=["num_glimpses.min=0"])
    with pytest.raises(tuning.SearchSpaceError, match=r"value 0 is not valid for model.num_glimpses"):
        tuning.check_search_space(config, space)
    bad_target = tuning.load_search_space(overrides=["x.type=int", "x.min=1", "x.max=2",
                                                     "x.target=model.num_glimmers"])
    with pytest.raises(tuning.SearchSpaceError, match="no field model.num_glimmers"):
        tuning.check_search_space(config, bad_target)
    global_last = config_lib.config_from_dict(
        {**config.to_dict(), "train": {"stages": [{"name": "only", "variant": "global"}]}}
    )
    with pytest.raises(tuning.SearchSpaceError, match="'num_glimpses'.*variant 'global'"):
        tuning.check_search_space(global_last, tuning.load_search_space())


# === Hyperparameters -> config -> model ===


def test_values_land_in_the_config_fields_of_the_tuned_stage():
    base = tiny_config()
    config = tuning.apply_hyperparameters(base, tuning.load_search_space(), VALUES)
    assert (config.model.num_glimpses, config.model.num_workers) == (2, 1)
    assert config.train.stages[1].learning_rate == 3e-4
    assert config.train.stages[0].learning_rate == 1e-4  # earlier stage untouched
    assert (config.loss.pose_weight, config.loss.diversity_weight,
            config.loss.attraction_weight) == (0.5, 2.0, 0.25)
    # The base config is not modified.
    assert (base.model.num_glimpses, base.loss.pose_weight) == (3, 0.1)
    with pytest.raises(config_lib.ConfigError, match="model.num_workers"):
        tuning.apply_hyperparameters(base, tuning.load_search_space(), {"num_workers": 0})


def fixed_values():
    """HyperParameters holding VALUES as fixed values."""
    hp = keras_tuner.HyperParameters()
    for name, value in VALUES.items():
        hp.Fixed(name, value)
    return hp


@pytest.fixture
def random_clip_data(monkeypatch):
    """Trial datasets of two random tiny clips (no converted data needed)."""
    import tensorflow as tf

    def datasets(self, config):
        video = np.random.default_rng(0).integers(0, 256, (2, 4, 64, 64, 3), dtype="uint8")
        train = tf.data.Dataset.from_tensors(({"video": video}, {"label": np.zeros(2, "int32")}))
        return train.repeat(2), None

    monkeypatch.setattr(tuning.GlimpseHyperModel, "datasets", datasets)
    # The stage runner reads its clips through the experiment.
    from glimpse_keras.experiment import Experiment

    monkeypatch.setattr(Experiment, "train_dataset", lambda self, stage, seed: datasets(None, None)[0])
    monkeypatch.setattr(Experiment, "validation_dataset", lambda self, batch_size: None)
    monkeypatch.setattr(Experiment, "count_videos", lambda self, split: 4)
    monkeypatch.setattr(Experiment, "validation_holdout", lambda self: frozenset({"held_out_video"}))
    # No stage-1 run is trained on these clips (see the tests of `initial_run`).
    monkeypatch.setattr(tuning.search, "initial_run", lambda *args, **kwargs: None)


def test_hypermodel_initialises_a_fresh_memory_distance_from_the_data(random_clip_data):
    import tensorflow as tf

    from glimpse_keras import training

    hypermodel = tuning.GlimpseHyperModel(tiny_config(), converted_dir="unused")
    hp = fixed_values()
    model = hypermodel.build(hp)
    # The same model built and adapted by hand, as training.run_stage does.
    config = hypermodel.trial_config(hp)
    training.set_seed(training.stage_seed(config, config.train.stages[-1]))
    expected = Experiment(config).build_stage_model(config.train.stages[-1], tf.distribute.get_strategy())
    fresh = np.asarray(expected.core.memory.metric_kernel).copy()
    assert training.adapt_memory_metric(expected, hypermodel.datasets(config)[0]) > 0
    adapted = np.asarray(model.core.memory.metric_kernel)
    np.testing.assert_allclose(adapted, np.asarray(expected.core.memory.metric_kernel), rtol=1e-5)
    assert not np.allclose(adapted, fresh)


def test_hypermodel_builds_the_model_the_values_describe(random_clip_data):
    hypermodel = tuning.GlimpseHyperModel(tiny_config(), converted_dir="unused")
    hp = fixed_values()
    model = hypermodel.build(hp)
    assert (model.num_glimpses, model.num_workers, model.variant) == (2, 1, "glimpse_clouds")
    assert (model.pose_loss_weight, model.diversity_loss_weight,
            model.attraction_loss_weight) == (0.5, 2.0, 0.25)
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-4)
    assert model.backbone.trainable is False  # stage2 freezes the backbone
    outputs = model(np.zeros((1, 4, 64, 64, 3), "uint8"), training=False)
    assert tuple(outputs["locations"].shape) == (1, 4, 2, 4)
    assert tuple(outputs["assignments"].shape) == (1, 4, 1, 2)
    assert tuple(outputs["logits"].shape) == (1, 60)


def test_hypermodel_declares_the_space_with_its_bounds():
    hypermodel = tuning.GlimpseHyperModel(
        tiny_config(), "unused", tuning.load_search_space(overrides=["num_workers.max=6"])
    )
    hp = keras_tuner.HyperParameters()
    values = hypermodel.declare(hp)
    declared = {item.name: item for item in hp.space}
    assert set(declared) == set(VALUES)
    assert (declared["num_workers"].min_value, declared["num_workers"].max_value) == (1, 6)
    assert declared["learning_rate"].sampling == "log"
    # Before a tuner draws values, each takes its range's default (the minimum).
    assert values["num_workers"] == 1
    assert values["learning_rate"] == pytest.approx(1e-5)


def test_init_from_copies_the_finished_runs_backbone_into_every_trial(tmp_path, random_clip_data):
    import tensorflow as tf

    from glimpse_keras import training

    # A finished one-stage run (what train.py leaves behind), random weights.
    run_config = tiny_config()
    run_config.train.stages = run_config.train.stages[:1]
    training.set_seed(99)
    source = Experiment(run_config).build_stage_model(run_config.train.stages[0],
                                        tf.distribute.get_strategy(), compile_model=False)
    config_lib.save_config(run_config, str(tmp_path / "config.yaml"))
    os.makedirs(tmp_path / "stage1")
    source.save_weights(str(tmp_path / "stage1" / runs.FINAL))

    hypermodel = tuning.GlimpseHyperModel(tiny_config(), "unused", init_from=str(tmp_path))
    hp = fixed_values()
    model = hypermodel.build(hp)
    for attribute in ("backbone", "pose_head"):
        copied = getattr(model, attribute).get_weights()
        expected = getattr(source, attribute).get_weights()
        assert len(copied) == len(expected) > 0
        for got, want in zip(copied, expected):
            np.testing.assert_array_equal(got, want)


def test_init_from_without_a_finished_run_fails_before_any_trial(tmp_path):
    from glimpse_keras import training

    # An exception inside `build` would become failed trials and keras-tuner's
    # vague "too many failures"; the missing file must be named up front.
    with pytest.raises(training.TrainingError, match="config.yaml is missing"):
        tuning.GlimpseHyperModel(tiny_config(), "unused", init_from=str(tmp_path))


# === Results and resume checks (no training) ===


def _finished_search(tmp_path, scores, objective="val_accuracy"):
    """A real RandomSearch oracle whose trials end with the given scores."""
    hypermodel = tuning.GlimpseHyperModel(tiny_config(), "unused")
    tuner = tuning.make_tuner("random", hypermodel, objective=objective,
                              max_trials=len(scores), directory=str(tmp_path), seed=7)
    hp = keras_tuner.HyperParameters()
    hypermodel.declare(hp)
    tuner.oracle.update_space(hp)
    for score in scores:
        trial = tuner.oracle.create_trial("tuner0")
        if score is None:
            trial.status = keras_tuner.engine.trial.TrialStatus.FAILED
        else:
            tuner.oracle.update_trial(trial.trial_id, {objective: score}, step=0)
            trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
        tuner.oracle.end_trial(trial)
    return tuner, hypermodel


def _read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_results_rank_trials_and_best_config_holds_the_best_values(tmp_path, random_clip_data):
    tuner, hypermodel = _finished_search(tmp_path, [0.25, 0.75, None, 0.5])
    summary = tuning.write_results(tuner, hypermodel.space, hypermodel.base_config,
                                   str(tmp_path), "val_accuracy")
    rows = _read_csv(summary["results_csv"])
    assert [row["trial"] for row in rows] == ["1", "3", "0", "2"]
    assert [row["status"] for row in rows] == ["COMPLETED"] * 3 + ["FAILED"]
    assert [row["val_accuracy"] for row in rows] == ["0.75", "0.5", "0.25", ""]
    best_trial = tuner.oracle.get_trial("1")
    for name, value in best_trial.hyperparameters.values.items():
        assert float(rows[0][name]) == pytest.approx(value, rel=1e-12)
    assert summary["best_trial"] == "1" and summary["best_score"] == 0.75

    loaded = config_lib.load_config(summary["best_config"])
    drawn = best_trial.hyperparameters.values
    assert loaded.model.num_glimpses == drawn["num_glimpses"]
    assert loaded.model.num_workers == drawn["num_workers"]
    assert loaded.train.stages[1].learning_rate == pytest.approx(drawn["learning_rate"])
    assert loaded.train.stages[0].learning_rate == 1e-4
    assert loaded.loss.attraction_weight == pytest.approx(drawn["attraction_weight"])
    with open(summary["best_hyperparameters"]) as handle:
        assert json.load(handle)["score"] == 0.75

    markdown = open(summary["results_md"]).read().splitlines()
    assert markdown[2].startswith("| trial | status | num_glimpses |")
    assert markdown[4].startswith("| 1 | COMPLETED |")
    assert len(markdown) == 4 + 4


def test_a_minimised_objective_ranks_the_lowest_first(tmp_path, random_clip_data):
    tuner, hypermodel = _finished_search(tmp_path, [2.0, 1.5, 3.0], objective="val_loss")
    summary = tuning.write_results(tuner, hypermodel.space, hypermodel.base_config,
                                   str(tmp_path), "val_loss")
    assert [row["trial"] for row in _read_csv(summary["results_csv"])] == ["1", "0", "2"]
    assert summary["best_score"] == 1.5


def test_no_scored_trial_writes_no_best_config(tmp_path, random_clip_data):
    tuner, hypermodel = _finished_search(tmp_path, [None])
    summary = tuning.write_results(tuner, hypermodel.space, hypermodel.base_config,
                                   str(tmp_path), "val_accuracy")
    assert summary["best_trial"] is None
    assert not os.path.exists(tmp_path / "best_config.yaml")


def test_resuming_with_other_settings_is_refused(tmp_path, random_clip_data):
    config = tiny_config()
    space = tuning.load_search_space()
    settings = tuning.search_settings("random", "val_accuracy", space, config)
    tuning.check_or_save_settings(str(tmp_path), settings)
    tuning.check_or_save_settings(str(tmp_path), settings)  # same settings: resumes
    wider = tuning.load_search_space(overrides=["num_glimpses.max=6"])
    with pytest.raises(tuning.SearchSpaceError, match="different space"):
        tuning.check_or_save_settings(
            str(tmp_path), tuning.search_settings("random", "val_accuracy", wider, config))
    with pytest.raises(tuning.SearchSpaceError, match="different tuner"):
        tuning.check_or_save_settings(
            str(tmp_path), tuning.search_settings("hyperband", "val_accuracy", space, config))


def test_tuner_arguments_are_checked(tmp_path, random_clip_data):
    hypermodel = tuning.GlimpseHyperModel(tiny_config(), "unused")
    with pytest.raises(tuning.SearchSpaceError, match="tuner: expected one of"):
        tuning.make_tuner("grid", hypermodel, directory=str(tmp_path))
    with pytest.raises(tuning.SearchSpaceError, match="objective"):
        tuning.make_tuner("random", hypermodel, objective="accuracy", directory=str(tmp_path))
    with pytest.raises(tuning.SearchSpaceError, match="max_epochs must be >= 2"):
        tuning.make_tuner("hyperband", hypermodel, directory=str(tmp_path))
    hyperband = tuning.make_tuner("hyperband", hypermodel, directory=str(tmp_path / "hb"),
                                  hyperband_max_epochs=3)
    assert hyperband.oracle.max_epochs == 3


def test_bayesian_tuner_names_its_missing_dependency(tmp_path, random_clip_data):
    hypermodel = tuning.GlimpseHyperModel(tiny_config(), "unused")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        with pytest.raises(tuning.TunerDependencyError, match="pip install scikit-learn"):
            tuning.make_tuner("bayesian", hypermodel, directory=str(tmp_path))
    else:
        tuner = tuning.make_tuner("bayesian", hypermodel, directory=str(tmp_path))
        assert isinstance(tuner, keras_tuner.BayesianOptimization)


def test_cli_reports_a_bad_space_with_exit_code_2(tmp_path, capsys):
    config_path = tmp_path / "tiny.yaml"
    config_lib.save_config(tiny_config(), str(config_path))
    code = tune.main(["--config", str(config_path), "--space-set", "num_glimpses.min=0",
                      "--output-dir", str(tmp_path / "out")])
    assert code == 2
    assert "model.num_glimpses" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")


# === The search loop with training replaced by a score formula ===


def _converted_config(tmp_path):
    """A config whose data_dir passes as converted shards (never read here)."""
    os.makedirs(tmp_path / "converted" / "splits", exist_ok=True)
    return tiny_config(dataset="ntu", data_dir=str(tmp_path / "converted"))


def _formula_fit(self, hp, model, *args, **kwargs):
    # keras-tuner accepts a metrics dict from fit; the score identifies the trial's G and C.
    assert model.num_glimpses == hp.get("num_glimpses")
    return {"val_accuracy": hp.get("num_glimpses") / 10 + hp.get("num_workers") / 100}


def test_search_resumes_and_runs_only_the_missing_trials(tmp_path, monkeypatch, random_clip_data):
    monkeypatch.setattr(tuning.GlimpseHyperModel, "fit", _formula_fit)
    config = _converted_config(tmp_path)
    out = str(tmp_path / "search")
    first = tuning.run_search(config, out, max_trials=1)
    assert (first["trials_run"], first["num_trials"]) == (["0"], 1)
    second = tuning.run_search(config, out, max_trials=3)
    assert (second["trials_run"], second["num_trials"]) == (["1", "2"], 3)
    third = tuning.run_search(config, out, max_trials=3)
    assert third["trials_run"] == []

    rows = _read_csv(second["results_csv"])
    scores = [int(r["num_glimpses"]) / 10 + int(r["num_workers"]) / 100 for r in rows]
    assert [float(r["val_accuracy"]) for r in rows] == pytest.approx(scores)
    assert scores == sorted(scores, reverse=True)
    best = config_lib.load_config(second["best_config"])
    assert (best.model.num_glimpses, best.model.num_workers) == (
        int(rows[0]["num_glimpses"]), int(rows[0]["num_workers"]))
    with pytest.raises(tuning.SearchSpaceError, match="different objective"):
        tuning.run_search(config, out, max_trials=3, objective="val_loss")


def test_repeated_failed_trials_stop_the_search_with_the_results_written(tmp_path, monkeypatch, random_clip_data):
    def failing_fit(self, hp, model, *args, **kwargs):
        raise keras_tuner.errors.FailedTrialError("loss became NaN")

    monkeypatch.setattr(tuning.GlimpseHyperModel, "fit", failing_fit)
    out = tmp_path / "search"
    with pytest.raises(tuning.SearchError, match="results.md"):
        tuning.run_search(_converted_config(tmp_path), str(out), max_trials=5)
    rows = _read_csv(out / "results.csv")
    assert [row["status"] for row in rows] == ["FAILED"] * 3  # keras-tuner's limit
    assert not os.path.exists(out / "best_config.yaml")


def test_a_frozen_one_stage_search_needs_a_stage_one_run(tmp_path):
    values = tiny_config().to_dict()
    values["train"]["stages"] = values["train"]["stages"][-1:]
    one_stage = config_lib.config_from_dict(values)
    with pytest.raises(tuning.SearchError, match="freezes its backbone.*--init-from RUN_DIR"):
        tuning.initial_run(tuning.search_config_of(one_stage), str(tmp_path))


def test_the_earlier_stages_are_trained_once_and_reused(tmp_path, monkeypatch):
    calls = []

    def train(experiment, run_dir, resume=False, cache_root=None):
        config = experiment.config
        calls.append(([stage.name for stage in config.train.stages], resume, config.data.validation_fraction))
        os.makedirs(os.path.join(run_dir, "stage1"), exist_ok=True)
        config_lib.save_config(config, os.path.join(run_dir, "config.yaml"))

    monkeypatch.setattr(training, "train", train)
    config = tuning.search_config_of(tiny_config())
    messages = []
    first = tuning.initial_run(config, str(tmp_path), log=messages.append)
    again = tuning.initial_run(config, str(tmp_path), log=messages.append)
    assert first == again == str(tmp_path / tuning.INIT_RUN)
    # Stage 1 alone, on the training subjects the trials are not scored on;
    # the second search (a resumed one) reuses the run.
    assert calls == [(["stage1"], False, 0.2), (["stage1"], True, 0.2)]
    assert "training the stage(s)" in messages[0] and "reusing" in messages[1]


def test_the_search_config_holds_out_training_subjects():
    config = tiny_config()
    assert config.data.validation_fraction == 0
    assert tuning.search_config_of(config).data.validation_fraction == tuning.DEFAULT_VALIDATION_FRACTION
    assert tuning.search_config_of(config, 0.3).data.validation_fraction == 0.3
    assert tuning.search_config_of(tiny_config(validation_fraction=0.4)).data.validation_fraction == 0.4
    with pytest.raises(config_lib.ConfigError, match=r"--validation-fraction: .*\(0, 0.5\], got 0.7"):
        tuning.search_config_of(config, 0.7)


def test_cli_refuses_a_bad_validation_fraction(capsys):
    assert tune.main(["--validation-fraction", "0.9", "--no-tensorboard"]) == 2
    assert "--validation-fraction" in capsys.readouterr().err


# === Searches that train (slow) ===


@pytest.fixture(scope="module")
def search_root(tmp_path_factory):
    """Config file and shared data cache for the training searches."""
    root = tmp_path_factory.mktemp("tune")
    config_lib.save_config(tiny_config(), str(root / "tiny.yaml"))
    return root


def _cli(root, output, max_trials):
    return tune.main(["--dataset", "synthetic", "--config", str(root / "tiny.yaml"),
                      "--max-trials", str(max_trials), "--output-dir", str(root / output),
                      "--cache-dir", str(root / "cache"), "--no-tensorboard"])


@pytest.mark.slow  # about a minute: stage 1 and two trials really train (see the fast tests above)
def test_two_trial_search_resumes_and_writes_a_trainable_best_config(search_root, capsys):
    assert _cli(search_root, "search", 1) == 0
    first = _read_csv(search_root / "search" / "results.csv")
    assert len(first) == 1 and first[0]["status"] == "COMPLETED"
    out = capsys.readouterr().out
    # Stage 1 was trained once (on the training subjects not held out) and
    # the trial started from it; the trials were scored on the hold-out.
    init_run = search_root / "search" / tuning.INIT_RUN
    assert "training the stage(s) before the tuned one (stage1)" in out
    assert os.path.exists(init_run / "stage1" / "final.weights.h5")
    assert "validation videos held out from the training split" in out
    assert "| trial | status |" in out  # the results table
    assert f"--init-from {init_run}" in out
    stage1_weights = (init_run / "stage1" / "final.weights.h5").read_bytes()

    # The same command with a larger budget runs only the missing trial and
    # reuses the stage-1 run.
    assert _cli(search_root, "search", 2) == 0
    out = capsys.readouterr().out
    assert "2 trial(s)" in out and "reusing the stage(s) before the tuned one" in out
    assert (init_run / "stage1" / "final.weights.h5").read_bytes() == stage1_weights
    rows = _read_csv(search_root / "search" / "results.csv")
    assert sorted(row["trial"] for row in rows) == ["0", "1"]
    assert all(row["status"] == "COMPLETED" for row in rows)
    kept = next(row for row in rows if row["trial"] == "0")
    assert kept == first[0]  # the first trial was not re-run
    scores = [float(row["val_accuracy"]) for row in rows]
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert float(rows[0]["val_accuracy"]) == max(scores)

    best = config_lib.load_config(str(search_root / "search" / "best_config.yaml"))
    assert best.model.num_glimpses == int(rows[0]["num_glimpses"])
    assert best.model.num_workers == int(rows[0]["num_workers"])
    assert math.isclose(best.train.stages[-1].learning_rate, float(rows[0]["learning_rate"]))
    assert len(best.train.stages) == 2
    with open(search_root / "search" / "best_hyperparameters.json") as handle:
        assert os.path.exists(json.load(handle)["weights"])


@pytest.mark.slow
def test_an_interrupted_trial_is_run_again(search_root, monkeypatch):
    original_fit = tuning.GlimpseHyperModel.fit

    def killed_fit(self, hp, model, *args, **kwargs):
        raise KeyboardInterrupt  # what Ctrl-C does in the middle of a trial

    monkeypatch.setattr(tuning.GlimpseHyperModel, "fit", killed_fit)
    with pytest.raises(KeyboardInterrupt):
        _cli(search_root, "interrupted", 1)
    monkeypatch.setattr(tuning.GlimpseHyperModel, "fit", original_fit)

    config = config_lib.load_config(str(search_root / "tiny.yaml"))
    summary = tuning.run_search(config, str(search_root / "interrupted"), max_trials=1,
                                cache_root=str(search_root / "cache"))
    assert summary["trials_run"] == ["0"]
    assert summary["num_trials"] == 1
    assert _read_csv(summary["results_csv"])[0]["status"] == "COMPLETED"


@pytest.mark.slow
def test_train_py_on_the_best_trial_config_reproduces_the_trial_score(tmp_path):
    """A trial trains through train.py's own stage runner (issue 12), so its
    validation score comes back when train.py trains the config it wrote."""
    import train as train_cli

    values = tiny_config().to_dict()
    values["train"]["stages"] = [
        {"name": "only", "variant": "glimpse_clouds", "epochs": 2, "batch_size": 2,
         "learning_rate": 3e-4, "steps_per_epoch": 1},
    ]
    config = config_lib.config_from_dict(values)
    space = tuning.load_search_space(overrides=["learning_rate=null", "pose_weight=null",
                                                "diversity_weight=null", "attraction_weight=null"])
    summary = tuning.run_search(config, str(tmp_path / "search"), max_trials=1, space=space,
                                objective="val_loss", cache_root=str(tmp_path / "data_cache"))
    assert summary["best_trial_config"] and os.path.exists(summary["best_trial_config"])
    # The trial was scored on subjects held out of the training split; the
    # final config trains on them all again (and is scored on the test split).
    trial_config = config_lib.load_config(summary["best_trial_config"])
    assert trial_config.data.validation_fraction == tuning.DEFAULT_VALIDATION_FRACTION
    assert config_lib.load_config(summary["best_config"]).data.validation_fraction == 0
    assert summary["init_from"] is None  # one stage, backbone not frozen: from scratch
    run = str(tmp_path / "retrained")
    assert train_cli.main(["--config", summary["best_trial_config"], "--output-dir", run,
                           "--no-evaluate", "--no-export"]) == 0
    with open(os.path.join(run, "only", "history.json")) as handle:
        history = json.load(handle)
    retrained = min(epoch["val_loss"] for epoch in history)
    assert retrained == pytest.approx(summary["best_score"], rel=1e-3)


def test_trial_callbacks_leave_out_the_hparams_callback_that_refuses_a_second_fit(tmp_path):
    # A trial fits once per epoch; keras-tuner's hparams callback raises on the second fit.
    import keras
    from tensorboard.plugins.hparams import _keras as hparams_keras

    board = keras.callbacks.TensorBoard(str(tmp_path))
    hparams = hparams_keras.Callback(str(tmp_path), {"num_glimpses": 3})
    kept = tuning.trial_callbacks([board, hparams])
    assert kept == [board]
    assert tuning.trial_callbacks(None) == []
