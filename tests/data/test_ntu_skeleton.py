"""Tests for the NTU `.skeleton` parser and the two-actor selection."""

import numpy as np
import pytest

from glimpse_keras.data.errors import SkeletonFormatError
from glimpse_keras.data.ntu_skeleton import (parse_ntu_skeleton, read_ntu_skeleton,
                                             select_ntu_bodies)

# The first body and joint lines of a real file (NTU RGB+D issue #48).
REAL_BODY_LINE = "72057594037932358 0 0 0 0 0 0 0.33916 -0.5899565 2"
REAL_JOINT_LINE = ("0.2410551 -0.171228 4.294691 283.0309 224.2974 1027.245 581.2726 "
                   "-0.2574076 0.123495 0.9539005 -0.09254229 2")


def joint_line(x, y, z=3.0):
    """A joint line whose colour pixel is (1000 + 100x, 500 - 100y)."""
    return f"{x:g} {y:g} {z:g} 250 200 {1000 + 100 * x:g} {500 - 100 * y:g} 1 0 0 0 2"


def person_lines(body_id, dx=0.0, dy=0.0):
    """A body standing upright: 25 joints spread 0.4 m wide and 2.4 m tall."""
    lines = [f"{body_id} 0 1 2 1 3 0 0.1 -0.2 2", "25"]
    for joint in range(25):
        lines.append(joint_line(dx + 0.4 * (joint % 2), dy + 1.2 - 0.1 * joint))
    return lines


def furniture_lines(body_id, dx=0.0):
    """A wide, flat 'body' (a table): 2.4 m wide and 0.2 m tall."""
    lines = [f"{body_id} 0 0 0 0 0 0 0 0 2", "25"]
    for joint in range(25):
        lines.append(joint_line(dx - 1.2 + 0.1 * joint, -0.5 + 0.2 * (joint % 2)))
    return lines


def skeleton_text(frames, newline="\n"):
    """frames: list of lists of body line-lists."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body in bodies:
            lines.extend(body)
    return newline.join(lines) + newline


def test_every_field_of_a_real_body_is_parsed():
    lines = ["1", "1", REAL_BODY_LINE, "25", REAL_JOINT_LINE]
    lines += [joint_line(0.1, 0.2)] * 24
    skeleton = parse_ntu_skeleton("\n".join(lines))
    assert skeleton.num_frames == 1
    body = skeleton.frames[0][0]
    assert body.body_id == "72057594037932358"
    assert (body.clipped_edges, body.hand_left_confidence, body.hand_left_state,
            body.hand_right_confidence, body.hand_right_state, body.is_restricted,
            body.tracking_state) == (0, 0, 0, 0, 0, 0, 2)
    assert (body.lean_x, body.lean_y) == (0.33916, -0.5899565)
    assert body.joints.shape == (25, 12) and body.joints.dtype == np.float64
    np.testing.assert_array_equal(
        body.joints[0], [0.2410551, -0.171228, 4.294691, 283.0309, 224.2974, 1027.245,
                         581.2726, -0.2574076, 0.123495, 0.9539005, -0.09254229, 2])
    np.testing.assert_array_equal(body.joints[1], [0.1, 0.2, 3, 250, 200, 1010, 480,
                                                   1, 0, 0, 0, 2])
    track = select_ntu_bodies(skeleton)
    np.testing.assert_allclose(track.uv[0, 0, 0], [1027.245 / 1920, 581.2726 / 1080],
                               rtol=1e-6)
    np.testing.assert_allclose(track.uv[0, 0, 1], [1010 / 1920, 480 / 1080], rtol=1e-6)
    assert track.uv.dtype == np.float32
    assert track.mask[0, 0].all() and not track.mask[0, 1].any()
    assert track.body_ids == ["72057594037932358", ""]


def test_crlf_tabs_and_space_runs_parse_like_lf():
    frames = [[person_lines("11")], [person_lines("11", dx=0.5)]]
    lf = parse_ntu_skeleton(skeleton_text(frames))
    messy = skeleton_text(frames, newline="\r\n").replace(" ", " \t  ")
    crlf = parse_ntu_skeleton("\r\n" + messy + "\r\n\r\n")
    assert crlf.num_frames == lf.num_frames == 2
    for a, b in zip(lf.frames, crlf.frames):
        assert a[0].body_id == b[0].body_id == "11"
        np.testing.assert_array_equal(a[0].joints, b[0].joints)


def test_nan_infinity_and_zero_joints_are_masked():
    body = person_lines("7")
    body[0] = "7 0 1 2 1 3 0 NaN -0.2 2"                          # leanX NaN
    body[2 + 0] = joint_line(0.0, 1.2).replace("1000", "NaN", 1)  # joint 0: colorX NaN
    body[2 + 1] = "0.2 0.3 Infinity 250 200 1020 470 1 0 0 0 2"   # joint 1: z infinite
    body[2 + 2] = "0 0 0 0 0 0 0 0 0 0 0 0"                       # joint 2: all zero
    body[2 + 3] = "-Infinity 0.3 3 250 200 1020 470 1 0 0 0 1"    # joint 3: x -inf
    skeleton = parse_ntu_skeleton(skeleton_text([[body]]))
    parsed = skeleton.frames[0][0]
    assert np.isnan(parsed.lean_x)
    assert np.isnan(parsed.joints[0, 5]) and parsed.joints[1, 2] == np.inf
    assert parsed.joints[3, 0] == -np.inf
    track = select_ntu_bodies(skeleton)
    assert track.mask[0, 0].tolist() == [False] * 4 + [True] * 21
    assert np.all(track.uv[0, 0, :4] == 0) and np.isfinite(track.uv).all()


def test_frames_with_zero_bodies():
    frames = [[person_lines("5", dx=0.1 * t)] for t in range(4)]
    frames[1] = []
    skeleton = parse_ntu_skeleton(skeleton_text(frames))
    assert [len(bodies) for bodies in skeleton.frames] == [1, 0, 1, 1]
    track = select_ntu_bodies(skeleton)
    assert track.mask[:, 0].all(axis=1).tolist() == [True, False, True, True]
    assert not track.mask[:, 1].any()
    # colorX of joint 0 is 1000 + 100 * (0.1 t): 1000, -, 1020, 1030.
    np.testing.assert_allclose(track.uv[[0, 2, 3], 0, 0, 0],
                               np.array([1000, 1020, 1030]) / 1920, rtol=1e-6)
    assert parse_ntu_skeleton("0\n").num_frames == 0


def test_three_bodies_with_furniture_and_a_short_lived_body():
    # 20 frames; file order per frame: furniture, calm person, active person,
    # and a very active body that lives only 5 frames.
    frames = []
    for t in range(20):
        bodies = [furniture_lines("900", dx=0.3 * (t % 2)),            # jittery table
                  person_lines("200", dx=0.01 * t),                     # calm actor
                  person_lines("100", dx=0.1 * t)]                      # active actor
        if t < 5:
            bodies.append(person_lines("300", dx=0.8 * t, dy=0.5 * t))
        frames.append(bodies)
    track = select_ntu_bodies(parse_ntu_skeleton(skeleton_text(frames)))
    assert track.body_ids == ["100", "200"]
    assert track.mask.all()
    # Slot 0 follows body 100 in every frame: colorX of joint 0 = 1000 + 10 t.
    np.testing.assert_allclose(track.uv[:, 0, 0, 0] * 1920, 1000 + 10 * np.arange(20),
                               rtol=1e-6)
    np.testing.assert_allclose(track.uv[:, 1, 0, 0] * 1920, 1000 + 1 * np.arange(20),
                               rtol=1e-6)


def test_slots_follow_body_ids_when_file_order_swaps():
    frames = []
    for t in range(12):
        pair = [person_lines("1", dx=0.1 * t), person_lines("2", dx=-1.0)]
        frames.append(pair if t % 2 else pair[::-1])
    track = select_ntu_bodies(parse_ntu_skeleton(skeleton_text(frames)))
    assert track.body_ids == ["1", "2"]
    np.testing.assert_allclose(track.uv[:, 1, 0, 0] * 1920, np.full(12, 900), rtol=1e-6)


def test_seventeen_digit_body_ids_stay_distinct():
    id_a, id_b = "72057594037932358", "72057594037932359"
    assert float(id_a) == float(id_b)  # why the ids must stay strings
    frames = [[person_lines(id_a, dx=0.1 * t), person_lines(id_b, dx=-1.0 - 0.05 * t)]
              for t in range(12)]
    track = select_ntu_bodies(parse_ntu_skeleton(skeleton_text(frames)))
    assert track.body_ids == [id_a, id_b]
    assert track.mask.all()


def test_actor_redetected_under_a_new_id_keeps_its_slot():
    frames = [[person_lines("41", dx=0.1 * t)] for t in range(15)]
    frames += [[person_lines("42", dx=1.5 + 0.1 * t)] for t in range(15)]
    track = select_ntu_bodies(parse_ntu_skeleton(skeleton_text(frames)))
    assert track.body_ids[1] == ""
    assert sorted(track.body_ids[0].split("+")) == ["41", "42"]
    assert track.mask[:, 0].all() and not track.mask[:, 1].any()


def test_later_id_with_unusable_frames_does_not_erase_the_earlier_id():
    # Id 41 is seen in frames 0-14. Id 42 is seen in frames 0-29 but has a usable
    # joint only in frames 15-29, so the two share slot 0; the all-zero frames of
    # 42 must not overwrite 41's targets.
    zero_body = ["42 0 0 0 0 0 0 0 0 0", "25"] + ["0 0 0 0 0 0 0 0 0 0 0 0"] * 25
    frames = [[person_lines("41", dx=0.1 * t), zero_body] for t in range(15)]
    frames += [[person_lines("42", dx=1.5 + 0.1 * t)] for t in range(15)]
    track = select_ntu_bodies(parse_ntu_skeleton(skeleton_text(frames)))
    assert sorted(track.body_ids[0].split("+")) == ["41", "42"]
    assert track.mask[:, 0].all() and not track.mask[:, 1].any()
    expected_x = [1000 + 100 * 0.1 * t for t in range(15)]
    np.testing.assert_allclose(track.uv[:15, 0, 0, 0] * 1920, expected_x, rtol=1e-6)


def test_all_zero_body_is_masked_and_not_selected():
    zero_body = ["8 0 0 0 0 0 0 0 0 0", "25"] + ["0 0 0 0 0 0 0 0 0 0 0 0"] * 25
    frames = [[zero_body, person_lines("9", dx=0.1 * t)] for t in range(12)]
    track = select_ntu_bodies(parse_ntu_skeleton(skeleton_text(frames)))
    assert track.body_ids == ["9", ""]
    assert track.mask[:, 0].all() and not track.mask[:, 1].any()


def one_body_lines():
    # Line 1 frame count, 2 body count, 3 body line, 4 joint count, 5-29 joints.
    return ["1", "1"] + person_lines("3")


def test_truncated_file_names_file_and_line(tmp_path):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text("\n".join(one_body_lines()[:10]) + "\n")   # joints 1-6 only
    with pytest.raises(SkeletonFormatError) as info:
        read_ntu_skeleton(str(path))
    error = info.value
    assert isinstance(error, ValueError)
    assert error.path == str(path) and error.line == 11
    assert str(path) in str(error) and "line 11" in str(error)
    assert "truncated" in error.reason and "joint 7 of body 1 in frame 1 of 1" in error.reason


@pytest.mark.parametrize("line_index, replacement, line, fragment", [
    (0, "abc", 1, "frame count: expected an integer, got 'abc'"),
    (1, "2", 30, "unexpected end of file (truncated): expected the body line of body 2"),
    (3, "24", 4, "joint count of body 1 in frame 1 of 1: expected 25, got 24"),
    (7, "0.1 0.2 3 250 200 1000 500 1 0 0 0", 8, "expected 12 value(s), got 11"),
    (7, "0.1 0.2 3 250 200 1000 oops 1 0 0 0 2", 8, "expected a number, got 'oops'"),
    (2, "3.5 0 1 2 1 3 0 0.1 -0.2 2", 3, "bodyID of body 1"),
    (2, "3 0 1 2 1 3 0 0.1 -0.2 2.5", 3, "trackingState of body 1"),
    (1, "-1", 2, "must be >= 0"),
])
def test_malformed_content_names_line_and_reason(line_index, replacement, line, fragment):
    lines = one_body_lines()
    lines[line_index] = replacement
    with pytest.raises(SkeletonFormatError) as info:
        parse_ntu_skeleton("\n".join(lines), source="sample.skeleton")
    assert info.value.line == line
    assert fragment in info.value.reason
    assert str(info.value).startswith(f"sample.skeleton: line {line}: ")


def test_trailing_content_is_an_error():
    with pytest.raises(SkeletonFormatError, match="line 30: unexpected content"):
        parse_ntu_skeleton("\n".join(one_body_lines() + ["1"]) + "\n")
