"""Tests for the N-UCLA reader: ids, labels, folder listing, skeletons, projection."""

import numpy as np
import pytest

from glimpse_keras.data import nucla
from glimpse_keras.data.errors import InvalidSampleIdError, SkeletonFormatError
from glimpse_keras.data.nucla import (NuclaSampleId, list_nucla_samples, nucla_pose_track,
                                      nucla_split, parse_nucla_sample_dir,
                                      parse_nucla_skeleton, project_nucla_joints,
                                      read_nucla_skeleton)


def body_block(header, xyz_of_joint, states=None):
    """A header line and 20 'x,y,z,state' lines."""
    lines = [str(header)]
    for joint in range(20):
        x, y, z = xyz_of_joint(joint)
        state = 2 if states is None else states[joint]
        lines.append(f"{x:g},{y:g},{z:g},{state}")
    return lines


def line_body(joint):
    return (0.01 * joint, 0.5 - 0.05 * joint, 2.0)


# ------------------------------------------------------------- ids & labels

def test_label_table_keeps_a11_and_a12():
    assert len(nucla.NUCLA_CLASS_NAMES) == 10
    assert sorted(nucla.NUCLA_ACTION_TO_LABEL.values()) == list(range(10))
    assert parse_nucla_sample_dir("view_1/a11_s01_e00").label == 8
    assert parse_nucla_sample_dir("view_1/a12_s01_e00").label == 9
    assert parse_nucla_sample_dir("view_1/a08_s01_e00").label == 6
    assert nucla.NUCLA_CLASS_NAMES[8] == "throw" and nucla.NUCLA_CLASS_NAMES[9] == "carry"


@pytest.mark.parametrize("path", ["/d/view_2/a07_s01_e00", "/d/view_2/a10_s03_e01",
                                  "/d/view_2/a13_s03_e01"])
def test_unknown_actions_are_rejected(path):
    with pytest.raises(InvalidSampleIdError, match="is not an N-UCLA action"):
        parse_nucla_sample_dir(path)


def test_sample_dir_parsing():
    sample = parse_nucla_sample_dir("/data/multiview_action/view_3/a02_s09_e04/")
    assert sample == NuclaSampleId(view=3, action=2, subject=9, episode=4)
    assert sample.name == "a02_s09_e04_v03"
    assert parse_nucla_sample_dir("a02_s09_e04_v03") == sample
    for bad, fragment in [("/d/view_1/a01-s01-e00", "not an N-UCLA sample folder"),
                          ("/d/other/a01_s01_e00", "view is unknown"),
                          ("/d/view_4/a01_s01_e00", "view 4")]:
        with pytest.raises(InvalidSampleIdError, match=fragment) as info:
            parse_nucla_sample_dir(bad)
        assert info.value.path == bad


def test_cross_view_split():
    assert [nucla_split(NuclaSampleId(v, 1, 1, 0)) for v in (1, 2, 3)] == [
        "train", "train", "test"]
    with pytest.raises(ValueError, match="'xsub'"):
        nucla_split(NuclaSampleId(1, 1, 1, 0), "xsub")


# ------------------------------------------------------------------ listing

def make_tree(root):
    """multiview_action/ with 3 samples; returns the a01 view_1 folder."""
    sample = root / "multiview_action" / "view_1" / "a01_s01_e00"
    sample.mkdir(parents=True)
    for k, ts in [(2, 110), (10, 190), (1, 100), (11, 200)]:
        (sample / f"frame_{k}_tc_{ts}_rgb.jpg").write_bytes(b"jpg")
        (sample / f"frame_{k}_tc_{ts}_depth.png").write_bytes(b"png")
    for k, ts in [(1, 100), (10, 190), (11, 200), (12, 210)]:   # 2 lacks one; 12 has no RGB
        (sample / f"frame_{k}_tc_{ts}_skeletons.txt").write_text(
            "\n".join(body_block(60, line_body)))
    (sample / "fileList.txt").write_text("1 100\n")
    (sample / "frame_x_tc_1_rgb.jpg").write_bytes(b"not a frame index")
    other = root / "multiview_action" / "view_3" / "a12_s02_e01"
    other.mkdir(parents=True)
    (other / "frame_0_rgb.jpg").write_bytes(b"jpg")
    (root / "multiview_action" / "view_2" / "a11_s10_e03").mkdir(parents=True)
    (root / "multiview_action" / "view_2" / "notes.txt").write_text("ignored")
    return sample


def test_listing_orders_frames_numerically_and_aligns_files(tmp_path):
    folder = make_tree(tmp_path)
    samples = list_nucla_samples(tmp_path)
    assert [s.sample_id.name for s in samples] == [
        "a01_s01_e00_v01", "a11_s10_e03_v02", "a12_s02_e01_v03"]
    first = samples[0]
    assert first.frame_indices == [1, 2, 10, 11]
    assert [p.split("/")[-1] for p in first.rgb_paths] == [
        "frame_1_tc_100_rgb.jpg", "frame_2_tc_110_rgb.jpg", "frame_10_tc_190_rgb.jpg",
        "frame_11_tc_200_rgb.jpg"]
    assert [p and p.split("/")[-1] for p in first.skeleton_paths] == [
        "frame_1_tc_100_skeletons.txt", None, "frame_10_tc_190_skeletons.txt",
        "frame_11_tc_200_skeletons.txt"]
    assert first.directory == str(folder)
    assert samples[1].num_frames == 0           # empty folder kept, not dropped
    assert samples[2].frame_indices == [0] and samples[2].skeleton_paths == [None]
    assert [nucla_split(s.sample_id) for s in samples] == ["train", "train", "test"]
    # The multiview_action folder itself is accepted as the root too.
    assert len(list_nucla_samples(tmp_path / "multiview_action")) == 3


def test_listing_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="view_<v>"):
        list_nucla_samples(tmp_path)
    (tmp_path / "view_1" / "a07_s01_e00").mkdir(parents=True)
    with pytest.raises(InvalidSampleIdError, match="a07"):
        list_nucla_samples(tmp_path)


# ---------------------------------------------------------------- skeletons

def test_single_body_file(tmp_path):
    path = tmp_path / "frame_3_tc_1_skeletons.txt"
    path.write_bytes("\r\n".join(["60", "-1.28173,0.389313,3.35539,2"]
                                 + body_block(60, line_body)[2:]).encode() + b"\r\n")
    bodies = read_nucla_skeleton(str(path))
    assert bodies.shape == (1, 20, 4) and bodies.dtype == np.float64
    np.testing.assert_array_equal(bodies[0, 0], [-1.28173, 0.389313, 3.35539, 2])
    np.testing.assert_allclose(bodies[0, 19], [0.19, -0.45, 2.0, 2])


def test_two_body_blocks():
    text = "\n".join(body_block(60, line_body)
                     + body_block(61, lambda j: (1.0, 0.1 * j, 3.0))) + "\n"
    bodies = parse_nucla_skeleton(text)
    assert bodies.shape == (2, 20, 4)
    np.testing.assert_allclose(bodies[1, 7], [1.0, 0.7, 3.0, 2])
    assert parse_nucla_skeleton("60\n").shape == (0, 20, 4)


@pytest.mark.parametrize("lines, line, fragment", [
    (body_block(60, line_body)[:16], 16, "truncated: the body starting at line 2 has 15"),
    (body_block(60, line_body)[:6] + ["61"], 7, "block header inside a body"),
    (body_block(60, line_body)[:3] + ["0.1,0.2,2"], 4, "expected 4 values"),
    (body_block(60, line_body)[:3] + ["0.1,abc,2,2"], 4, "expected a number, got 'abc'"),
    (["6.5"], 1, "expected an integer block header"),
])
def test_malformed_skeleton_files(lines, line, fragment):
    with pytest.raises(SkeletonFormatError) as info:
        parse_nucla_skeleton("\n".join(lines), source="frame_1_skeletons.txt")
    assert info.value.line == line and fragment in info.value.reason
    assert "frame_1_skeletons.txt" in str(info.value)


# --------------------------------------------------------------- projection

def test_projection_on_hand_computed_points():
    uv = project_nucla_joints([[0.5, 0.25, 2.0], [-0.3, -0.6, 3.0], [0.0, 0.0, 4.0]])
    # u = (320 + 531.15 * 0.25) / 640 = 452.7875 / 640; v = (240 - 66.39375) / 480.
    np.testing.assert_allclose(uv, [[0.70748046875, 0.3616796875],
                                    [0.4170078125, 0.7213125],
                                    [0.5, 0.5]], rtol=0, atol=1e-12)
    bad = project_nucla_joints(np.array([[0.1, 0.1, 0.0], [np.nan, 0, 2], [0, 0, -1]]))
    assert np.isnan(bad).all()
    assert project_nucla_joints(np.zeros((2, 3, 20, 3)) + [0, 0, 1]).shape == (2, 3, 20, 2)


def test_joint_mapping_to_ntu_layout():
    mapping = nucla.NUCLA_TO_NTU_JOINTS
    assert len(mapping) == 20 and len(set(mapping)) == 20
    from glimpse_keras.data.ntu import NTU_JOINT_NAMES
    assert NTU_JOINT_NAMES[mapping[2]] == "SpineShoulder"     # ShoulderCenter
    assert NTU_JOINT_NAMES[mapping[0]] == "SpineBase"         # HipCenter
    for nucla_joint in range(4, 20):
        assert NTU_JOINT_NAMES[mapping[nucla_joint]] == nucla.NUCLA_JOINT_NAMES[nucla_joint]
    assert set(range(25)) - set(mapping) == {2, 21, 22, 23, 24}


def test_pose_track(tmp_path):
    folder = make_tree(tmp_path)
    states = [2] * 20
    states[5] = 0                                  # ElbowLeft not tracked
    two = body_block(60, line_body, states) + body_block(77, lambda j: (0.5, 0.25, 2.0))
    (folder / "frame_10_tc_190_skeletons.txt").write_text("\n".join(two))
    sample = list_nucla_samples(tmp_path)[0]
    track = nucla_pose_track(sample)
    assert track.uv.shape == (4, 2, 25, 2) and track.mask.shape == (4, 2, 25)
    assert track.body_ids == ["60", "77"]
    # Frame order 1, 2, 10, 11; frame 2 has no skeleton file.
    assert track.mask[:, 0].sum(axis=1).tolist() == [20, 0, 19, 20]
    assert track.mask[:, 1].sum(axis=1).tolist() == [0, 0, 20, 0]
    assert not track.mask[:, :, [2, 21, 22, 23, 24]].any()
    assert not track.mask[2, 0, 5] and track.mask[0, 0, 5]
    # NTU SpineShoulder (20) holds N-UCLA ShoulderCenter (2): (0.02, 0.4, 2.0).
    expected = [(320 + 531.15 * 0.01) / 640, (240 - 531.15 * 0.2) / 480]
    np.testing.assert_allclose(track.uv[0, 0, 20], expected, rtol=1e-6)
    np.testing.assert_allclose(track.uv[2, 1, 13], [0.70748046875, 0.3616796875], rtol=1e-6)
    assert np.all(track.uv[~track.mask] == 0)
