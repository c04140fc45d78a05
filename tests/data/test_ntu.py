"""Tests for NTU metadata: sample ids, splits, missing-skeleton lists, joints."""

import collections
import itertools

import pytest

from glimpse_keras.data import ntu
from glimpse_keras.data.errors import InvalidSampleIdError
from glimpse_keras.data.ntu import NtuSampleId, ntu_split, parse_ntu_sample_id


# ---------------------------------------------------------------- sample ids

@pytest.mark.parametrize("text", [
    "S001C002P003R002A013",
    "S001C002P003R002A013_rgb.avi",
    "S001C002P003R002A013.skeleton",
    "/data/nturgb+d_skeletons/S001C002P003R002A013.skeleton",
    "C:\\ntu\\S001C002P003R002A013_rgb.avi",
])
def test_parse_sample_id_from_names_and_paths(text):
    sample = parse_ntu_sample_id(text)
    assert sample == NtuSampleId(setup=1, camera=2, subject=3, replication=2, action=13)
    assert sample.name == "S001C002P003R002A013"
    assert sample.label == 12


def test_parse_uses_fixed_positions_for_large_numbers():
    sample = parse_ntu_sample_id("S032C003P106R002A120_rgb.avi")
    assert (sample.setup, sample.camera, sample.subject, sample.replication,
            sample.action) == (32, 3, 106, 2, 120)
    assert sample.label == 119
    assert not sample.is_ntu60


@pytest.mark.parametrize("text, fragment", [
    ("S01C002P003R002A013", "SsssCcccPpppRrrrAaaa"),       # short setup field
    ("s001c002p003r002a013", "SsssCcccPpppRrrrAaaa"),      # lower case
    ("P003S001C002R002A013", "SsssCcccPpppRrrrAaaa"),      # wrong field order
    ("S001C002P003R002A0134", "unexpected characters '4'"),
    ("S001C004P003R002A013", "camera 4"),
    ("S001C002P003R003A013", "replication 3"),
    ("S001C002P003R002A000", "action 0"),
    ("S001C002P003R002A121", "action 121"),
    ("S033C002P003R002A013", "setup 33"),
    ("", "SsssCcccPpppRrrrAaaa"),
])
def test_parse_rejects_bad_ids_naming_the_text(text, fragment):
    with pytest.raises(InvalidSampleIdError) as info:
        parse_ntu_sample_id(text)
    assert isinstance(info.value, ValueError)
    assert info.value.path == text
    assert fragment in info.value.reason


# ------------------------------------------------------------------- splits

def _grid(setups, subjects, cameras=(1, 2, 3), replications=(1, 2), actions=(1,)):
    return [NtuSampleId(*fields) for fields in
            itertools.product(setups, cameras, subjects, replications, actions)]


def test_xsub_subject_lists_and_p040_in_test():
    train = {s for s in range(1, 41)
             if ntu_split(NtuSampleId(1, 1, s, 1, 1), "xsub") == "train"}
    assert train == {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31,
                     34, 35, 38}
    assert ntu_split(parse_ntu_sample_id("S017C001P040R002A060"), "xsub") == "test"
    assert ntu_split(parse_ntu_sample_id("S001C001P003R001A001"), "xsub") == "test"


def test_xsub_full_subject_grid_counts():
    # 40 subjects x 3 cameras x 2 replications x 60 actions: exactly half the
    # subjects train, so 7,200 / 7,200. The reference code's range(1, 40) bug
    # would put only 19 subjects (6,840 samples) in the test set.
    samples = _grid([1], range(1, 41), actions=range(1, 61))
    counts = collections.Counter(ntu_split(s, "xsub") for s in samples)
    assert counts == {"train": 7200, "test": 7200}
    assert sum(1 for s in samples if s.subject == 40) == 360


def test_xview_camera_rule_and_counts():
    assert ntu_split(parse_ntu_sample_id("S005C001P002R001A010"), "xview") == "test"
    assert ntu_split(parse_ntu_sample_id("S005C002P003R001A010"), "xview") == "train"
    assert ntu_split(parse_ntu_sample_id("S005C003P003R001A010"), "xview") == "train"
    # NTU-60 has exactly 18,960 samples per camera, so the camera rule gives
    # 37,920 / 18,960; a grid with equal per-camera counts shows the same 2:1.
    samples = _grid(range(1, 18), range(1, 41), actions=(7,))
    counts = collections.Counter(ntu_split(s, "xview") for s in samples)
    assert counts == {"train": 2 * 17 * 40 * 2, "test": 17 * 40 * 2}


def test_xsub120_has_53_training_subjects():
    train = [s for s in range(1, 107)
             if ntu_split(NtuSampleId(20, 1, s, 1, 100), "xsub120") == "train"]
    assert len(train) == 53
    assert train[20:23] == [45, 46, 47]
    assert train[-3:] == [98, 100, 103]
    # NTU-60 training subjects keep their side.
    for subject in range(1, 41):
        sample = NtuSampleId(1, 1, subject, 1, 1)
        assert ntu_split(sample, "xsub120") == ntu_split(sample, "xsub")


def test_xset120_setup_parity():
    sides = [ntu_split(NtuSampleId(setup, 2, 1, 1, 1), "xset120") for setup in range(1, 33)]
    assert sides == ["test", "train"] * 16


def test_split_errors():
    sample = parse_ntu_sample_id("S001C001P001R001A001")
    with pytest.raises(ValueError, match="'xsetup'"):
        ntu_split(sample, "xsetup")
    with pytest.raises(ValueError, match="S018C001P001R001A001"):
        ntu_split(parse_ntu_sample_id("S018C001P001R001A001"), "xsub")
    with pytest.raises(ValueError, match="not part of NTU RGB"):
        ntu_split(parse_ntu_sample_id("S001C001P001R001A061"), "xview")
    # A string id is accepted and parsed.
    assert ntu_split("S001C001P001R001A001_rgb.avi", "xview") == "test"


# ---------------------------------------------------- missing-skeleton lists

def test_shipped_missing_lists_counts_and_split_spread():
    ntu60 = ntu.load_missing_skeleton_ids()
    ntu120 = ntu.load_missing_skeleton_ids(ntu120=True)
    assert len(ntu60) == 302 and len(ntu120) == 535
    assert ntu60 <= ntu120
    assert all(parse_ntu_sample_id(name).setup >= 18 for name in ntu120 - ntu60)
    assert "S001C002P005R002A008" in ntu60
    samples = [parse_ntu_sample_id(name) for name in ntu60]
    # Golden spreads computed from the official list (DATASETS.md 1.7).
    assert collections.Counter(ntu_split(s, "xsub") for s in samples) == {
        "train": 229, "test": 73}
    assert collections.Counter(ntu_split(s, "xview") for s in samples) == {
        "train": 274, "test": 28}
    assert collections.Counter(s.camera for s in samples) == {1: 28, 2: 113, 3: 161}
    # NTU-120: full-set sizes minus sizes without the list (DATASETS.md 1.9).
    samples120 = [parse_ntu_sample_id(name) for name in ntu120]
    assert collections.Counter(ntu_split(s, "xsub120") for s in samples120) == {
        "train": 63360 - 63026, "test": 51120 - 50919}
    assert collections.Counter(ntu_split(s, "xset120") for s in samples120) == {
        "train": 54720 - 54468, "test": 59760 - 59477}


def test_missing_list_skips_header_blank_and_garbage_lines(tmp_path):
    path = tmp_path / "missing.txt"
    path.write_bytes(
        b"302 of the captured samples S001C001P001R001A001 have problems.\r\n"
        b"If you are working on skeleton-based analysis, please ignore these.\r\n"
        b"\r\n"
        b"S001C002P005R002A008\r\n"
        b"  S017C003P020R002A060  \r\n"
        b"S001C002P005R002A0089\r\n"
        b"\r\n")
    assert ntu.load_missing_skeleton_ids(str(path)) == {
        "S001C002P005R002A008", "S017C003P020R002A060"}


# ------------------------------------------------------------ joints/classes

def test_joint_tables():
    assert len(ntu.NTU_JOINT_NAMES) == 25
    assert ntu.NTU_JOINT_NAMES[20] == "SpineShoulder"
    assert len(ntu.NTU_BONES) == 24
    # Every joint but the root (SpineBase) is a child exactly once: a tree.
    assert sorted(child for child, _ in ntu.NTU_BONES) == list(range(1, 25))
    assert (2, 20) in ntu.NTU_BONES and (21, 7) in ntu.NTU_BONES and (1, 0) in ntu.NTU_BONES
    partners = ntu.NTU_FLIP_PARTNERS
    assert all(partners[partners[j]] == j for j in range(25))
    for joint, name in enumerate(ntu.NTU_JOINT_NAMES):
        partner_name = ntu.NTU_JOINT_NAMES[partners[joint]]
        assert partner_name == name.replace("Left", "#").replace("Right", "Left").replace(
            "#", "Right")


def test_classes():
    assert len(ntu.NTU60_CLASS_NAMES) == 60
    assert ntu.NTU60_CLASS_NAMES[0] == "drink water"
    assert ntu.NTU60_CLASS_NAMES[12] == "tear up paper"
    assert ntu.NTU60_CLASS_NAMES[59] == "walking apart from each other"
    assert len(ntu.TWO_PERSON_ACTIONS) == 11 + 15
    assert 50 in ntu.TWO_PERSON_ACTIONS and 49 not in ntu.TWO_PERSON_ACTIONS
    assert 106 in ntu.TWO_PERSON_ACTIONS and 105 not in ntu.TWO_PERSON_ACTIONS
    assert (ntu.ORIGINAL_WIDTH, ntu.ORIGINAL_HEIGHT) == (1920, 1080)
