"""Raw data and converted shards at a URL: everything through `tf.io.gfile`.

TensorFlow's in-memory file system (`ram://`, one per process) stands in for a
bucket: the raw data are copied there, converted there by both engines (the
local one in this process, Beam's DirectRunner on its in-process worker), and
the result must equal the conversion of the same files on the local disk,
byte for byte. The training input then reads it back from there.
"""

import os
import tempfile
import uuid

import numpy as np
import pytest

from glimpse_keras import config as config_lib
from glimpse_keras import filesystem
from glimpse_keras.data import convert, pipeline, sources
from glimpse_keras.experiment import Experiment
from tests.data.conversion_checks import TINY_SETTINGS, assert_same_conversion, copy_tree
from tests.data.test_convert import _write_nucla_sample
from tests.data.test_user_videos import make_folder_dataset, write_keypoints

TRAINING = ["data.dataset=ntu", "data.num_frames=4", "data.image_size=32", "data.stored_size=32",
            "model.preset=tiny", "data.validation_fraction=0.3"]


def _ram(name):
    return f"ram://{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def ram_raw(raw_tiny):
    root = _ram("raw")
    copy_tree(raw_tiny, root)
    return root


@pytest.fixture
def no_temporary_copies_left(tmp_path, monkeypatch):
    """Points `tempfile` (where remote videos and frames are copied to be
    decoded) at an empty folder, and checks that it is empty after the test."""
    folder = tmp_path / "local_temporary"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield
    assert not os.listdir(folder)


@pytest.fixture(scope="module")
def ram_output(ram_raw):
    out = _ram("local-engine")
    assert convert.main([*TINY_SETTINGS, "--data-dir", ram_raw, "--output", out, "--workers", "1"]) == 0
    return out


def test_the_local_engine_converts_from_ram_to_ram_as_from_disk_to_disk(
        ram_raw, raw_tiny, local_output, no_temporary_copies_left, capsys):
    out = _ram("local-engine")
    assert convert.main([*TINY_SETTINGS, "--data-dir", ram_raw, "--output", out, "--workers", "1"]) == 0
    assert_same_conversion(local_output, out, renamed=[(ram_raw, raw_tiny)])
    [skipped] = [line for line in capsys.readouterr().out.splitlines() if "truncated" in line]
    assert skipped.startswith(f"SKIPPED {ram_raw}/nturgb+d_rgb/S") and ".avi: truncated: decoded" in skipped


def test_beam_converts_from_ram_to_ram_as_the_local_engine_on_disk(
        ram_raw, raw_tiny, local_output, capsys):
    pytest.importorskip("apache_beam")
    out = _ram("beam")
    assert convert.main([*TINY_SETTINGS, "--data-dir", ram_raw, "--output", out,
                         "--engine", "beam", "--runner", "DirectRunner"]) == 0
    assert "Beam runner DirectRunner" in capsys.readouterr().out
    assert_same_conversion(local_output, out, renamed=[(ram_raw, raw_tiny)])  # the plan file is gone too
    summary = convert.convert_dataset("ntu", ram_raw, out, shard_size=4, stored_size=32,
                                      protocols=("xsub", "xview"), progress=False, log=lambda _: None)
    assert summary.loaded_this_run == 0  # resumable there too: every shard is found finished


def test_training_reads_the_converted_data_from_ram(ram_output, local_output, tmp_path):
    """Settings check, split index, validation hold-out (file times) and one
    training batch: the same from ram:// as from the local copy."""
    batches, holdouts = [], []
    for converted in (ram_output, local_output):
        config = config_lib.load_config(None, TRAINING + [f"data.data_dir={converted}"])
        experiment = Experiment(config)
        assert experiment.prepare_data(str(tmp_path / "cache")) == converted
        holdouts.append(experiment.validation_holdout())
        files = experiment.split_files("train")
        assert all(name.startswith(converted) for name in files)
        dataset = pipeline.build_dataset(files, "train", num_frames=4, image_size=32, batch_size=4, seed=3)
        batches.append(next(iter(dataset)))
    assert holdouts[0] and holdouts[0] == holdouts[1]
    (ram_inputs, ram_targets), (disk_inputs, disk_targets) = batches
    assert ram_inputs["video"].shape == (4, 4, 32, 32, 3)
    for key in ram_inputs:
        np.testing.assert_array_equal(ram_inputs[key], disk_inputs[key])
    for key in ram_targets:
        np.testing.assert_array_equal(ram_targets[key], disk_targets[key])
    assert pipeline.count_split_videos(ram_output, "xview", "test") == pipeline.count_split_videos(
        local_output, "xview", "test")


def _nucla_tree(root):
    _write_nucla_sample(root, 1, "a01_s01_e00", [1, 2, 3, 10], without_skeleton=(2,))
    _write_nucla_sample(root, 2, "a12_s02_e01", range(5))
    _write_nucla_sample(root, 3, "a11_s03_e00", range(3))
    _write_nucla_sample(root, 3, "a07_s03_e00", range(3))  # no such action
    os.makedirs(os.path.join(root, "multiview_action", "view_3", "a02_s01_e00"))  # no frame


def _videos_in_folders(root):
    make_folder_dataset(root, per_class=2)
    write_keypoints(os.path.join(root, "jump", "clip0.mp4"), frames=6)
    with open(os.path.join(root, "wave", "broken.mp4"), "wb") as handle:
        handle.write(b"not a video")


def _videos_in_lists(root):
    make_folder_dataset(os.path.join(root, "clips"), per_class=2, with_keypoints=True)
    with open(os.path.join(root, "train.txt"), "w") as handle:
        handle.write("clips/clap/clip0.mp4 clap\nclips/./jump/clip0.mp4 jump\nclips/gone.mp4 jump\n")
    with open(os.path.join(root, "test.txt"), "w") as handle:
        handle.write("clips/clap/../wave/clip1.mp4 wave\n")


@pytest.mark.parametrize("dataset, write", [
    ("nucla", _nucla_tree), ("videos", _videos_in_folders), ("videos", _videos_in_lists)])
def test_nucla_and_user_videos_convert_from_ram_as_from_disk(
        dataset, write, tmp_path, no_temporary_copies_left):
    raw, ram_raw = str(tmp_path / "raw"), _ram("raw")
    write(raw)
    copy_tree(raw, ram_raw)
    outputs = []
    for data_dir, output in ((raw, str(tmp_path / "out")), (ram_raw, _ram("out"))):
        summary = convert.convert_dataset(dataset, data_dir, output, shard_size=1, stored_size=32,
                                          progress=False, log=lambda _: None)
        outputs.append(output)
    assert summary.converted >= 3 and summary.skipped >= 1
    assert_same_conversion(outputs[0], outputs[1], renamed=[(ram_raw, raw)], min_shards=3)


def test_a_storage_failure_that_may_pass_stops_the_run_instead_of_skipping_the_sample(
        raw_tiny, monkeypatch):
    """A bad sample is recorded and skipped, but an unavailable bucket is not the
    sample's fault: the error goes up, so a Beam runner retries the shard."""
    samples, _ = sources.list_raw_samples("ntu", raw_tiny, ("xsub",))

    def unavailable(*_):
        raise filesystem.TransientStorageError(11, "service unavailable", samples[0].video_path)

    monkeypatch.setattr(sources, "load_raw_sample", unavailable)
    with pytest.raises(filesystem.TransientStorageError):
        convert.convert_sample(samples[0], 32, 90)


def test_a_missing_remote_folder_or_an_unknown_scheme_is_named(raw_tiny, capsys):
    assert convert.main([*TINY_SETTINGS, "--data-dir", _ram("nothing"), "--output", _ram("out")]) == 1
    assert "data directory 'ram://nothing-" in capsys.readouterr().err
    assert convert.main([*TINY_SETTINGS, "--data-dir", raw_tiny, "--output", "nosuch://b/out"]) == 1
    assert "cannot create the folder nosuch://b/out: File system scheme 'nosuch' not implemented" in (
        capsys.readouterr().err)
