"""Tests of the synthetic NTU / N-UCLA generator (glimpse_keras.data.synthetic)."""

import functools
import json
import os
import re

import av
import numpy as np
import pytest

from glimpse_keras.data.synthetic import motions, ntu_writer, nucla_writer
from glimpse_keras.data.synthetic.__main__ import main as cli_main
from glimpse_keras.data.synthetic.kinematics import body_shape_for_subject
from glimpse_keras.data.synthetic.manifest import MANIFEST_NAME, ManifestMismatchError
from glimpse_keras.data.synthetic.ntu_skeleton_text import format_number
from glimpse_keras.data.synthetic.performance import build_performance
from glimpse_keras.data.synthetic.presets import SyntheticConfigError, resolve_config
from glimpse_keras.data.synthetic.runner import generate

NTU_ID = re.compile(r"^S\d{3}C00[1-3]P\d{3}R00[12]A\d{3}$")
SEED = 7


def _decoded_count(path):
    with av.open(path) as container:
        return sum(1 for _ in container.decode(video=0))


def _manifest(root):
    with open(os.path.join(root, MANIFEST_NAME)) as stream:
        return json.load(stream)


@pytest.fixture(scope="module")
def ntu_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synth_ntu"))
    summary = generate("ntu", root, preset="tiny", seed=SEED, workers=1, progress=False)
    assert summary["generated"] == summary["planned"] == 36
    return root


@pytest.fixture(scope="module")
def nucla_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synth_nucla"))
    generate("nucla", root, preset="tiny", seed=SEED, workers=1, progress=False)
    return root


# -- NTU -----------------------------------------------------------------------------------------------
def test_ntu_ids_follow_pattern_and_both_protocol_sides_are_non_empty(ntu_root):
    from glimpse_keras.data.ntu import parse_ntu_sample_id, ntu_split

    records = _manifest(ntu_root)["samples"]
    videos = sorted(os.listdir(os.path.join(ntu_root, "nturgb+d_rgb")))
    skeletons = sorted(os.listdir(os.path.join(ntu_root, "nturgb+d_skeletons")))
    assert videos == sorted(f"{name}_rgb.avi" for name in records)
    assert skeletons == sorted(f"{name}.skeleton" for name in records)
    assert all(NTU_ID.match(name) for name in records)
    for protocol, expected_train in (("xsub", 24), ("xview", 24)):
        sides = [ntu_split(parse_ntu_sample_id(name), protocol) for name in records]
        assert sides.count("train") == expected_train and sides.count("test") == 36 - expected_train


def test_ntu_manifest_matches_skeleton_files(ntu_root):
    from glimpse_keras.data.ntu_skeleton import read_ntu_skeleton

    for name, record in _manifest(ntu_root)["samples"].items():
        skeleton = read_ntu_skeleton(os.path.join(ntu_root, record["files"]["skeleton"]))
        assert skeleton.num_frames == record["skeleton_frames"], name
        assert [len(frame) for frame in skeleton.frames] == record["bodies_per_frame"], name
        seen_ids = {body.body_id for frame in skeleton.frames for body in frame}
        assert seen_ids == set(record["body_ids"]), name
        assert all(len(body_id) == 17 and body_id.isdigit() for body_id in seen_ids)
        delta = record["defects"].get("frame_count_mismatch", {}).get("delta", 0)
        assert record["skeleton_frames"] - record["video_frames"] == delta
        with open(os.path.join(ntu_root, record["files"]["skeleton"]), "rb") as stream:
            assert (b"\r\n" in stream.read()) == record["crlf"]


def test_ntu_undamaged_videos_decode_to_manifest_frame_counts(ntu_root):
    records = _manifest(ntu_root)["samples"]
    lengths = []
    for name, record in records.items():
        if "truncated_avi" in record["defects"]:
            continue
        path = os.path.join(ntu_root, record["files"]["video"])
        with av.open(path) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "mpeg4" and stream.codec_tag == "FMP4"
            assert (stream.width, stream.height) == (160, 90) and stream.average_rate == 30
            assert stream.frames == record["video_frames"]
        assert _decoded_count(path) == record["video_frames"], name
        lengths.append(record["video_frames"])
    assert min(lengths) < 8 and any(n % 8 for n in lengths)


def test_exactly_one_truncated_avi_fails_to_decode_fully(ntu_root):
    from glimpse_keras.data.errors import VideoDecodeError
    from glimpse_keras.data.video import read_video

    broken = [r for r in _manifest(ntu_root)["samples"].values() if "truncated_avi" in r["defects"]]
    assert len(broken) == 1
    record = broken[0]
    path = os.path.join(ntu_root, record["files"]["video"])
    assert os.path.getsize(path) == record["defects"]["truncated_avi"]["kept_bytes"]
    assert _decoded_count(path) < record["video_frames"]
    with pytest.raises(VideoDecodeError):
        read_video(path)


def test_missing_skeleton_list_has_header_and_the_corrupted_ids(ntu_root):
    from glimpse_keras.data.ntu import load_missing_skeleton_ids
    from glimpse_keras.data.ntu_skeleton import read_ntu_skeleton

    path = os.path.join(ntu_root, ntu_writer.MISSING_LIST)
    with open(path) as stream:
        lines = stream.read().split("\n")
    assert lines[0].startswith("302 of the captured samples") and lines[2] == ""
    records = _manifest(ntu_root)["samples"]
    corrupted = {n for n, r in records.items() if "zero_body" in r["defects"]}
    assert len(corrupted) == 1
    assert load_missing_skeleton_ids(path) == frozenset(corrupted)
    record = records[corrupted.pop()]
    skeleton = read_ntu_skeleton(os.path.join(ntu_root, record["files"]["skeleton"]))
    frames = record["defects"]["zero_body"]["frames"]
    first = [body for body in skeleton.frames[frames[0]] if body.body_id == record["body_ids"][0]][0]
    if record["defects"]["zero_body"]["variant"] == "all_zero":
        assert np.all(first.joints == 0)
    else:
        assert np.isnan(first.joints[record["defects"]["zero_body"]["joints"], :11]).all()


def test_every_ntu_defect_is_injected_in_tiny(ntu_root):
    manifest = _manifest(ntu_root)
    counts = manifest["defect_counts"]
    for name in ("empty_frames", "zero_body", "furniture_body", "missing_second_body", "frame_count_mismatch",
                 "truncated_avi", "joints_outside_image"):
        assert counts.get(name, 0) >= 1, name
    records = manifest["samples"]
    empty = [r for r in records.values() if "empty_frames" in r["defects"]]
    assert all(r["bodies_per_frame"][f] == 0 for r in empty for f in r["defects"]["empty_frames"]["frames"])
    furniture = [r for r in records.values() if "furniture_body" in r["defects"]][0]
    assert max(furniture["bodies_per_frame"]) == furniture["num_persons"] + 1
    missing = [r for r in records.values() if "missing_second_body" in r["defects"]][0]
    assert missing["num_persons"] == 2 and max(missing["bodies_per_frame"]) == 1


def test_clipped_edges_flag_joints_outside_the_image(ntu_root):
    from glimpse_keras.data.ntu_skeleton import read_ntu_skeleton

    clipped = [r for r in _manifest(ntu_root)["samples"].values() if "joints_outside_image" in r["defects"]]
    assert clipped
    checked = 0
    for record in clipped:
        for frame in read_ntu_skeleton(os.path.join(ntu_root, record["files"]["skeleton"])).frames:
            for body in frame:
                x, y = body.joints[:, 5], body.joints[:, 6]
                expected = (1 * np.any(x >= 1920)) | (2 * np.any(x < 0)) | (4 * np.any(y < 0)) | (8 * np.any(y >= 1080))
                assert body.clipped_edges == expected
                checked += bool(expected)
    assert checked >= 1


def test_ntu_skeleton_is_deterministic_and_seed_dependent():
    config = resolve_config("ntu", "tiny")
    task = ntu_writer.NtuTask(1, 2, 3, 1, 58)
    first = ntu_writer.render_ntu_sample(SEED, config, task)
    second = ntu_writer.render_ntu_sample(SEED, config, task)
    other = ntu_writer.render_ntu_sample(SEED + 1, config, task)
    assert first.skeleton == second.skeleton
    np.testing.assert_array_equal(first.frames, second.frames)
    assert first.skeleton != other.skeleton


def test_ntu_reader_round_trip_recovers_the_drawn_coordinates():
    from glimpse_keras.data.ntu_skeleton import parse_ntu_skeleton

    config = resolve_config("ntu", "tiny")
    sample = ntu_writer.render_ntu_sample(SEED, config, ntu_writer.NtuTask(1, 1, 2, 1, 58))
    parsed = parse_ntu_skeleton(sample.skeleton)
    assert parsed.num_frames == len(sample.frames)
    for person, pixels in enumerate(sample.color_pixels):
        read = np.stack([frame[person].joints[:, 5:7] for frame in parsed.frames])
        np.testing.assert_array_equal(read, pixels)  # the drawn coordinates are exactly the file's
        states = np.stack([frame[person].joints[:, 11] for frame in parsed.frames])
        np.testing.assert_array_equal(states, sample.tracking[person])


def test_formatting_matches_real_files():
    assert format_number(0.0) == "0" and format_number(-0.0) == "0"
    assert format_number(1027.2451234) == "1027.245"
    assert format_number(0.24105512) == "0.2410551"
    assert format_number(float("nan")) == "NaN"


@pytest.mark.parametrize("size", [(160, 90), (320, 180)])
def test_ntu_figure_is_drawn_at_the_written_joint_positions(size):
    config = resolve_config("ntu", "tiny", {"size": list(size), "occluder_prob": 0.0, "distractor_object_prob": 0.0})
    task = ntu_writer.NtuTask(1, 2, 1, 1, 23)
    with_figure = ntu_writer.render_ntu_sample(SEED, config, task)
    without = ntu_writer.render_ntu_sample(SEED, config, task, draw_figures=False)
    width, height = size
    checked = 0
    for f in range(0, len(with_figure.frames), 3):
        diff = np.abs(with_figure.frames[f].astype(int) - without.frames[f].astype(int)).sum(-1)
        for (x, y), state in zip(with_figure.color_pixels[0][f], with_figure.tracking[0][f]):
            px, py = x * width / 1920, y * height / 1080
            if state != 2 or not (2 <= px < width - 2 and 2 <= py < height - 2):
                continue
            col, row = int(px), int(py)
            assert diff[row, col] > 40, (f, x, y)  # the pixel under the joint is the figure's, not background
            checked += 1
    assert checked > 50
    # Negative control: far from every joint the two renders agree exactly.
    pixels = with_figure.color_pixels[0] * [width / 1920, height / 1080]
    far = np.abs(with_figure.frames[0].astype(int) - without.frames[0].astype(int)).sum(-1)
    cols = np.arange(width)
    away = cols[np.min(np.abs(cols[:, None] - pixels[0, :, 0][None]), axis=1) > width * 0.15]
    assert far[:, away].max() == 0


def test_ntu_video_content_is_the_rendered_frames(tmp_path):
    config = resolve_config("ntu", "tiny", {"size": [320, 180]})
    task = ntu_writer.NtuTask(1, 1, 1, 1, 8)
    record = ntu_writer.write_ntu_sample(SEED, config, task, str(tmp_path))
    rendered = ntu_writer.render_ntu_sample(SEED, config, task).frames
    with av.open(os.path.join(tmp_path, record["files"]["video"])) as container:
        decoded = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    assert decoded.shape == rendered.shape
    assert np.abs(decoded.astype(int) - rendered.astype(int)).mean() < 6.0


def test_rerun_skips_complete_samples_and_rebuilds_missing_ones(ntu_root, tmp_path):
    root = str(tmp_path)
    overrides = {"classes": [23], "subjects": [1, 3], "cameras": [1, 2]}
    first = generate("ntu", root, seed=SEED, workers=1, overrides=overrides, progress=False)
    assert first["generated"] == 4
    video, _ = ntu_writer.ntu_paths(root, "S001C002P003R001A023")
    with open(video, "rb") as stream:
        original = stream.read()
    os.remove(video)
    second = generate("ntu", root, seed=SEED, workers=1, overrides=overrides, progress=False)
    assert (second["generated"], second["skipped"]) == (1, 3)
    with open(video, "rb") as stream:
        assert stream.read() == original
    assert not [n for n in os.listdir(os.path.join(root, "nturgb+d_rgb")) if n.startswith(".tmp-")]
    with pytest.raises(ManifestMismatchError, match="seed"):
        generate("ntu", root, seed=SEED + 1, workers=1, overrides=overrides, progress=False)


# -- N-UCLA --------------------------------------------------------------------------------------------
def test_nucla_layout_defects_and_reader_round_trip(nucla_root):
    from glimpse_keras.data.nucla import list_nucla_samples, read_nucla_skeleton

    records = _manifest(nucla_root)["samples"]
    samples = {s.sample_id.name: s for s in list_nucla_samples(nucla_root)}
    assert set(samples) == set(records)
    assert {r["view"] for r in records.values()} == {1, 2, 3}
    assert any(k >= 10 for r in records.values() for k in r["frame_indices"])
    for name, record in records.items():
        sample = samples[name]
        assert sample.frame_indices == record["frame_indices"]
        missing = record["defects"].get("missing_skeleton_frames", {}).get("frame_indices", [])
        assert [k for k, p in zip(sample.frame_indices, sample.skeleton_paths) if p is None] == missing
        doubled = record["defects"].get("two_body_blocks", {}).get("frame_indices", [])
        for k, path in zip(sample.frame_indices, sample.skeleton_paths):
            if path is not None:
                assert read_nucla_skeleton(path).shape == ((2 if k in doubled else 1), 20, 4)
    assert any(r["frames"] == 1 for r in records.values())
    assert any("missing_skeleton_frames" in r["defects"] for r in records.values())
    assert any("two_body_blocks" in r["defects"] for r in records.values())


def test_nucla_figure_is_drawn_where_the_reader_projects_the_joints():
    from glimpse_keras.data.nucla import parse_nucla_skeleton, project_nucla_joints

    config = resolve_config("nucla", "tiny", {"size": [320, 240], "distractor_object_prob": 0.0})
    task = nucla_writer.NuclaTask(view=3, action=2, subject=1, episode=0)
    sample = nucla_writer.render_nucla_sample(SEED, config, task)
    empty = nucla_writer.render_nucla_sample(SEED, config, task, draw_figures=False)
    checked = 0
    for f, text in enumerate(sample.skeleton_texts):
        body = parse_nucla_skeleton(text)[0]
        uv = project_nucla_joints(body[:, :3])
        np.testing.assert_array_equal(uv, sample.uv[f])
        diff = np.abs(sample.frames[f].astype(int) - empty.frames[f].astype(int)).sum(-1)
        for (u, v), state in zip(uv, body[:, 3]):
            col, row = int(u * 320), int(v * 240)
            if state == 2 and 0 <= col < 320 and 0 <= row < 240:
                assert diff[row, col] > 40
                checked += 1
    assert checked > 100


# -- configuration, CLI, content -----------------------------------------------------------------------
def test_config_errors_name_the_key():
    with pytest.raises(SyntheticConfigError, match="bogus"):
        resolve_config("ntu", "tiny", {"bogus": 1})
    with pytest.raises(SyntheticConfigError, match="classes"):
        resolve_config("nucla", "tiny", {"classes": [7]})
    with pytest.raises(SyntheticConfigError, match="size"):
        resolve_config("ntu", "demo", {"size": [161, 90]})


def test_cli_writes_a_custom_tiny_dataset(tmp_path, capsys):
    code = cli_main(["--format", "ntu", "--output", str(tmp_path), "--classes", "59", "--num-subjects", "1",
                     "--size", "64x36", "--frames", "9-9", "--set", "cameras=[2]", "--workers", "1", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["planned"] == 1
    record = _manifest(str(tmp_path))["samples"]["S001C002P001R001A059"]
    assert record["num_persons"] == 2 and record["frame_size"] == [64, 36]
    assert cli_main(["--format", "ntu", "--output", str(tmp_path), "--set", "nope=1"]) == 2


def test_every_class_has_a_program_and_two_person_classes_have_two_bodies():
    assert sorted(motions.NTU_PROGRAMS) == list(range(1, 61))
    assert sorted(motions.NUCLA_PROGRAMS) == [1, 2, 3, 4, 5, 6, 8, 9, 11, 12]
    config = resolve_config("ntu", "tiny")
    for action in range(1, 61):
        perf = ntu_writer.ntu_performance(SEED, config, ntu_writer.NtuTask(1, 1, 1, 1, action))
        assert len(perf.persons) == (2 if action >= 50 else 1)
        assert all(np.isfinite(p.joints).all() for p in perf.persons)
        assert perf.persons[0].joints[..., 1].min() > -0.1  # nobody sinks into the floor


def test_subject_shape_is_constant_across_samples_and_differs_between_subjects():
    assert body_shape_for_subject(SEED, "ntu", 4) == body_shape_for_subject(SEED, "ntu", 4)
    assert body_shape_for_subject(SEED, "ntu", 4).height != body_shape_for_subject(SEED, "ntu", 5).height


@functools.lru_cache(maxsize=None)
def _mean_pose_features(action, subject, replication):
    config = resolve_config("ntu", "tiny", {"frames": [40, 60]})
    perf = ntu_writer.ntu_performance(SEED, config, ntu_writer.NtuTask(1, 1, subject, replication, action))
    joints = perf.persons[0].joints
    centred = joints - joints[:, :1]
    return centred.mean(axis=0).ravel(), np.concatenate([centred[: len(centred) // 2].mean(0).ravel(),
                                                         centred[len(centred) // 2:].mean(0).ravel()])


def _nearest_centroid_accuracy(classes, feature_index):
    train = [(a, _mean_pose_features(a, s, r)[feature_index]) for a in classes for s in range(1, 13) for r in (1, 2)]
    test = [(a, _mean_pose_features(a, s, r)[feature_index]) for a in classes for s in range(13, 21) for r in (1, 2)]
    centroids = {a: np.mean([x for b, x in train if b == a], axis=0) for a in classes}
    hits = [min(centroids, key=lambda c: np.linalg.norm(x - centroids[c])) == a for a, x in test]
    return float(np.mean(hits))


def test_time_reversed_twins_are_only_separable_with_temporal_order():
    """Self-check 5.7.5: with time order discarded, twins are near chance; with it, they separate."""
    twins = _nearest_centroid_accuracy((8, 9), 0) + _nearest_centroid_accuracy((14, 15), 0)
    distinct = _nearest_centroid_accuracy((23, 44), 0) + _nearest_centroid_accuracy((14, 45), 0)
    ordered = _nearest_centroid_accuracy((8, 9), 1) + _nearest_centroid_accuracy((14, 15), 1)
    assert twins / 2 < 0.75
    assert distinct / 2 > 0.85
    assert ordered / 2 > 0.9


# -- props: the objects fine-grained classes are told apart by -------------------------------------------
def _prop_config(**overrides):
    values = {"size": [320, 180], "occluder_prob": 0.0, "distractor_object_prob": 0.0, "jitter_px": 0.0}
    values.update(overrides)
    return resolve_config("ntu", "tiny", values)


def test_held_prop_is_drawn_at_the_hand_in_its_colour():
    from glimpse_keras.data.synthetic import kinematics as K
    from glimpse_keras.data.synthetic.props import NTU_HELD_PROPS, PROP_KINDS

    task = ntu_writer.NtuTask(1, 1, 2, 1, 1)  # drink water: a cup in the right hand
    assert [prop.kind for prop in NTU_HELD_PROPS[1]] == ["cup"]
    with_prop = ntu_writer.render_ntu_sample(SEED, _prop_config(), task)
    without = ntu_writer.render_ntu_sample(SEED, _prop_config(held_props=False), task)
    assert with_prop.record["held_props"] == [{"kind": "cup", "hand": "right", "orientation": "upright"}]
    assert without.record["held_props"] == []
    cup = np.array(PROP_KINDS["cup"].colour)
    checked = 0
    for f in range(0, len(with_prop.frames), 4):
        diff = np.abs(with_prop.frames[f].astype(int) - without.frames[f].astype(int)).sum(-1)
        rows, cols = np.nonzero(diff > 30)
        assert rows.size > 0, f
        hand = with_prop.color_pixels[0][f, [K.HAND_R, K.HAND_TIP_R]].mean(0) * [320 / 1920, 180 / 1080]
        # Every changed pixel lies within the cup's size of the right hand.
        assert np.hypot(cols + 0.5 - hand[0], rows + 0.5 - hand[1]).max() < 12, f
        # The cup's red is there (lighting gain and noise change it a little).
        changed = with_prop.frames[f][rows, cols].astype(int)
        assert np.abs(changed - cup).sum(-1).min() < 80
        checked += 1
    assert checked >= 3


def test_clutter_is_class_independent_and_shared_by_the_cameras():
    config = _prop_config(clutter_props=[2, 2])
    first = ntu_writer.render_ntu_sample(SEED, config, ntu_writer.NtuTask(1, 1, 2, 1, 38))
    other_camera = ntu_writer.render_ntu_sample(SEED, config, ntu_writer.NtuTask(1, 2, 2, 1, 38))
    clutter = first.record["clutter_props"]
    assert len(clutter) == 2 and clutter == other_camera.record["clutter_props"]
    for prop in clutter:
        assert abs(prop["position"][0]) >= 0.5  # never on the performer
    none = ntu_writer.render_ntu_sample(SEED, _prop_config(), ntu_writer.NtuTask(1, 1, 2, 1, 38))
    assert none.record["clutter_props"] == []
    # The clutter is drawn: the frames differ from the clutter-free render away from the figure.
    assert np.abs(first.frames[0].astype(int) - none.frames[0].astype(int)).sum() > 0


def test_prop_config_errors_name_the_key():
    with pytest.raises(SyntheticConfigError, match="clutter_props"):
        resolve_config("ntu", "tiny", {"clutter_props": [3, 1]})
    with pytest.raises(SyntheticConfigError, match="held_props"):
        resolve_config("ntu", "tiny", {"held_props": "yes"})


def test_demo_preset_is_fine_grained_hand_actions_with_clutter():
    from glimpse_keras.data.synthetic.props import NTU_HELD_PROPS

    config = resolve_config("ntu", "demo")
    assert config["classes"] == [1, 2, 3, 11, 12, 13, 28, 29, 30, 49]
    assert set(config["classes"]) <= set(NTU_HELD_PROPS)
    assert config["clutter_props"] == [1, 3]
