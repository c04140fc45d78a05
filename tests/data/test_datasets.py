"""The dataset registry: each family's differences live in its adapter, and a
new family registers with one adapter."""

import os

import pytest

from glimpse_keras import config as config_lib
from glimpse_keras.data import datasets, preparation
from glimpse_keras.experiment import Experiment


def test_built_in_families_and_their_differences():
    assert datasets.names() == ("ntu", "nucla", "synthetic", "videos")
    nucla = config_lib.load_config(None, ["data.dataset=nucla", "data.classes=[1, 12]", "model.num_classes=2"])
    assert preparation.label_map(nucla.data) == [0, 9]
    assert preparation.split_protocol(nucla.data) == "xview"
    assert Experiment(nucla).class_names[0] == datasets.get("nucla").class_names()[0]
    ntu = config_lib.load_config(None, ["data.dataset=ntu", "data.classes=[1, 60]", "model.num_classes=2",
                                        "data.protocol=xview"])
    assert preparation.label_map(ntu.data) == [0, 59]
    assert preparation.split_protocol(ntu.data) == "xview"
    with pytest.raises(config_lib.ConfigError, match=r"data.classes: \[13\] are not N-UCLA action numbers"):
        config_lib.load_config(None, ["data.dataset=nucla", "data.classes=[13, 1]", "model.num_classes=2"])
    with pytest.raises(KeyError, match="registered"):
        datasets.get("kinetics")


class _FolderPerClass(datasets.DatasetAdapter):
    """A fourth family as issue 13 plans it: a folder per class of videos."""

    name = "test_videos"
    title = "folder-per-class videos"
    raw_format = "ntu"  # a stand-in: a real one would bring its own reader
    help = "one folder per class holding the videos"

    def class_numbers(self):
        return (1, 2, 3)

    def class_names(self):
        return ("wave", "clap", "jump")

    def stored_label(self, number):
        return number - 1

    def is_raw_tree(self, path):
        return os.path.isdir(os.path.join(path, "wave"))


def test_a_fourth_family_registers_with_one_adapter(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_REGISTRY", dict(datasets._REGISTRY))
    datasets.register(_FolderPerClass())
    with pytest.raises(ValueError, match="already registered"):
        datasets.register(_FolderPerClass())
    config = config_lib.load_config(None, ["data.dataset=test_videos", "data.classes=[3, 1]",
                                           "model.num_classes=2", f"data.data_dir={tmp_path}"])
    assert Experiment(config).class_names == ["jump", "wave"]
    assert preparation.label_map(config.data) == [2, 0]
    with pytest.raises(config_lib.ConfigError, match=r"\[4\] are not folder-per-class videos class numbers"):
        config_lib.load_config(None, ["data.dataset=test_videos", "data.classes=[4, 1]", "model.num_classes=2"])
    with pytest.raises(preparation.DataDirError, match="raw folder-per-class videos tree. one folder per class"):
        preparation.prepare_data(config.data, str(tmp_path / "cache"))
    assert preparation.raw_layout(str(tmp_path)) is None
    os.makedirs(tmp_path / "wave")
    assert preparation.raw_layout(str(tmp_path)) == "ntu"
