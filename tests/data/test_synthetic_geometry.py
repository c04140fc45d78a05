"""Tests of the synthetic NTU generator's scene geometry: camera rigs per setup, where the performer
stands, which setup films a performance, and the demo preset's spread of hand positions."""

import hashlib

import numpy as np
import pytest

from glimpse_keras.data.ntu import XSUB60_TRAIN_SUBJECTS
from glimpse_keras.data.synthetic import kinematics as K
from glimpse_keras.data.synthetic import ntu_writer, props
from glimpse_keras.data.synthetic.performance import pair_offset
from glimpse_keras.data.synthetic.presets import NTU_DEFAULTS, SyntheticConfigError, resolve_config
from glimpse_keras.data.synthetic.scene import ntu_camera, ntu_setup_geometry
from glimpse_keras.data.synthetic.seeding import rng_for

SEED = 0
_NO_DEFECTS = {name: [0.0, 0] for name in NTU_DEFAULTS["defects"]}


def _digest(data):
    return hashlib.sha1(data).hexdigest()[:16]


# (overrides of the tiny preset, sample) -> sha1 prefixes of (skeleton text, rendered frames), computed with
# the generator before the geometry keys existed (commit 77bc0db). A pair (A058, A050, A059) and clutter are
# among them.
_BEFORE_THE_GEOMETRY_KEYS = [
    ({}, ntu_writer.NtuTask(1, 1, 1, 1, 8), ("be532cfda476c906", "000e5789e1c91016")),
    ({}, ntu_writer.NtuTask(1, 2, 3, 1, 58), ("dc3c59f9c3673b88", "5344fd172f0ae51e")),
    ({"setups": [1, 5], "replications": [1, 2], "classes": [50, 59], "subjects": [2], "clutter_props": [1, 3],
      "size": [64, 36]}, ntu_writer.NtuTask(5, 3, 2, 2, 50), ("3bf5fe6522ee628b", "432d0244d67b2b22")),
    ({"setups": [1, 5], "replications": [1, 2], "classes": [50, 59], "subjects": [2], "clutter_props": [1, 3],
      "size": [64, 36]}, ntu_writer.NtuTask(1, 1, 2, 2, 59), ("e521aa7228676a25", "896b4df754c42f82")),
]


@pytest.mark.parametrize("overrides, task, expected", _BEFORE_THE_GEOMETRY_KEYS)
def test_default_geometry_reproduces_the_samples_of_before(overrides, task, expected):
    config = resolve_config("ntu", "tiny", overrides)
    # Every sample of these configs, with the defects plan_ntu gives it.
    task = next(planned for planned in ntu_writer.plan_ntu(SEED, config) if planned.name == task.name)
    sample = ntu_writer.render_ntu_sample(SEED, config, task)
    assert (_digest(sample.skeleton.encode()), _digest(sample.frames.tobytes())) == expected


def test_camera_rig_follows_the_configured_ranges():
    config = resolve_config("ntu", "tiny", {"camera_height": [1.7, 1.7], "camera_distance": [3.5, 3.5],
                                            "camera_look_height": [0.6, 0.6], "camera_aim_jitter": 0.0})
    assert ntu_setup_geometry(SEED, 4, config) == {"height": 1.7, "distance": 3.5, "look_height": 0.6}
    for camera in (1, 2, 3):
        rig = ntu_camera(SEED, 4, camera, config)
        position, forward = np.array(rig.position), np.array(rig.axes[2])
        assert position[1] == pytest.approx(1.7)
        assert 3.5 * 0.97 <= np.hypot(position[0], position[2]) <= 3.5 * 1.03
        # Without jitter, the camera aims at the room's centre at the look height.
        along = -position[2] / forward[2]
        np.testing.assert_allclose(position + along * forward, [0.0, 0.6, 0.0], atol=1e-9)
    # Ranges: every setup draws inside them, and the setups differ.
    wide = resolve_config("ntu", "tiny", {"camera_height": [0.5, 2.0], "camera_distance": [2.7, 3.9]})
    rigs = [ntu_setup_geometry(SEED, setup, wide) for setup in range(1, 18)]
    assert all(0.5 <= rig["height"] <= 2.0 and 2.7 <= rig["distance"] <= 3.9 for rig in rigs)
    assert np.ptp([rig["height"] for rig in rigs]) > 0.7 and np.ptp([rig["distance"] for rig in rigs]) > 0.6


def test_performer_offset_sets_where_the_performer_stands():
    def spots(offset):
        config = resolve_config("ntu", "tiny", {"performer_offset": offset})
        return np.array([ntu_writer.ntu_performance(SEED, config, ntu_writer.NtuTask(1, 1, subject, 1, 23)).spot
                         for subject in range(1, 31)])

    np.testing.assert_array_equal(spots([0.0, 0.0]), 0.0)
    wide = spots([1.2, 0.3])
    assert np.abs(wide[:, 0]).max() <= 1.2 and np.abs(wide[:, 2]).max() <= 0.3 and np.all(wide[:, 1] == 0.0)
    assert np.abs(wide[:, 0]).max() > 0.8 and np.abs(wide[:, 2]).max() > 0.2


def test_a_pair_stands_no_further_out_than_one_performer():
    assert pair_offset((1.2, 0.5), 1.1) == pytest.approx((0.65, 0.15))
    assert pair_offset((0.15, 0.15), 3.0) == pytest.approx((0.15, 0.15))  # today's range stays
    assert pair_offset((0.1, 0.05), 1.0) == pytest.approx((0.1, 0.05))
    assert pair_offset((3.0, 0.0), 1.0) == pytest.approx((2.5, 0.0))


def test_two_person_classes_keep_both_people_in_view_in_the_demo():
    # The demo's geometry for every two-person class: the hands and torso of both people stay inside
    # the model's view (a 128 px centre crop of the frame squashed to 144 px) in nearly every frame.
    config = resolve_config("ntu", "demo", {"classes": list(range(50, 61)), "subjects": [3, 6, 7],
                                            "defects": _NO_DEFECTS})
    joints = [K.SPINE_BASE, K.SPINE_MID, K.SPINE_SHOULDER, K.WRIST_L, K.HAND_L, K.WRIST_R, K.HAND_R]
    inside = []
    for task in ntu_writer.plan_ntu(SEED, config):
        performance = ntu_writer.ntu_performance(SEED, config, task)
        camera = ntu_camera(SEED, task.setup, task.camera, config)
        assert len(performance.persons) == 2
        for person in performance.persons:
            pixels = camera.project(camera.to_camera(person.joints[:, joints]))
            crop = (pixels / [1920.0, 1080.0] * 144 - 8) / 128 * 2 - 1
            inside.append(np.all(np.abs(crop) <= 1.0, axis=-1).ravel())
    assert np.concatenate(inside).mean() > 0.98


def test_clutter_keeps_clear_of_the_performer_wherever_they_stand():
    for performer_x in (-1.2, -0.4, 0.0, 0.7, 1.2):
        for key in range(20):
            placed = props.place_clutter(rng_for(SEED, "clutter", key), (3, 3), performer_x=performer_x)
            assert all(abs(prop.position[0] - performer_x) >= props.CLUTTER_CLEARANCE for prop in placed)
    # Near the room's centre the clearance moves nothing: the props lie where they always did.
    for key in range(20):
        assert (props.place_clutter(rng_for(SEED, "clutter", key), (3, 3), performer_x=0.15)
                == props.place_clutter(rng_for(SEED, "clutter", key), (3, 3)))


def test_per_performance_assignment_films_each_performance_in_one_setup():
    overrides = {"setups": list(range(1, 18)), "subjects": [1, 2, 3, 4], "replications": [1, 2],
                 "classes": [1, 2, 3], "defects": _NO_DEFECTS}
    every = ntu_writer.plan_ntu(SEED, resolve_config("ntu", "tiny", overrides))
    assert len(every) == 17 * 3 * 4 * 2 * 3
    tasks = ntu_writer.plan_ntu(SEED, resolve_config("ntu", "tiny", dict(overrides, setup_assignment="per_performance")))
    assert len(tasks) == 3 * 4 * 2 * 3  # one setup, three cameras per performance
    setups = {}
    for task in tasks:
        setups.setdefault((task.subject, task.replication, task.action), set()).add((task.setup, task.camera))
    assert all(len(filmed) == 3 and len({setup for setup, _ in filmed}) == 1 for filmed in setups.values())
    used = {task.setup for task in tasks}
    assert used <= set(range(1, 18)) and len(used) >= 8
    assert {task.name for task in tasks} <= {task.name for task in every}
    again = ntu_writer.plan_ntu(SEED, resolve_config("ntu", "tiny", dict(overrides, setup_assignment="per_performance")))
    assert [task.name for task in again] == [task.name for task in tasks]
    other_seed = ntu_writer.plan_ntu(SEED + 1, resolve_config("ntu", "tiny", dict(overrides, setup_assignment="per_performance")))
    assert [task.name for task in other_seed] != [task.name for task in tasks]


def test_demo_preset_splits_and_framing():
    config = resolve_config("ntu", "demo")
    tasks = ntu_writer.plan_ntu(SEED, config)
    train = [task for task in tasks if task.subject in XSUB60_TRAIN_SUBJECTS]
    assert len(train) == 360 and len(tasks) - len(train) >= 625
    assert {task.setup for task in tasks} == set(range(1, 18))
    # Framing, on the first frame of every 17th video: the body fills a third to two thirds of the frame
    # height (median; none under a quarter or over 0.85), the hands lie inside the model's centre crop,
    # and they land in different parts of it from video to video.
    heights, hands = [], []
    for task in tasks[::17]:
        person = ntu_writer.ntu_performance(SEED, config, task).persons[0]
        camera = ntu_camera(SEED, task.setup, task.camera, config)
        pixels = camera.project(camera.to_camera(person.joints[0]))
        heights.append((pixels[:, 1].max() - pixels[:, 1].min()) / 1080.0)
        hands.append((pixels[[K.HAND_L, K.HAND_R]] / [1920.0, 1080.0] * 144 - 8) / 128 * 2 - 1)
    heights, hands = np.array(heights), np.concatenate(hands)
    assert 1 / 3 <= np.median(heights) <= 2 / 3 and heights.min() > 0.25 and heights.max() < 0.85
    assert np.mean(np.all(np.abs(hands) <= 1.0, axis=-1)) > 0.97
    assert hands.std(axis=0).min() > 0.15


@pytest.mark.parametrize("overrides, key", [
    ({"camera_height": [1.3, 0.8]}, "camera_height"),
    ({"camera_distance": [3.0]}, "camera_distance"),
    ({"camera_look_height": ["low", 1.0]}, "camera_look_height"),
    ({"camera_aim_jitter": -0.1}, "camera_aim_jitter"),
    ({"performer_offset": [-0.1, 0.1]}, "performer_offset"),
    ({"performer_offset": [2.5, 0.5]}, "performer_offset"),  # past the nearest camera
    ({"setup_assignment": "random"}, "setup_assignment"),
])
def test_geometry_config_errors_name_the_key_and_value(overrides, key):
    with pytest.raises(SyntheticConfigError, match=f"'{key}' = "):
        resolve_config("ntu", "tiny", overrides)
