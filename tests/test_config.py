"""Config loading, overrides and error messages; every shipped YAML loads."""

import glob
import os

import pytest
import yaml

from glimpse_keras import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_defaults_are_the_authors_schedule():
    config = config_lib.load_config()
    assert config.model.num_glimpses == 3
    assert config.model.num_workers == 3
    assert config.loss.pose_weight == pytest.approx(0.1)
    stage1, stage2 = config.train.stages
    assert (stage1.variant, stage1.freeze_backbone) == ("global_pose", False)
    assert (stage2.variant, stage2.freeze_backbone) == ("glimpse_clouds", True)
    assert stage1.learning_rate == pytest.approx(1e-4)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)))
def test_every_shipped_config_loads(path):
    config = config_lib.load_config(path)
    assert config.train.stages


def test_the_matched_global_is_the_demo_with_a_global_stage_two():
    demo = config_lib.load_config(os.path.join(REPO, "configs", "demo.yaml")).to_dict()
    matched = config_lib.load_config(
        os.path.join(REPO, "configs", "ablations", "demo_matched_global.yaml")).to_dict()
    assert (demo["train"]["stages"][1]["variant"], matched["train"]["stages"][1]["variant"]) == (
        "glimpse_clouds", "global_pose")
    matched["train"]["stages"][1]["variant"] = "glimpse_clouds"
    assert matched == demo


def test_glimpse_scale_samples_are_checked():
    config = config_lib.load_config(overrides=["model.glimpse_scale_samples=[[0.1, 0.2], [0.3, 1]]"])
    assert config.model.glimpse_scale_samples == [[0.1, 0.2], [0.3, 1.0]]
    with pytest.raises(config_lib.ConfigError, match=r"model.glimpse_scale_samples\[1\]: expected a pair"):
        config_lib.load_config(overrides=["model.glimpse_scale_samples=[[0.1, 0.2], [0.3]]"])
    with pytest.raises(config_lib.ConfigError, match=r"model.glimpse_scale_samples\[0\]"):
        config_lib.load_config(overrides=["model.glimpse_scale_samples=[[0.0, 0.2]]"])


def test_glimpse_scales_come_from_an_attention_report(tmp_path):
    import json

    from glimpse_keras.experiment import Experiment

    report = tmp_path / "test_report.json"
    report.write_text(json.dumps({"attention": {"scale_samples": [[0.05, 0.2], [0.1, 0.3]]}}))
    config = config_lib.load_config(overrides=[f"model.glimpse_scales_from={report}", "model.glimpse_type=random"])
    experiment = Experiment(config)
    assert "2 glimpses" in experiment.resolve_glimpse_scales()
    assert config.model.glimpse_scale_samples == [[0.05, 0.2], [0.1, 0.3]]
    assert experiment.resolve_glimpse_scales() is None  # resolved once
    model = experiment.build_model("glimpse_clouds")
    assert model.core.glimpse_scale_samples == [[0.05, 0.2], [0.1, 0.3]]
    # A run folder: the report of its last stage.
    run = tmp_path / "run"
    (run / "evaluation" / "stage2").mkdir(parents=True)
    config_lib.save_config(config_lib.load_config(), str(run / "config.yaml"))
    (run / "evaluation" / "stage2" / "test_report.json").write_text(report.read_text())
    from glimpse_keras.experiment import glimpse_scales_from

    assert glimpse_scales_from(str(run)) == [[0.05, 0.2], [0.1, 0.3]]
    (run / "evaluation" / "stage2" / "test_report.json").write_text(json.dumps({"attention": None}))
    with pytest.raises(config_lib.ConfigError, match="holds no glimpse scales"):
        glimpse_scales_from(str(run))
    with pytest.raises(config_lib.ConfigError, match="cannot read the evaluation report"):
        glimpse_scales_from(str(tmp_path / "missing.json"))
    with pytest.raises(config_lib.ConfigError, match="neither a run folder"):
        glimpse_scales_from(str(tmp_path))


def test_overrides_parse_yaml_values_and_index_stages():
    config = config_lib.load_config(
        overrides=[
            "model.num_glimpses=4",
            "loss.pose_weight=0.5",
            "data.flip=true",
            "train.stages.1.epochs=2",
            "data.data_dir=/tmp/x",
        ]
    )
    assert config.model.num_glimpses == 4
    assert config.loss.pose_weight == 0.5
    assert config.data.flip is True
    assert config.train.stages[1].epochs == 2
    assert config.data.data_dir == "/tmp/x"


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.num_glimpses=0", "model.num_glimpses: expected a value >= 1, got 0"),
        ("model.num_glimpses=three", "model.num_glimpses: expected an integer, got 'three'"),
        ("model.variant=huge", "model.variant: expected one of global, global_pose"),
        ("model.glimpses=3", "unknown key model.glimpses"),
        ("model.locator=grid", "model.locator: expected one of linear, spatial; got 'grid'"),
        ("model.locator_keypoints=-2", "model.locator_keypoints: expected a value >= 0, got -2"),
        ("model.fixed_glimpse_scale=0", "model.fixed_glimpse_scale: expected a value >= 0.01, got 0.0"),
        ("modle.num_glimpses=3", "unknown key modle"),
        ("data.flip=maybe", "data.flip: expected true or false, got 'maybe'"),
        ("train.stages.5.epochs=1", "train.stages.5: index 5 is out of range"),
        ("train.stages.0.epochs=0", "train.stages[0].epochs: expected a value >= 1, got 0"),
        ("data.image_size=100", "data.image_size: expected a multiple of 32"),
        ("loss.pose_weight", "expected the form section.key=value"),
        ("model.output_stride=4", "model.output_stride: expected one of 32, 16, 8; got 4"),
        ("loss.diversity_form=squared", "loss.diversity_form: expected one of inverse, exponential"),
        ("loss.scale_weight=-1", "loss.scale_weight: expected a value >= 0.0, got -1.0"),
        ("loss.attraction_joints=feet", "loss.attraction_joints: expected one of all, hands"),
        ("data.classes=[1, 2]", "model.num_classes: 60 differs from the 2 classes of data.classes [1, 2]"),
        ("data.classes=5", "data.classes: expected a list, got 5"),
    ],
)
def test_bad_values_name_key_and_value(override, message):
    with pytest.raises(config_lib.ConfigError) as info:
        config_lib.load_config(overrides=[override])
    assert message in str(info.value)


def test_yaml_file_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  num_workers: -1\n")
    with pytest.raises(config_lib.ConfigError, match="model.num_workers: expected a value >= 1, got -1") as info:
        config_lib.load_config(str(path))
    assert "bad.yaml" in str(info.value)
    path.write_text("model:\n  num_glimpse: 2\n")
    with pytest.raises(config_lib.ConfigError, match="bad.yaml.*unknown key model.num_glimpse "):
        config_lib.load_config(str(path))
    path.write_text("model: [1, 2\n")
    with pytest.raises(config_lib.ConfigError, match="bad.yaml.*not valid YAML"):
        config_lib.load_config(str(path))
    with pytest.raises(config_lib.ConfigError, match="does not exist"):
        config_lib.load_config(str(tmp_path / "missing.yaml"))


def test_saved_config_reloads_identically(tmp_path):
    config = config_lib.load_config(overrides=["model.num_workers=5"])
    path = tmp_path / "resolved.yaml"
    config_lib.save_config(config, str(path))
    again = config_lib.config_from_dict(yaml.safe_load(path.read_text()))
    assert again == config


def test_exponent_numbers_without_a_dot_are_numbers(tmp_path):
    config = config_lib.load_config(overrides=["train.stages.0.learning_rate=3e-5"])
    assert config.train.stages[0].learning_rate == pytest.approx(3e-5)
    path = tmp_path / "lr.yaml"
    path.write_text("loss:\n  pose_weight: 5e-2\n")
    assert config_lib.load_config(str(path)).loss.pose_weight == pytest.approx(0.05)
    with pytest.raises(config_lib.ConfigError, match="model.num_glimpses: expected an integer, got 3.0"):
        config_lib.load_config(overrides=["model.num_glimpses=3e0"])


def test_class_subsets_are_checked_against_the_dataset():
    config = config_lib.load_config(overrides=["data.classes=[1, 120]", "model.num_classes=2"])
    assert config.data.classes == [1, 120]
    with pytest.raises(config_lib.ConfigError, match=r"data.classes: \[121\] are not NTU action numbers 1..120"):
        config_lib.load_config(overrides=["data.classes=[1, 121]", "model.num_classes=2"])
    with pytest.raises(config_lib.ConfigError, match=r"data.classes: \[7\] are not N-UCLA action numbers"):
        config_lib.load_config(overrides=["data.dataset=nucla", "data.classes=[1, 7]", "model.num_classes=2"])
    with pytest.raises(config_lib.ConfigError, match="class numbers repeat"):
        config_lib.load_config(overrides=["data.classes=[3, 3]", "model.num_classes=2"])
