"""The conversion cache of a raw dataset tree follows the tree's contents."""

import os

from glimpse_keras.data.preparation import raw_tree_digest


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def test_raw_tree_digest_changes_with_the_files_only(tmp_path):
    root = tmp_path / "ntu"
    write(str(root / "nturgb+d_rgb" / "a.avi"), "video")
    write(str(root / "nturgb+d_skeletons" / "a.skeleton"), "1")
    first = raw_tree_digest(str(root))
    assert len(first) == 8 and first == raw_tree_digest(str(root))

    write(str(root / "nturgb+d_rgb" / "b.avi"), "video")  # a video added
    added = raw_tree_digest(str(root))
    assert added != first

    path = str(root / "nturgb+d_skeletons" / "a.skeleton")
    write(path, "12")  # a file replaced by a longer one
    replaced = raw_tree_digest(str(root))
    assert replaced != added

    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, newer
    assert raw_tree_digest(str(root)) != replaced

    # The same files under another directory are another cache.
    before = raw_tree_digest(str(root))
    moved = tmp_path / "moved"
    os.rename(str(root), str(moved))
    assert raw_tree_digest(str(moved)) != before


def test_converted_data_dir_is_checked_against_its_conversion_settings(tmp_path):
    import json

    import pytest

    from glimpse_keras import config as config_lib
    from glimpse_keras.data import convert
    from glimpse_keras.data.preparation import SETTINGS_FILE, DataDirError, prepare_data

    assert SETTINGS_FILE == convert.SETTINGS_FILE
    converted = tmp_path / "converted"
    os.makedirs(converted / "splits")
    write(str(converted / SETTINGS_FILE), json.dumps({"dataset": "ntu", "stored_size": 72}))
    config = config_lib.load_config(None, ["data.dataset=ntu", f"data.data_dir={converted}",
                                           "data.stored_size=256", "data.image_size=224"])
    # Served at 256 after training on crops of 72-pixel frames: refused, naming both.
    with pytest.raises(DataDirError, match=r"data.stored_size: the config says 256 .* stored_size 72 "
                                           r".*conversion_settings.json.*data.stored_size=72"):
        prepare_data(config.data, str(tmp_path / "cache"))
    matching = config_lib.load_config(None, ["data.dataset=ntu", f"data.data_dir={converted}",
                                             "data.stored_size=72", "data.image_size=64"])
    assert prepare_data(matching.data, str(tmp_path / "cache")) == str(converted)
    nucla = config_lib.load_config(None, ["data.dataset=nucla", f"data.data_dir={converted}",
                                          "data.stored_size=72", "data.image_size=64", "model.num_classes=10"])
    with pytest.raises(DataDirError, match=r"data.dataset: the config says 'nucla' .* holds 'ntu'"):
        prepare_data(nucla.data, str(tmp_path / "cache"))
