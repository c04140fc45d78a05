"""Hand-checked numbers for the pure video ops."""

import numpy as np
import pytest
import tensorflow as tf

from glimpse_keras.data import video_ops
from glimpse_keras.data.ntu import NTU_FLIP_PARTNERS
from tests.data.fake_video_records import encode_jpeg


def _np(tensor):
    return np.asarray(tensor)


# === Temporal sampling ===


@pytest.mark.parametrize(
    "length, count, expected",
    [
        (16, 8, [1, 3, 5, 7, 9, 11, 13, 15]),
        (10, 4, [1, 3, 6, 8]),  # floor(2.5 * (t + 0.5))
        (4, 8, [0, 0, 1, 1, 2, 2, 3, 3]),  # shorter than T: repetition
        (1, 8, [0] * 8),
        (3, 4, [0, 1, 1, 2]),  # floor(0.75 * (t + 0.5))
    ],
)
def test_eval_indices_are_bin_centres(length, count, expected):
    assert _np(video_ops.eval_frame_indices(length, count)).tolist() == expected


def test_test_indices_spread_clips_over_each_bin():
    two = _np(video_ops.test_frame_indices(16, 8, 2))
    assert two.tolist() == [list(range(0, 16, 2)), list(range(1, 16, 2))]
    five = _np(video_ops.test_frame_indices(10, 4, 5))
    # offsets (k + 0.5) / 5; index floor((t + offset) * 2.5)
    assert five.tolist() == [
        [0, 2, 5, 7],
        [0, 3, 5, 8],
        [1, 3, 6, 8],
        [1, 4, 6, 9],
        [2, 4, 7, 9],
    ]
    assert five.shape == (5, 4)
    short = _np(video_ops.test_frame_indices(2, 4, 3))
    assert short.tolist() == [[0, 0, 1, 1]] * 3
    one = _np(video_ops.test_frame_indices(10, 4, 1))
    assert one.tolist() == [_np(video_ops.eval_frame_indices(10, 4)).tolist()]


def test_train_indices_pick_one_frame_per_bin():
    seen = set()
    for seed in range(40):
        indices = _np(video_ops.train_frame_indices(16, 8, [seed, 7]))
        for t, index in enumerate(indices):
            assert index in (2 * t, 2 * t + 1)
        seen.add(tuple(indices))
    assert len(seen) > 20  # really random, not the centres every time
    bins = [_np(video_ops.train_frame_indices(9, 3, [s, 0])) for s in range(60)]
    assert {tuple(sorted(set(b[0] for b in bins)))} == {(0, 1, 2)}
    assert set(b[2] for b in bins) == {6, 7, 8}


def test_train_indices_repeat_when_video_is_shorter_than_clip():
    for seed in range(10):
        # bin t covers [t/2, (t+1)/2): always frame t // 2
        indices = _np(video_ops.train_frame_indices(4, 8, [seed, 1]))
        assert indices.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
        indices = _np(video_ops.train_frame_indices(3, 8, [seed, 1]))
        assert indices.min() >= 0 and indices.max() <= 2
        assert np.all(np.diff(indices) >= 0)
        assert indices[0] == 0 and indices[-1] == 2


def test_train_indices_are_deterministic_in_the_seed():
    first = _np(video_ops.train_frame_indices(100, 8, [3, 4]))
    again = _np(video_ops.train_frame_indices(100, 8, [3, 4]))
    other = _np(video_ops.train_frame_indices(100, 8, [3, 5]))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


# === Crops ===


def test_center_crop_offset():
    assert _np(video_ops.center_crop_offset(256, 256, 224)).tolist() == [16, 16]
    assert _np(video_ops.center_crop_offset(240, 320, 224)).tolist() == [8, 48]


def test_random_crop_offset_covers_the_valid_range():
    offsets = np.array(
        [_np(video_ops.random_crop_offset(256, 230, 224, [s, 9])) for s in range(200)]
    )
    assert offsets[:, 0].min() == 0 and offsets[:, 0].max() == 32
    assert set(offsets[:, 1]) == set(range(7))
    np.testing.assert_array_equal(
        video_ops.random_crop_offset(256, 256, 224, [1, 2]),
        video_ops.random_crop_offset(256, 256, 224, [1, 2]),
    )


def test_decode_and_crop_frames_decodes_the_sampled_frames_and_window():
    # Frame i: left half (columns < 32) grey 20*i, right half 200.
    jpegs = []
    for i in range(5):
        frame = np.full((64, 64, 3), 200, np.uint8)
        frame[:, :32] = 20 * i
        jpegs.append(encode_jpeg(frame))
    indices = tf.constant([[4, 0, 0], [2, 2, 3]], tf.int32)
    crops = _np(video_ops.decode_and_crop_frames(tf.constant(jpegs), indices,
                                                 tf.constant([8, 24]), 16))
    assert crops.shape == (2, 3, 16, 16, 3) and crops.dtype == np.uint8
    left = crops[..., 4, :8, 0].mean(axis=-1)  # crop columns 0..7 = image 24..31
    right = crops[..., 4, 8:, 0].mean(axis=-1)  # image columns 32..39
    np.testing.assert_allclose(left, 20 * np.array([[4, 0, 0], [2, 2, 3]]), atol=3)
    np.testing.assert_allclose(right, 200, atol=3)


def test_maybe_flip_frames():
    frames = tf.reshape(tf.range(2 * 3 * 4, dtype=tf.int32), [1, 2, 3, 4])
    flipped = _np(video_ops.maybe_flip_frames(frames, tf.constant(True)))
    np.testing.assert_array_equal(flipped, _np(frames)[:, :, ::-1, :])
    same = _np(video_ops.maybe_flip_frames(frames, tf.constant(False)))
    np.testing.assert_array_equal(same, _np(frames))


# === Pose transform ===


def _one_frame_pose(points):
    """points: list of (u, v) for J joints of one person -> (1, 1, J, 2)."""
    return tf.constant([[points]], tf.float32)


def test_transform_pose_hand_computed_points_and_outside_mask():
    uv = _one_frame_pose([(0.5, 0.25), (0.02, 0.5), (1.0, 1.0)])
    mask = tf.constant([[[True, True, False]]])
    pose, out_mask = video_ops.transform_pose(
        uv, mask, 256, 256, tf.constant([16, 10]), 224, tf.constant(False), (0, 2, 1)
    )
    pose, out_mask = _np(pose)[0, 0], _np(out_mask)[0, 0]
    # joint 0: x = 0.5*256 - 10 = 118 -> 2*118/224 - 1; y = 64 - 16 = 48
    np.testing.assert_allclose(pose[0], [2 * 118 / 224 - 1, 2 * 48 / 224 - 1], atol=1e-6)
    # joint 1: x = 5.12 - 10 < 0 -> outside the crop: masked, value zeroed
    # joint 2: absent in the input -> masked
    assert out_mask.tolist() == [1.0, 0.0, 0.0]
    np.testing.assert_array_equal(pose[1:], 0.0)
    assert out_mask.dtype == np.float32 and pose.dtype == np.float32


def test_transform_pose_non_square_stored_size():
    uv = _one_frame_pose([(0.25, 0.75)])
    pose, _ = video_ops.transform_pose(
        uv, tf.constant([[[True]]]), 240, 320, tf.constant([8, 48]), 224,
        tf.constant(False), (0,)
    )
    # x = 80 - 48 = 32, y = 180 - 8 = 172
    np.testing.assert_allclose(_np(pose)[0, 0, 0], [64 / 224 - 1, 344 / 224 - 1], atol=1e-6)


def test_transform_pose_flip_negates_x_and_swaps_partners():
    uv = _one_frame_pose([(0.5, 0.5), (0.25, 0.125), (0.75, 0.875)])
    mask = tf.constant([[[True, True, False]]])
    args = (256, 256, tf.constant([0, 0]), 256)
    plain, plain_mask = video_ops.transform_pose(uv, mask, *args, tf.constant(False), (0, 2, 1))
    flipped, flipped_mask = video_ops.transform_pose(uv, mask, *args, tf.constant(True), (0, 2, 1))
    plain, flipped = _np(plain)[0, 0], _np(flipped)[0, 0]
    np.testing.assert_allclose(plain[1], [-0.5, -0.75], atol=1e-6)
    # centre joint stays, x mirrored: 0 -> 0
    np.testing.assert_allclose(flipped[0], [0.0, 0.0], atol=1e-6)
    # joint 1 takes joint 2's values (absent -> masked) and joint 2 takes
    # joint 1's with x negated: x = 64 px -> mirrored 192 px -> +0.5
    assert _np(flipped_mask)[0, 0].tolist() == [1.0, 0.0, 1.0]
    np.testing.assert_allclose(flipped[2], [0.5, -0.75], atol=1e-6)
    np.testing.assert_array_equal(flipped[1], [0.0, 0.0])
    assert _np(plain_mask)[0, 0].tolist() == [1.0, 1.0, 0.0]


def test_transform_pose_flip_with_ntu_partners_swaps_left_and_right():
    uv = np.zeros((1, 2, 25, 2), np.float32)
    mask = np.zeros((1, 2, 25), bool)
    uv[0, 1, 4] = (0.3, 0.4)  # second person's ShoulderLeft
    mask[0, 1, 4] = True
    pose, out_mask = video_ops.transform_pose(
        tf.constant(uv), tf.constant(mask), 100, 100, tf.constant([0, 0]), 100,
        tf.constant(True), NTU_FLIP_PARTNERS,
    )
    pose, out_mask = _np(pose), _np(out_mask)
    assert NTU_FLIP_PARTNERS[4] == 8
    assert out_mask.sum() == 1 and out_mask[0, 1, 8] == 1  # now ShoulderRight
    np.testing.assert_allclose(pose[0, 1, 8], [-(2 * 0.3 - 1), 2 * 0.4 - 1], atol=1e-6)
