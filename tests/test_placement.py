"""Placement controls: the swapped glimpse places on hand-made cases, and scoring a tiny model."""

import numpy as np
import pytest

from glimpse_keras import placement


def test_mean_schedule_is_the_mean_per_frame_and_glimpse():
    locations = np.zeros((2, 3, 4, 2, 4))  # N=2 videos, K=3 clips, T=4, G=2
    locations[0, ..., 0] = 0.2
    locations[1, ..., 0] = -0.6
    locations[:, :, 1, 1, 1] = 0.5
    schedule = placement.mean_schedule(locations)
    assert schedule.shape == (4, 2, 4)
    np.testing.assert_allclose(schedule[..., 0], -0.2)
    np.testing.assert_allclose(schedule[1, 1, 1], 0.5)
    np.testing.assert_allclose(schedule[0, 1, 1], 0.0)


def test_other_video_partners_are_a_seeded_derangement():
    for count in (2, 3, 10, 101):
        partners = placement.other_video_partners(count, seed=4)
        assert sorted(partners) == list(range(count))
        assert np.all(partners != np.arange(count))
    np.testing.assert_array_equal(placement.other_video_partners(10, 1), placement.other_video_partners(10, 1))
    np.testing.assert_array_equal(placement.other_video_partners(1), [0])


def test_random_centres_keep_the_scales_and_the_map():
    own = np.zeros((50, 2, 3, 4))
    own[..., 2] = 0.1
    own[..., 3] = 0.6
    moved = placement.random_centres(own, np.random.default_rng(0))
    np.testing.assert_array_equal(moved[..., 2:], own[..., 2:])
    assert np.abs(moved[..., 0]).max() <= 0.9 and np.abs(moved[..., 1]).max() <= 0.4
    assert np.abs(moved[..., 0]).max() > 0.8 and np.abs(moved[..., 1]).max() > 0.3


def _pose_with_hands(right, left, second_right=None):
    """One frame, two persons, 25 joints: the hand joints of each side at one point."""
    pose = np.zeros((2, 25, 2))
    mask = np.zeros((2, 25))
    for person, side, point in ((0, "right", right), (0, "left", left), (1, "right", second_right)):
        if point is None:
            continue
        slots = list(placement.HAND_SLOTS[25][side])
        pose[person, slots] = point
        mask[person, slots] = 1.0
    return pose, mask


def test_hand_centres_average_the_visible_joints_of_each_hand():
    pose, mask = _pose_with_hands((0.5, 0.1), (-0.5, 0.2))
    pose[0, 10] = (0.9, 0.1)  # the right wrist apart from the other right-hand joints
    mask[0, 24] = 0.0  # the right thumb hidden
    centres, visible = placement.hand_centres(pose, mask)
    np.testing.assert_allclose(centres[0], [(0.9 + 0.5 + 0.5) / 3, 0.1])
    np.testing.assert_allclose(centres[1], [-0.5, 0.2])
    np.testing.assert_array_equal(visible, [True, True, False, False])
    with pytest.raises(ValueError, match="18"):
        placement.hand_centres(np.zeros((1, 18, 2)), np.ones((1, 18)))


def test_hand_joint_oracle_puts_glimpse_g_on_the_g_th_visible_hand():
    own = np.tile(np.array([0.0, 0.0, 0.2, 0.3]), (3, 3, 1))  # T=3 frames, G=3 glimpses
    frames = [_pose_with_hands((0.5, 0.1), (-0.5, 0.2)),
              _pose_with_hands((0.3, -0.4), None, second_right=(0.7, 0.7)),
              _pose_with_hands(None, None)]
    pose = np.stack([frame[0] for frame in frames])
    mask = np.stack([frame[1] for frame in frames])
    oracle = placement.hand_joint_locations(own, pose, mask)
    np.testing.assert_allclose(oracle[0, :, :2], [[0.5, 0.1], [-0.5, 0.2], [0.5, 0.1]])
    np.testing.assert_allclose(oracle[1, :, :2], [[0.3, -0.4], [0.7, 0.7], [0.3, -0.4]])
    np.testing.assert_allclose(oracle[2], own[2])  # no visible hand: the own places
    np.testing.assert_allclose(oracle[..., 2:], own[..., 2:])


def test_control_locations_names_and_shapes():
    rng = np.random.default_rng(0)
    own = rng.uniform(-0.5, 0.5, (2, 1, 3, 2, 4))
    schedule = placement.mean_schedule(own)
    np.testing.assert_allclose(placement.control_locations("own", own), own.astype(np.float32))
    mean = placement.control_locations("mean_schedule", own, schedule=schedule)
    np.testing.assert_allclose(mean[0], mean[1])
    partners = placement.control_locations("other_video", own, partners=own[::-1])
    np.testing.assert_allclose(partners, own[::-1].astype(np.float32))
    with pytest.raises(ValueError, match="'centre'"):
        placement.control_locations("centre", own)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A converted tiny dataset and a tiny (untrained) Glimpse Clouds model of its config."""
    import os

    from glimpse_keras import config as config_lib
    from glimpse_keras.experiment import Experiment

    root = tmp_path_factory.mktemp("placement")
    config = config_lib.load_config(
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "tiny.yaml"))
    experiment = Experiment(config)
    experiment.prepare_data(str(root / "data_cache"))
    stage = config.train.stages[-1]
    return experiment, experiment.build_stage_model(stage, compile_model=False)


@pytest.mark.slow
def test_evaluation_with_placement_controls_reproduces_its_own_score(tiny_run):
    from glimpse_keras import evaluation

    experiment, model = tiny_run
    report = evaluation.evaluate_split(model, experiment, progress=False, placement_controls=True)
    controls = report["attention"]["placement_controls"]
    assert controls["placements"] == list(placement.PLACEMENTS)
    # The own places reproduce the model's predictions video by video.
    own_correct = [int(p == y) for p, y in zip(report["predictions"], report["labels"])]
    assert controls["correct"]["own"] == own_correct
    assert controls["top1"]["own"] == report["top1"]
    assert all(len(values) == report["videos"] for values in controls["correct"].values())
    assert set(controls["top1"]) == set(placement.PLACEMENTS)
    # A second evaluation gives the same swaps (seeded).
    again = evaluation.evaluate_split(model, experiment, progress=False, placement_controls=True)
    assert again["attention"]["placement_controls"]["correct"] == controls["correct"]
    assert placement.format_placement_controls(controls)[0].strip().startswith("the model's own")
