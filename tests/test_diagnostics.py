"""The attention diagnostics on hand-made glimpses with known answers."""

import json
import math

import numpy as np
import pytest

from glimpse_keras import diagnostics


def _locations(centres, scale=0.5):
    """(N, T, G, 2) centres -> (N, T, G, 4) with a constant scale."""
    centres = np.asarray(centres, np.float64)
    return np.concatenate([centres, np.full(centres.shape, scale)], axis=-1)


def _pose(joints):
    """(N, T, J, 2) joints of one person -> pose (N, T, 1, J, 2) and an all-visible mask."""
    joints = np.asarray(joints, np.float64)[:, :, None]
    return joints, np.ones(joints.shape[:-1])


def test_on_body_rate_counts_centres_near_a_visible_joint():
    # One frame, one joint at the origin; glimpses at distance 0.1 (on), 0.149 (on) and 0.3 (off).
    locations = _locations([[[[0.1, 0.0], [0.0, -0.149], [0.3, 0.0]]]])
    pose, mask = _pose([[[[0.0, 0.0]]]])
    assert diagnostics.on_body_rate(locations, pose, mask) == pytest.approx(2 / 3)
    assert diagnostics.on_body_rate(locations, pose, mask, radius=0.35) == 1.0


def test_on_body_rate_ignores_hidden_joints_and_frames_without_body():
    # Frame 0: the only joint near the glimpse is hidden -> off; frame 1: no visible joint -> left out.
    locations = _locations([[[[0.0, 0.0]], [[0.0, 0.0]]]])
    pose = np.zeros((1, 2, 1, 2, 2))
    pose[0, 0, 0, 1] = [0.9, 0.9]
    mask = np.array([[[[0.0, 1.0]], [[0.0, 0.0]]]])
    assert diagnostics.on_body_rate(locations, pose, mask) == 0.0
    mask[:, 0] = 0.0
    assert diagnostics.on_body_rate(locations, pose, mask) is None


def test_on_hands_rate_counts_the_hand_joints_only():
    # 25 joints: the head (slot 3) at (0, -0.8), the right hand (slot 11) at (0.5, 0.2), the other
    # joints far away. Glimpses on the head, on the hand, and 0.1 from the hand.
    joints = np.full((1, 1, 25, 2), 5.0)
    joints[0, 0, 3] = [0.0, -0.8]
    joints[0, 0, 11] = [0.5, 0.2]
    pose, mask = _pose(joints)
    locations = _locations([[[[0.0, -0.8], [0.5, 0.2], [0.6, 0.2]]]])
    assert diagnostics.on_body_rate(locations, pose, mask) == 1.0
    assert diagnostics.on_hands_rate(locations, pose, mask) == pytest.approx(2 / 3)
    mask[..., [6, 7, 10, 11, 21, 22, 23, 24]] = 0.0  # no visible hand joint: no frame to count
    assert diagnostics.on_hands_rate(locations, pose, mask) is None
    # A skeleton whose hands are unknown (here 3 joints) has no rate.
    assert diagnostics.on_hands_rate(locations, pose[..., :3, :], mask[..., :3]) is None
    figures = diagnostics.attention_diagnostics(locations, np.ones((1, 1, 1, 3)), pose, np.ones((1, 1, 1, 25)))
    assert figures["on_hands_rate"] == pytest.approx(2 / 3)


def test_input_dependence_of_a_shared_schedule_is_zero():
    # Every video sweeps the same path over time: no dependence on the video.
    path = np.linspace(-0.8, 0.8, 5)
    centres = np.stack([np.stack([path, -path], -1)[:, None]] * 4)  # (4 videos, 5 frames, 1 glimpse, 2)
    assert diagnostics.input_dependence(_locations(centres)) == 0.0


def test_input_dependence_known_ratio():
    # Two videos: x = +-a constant in time (std across videos a), plus a time ramp shared by both
    # with std b across frames: the ratio is a / b on x; y is 0 everywhere (std 0 both ways).
    a, frames = 0.3, np.array([-0.2, 0.2])
    b = 0.2
    centres = np.zeros((2, 2, 1, 2))
    centres[0, :, 0, 0] = a + frames
    centres[1, :, 0, 0] = -a + frames
    # Across videos: std over {a + f, -a + f} = a for each frame; y contributes 0 -> mean a / 2.
    # Across frames: std over {+-a - 0.2, +-a + 0.2} = b for each video; y 0 -> mean b / 2.
    assert diagnostics.input_dependence(_locations(centres)) == pytest.approx(a / b)
    assert diagnostics.location_spreads(_locations(centres)) == pytest.approx((a / 2, b / 2))


def test_input_dependence_of_video_specific_still_glimpses_is_infinite_and_json_safe():
    centres = np.zeros((3, 4, 2, 2))
    centres[:, :, :, 0] = np.array([-0.5, 0.0, 0.5])[:, None, None]
    value = diagnostics.input_dependence(_locations(centres))
    assert value == math.inf
    assert diagnostics.input_dependence(_locations(centres[:1])) is None


def test_diversity_is_the_mean_pairwise_distance():
    # A 3-4-5 triangle: distances 3, 4, 5 (scaled by 0.1) -> mean 0.4.
    locations = _locations([[[[0.0, 0.0], [0.3, 0.0], [0.0, 0.4]]]])
    assert diagnostics.diversity(locations) == pytest.approx(0.4)
    assert diagnostics.diversity(locations[:, :, :1]) == 0.0


def test_assignment_statistics_one_hot_and_uniform():
    one_hot = np.zeros((2, 3, 3, 3))  # (N, T, C, G): worker c takes glimpse c
    for worker in range(3):
        one_hot[:, :, worker, worker] = 1.0
    figures = diagnostics.assignment_statistics(one_hot, "glimpses")
    assert figures["assignment_max_weight"] == pytest.approx(1.0)
    assert figures["assignment_entropy"] == pytest.approx(0.0)
    assert figures["worker_shares"] == pytest.approx([1 / 3] * 3)
    uniform = np.full((2, 3, 3, 4), 0.25)
    figures = diagnostics.assignment_statistics(uniform, "glimpses")
    assert figures["assignment_max_weight"] == pytest.approx(0.25)
    assert figures["uniform_weight"] == pytest.approx(0.25)
    assert figures["assignment_entropy"] == pytest.approx(1.0)
    # Every glimpse ties across workers: the lowest index takes it.
    assert figures["worker_shares"] == pytest.approx([1.0, 0.0, 0.0])


def test_assignment_statistics_along_workers():
    # Each glimpse spreads 0.7 / 0.3 over two workers; glimpse 0 goes mostly to worker 1.
    weights = np.zeros((1, 1, 2, 2))
    weights[0, 0, :, 0] = [0.3, 0.7]
    weights[0, 0, :, 1] = [0.7, 0.3]
    figures = diagnostics.assignment_statistics(weights, "workers")
    assert figures["assignment_max_weight"] == pytest.approx(0.7)
    expected_entropy = -(0.3 * math.log(0.3) + 0.7 * math.log(0.7)) / math.log(2)
    assert figures["assignment_entropy"] == pytest.approx(expected_entropy)
    assert figures["worker_shares"] == pytest.approx([0.5, 0.5])


def test_accumulator_merges_clip_axes_and_matches_one_call():
    rng = np.random.default_rng(0)
    locations = rng.uniform(-1, 1, (4, 3, 5, 2, 4))  # (N, K clips, T, G, 4)
    assignments = rng.uniform(0, 1, (4, 3, 5, 2, 2))
    pose = rng.uniform(-1, 1, (4, 3, 5, 2, 25, 2))
    mask = (rng.uniform(size=(4, 3, 5, 2, 25)) > 0.3).astype("float32")
    accumulator = diagnostics.AttentionDiagnostics(assign_axis="glimpses")
    assert accumulator.result() is None
    for batch in (slice(0, 1), slice(1, 4)):
        accumulator.update(locations[batch], assignments[batch], pose[batch], mask[batch])
    merged = accumulator.result()
    direct = diagnostics.attention_diagnostics(
        locations.reshape(12, 5, 2, 4), assignments.reshape(12, 5, 2, 2), pose.reshape(12, 5, 2, 25, 2),
        mask.reshape(12, 5, 2, 25))
    assert merged["clips"] == 12
    for key, value in direct.items():
        if key == "scale_samples":
            np.testing.assert_allclose(merged[key], value, atol=2e-4)
        else:
            assert merged[key] == pytest.approx(value, rel=1e-5), key
    json.dumps(merged)


def test_scale_samples_are_taken_evenly_over_every_glimpse():
    locations = np.zeros((2, 3, 2, 4))  # 12 glimpses
    locations[..., 2] = np.arange(12).reshape(2, 3, 2) / 100.0 + 0.01
    locations[..., 3] = 0.5
    assert diagnostics.scale_samples(locations, count=4) == [[0.01, 0.5], [0.05, 0.5], [0.08, 0.5], [0.12, 0.5]]
    assert len(diagnostics.scale_samples(locations)) == 12
    assert diagnostics.scale_samples(np.zeros((0, 3, 2, 4))) == []
    figures = diagnostics.attention_diagnostics(locations, np.ones((2, 3, 1, 2)))
    assert figures["scale_samples"] == diagnostics.scale_samples(locations)


def test_scale_quartiles_and_format():
    locations = np.zeros((2, 2, 1, 4))
    locations[..., 2] = [[[0.1], [0.2]], [[0.3], [0.4]]]
    locations[..., 3] = 0.5
    figures = diagnostics.attention_diagnostics(locations, np.ones((2, 2, 1, 1)))
    assert figures["scale_x_median"] == pytest.approx(0.25)
    assert figures["scale_y_median"] == pytest.approx(0.5)
    assert figures["scale_median"] == pytest.approx(0.45)
    assert figures["on_body_rate"] is None
    lines = diagnostics.format_diagnostics(figures)
    assert any("median glimpse scale" in line and line.endswith("0.45") for line in lines)
    assert any(line.endswith("n/a") for line in lines)
    assert any("s_x 0.25, s_y 0.50" in line for line in lines)
    assert any("the two stds" in line and line.endswith("0.000 / 0.000") for line in lines)
    # A report written before the spreads existed still prints.
    old = {key: value for key, value in figures.items() if not key.startswith("location_std")}
    assert len(diagnostics.format_diagnostics(old)) == len(lines) - 1


# -- fixed schedules: how much of the hands a placement that ignores the video covers ----------------------
RIGHT, LEFT = diagnostics.HAND_SIDE_SLOTS[25]


def _hands_pose(right, left):
    """(N, T, 2) right and left hand positions -> pose (N, T, 1, 25, 2) with every joint of a hand at
    its position (the other joints far off and hidden), and the mask."""
    right, left = np.asarray(right, np.float64), np.asarray(left, np.float64)
    pose = np.full(right.shape[:2] + (1, 25, 2), 9.0)
    mask = np.zeros(right.shape[:2] + (1, 25))
    pose[:, :, 0, list(RIGHT)] = right[:, :, None]
    pose[:, :, 0, list(LEFT)] = left[:, :, None]
    mask[:, :, 0, list(RIGHT) + list(LEFT)] = 1.0
    return pose, mask


def test_hand_side_slots_are_the_hands_of_the_attraction_loss():
    from glimpse_keras import losses

    for joints, (right, left) in diagnostics.HAND_SIDE_SLOTS.items():
        assert sorted(right + left) == sorted(losses.attraction_joint_slots("hands", joints))


def test_mean_hands_schedule_is_the_mean_of_each_hand_and_their_midpoint():
    # Two videos, two frame indices. t = 0: right hands at (0.2, 0.1) and (0.4, 0.3), left hands at
    # (-0.4, 0.0) and (-0.2, 0.2). t = 1: the left hand of video 1 is hidden and its coordinates junk.
    right = [[[0.2, 0.1], [0.0, 0.5]], [[0.4, 0.3], [0.2, 0.5]]]
    left = [[[-0.4, 0.0], [-0.6, -0.5]], [[-0.2, 0.2], [5.0, 5.0]]]
    pose, mask = _hands_pose(right, left)
    mask[1, 1, 0, list(LEFT)] = 0.0
    schedule = diagnostics.mean_hands_schedule(pose, mask)
    assert schedule.shape == (2, 3, 2)
    np.testing.assert_allclose(schedule[0], [[0.3, 0.2], [-0.3, 0.1], [0.0, 0.15]])
    np.testing.assert_allclose(schedule[1], [[0.1, 0.5], [-0.6, -0.5], [-0.25, 0.0]])
    # A hand never visible at t takes the other hand's mean; no hand at all: the frame centre.
    mask[:, 1, 0, list(LEFT)] = 0.0
    np.testing.assert_allclose(diagnostics.mean_hands_schedule(pose, mask)[1], [[0.1, 0.5]] * 3)
    mask[:, 1] = 0.0
    np.testing.assert_allclose(diagnostics.mean_hands_schedule(pose, mask)[1], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="3-joint"):
        diagnostics.mean_hands_schedule(pose[..., :3, :], mask[..., :3])


def test_fixed_schedule_finds_the_clusters_of_the_hands():
    # Frame index 0: the hands of 30 videos lie in three tight clusters; frame index 1: in one spot.
    rng = np.random.default_rng(1)
    centres = np.array([[-0.6, 0.2], [0.1, -0.5], [0.5, 0.4]])
    which = np.arange(30) % 3
    right = np.zeros((30, 2, 2))
    right[:, 0] = centres[which] + rng.uniform(-0.01, 0.01, (30, 2))
    right[:, 1] = [0.3, 0.3]
    pose, mask = _hands_pose(right, right)
    schedule = diagnostics.fixed_schedule(pose, mask, 3)
    assert schedule.shape == (2, 3, 2)
    for k in range(3):  # sorted by x: the clusters' order
        np.testing.assert_allclose(schedule[0, k], right[which == k, 0].mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(schedule[1], [[0.3, 0.3]] * 3)  # fewer distinct points than G: repeated
    np.testing.assert_array_equal(schedule, diagnostics.fixed_schedule(pose, mask, 3))
    assert diagnostics.schedule_coverage(pose, mask, schedule, radius=0.05) == 1.0
    with pytest.raises(ValueError, match="num_glimpses"):
        diagnostics.fixed_schedule(pose, mask, 0)


def test_schedule_coverage_counts_visible_hand_joints_near_the_same_frame_index():
    # One video, two frame indices, one schedule point per t: (0, 0) at t = 0 and (0.5, 0.5) at t = 1.
    # t = 0: right hand 0.1 from it (in), left hand 0.149 from it (in). t = 1: right hand on the
    # point of t = 0 but 0.71 from its own (out), left hand 0.3 from it (out).
    pose, mask = _hands_pose([[[0.1, 0.0], [0.0, 0.0]]], [[[0.0, -0.149], [0.5, 0.8]]])
    schedule = np.array([[[0.0, 0.0]], [[0.5, 0.5]]])
    assert diagnostics.schedule_coverage(pose, mask, schedule) == pytest.approx(0.5)
    assert diagnostics.schedule_coverage(pose, mask, schedule, radius=0.35) == pytest.approx(0.75)
    # Hidden hand joints do not count; the other joints never count.
    mask[0, 1, 0, list(RIGHT)] = 0.0
    mask[0, :, 0, 3] = 1.0
    pose[0, :, 0, 3] = [0.5, 0.5]
    assert diagnostics.schedule_coverage(pose, mask, schedule) == pytest.approx(2 / 3)
    mask[...] = 0.0
    assert diagnostics.schedule_coverage(pose, mask, schedule) is None
    with pytest.raises(ValueError, match="frame indices"):
        diagnostics.schedule_coverage(pose, mask, schedule[:1])


def test_hand_spread_is_the_std_across_videos_of_the_hands_centre():
    # Two videos: hands centred at x = +-0.3 at both frame indices, y the same in both.
    pose, mask = _hands_pose([[[0.4, 0.2]] * 2, [[-0.2, 0.2]] * 2], [[[0.2, 0.2]] * 2, [[-0.4, 0.2]] * 2])
    assert diagnostics.hand_spread(pose, mask) == pytest.approx((0.3, 0.0))
    assert diagnostics.hand_spread(pose[:1], mask[:1]) is None
