"""build_dataset on fake SequenceExamples built in the test."""

import json

import numpy as np
import pytest
import tensorflow as tf

from glimpse_keras.data import pipeline, schema, video_ops
from glimpse_keras.data.ntu import NTU_FLIP_PARTNERS
from tests.data.fake_video_records import grey_frames, make_record, write_records


@pytest.fixture
def grey_shards(tmp_path):
    """Two shards, 5 videos: grey level = 10 * frame index, one centre joint."""
    records = []
    for number, length in enumerate([16, 4, 10, 3, 20]):
        uv = np.zeros((length, 2, 25, 2), np.float32)
        mask = np.zeros((length, 2, 25), bool)
        uv[:, 0, 1] = (0.5, 0.5)
        mask[:, 0, 1] = True
        mask[0, 0, 1] = False  # first frame: joint absent
        records.append(
            make_record(f"vid{number}", number + 10, grey_frames(length, 64), uv, mask)
        )
    first = write_records(tmp_path / "a.tfrecord", records[:3])
    second = write_records(tmp_path / "b.tfrecord", records[3:])
    return [first, second], records


def _grey_levels(video):
    """Mean grey level per frame of a uint8 video (..., S, S, 3) -> (...)."""
    return np.rint(video.astype(np.float32).mean(axis=(-3, -2, -1)) / 10).astype(int)


def test_schema_round_trip_of_one_record(grey_shards):
    files, records = grey_shards
    serialized = next(iter(tf.data.TFRecordDataset(files[0])))
    parsed = schema.parse_video_example(serialized)
    assert parsed["video_id"].numpy() == b"vid0"
    assert int(parsed["label"]) == 10 and int(parsed["num_frames"]) == 16
    assert parsed["jpeg"].shape == (16,) and parsed["uv"].shape == (16, 2, 25, 2)
    np.testing.assert_array_equal(parsed["mask"].numpy(), records[0].mask)
    np.testing.assert_allclose(parsed["uv"].numpy()[1, 0, 1], [0.5, 0.5])


def test_eval_batches_shapes_labels_and_bin_centre_frames(grey_shards):
    files, _ = grey_shards
    dataset = pipeline.build_dataset(files, "eval", num_frames=4, image_size=48,
                                     batch_size=2)
    batches = list(dataset)
    assert [b[0]["video"].shape[0] for b in batches] == [2, 2, 1]
    inputs, targets = batches[0]
    assert inputs["video"].dtype == tf.uint8 and inputs["video"].shape == (2, 4, 48, 48, 3)
    assert targets["label"].dtype == tf.int32
    assert targets["pose"].shape == (2, 4, 2, 25, 2) and targets["pose"].dtype == tf.float32
    assert targets["pose_mask"].shape == (2, 4, 2, 25)
    labels = np.concatenate([b[1]["label"].numpy() for b in batches])
    assert labels.tolist() == [10, 13, 11, 14, 12]  # the two shards interleaved
    order = np.argsort(labels)
    frames = np.concatenate([_grey_levels(b[0]["video"].numpy()) for b in batches])
    frames = frames[order]
    # bin centres floor((t + 0.5) * F / 4) for F = 16, 4, 10, 3, 20
    assert frames.tolist() == [[2, 6, 10, 14], [0, 1, 2, 3], [1, 3, 6, 8],
                               [0, 1, 1, 2], [2, 7, 12, 17]]
    pose = np.concatenate([b[1]["pose"].numpy() for b in batches])
    mask = np.concatenate([b[1]["pose_mask"].numpy() for b in batches])[order]
    # centre crop (8, 8) of 64: u = 0.5 -> 32 - 8 = 24 px -> 2 * 24 / 48 - 1 = 0
    np.testing.assert_allclose(pose[mask > 0], 0.0, atol=1e-6)
    assert mask[:, :, 0, 1].tolist() == [[1, 1, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1],
                                         [0, 1, 1, 1], [1, 1, 1, 1]]
    assert mask.sum() == 18  # only joint 1 of person 0, minus the two frame-0 hits


def test_test_mode_has_clip_axis_and_ids(grey_shards):
    files, _ = grey_shards
    dataset = pipeline.build_dataset(files, "test", num_frames=4, image_size=32,
                                     batch_size=5, clips_per_video=2)
    inputs, targets = next(iter(dataset))
    assert inputs["video"].shape == (5, 2, 4, 32, 32, 3)
    assert targets["pose"].shape == (5, 2, 4, 2, 25, 2)
    assert targets["pose_mask"].shape == (5, 2, 4, 2, 25)
    assert [v.decode() for v in targets["video_id"].numpy()] == [
        "vid0", "vid3", "vid1", "vid4", "vid2"]
    levels = _grey_levels(inputs["video"].numpy())
    # F = 16: clip 0 takes floor((t + 0.25) * 4), clip 1 floor((t + 0.75) * 4)
    assert levels[0].tolist() == [[1, 5, 9, 13], [3, 7, 11, 15]]


@pytest.fixture
def block_shards(tmp_path):
    """Two shards, 5 videos of 64x64 frames: grey level 5 * frame index, a
    white 8x8 block at rows and columns 28..35 with joint 1 of person 0 at
    its centre."""
    records = []
    for number, length in enumerate([16, 4, 10, 3, 20]):
        frames = grey_frames(length, 64, step=5)
        for frame in frames:
            frame[28:36, 28:36] = 255
        uv = np.zeros((length, 2, 25, 2), np.float32)
        mask = np.zeros((length, 2, 25), bool)
        uv[:, 0, 1] = (0.5, 0.5)
        mask[:, 0, 1] = True
        records.append(make_record(f"vid{number}", number, frames, uv, mask))
    return [write_records(tmp_path / "a.tfrecord", records[:3]),
            write_records(tmp_path / "b.tfrecord", records[3:])]


def _random_test_clips(files, seed, batch_size=5):
    """{video id: (frames, pose, mask)} of 'test' mode with random clips."""
    dataset = pipeline.build_dataset(files, "test", num_frames=4, image_size=48, batch_size=batch_size,
                                     clips_per_video=3, test_sampling="random", seed=seed)
    clips = {}
    for inputs, targets in dataset:
        for b, video_id in enumerate(targets["video_id"].numpy()):
            clips[video_id.decode()] = (inputs["video"].numpy()[b], targets["pose"].numpy()[b],
                                        targets["pose_mask"].numpy()[b])
    return clips


def test_random_test_clips_draw_frames_per_bin_and_crops_per_clip(block_shards):
    lengths = {"vid0": 16, "vid1": 4, "vid2": 10, "vid3": 3, "vid4": 20}
    clips = _random_test_clips(block_shards, seed=7)
    assert sorted(clips) == sorted(lengths)
    corners, fixed_frames = set(), 0
    for video_id, (video, pose, mask) in clips.items():
        assert video.shape == (3, 4, 48, 48, 3) and pose.shape == (3, 4, 2, 25, 2)
        # The crop's top-left 4x4 pixels are background: their grey level is
        # the frame index, one frame drawn from each of the 4 bins of F frames.
        frames = np.rint(video[:, :, :4, :4].astype(np.float32).mean(axis=(-3, -2, -1)) / 5).astype(int)
        bins = np.arange(4)
        count = lengths[video_id]
        assert np.all(frames >= np.floor(bins * count / 4)), (video_id, frames)
        assert np.all(frames <= np.maximum(np.ceil((bins + 1) * count / 4) - 1, 0)), (video_id, frames)
        fixed_frames += np.array_equal(frames, video_ops.test_frame_indices(count, 4, 3).numpy())
        for clip in range(3):
            # The block (stored columns 28..35, centre 32) shows where the
            # clip was cropped; the joint's target moved with it.
            rows, cols = np.nonzero(video[clip, 0, :, :, 0] > 200)
            corner = (round(32 - rows.mean() - 0.5), round(32 - cols.mean() - 0.5))
            assert 0 <= min(corner) and max(corner) <= 16
            corners.add(corner)
            x, y = ((pose[clip, :, 0, 1] + 1) * 48 / 2).T
            np.testing.assert_allclose(x, 32 - corner[1], atol=1.0)
            np.testing.assert_allclose(y, 32 - corner[0], atol=1.0)
            assert mask[clip, :, 0, 1].tolist() == [1, 1, 1, 1]
    assert len(corners) > 5  # not the centre crop (8, 8) of the fixed clips
    assert fixed_frames < 3  # the long videos' frames are not the fixed offsets


def test_random_test_clips_are_reproducible_per_video(block_shards):
    clips = _random_test_clips(block_shards, seed=7)
    again = _random_test_clips(block_shards, seed=7, batch_size=2)
    alone = _random_test_clips(block_shards[1:], seed=7)  # vid3 and vid4 only
    other = _random_test_clips(block_shards, seed=8)
    for video_id, (video, pose, _) in clips.items():
        np.testing.assert_array_equal(again[video_id][0], video)
        np.testing.assert_array_equal(again[video_id][1], pose)
        if video_id in alone:
            np.testing.assert_array_equal(alone[video_id][0], video)
    assert any(not np.array_equal(other[video_id][0], video) for video_id, (video, _, _) in clips.items())
    with pytest.raises(ValueError, match="test_sampling.*'shuffled'"):
        pipeline.build_dataset(block_shards, "test", test_sampling="shuffled")


def test_train_is_deterministic_in_seed_and_drops_remainder(grey_shards):
    files, _ = grey_shards

    def run(seed):
        dataset = pipeline.build_dataset(files, "train", num_frames=4, image_size=48,
                                         batch_size=2, seed=seed, shuffle_buffer=8)
        return [(b[1]["label"].numpy().tolist(), _grey_levels(b[0]["video"].numpy()))
                for b in dataset]

    first, again = run(5), run(5)
    assert len(first) == 2  # 5 videos, batch 2, remainder dropped
    for (labels_a, frames_a), (labels_b, frames_b) in zip(first, again):
        assert labels_a == labels_b
        np.testing.assert_array_equal(frames_a, frames_b)
    runs = [first] + [run(seed) for seed in range(3)]
    orders = {tuple(l for batch in r for l in batch[0]) for r in runs}
    assert len(orders) > 1  # shuffled
    for result in runs:
        for _, frames in result:
            assert np.all(np.diff(frames, axis=1) >= 0)  # sorted within clip


def test_train_flip_moves_pose_with_the_pixels(tmp_path):
    """A white 8x8 block drawn at joint 4; random crop + flip keep them together."""
    records = []
    for number in range(4):
        frame = np.zeros((64, 64, 3), np.uint8)
        frame[16:24, 40:48] = 255
        uv = np.zeros((3, 2, 25, 2), np.float32)
        mask = np.zeros((3, 2, 25), bool)
        uv[:, 0, 4] = (44 / 64, 20 / 64)
        mask[:, 0, 4] = True
        records.append(make_record(f"v{number}", 0, [frame] * 3, uv, mask))
    files = [write_records(tmp_path / "flip.tfrecord", records)]
    dataset = pipeline.build_dataset(files, "train", num_frames=2, image_size=48,
                                     batch_size=4, seed=3, flip=True, repeat=True)
    flipped_seen = set()
    for inputs, targets in dataset.take(4):
        video, pose = inputs["video"].numpy(), targets["pose"].numpy()
        mask = targets["pose_mask"].numpy()
        for b in range(4):
            present = np.nonzero(mask[b, 0, 0])[0].tolist()
            assert present in ([4], [NTU_FLIP_PARTNERS[4]])
            flipped_seen.add(present[0] != 4)
            x, y = (pose[b, 0, 0, present[0]] + 1) * 48 / 2
            rows, cols = np.nonzero(video[b, 0, :, :, 0] > 128)
            assert abs(cols.mean() + 0.5 - x) < 1.0 and abs(rows.mean() + 0.5 - y) < 1.0
    assert flipped_seen == {True, False}


def test_bad_arguments_are_rejected(grey_shards, tmp_path):
    files, _ = grey_shards
    with pytest.raises(ValueError, match="mode"):
        pipeline.build_dataset(files, "validation")
    with pytest.raises(ValueError, match="flip"):
        pipeline.build_dataset(files, "eval", flip=True)
    with pytest.raises(FileNotFoundError, match="nothing"):
        pipeline.build_dataset(str(tmp_path / "nothing*.tfrecord"), "eval")
    with pytest.raises(pipeline.SplitNotFoundError, match="xsub"):
        pipeline.list_split_files(str(tmp_path), "xsub", "train")


def test_count_records(grey_shards):
    files, _ = grey_shards
    assert pipeline.count_records(files) == 5


def test_label_map_keeps_the_listed_classes_and_relabels_them_in_order(grey_shards):
    files, _ = grey_shards
    # Stored labels are 10..14; keep 14 and 11 as classes 0 and 1.
    dataset = pipeline.build_dataset(files, "test", num_frames=2, image_size=48, batch_size=8,
                                     clips_per_video=1, label_map=[14, 11])
    (inputs, targets), = list(dataset)
    ids = [name.decode() for name in targets["video_id"].numpy()]
    assert dict(zip(ids, targets["label"].numpy().tolist())) == {"vid4": 0, "vid1": 1}
    training = pipeline.build_dataset(files, "train", num_frames=2, image_size=48, batch_size=1,
                                      label_map=[12], seed=3)
    assert [int(t["label"][0]) for _, t in training] == [0]


@pytest.mark.parametrize("label_map", [[], [3, 3], [-1]])
def test_label_map_rejects_bad_lists(grey_shards, label_map):
    with pytest.raises(ValueError, match="label_map"):
        pipeline.build_dataset(grey_shards[0], "eval", image_size=48, label_map=label_map)


def test_count_split_videos_with_a_label_map(tmp_path):
    index = {"num_videos": 7, "files": [], "class_counts": {"0": 3, "4": 2, "9": 2}}
    split_dir = tmp_path / "splits" / "xsub"
    split_dir.mkdir(parents=True)
    (split_dir / "test.json").write_text(json.dumps(index))
    assert pipeline.count_split_videos(str(tmp_path), "xsub", "test") == 7
    assert pipeline.count_split_videos(str(tmp_path), "xsub", "test", label_map=[9, 0]) == 5
    assert pipeline.count_split_videos(str(tmp_path), "xsub", "test", label_map=[5]) == 0
