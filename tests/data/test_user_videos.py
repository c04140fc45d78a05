"""Your own videos: the folder-per-class and list-file layouts, COCO-17
keypoints placed in the NTU-25 layout, conversion, and train -> evaluate -> predict."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from glimpse_keras import config as config_lib
from glimpse_keras.data import convert, pipeline, schema, sources, user_videos
from tests.data.test_video import write_avi

WIDTH, HEIGHT, FRAMES = 64, 48, 8
COLOURS = {"clap": (220, 40, 40), "jump": (40, 220, 40), "wave": (40, 40, 220)}


def write_clip(path, colour, frames=FRAMES, seed=0):
    rng = np.random.default_rng(seed)
    images = []
    for index in range(frames):
        image = np.clip(rng.normal(colour, 8, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
        image[:, (4 * index) % WIDTH:(4 * index) % WIDTH + 8] = 255  # a moving bar
        images.append(image)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_avi(path, images, rate=10)


def coco_person(x, y, score=1.0):
    """17 joints spread around (x, y) pixels: joint j at (x + j, y + 2 j)."""
    return [[x + j, y + 2 * j, score] for j in range(17)]


def write_keypoints(video_path, frames=FRAMES, **extra):
    data = {"layout": "coco17", "frames": [[coco_person(10, 5)] for _ in range(frames)], **extra}
    with open(user_videos.keypoint_path(video_path), "w") as handle:
        json.dump(data, handle)


def make_folder_dataset(root, per_class=3, with_keypoints=False):
    for index, (name, colour) in enumerate(COLOURS.items()):
        for clip in range(per_class):
            path = os.path.join(root, name, f"clip{clip}.mp4")
            write_clip(path, colour, seed=10 * index + clip)
            if with_keypoints:
                write_keypoints(path)
    return root


# === Keypoints ===


def test_coco_keypoints_land_on_the_ntu_joints(tmp_path):
    path = tmp_path / "k.json"
    person = coco_person(10, 5)
    person[9][2] = 0.0  # left wrist absent
    person[12] = [None, None, None]  # right hip absent
    second = coco_person(30, 20)
    json.dump({"layout": "coco17", "image_size": [100, 50], "frames": [[person, second, coco_person(0, 0)], []]},
              open(path, "w"))
    uv, mask = user_videos.read_keypoints(str(path), 640, 480)
    assert uv.shape == (2, 2, 25, 2) and mask.shape == (2, 2, 25)
    # nose (COCO 0) -> head (NTU 3): (10, 5) / (100, 50)
    np.testing.assert_allclose(uv[0, 0, 3], [0.10, 0.10])
    # left shoulder (COCO 5) -> NTU 4: (15, 15) / (100, 50)
    np.testing.assert_allclose(uv[0, 0, 4], [0.15, 0.30])
    # right ankle (COCO 16) -> NTU 18: (26, 37)
    np.testing.assert_allclose(uv[0, 0, 18], [0.26, 0.74])
    assert not mask[0, 0, 6] and not mask[0, 0, 16]  # the absent wrist and hip
    # spine shoulder (NTU 20) = mid-shoulders: COCO 5 (15, 15) and 6 (16, 17) -> (15.5, 16)
    np.testing.assert_allclose(uv[0, 0, 20], [0.155, 0.32])
    assert not mask[0, 0, 0] and not mask[0, 0, 1]  # spine base needs both hips; spine centre needs it
    assert mask[0, 1, 0] and mask[0, 1, 1]  # the second person has both hips
    np.testing.assert_allclose(uv[0, 1, 3], [0.30, 0.40])
    assert mask[0].sum(axis=1).tolist() == [12, 16]  # 11 of 13 + spine shoulder; 13 + 3 mid-points
    assert not mask[0, :, [2, 7, 11, 15, 19, 21, 22, 23, 24]].any()  # no COCO counterpart
    assert not mask[1].any()  # a frame without persons


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "not a readable JSON file"),
        (json.dumps({"layout": "openpose", "frames": [[]]}), 'expected an object with "layout": "coco17"'),
        (json.dumps({"layout": "coco17", "frames": []}), '"frames" must be a non-empty list'),
        (json.dumps({"layout": "coco17", "frames": [[[[1, 2, 1]] * 16]]}), "frame 0, person 0: expected 17 joints"),
        (json.dumps({"layout": "coco17", "image_size": [0, 5], "frames": [[]]}), '"image_size" must be'),
    ],
)
def test_bad_keypoint_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(user_videos.UserVideosError, match=message) as caught:
        user_videos.read_keypoints(str(path), 64, 48)
    assert str(path) in str(caught.value)


# === Layouts ===


def test_folder_layout_names_classes_by_folder_and_holds_out_the_last_fifth(tmp_path):
    root = str(tmp_path / "videos")
    for name, count in (("b_wave", 6), ("a_clap", 2), ("c_sit", 1)):
        for clip in range(count):
            path = os.path.join(root, name, f"v{clip}.mp4")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "wb").close()
    open(os.path.join(root, "b_wave", "notes.txt"), "w").close()  # not a video
    names, entries, problems = user_videos.list_entries(root)
    assert names == ["a_clap", "b_wave", "c_sit"] and problems == []
    splits = {(os.path.basename(os.path.dirname(p)), os.path.basename(p)): (label, split)
              for p, label, split in entries}
    # 6 videos: ceil(6 / 5) = 2 held out (the last two by name); 2 videos: 1; 1 video: none
    assert [splits[("b_wave", f"v{i}.mp4")][1] for i in range(6)] == ["train"] * 4 + ["test"] * 2
    assert splits[("a_clap", "v0.mp4")] == (0, "train") and splits[("a_clap", "v1.mp4")] == (0, "test")
    assert splits[("c_sit", "v0.mp4")] == (2, "train")
    # classes.txt fixes the order, and must list every folder
    with open(os.path.join(root, "classes.txt"), "w") as handle:
        handle.write("c_sit\nb_wave\na_clap\n")
    assert user_videos.list_entries(root)[0] == ["c_sit", "b_wave", "a_clap"]
    with open(os.path.join(root, "classes.txt"), "w") as handle:
        handle.write("c_sit\nb_wave\n")
    missing = r"classes.txt: does not list the class folder\(s\) \['a_clap'\]"
    with pytest.raises(user_videos.UserVideosError, match=missing):
        user_videos.list_entries(root)


def test_split_folders_layout(tmp_path):
    root = tmp_path / "videos"
    for split, name in (("train", "x"), ("train", "y"), ("test", "y")):
        (root / split / name).mkdir(parents=True, exist_ok=True)
        (root / split / name / "a.avi").write_bytes(b"")
    names, entries, _ = user_videos.list_entries(str(root))
    assert names == ["x", "y"]
    assert sorted((label, split) for _, label, split in entries) == [(0, "train"), (1, "test"), (1, "train")]


def test_list_files_take_names_or_indices_and_report_bad_lines(tmp_path):
    root = tmp_path / "lists"
    (root / "clips").mkdir(parents=True)
    for name in ("a b.mp4", "c.mp4", "d.mp4"):
        (root / "clips" / name).write_bytes(b"")
    (root / "classes.txt").write_text("walk\nrun\n")
    (root / "train.txt").write_text("# comment\nclips/a b.mp4 run\n\nclips/c.mp4 0\nclips/gone.mp4 1\n")
    (root / "test.txt").write_text("clips/d.mp4 swim\nclips/c.mp4 7\n")
    names, entries, problems = user_videos.list_entries(str(root))
    assert names == ["walk", "run"]
    assert [(os.path.basename(p), label, split) for p, label, split in entries] == [
        ("a b.mp4", 1, "train"), ("c.mp4", 0, "train")]
    reasons = dict(problems)
    assert "listed in" in reasons[str(root / "clips" / "gone.mp4")]
    assert reasons[f"{root / 'test.txt'}:1"].startswith("label 'swim' is not a class name")
    assert reasons[f"{root / 'test.txt'}:2"] == "label 7 is outside 0..1 (2 classes)"
    (root / "train.txt").write_text("just_a_path\n")
    with pytest.raises(user_videos.UserVideosError, match=r"train.txt: line 1: expected '<path> <label>'"):
        user_videos.list_entries(str(root))


def test_missing_or_empty_folders_say_what_is_expected(tmp_path):
    with pytest.raises(user_videos.UserVideosError, match="no such folder; expected <data-dir>/<class name>"):
        user_videos.list_entries(str(tmp_path / "nothing"))
    with pytest.raises(sources.EmptyDatasetError, match="holds no video"):
        sources.list_raw_samples("videos", str(tmp_path), ("user",))


# === Conversion ===


def read_records(path):
    records = {}
    for serialized in tf.data.TFRecordDataset([path]):
        parsed = schema.parse_video_example(serialized)
        records[parsed["video_id"].numpy().decode()] = parsed
    return records


def test_conversion_stores_labels_splits_and_pose_when_given(tmp_path):
    root = make_folder_dataset(str(tmp_path / "videos"), per_class=2)
    write_keypoints(os.path.join(root, "jump", "clip0.mp4"), frames=FRAMES - 2)
    (tmp_path / "videos" / "wave" / "broken.mp4").write_bytes(b"not a video")
    out = str(tmp_path / "out")
    summary = convert.convert_dataset("videos", root, out, stored_size=32, progress=False)
    assert (summary.found, summary.converted, summary.skipped) == (7, 6, 1)
    errors = json.load(open(os.path.join(out, "conversion_errors.json")))
    entries = errors.get("errors", errors) if isinstance(errors, dict) else errors
    assert [os.path.basename(e["file"]) for e in entries] == ["broken.mp4"]
    info = json.load(open(os.path.join(out, user_videos.INFO_FILE)))
    assert info["class_names"] == ["clap", "jump", "wave"]
    assert (info["videos"], info["videos_with_keypoints"]) == (7, 1)
    assert user_videos.class_names(out) == ["clap", "jump", "wave"]
    test_ids = pipeline.read_split_index(out, "user", "test")["video_ids"]
    assert sorted(test_ids) == ["clap/clip1", "jump/clip1", "wave/clip1"]
    records = {}
    for split in ("train", "test"):
        for path in pipeline.list_split_files(out, "user", split):
            records.update(read_records(path))
    assert sorted(records) == ["clap/clip0", "clap/clip1", "jump/clip0", "jump/clip1", "wave/clip0", "wave/clip1"]
    assert int(records["jump/clip0"]["label"]) == 1 and int(records["wave/clip1"]["label"]) == 2
    with_pose = records["jump/clip0"]
    assert int(with_pose["num_frames"]) == FRAMES - 2  # min(video, keypoint frames)
    mask = with_pose["mask"].numpy()
    assert mask[:, 0].sum(axis=-1).tolist() == [16] * (FRAMES - 2) and not mask[:, 1].any()
    np.testing.assert_allclose(with_pose["uv"].numpy()[0, 0, 3], [10 / WIDTH, 5 / HEIGHT], atol=1e-6)
    assert not records["clap/clip0"]["mask"].numpy().any() and int(records["clap/clip0"]["num_frames"]) == FRAMES


def test_adapt_to_data_sets_classes_and_turns_pose_losses_off_once(tmp_path):
    from glimpse_keras.experiment import Experiment

    root = make_folder_dataset(str(tmp_path / "videos"), per_class=1)
    config = config_lib.load_config(None, ["data.dataset=videos", f"data.data_dir={root}"])
    messages = Experiment(config).adapt_to_data()
    assert config.model.num_classes == 3
    assert (config.loss.pose_weight, config.loss.attraction_weight) == (0.0, 0.0)
    assert config.loss.diversity_weight > 0
    assert len(messages) == 2 and "pose loss and the glimpse attraction loss are OFF" in messages[1]
    assert Experiment(config).adapt_to_data() == []  # said once: nothing left to change
    write_keypoints(os.path.join(root, "clap", "clip0.mp4"))
    config = config_lib.load_config(None, ["data.dataset=videos", f"data.data_dir={root}"])
    Experiment(config).adapt_to_data()
    assert config.loss.pose_weight == 0.1 and config.loss.attraction_weight == 1.0


# === End to end ===


@pytest.mark.slow
def test_convert_train_evaluate_predict_on_generated_clips(tmp_path, capsys):
    import evaluate as evaluate_cli
    import train as train_cli
    from glimpse_keras import classifier
    from glimpse_keras.cli import predict

    root = make_folder_dataset(str(tmp_path / "my_videos"), per_class=3)
    run = str(tmp_path / "runs" / "mine")
    code = train_cli.main([
        "--config", os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "configs",
                                 "tiny.yaml"),
        "--dataset", "videos", "--data-dir", root, "--output-dir", run, "--no-export",
        "--set", "train.stages.0.batch_size=2", "--set", "train.stages.1.batch_size=2",
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("pose loss and the glimpse attraction loss are OFF") == 1
    assert "model.num_classes set to 3" in out
    report = json.load(open(os.path.join(run, "evaluation", "stage2", "test_report.json")))
    assert report["videos"] == report["split_size"] == 3  # one held-out clip per class
    assert [entry["name"] for entry in report["per_class"]] == ["clap", "jump", "wave"]
    assert evaluate_cli.main(["--run", run]) == 0
    assert "videos evaluated: 3 of 3 (user test, 2 clips each)" in capsys.readouterr().out
    assert predict.main([os.path.join(root, "wave"), "--run", run, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [os.path.basename(p["video"]) for p in document["predictions"]] == ["clip0.mp4", "clip1.mp4", "clip2.mp4"]
    assert {entry["class_name"] for entry in document["predictions"][0]["top"]} == {"clap", "jump", "wave"}
    prediction = classifier.predict_video(classifier.RunPredictor(run), os.path.join(root, "wave", "clip2.mp4"))
    assert sorted(prediction.class_names) == ["clap", "jump", "wave"]
    assert abs(prediction.probabilities.sum() - 1) < 1e-6


def test_class_subsets_of_ntu_configs_are_refused_with_a_way_out(tmp_path):
    root = make_folder_dataset(str(tmp_path / "videos"), per_class=1)
    demo = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "configs", "demo.yaml")
    # The config check refuses the subset (the registry's adapter says why)...
    with pytest.raises(config_lib.ConfigError, match=r"data.classes: \[1, 2, 3, 11.*configs/videos.yaml"):
        config_lib.load_config(demo, ["data.dataset=videos", f"data.data_dir={root}"])
    # ... and so does reading the data of a config changed after loading.
    from glimpse_keras.experiment import Experiment

    config = config_lib.load_config(demo, [])
    config.data.dataset, config.data.data_dir = "videos", root
    with pytest.raises(user_videos.UserVideosError, match=r"data.classes: \[1, 2, 3, 11.*configs/videos.yaml"):
        user_videos.read_data_facts(config.data)
    with pytest.raises(config_lib.ConfigError, match=r"data.classes: \[1, 2, 3, 11.*configs/videos.yaml"):
        Experiment(config).adapt_to_data()
    videos_config = demo.replace("demo.yaml", "videos.yaml")
    config = config_lib.load_config(videos_config, [f"data.data_dir={root}"])
    assert Experiment(config).adapt_to_data() and config.model.num_classes == 3


def test_videos_is_one_adapter_of_the_registry(tmp_path):
    """No module above the readers branches on "videos": the registry's adapter
    gives the protocol, the raw-tree check, the class names (read from the data:
    the raw folder, or the converted data's videos_dataset.json once the raw
    folder is gone) and the config fitting."""
    from glimpse_keras.data import datasets, preparation
    from glimpse_keras.experiment import Experiment

    root = make_folder_dataset(str(tmp_path / "mine"), per_class=1)
    adapter = datasets.get("videos")
    (tmp_path / "empty").mkdir()
    assert adapter.is_raw_tree(root) and not adapter.is_raw_tree(str(tmp_path / "empty"))
    config = config_lib.load_config(None, ["data.dataset=videos", f"data.data_dir={root}"])
    assert preparation.split_protocol(config.data) == "user"
    facts = adapter.data_facts(config.data)
    assert (facts.class_names, facts.videos, facts.videos_with_pose) == (("clap", "jump", "wave"), 3, 0)
    assert Experiment(config).adapt_to_data() and config.model.num_classes == 3
    assert Experiment(config).class_names == ["clap", "jump", "wave"]
    out = str(tmp_path / "converted")
    convert.convert_dataset("videos", root, out, stored_size=32, progress=False)
    config.data.data_dir = str(tmp_path / "moved_away")
    assert Experiment(config, out).class_names == ["clap", "jump", "wave"]
    with pytest.raises(preparation.DataDirError, match="class names of --dataset videos come from the data"):
        Experiment(config).class_names
    # A folder that is not a user-video layout says why.
    config.data.data_dir = str(tmp_path / "empty")
    with pytest.raises(preparation.DataDirError, match=r"raw your-own-videos tree \(.*holds no video"):
        preparation.prepare_data(config.data, str(tmp_path / "cache"))
    with pytest.raises(config_lib.ConfigError, match="data.classes: \\[1, 2\\] are not class numbers of --dataset videos"):
        config_lib.load_config(None, ["data.dataset=videos", "data.classes=[1, 2]", "model.num_classes=2"])
