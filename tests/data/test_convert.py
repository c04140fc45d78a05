"""Conversion: error reporting, counts, resume after interruption, settings."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from glimpse_keras.data import convert, pipeline, schema, sources
from tests.data.raw_ntu_fixture import truncate, write_ntu_sample

GOOD = {  # id -> (video frames, skeleton frames)
    "S001C001P001R001A001": (10, 10),  # xsub train, xview test
    "S001C002P003R001A002": (11, 12),  # xsub test, xview train; lengths differ
    "S001C001P003R002A003": (12, 12),  # xsub test, xview test
    "S001C003P002R001A001": (13, 13),  # xsub train, xview train
}
CORRUPT_VIDEO = "S001C001P001R002A002"
TRUNCATED_SKELETON = "S001C001P002R002A002"


@pytest.fixture(scope="module")
def raw_ntu(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("raw_ntu"))
    for name, (frames, skeleton_frames) in GOOD.items():
        write_ntu_sample(root, name, frames, skeleton_frames)
    video, _ = write_ntu_sample(root, CORRUPT_VIDEO, 20)
    truncate(video, 0.5)
    _, skeleton = write_ntu_sample(root, TRUNCATED_SKELETON, 20)
    truncate(skeleton, 0.5)
    with open(os.path.join(root, "nturgb+d_rgb", "notes_rgb.avi"), "w") as handle:
        handle.write("not a sample")
    return root


def _convert(raw, out, *extra):
    return convert.main(["--dataset", "ntu", "--data-dir", raw, "--output", str(out),
                         "--workers", "1", "--shard-size", "2", "--stored-size", "32",
                         "--protocol", "xsub,xview", "--no-progress", *extra])


def _read(path):
    with open(path) as handle:
        return json.load(handle)


def test_bad_samples_are_reported_and_skipped(raw_ntu, tmp_path, capsys):
    assert _convert(raw_ntu, tmp_path) == 0
    console = capsys.readouterr().out
    errors = _read(tmp_path / "conversion_errors.json")
    reported = {os.path.basename(e["file"]): e["reason"] for e in errors["errors"]}
    assert set(reported) == {CORRUPT_VIDEO + "_rgb.avi",
                             TRUNCATED_SKELETON + ".skeleton", "notes_rgb.avi"}
    for name, reason in reported.items():
        assert f"SKIPPED {os.path.join(raw_ntu, 'nturgb+d_')}" in console
        assert name in console and reason in console
    assert "unparseable name" in reported["notes_rgb.avi"]
    manifest = _read(tmp_path / "manifest.json")
    assert (manifest["found"], manifest["converted"], manifest["skipped"]) == (7, 4, 3)
    assert manifest["converted"] + manifest["skipped"] == manifest["found"]
    assert "found 7 = converted 4 + skipped 3" in console
    assert manifest["splits"] == {"xsub": {"train": 2, "test": 2},
                                  "xview": {"train": 2, "test": 2}}
    assert manifest["frame_count_mismatches"] == ["S001C002P003R001A002"]
    index = _read(tmp_path / "splits" / "xview" / "test.json")
    assert index["video_ids"] == ["S001C001P001R001A001", "S001C001P003R002A003"]
    assert index["class_counts"] == {"0": 1, "2": 1}


def test_stored_records_hold_frames_pose_and_counts(raw_ntu, tmp_path):
    assert _convert(raw_ntu, tmp_path) == 0
    files = pipeline.list_split_files(str(tmp_path), "xsub", "test")
    records = {}
    for serialized in tf.data.TFRecordDataset(files):
        parsed = schema.parse_video_example(serialized)
        records[parsed["video_id"].numpy().decode()] = (parsed, serialized)
    assert sorted(records) == ["S001C001P003R002A003", "S001C002P003R001A002"]
    parsed, serialized = records["S001C002P003R001A002"]
    assert int(parsed["label"]) == 1 and int(parsed["num_frames"]) == 11  # min(11, 12)
    context = tf.train.SequenceExample.FromString(serialized.numpy()).context.feature
    assert context[schema.NUM_VIDEO_FRAMES].int64_list.value == [11]
    assert context[schema.NUM_SKELETON_FRAMES].int64_list.value == [12]
    assert context[schema.SUBJECT].int64_list.value == [3]
    assert context[schema.CAMERA].int64_list.value == [2]
    mask = parsed["mask"].numpy()
    assert mask[:, 0].all() and not mask[:, 1].any()  # one body in the file
    np.testing.assert_allclose(parsed["uv"].numpy()[:, 0], 0.5, atol=1e-6)  # 960/1920
    frames = [tf.io.decode_jpeg(j).numpy() for j in parsed["jpeg"].numpy()]
    assert frames[0].shape == (32, 32, 3)
    levels = [float(f.mean()) for f in frames]
    # grey 8 * i, in order (MPEG-4 at the writer's default bitrate is lossy)
    np.testing.assert_allclose(levels, 8 * np.arange(11), atol=6)
    assert np.all(np.diff(levels) > 3)


def test_parallel_conversion_writes_the_same_bytes(raw_ntu, tmp_path):
    assert _convert(raw_ntu, tmp_path / "one") == 0
    assert _convert(raw_ntu, tmp_path / "two", "--workers", "2") == 0
    one = _read(tmp_path / "one" / "splits" / "xsub" / "train.json")["files"]
    for name in one:
        with open(tmp_path / "one" / name, "rb") as a, open(tmp_path / "two" / name, "rb") as b:
            assert a.read() == b.read()


def _shard_stats(out):
    stats = {}
    for directory, _, names in os.walk(out / "shards"):
        for name in names:
            if name.endswith(".tfrecord"):
                info = os.stat(os.path.join(directory, name))
                stats[name] = (info.st_ino, info.st_mtime_ns)
    return stats


def test_resume_after_interruption(raw_ntu, tmp_path, monkeypatch):
    calls = []
    real_load = sources.load_raw_sample

    def interrupted_load(raw, *args, **kwargs):
        calls.append(raw.video_id)
        if len(calls) == 4:
            raise KeyboardInterrupt  # the run dies while converting sample 4
        return real_load(raw, *args, **kwargs)

    monkeypatch.setattr(sources, "load_raw_sample", interrupted_load)
    with pytest.raises(KeyboardInterrupt):
        convert.convert_dataset("ntu", raw_ntu, str(tmp_path), shard_size=2,
                                stored_size=32, protocols=("xsub", "xview"),
                                progress=False, log=lambda _: None)
    finished = _shard_stats(tmp_path)
    # Shards in path order hold 1, 1, 2, 1, 1 samples: the first two are done,
    # the third (samples 3 and 4) was being written.
    assert len(finished) == 2
    assert not os.path.exists(tmp_path / "manifest.json")
    with open(tmp_path / "shards" / "leftover.tfrecord.partial", "w") as handle:
        handle.write("half-written")

    monkeypatch.setattr(sources, "load_raw_sample", real_load)
    calls.clear()
    summary = convert.convert_dataset("ntu", raw_ntu, str(tmp_path), shard_size=2,
                                      stored_size=32, protocols=("xsub", "xview"),
                                      progress=False, log=lambda _: None)
    assert not os.path.exists(tmp_path / "shards" / "leftover.tfrecord.partial")
    after = _shard_stats(tmp_path)
    for name, stat in finished.items():
        assert after[name] == stat  # not rewritten
    assert len(after) == 5
    assert summary.loaded_this_run == 6 - 2
    assert (summary.found, summary.converted, summary.skipped) == (7, 4, 3)
    # Re-running a finished conversion loads nothing and changes nothing.
    again = convert.convert_dataset("ntu", raw_ntu, str(tmp_path), shard_size=2,
                                    stored_size=32, protocols=("xsub", "xview"),
                                    progress=False, log=lambda _: None)
    assert again.loaded_this_run == 0 and _shard_stats(tmp_path) == after
    # Reference: an uninterrupted run writes identical shards.
    assert _convert(raw_ntu, tmp_path / "clean") == 0
    for name in after:
        group = name.split("-0")[0]
        with open(tmp_path / "shards" / group / name, "rb") as a, \
                open(tmp_path / "clean" / "shards" / group / name, "rb") as b:
            assert a.read() == b.read()


def test_resume_rewrites_a_finished_shard_whose_samples_changed(tmp_path):
    raw = str(tmp_path / "raw")
    for action in (1, 3, 4):  # all xsub-train and xview-train: one group
        write_ntu_sample(raw, f"S001C002P001R001A{action:03d}", 10)
    kwargs = dict(shard_size=2, stored_size=32, protocols=("xsub", "xview"),
                  progress=False, log=lambda _: None)
    out = str(tmp_path / "out")
    assert convert.convert_dataset("ntu", raw, out, **kwargs).converted == 3
    # A new sample sorts into the first shard; both shard names stay the same
    # (-00000-of-00002, -00001-of-00002) but their members change.
    write_ntu_sample(raw, "S001C002P001R001A002", 10)
    summary = convert.convert_dataset("ntu", raw, out, **kwargs)
    assert (summary.found, summary.converted, summary.skipped) == (4, 4, 0)
    assert summary.loaded_this_run == 4
    index = _read(os.path.join(out, "splits", "xsub", "train.json"))
    assert index["video_ids"] == [f"S001C002P001R001A{a:03d}" for a in (1, 2, 3, 4)]
    files = pipeline.list_split_files(out, "xsub", "train")
    assert pipeline.count_records(files) == 4


def test_other_settings_in_the_same_output_are_refused(raw_ntu, tmp_path, capsys):
    assert _convert(raw_ntu, tmp_path) == 0
    assert _convert(raw_ntu, tmp_path, "--jpeg-quality", "70") == 1
    assert "jpeg_quality: 90 -> 70" in capsys.readouterr().err


def test_missing_or_empty_data_dir_is_one_clear_error(tmp_path, capsys):
    assert _convert(str(tmp_path / "nowhere"), tmp_path / "out") == 1
    message = capsys.readouterr().err
    assert "does not exist" in message and "nturgb+d_rgb" in message
    (tmp_path / "empty").mkdir()
    assert _convert(str(tmp_path / "empty"), tmp_path / "out2") == 1
    message = capsys.readouterr().err
    assert "no ntu sample found" in message and "_rgb.avi" in message


def test_nothing_convertible_exits_1(tmp_path, capsys):
    raw = tmp_path / "raw"
    video, _ = write_ntu_sample(str(raw), CORRUPT_VIDEO, 20)
    truncate(video, 0.3)
    assert _convert(str(raw), tmp_path / "out") == 1
    assert "not a single video" in capsys.readouterr().err
    assert _read(tmp_path / "out" / "conversion_errors.json")["skipped"] == 1
    assert not os.path.exists(tmp_path / "out" / "splits")


def test_listed_missing_skeleton_is_kept_with_masked_pose(tmp_path):
    raw = tmp_path / "raw"
    _, skeleton = write_ntu_sample(str(raw), "S001C001P001R001A050", 9)
    os.remove(skeleton)
    _, skeleton = write_ntu_sample(str(raw), "S001C001P001R001A051", 9)
    os.remove(skeleton)
    with open(raw / "NTU_RGBD_samples_with_missing_skeletons.txt", "w") as handle:
        handle.write("The following samples are missing.\nSecond line.\n\n"
                     "S001C001P001R001A050\n")
    assert _convert(str(raw), tmp_path / "out") == 0
    manifest = _read(tmp_path / "out" / "manifest.json")
    assert manifest["videos_without_pose"] == ["S001C001P001R001A050"]
    assert (manifest["converted"], manifest["skipped"]) == (1, 1)
    (error,) = _read(tmp_path / "out" / "conversion_errors.json")["errors"]
    assert error["video_id"] == "S001C001P001R001A051"
    assert "not on the missing-skeleton list" in error["reason"]


def _write_nucla_sample(root, view, name, frames, without_skeleton=()):
    import cv2

    folder = os.path.join(root, "multiview_action", f"view_{view}", name)
    os.makedirs(folder)
    for k in frames:
        cv2.imwrite(os.path.join(folder, f"frame_{k}_tc_{100 + k}_rgb.jpg"),
                    np.full((48, 64, 3), 5 * k, np.uint8))
        if k not in without_skeleton:
            with open(os.path.join(folder, f"frame_{k}_tc_{100 + k}_skeletons.txt"), "w") as f:
                f.write("60\n" + "".join(f"0,0.1,2.0,2\n" for _ in range(20)))


def test_nucla_conversion(tmp_path, capsys):
    raw = str(tmp_path / "raw")
    _write_nucla_sample(raw, 1, "a01_s01_e00", [1, 2, 3, 10], without_skeleton=(2,))
    _write_nucla_sample(raw, 2, "a12_s02_e01", range(5))
    _write_nucla_sample(raw, 3, "a11_s03_e00", range(3))
    _write_nucla_sample(raw, 3, "a07_s03_e00", range(3))  # no such action
    os.makedirs(os.path.join(raw, "multiview_action", "view_3", "a02_s01_e00"))
    out = tmp_path / "out"
    assert convert.main(["--dataset", "nucla", "--data-dir", raw, "--output", str(out),
                         "--workers", "1", "--stored-size", "32", "--no-progress"]) == 0
    manifest = _read(out / "manifest.json")
    assert (manifest["found"], manifest["converted"], manifest["skipped"]) == (5, 3, 2)
    assert manifest["splits"] == {"xview": {"train": 2, "test": 1}}
    skipped = {os.path.basename(e["file"]) for e in
               _read(out / "conversion_errors.json")["errors"]}
    assert skipped == {"a07_s03_e00", "a02_s01_e00"}
    records = {}
    for serialized in tf.data.TFRecordDataset(pipeline.list_split_files(str(out), "xview", "train")):
        parsed = schema.parse_video_example(serialized)
        records[parsed["video_id"].numpy().decode()] = parsed
    assert sorted(records) == ["a01_s01_e00_v01", "a12_s02_e01_v02"]
    first = records["a01_s01_e00_v01"]
    assert int(first["label"]) == 0 and int(records["a12_s02_e01_v02"]["label"]) == 9
    levels = [float(tf.io.decode_jpeg(j).numpy().mean()) for j in first["jpeg"].numpy()]
    np.testing.assert_allclose(levels, [5, 10, 15, 50], atol=2)  # frame_10 last
    mask = first["mask"].numpy()
    assert mask[:, 0].any(axis=-1).tolist() == [True, False, True, True]
    # (x, y, z) = (0, 0.1, 2): u = 0.5, v = (240 - 531.15 * 0.05) / 480
    uv = first["uv"].numpy()[0, 0][mask[0, 0]]
    np.testing.assert_allclose(uv, [[0.5, (240 - 531.15 * 0.05) / 480]] * len(uv), atol=1e-5)


def test_impossible_output_is_one_clear_error(raw_ntu, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert _convert(raw_ntu, blocker / "out") == 1
    assert "afile is a file, not a folder" in capsys.readouterr().err
