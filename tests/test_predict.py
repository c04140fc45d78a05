"""`glimpse-predict`: evaluation's clip sampling, class names, JSON, bad files,
the annotated video, and the same answer from a run and from its SavedModel."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from glimpse_keras import config as config_lib
from glimpse_keras import classifier, runs
from glimpse_keras.cli import predict
from glimpse_keras.experiment import Experiment
from glimpse_keras.data.ntu import NTU60_CLASS_NAMES
from glimpse_keras.data.video import read_video
from glimpse_keras.visualize import annotated_video
from glimpse_keras.visualize.drawing import box_border_mask, border_thickness, location_to_box
from tests.data.test_video import write_avi

T, SIZE, STORED, CLASSES, CLIPS = 4, 64, 72, 6, 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A finished one-stage tiny run, its SavedModel and three videos."""
    root = tmp_path_factory.mktemp("predict")
    config = config_lib.load_config(
        overrides=[
            "model.preset=tiny",
            f"model.num_classes={CLASSES}",
            f"data.num_frames={T}",
            f"data.image_size={SIZE}",
            f"data.stored_size={STORED}",
            f"data.clips_per_video={CLIPS}",
            "data.dataset=ntu",
            "train.stages=[{name: glimpses, variant: glimpse_clouds, epochs: 1}]",
        ]
    )
    stage = config.train.stages[0]
    keras.utils.set_random_seed(11)
    model = Experiment(config).build_stage_model(stage, tf.distribute.get_strategy(), compile_model=False)
    kernel = model.worker_classifier.kernel
    kernel.assign(kernel * 20.0)  # spread the probabilities so that the ranking means something
    run = root / "run"
    os.makedirs(run / stage.name)
    model.save_weights(str(run / stage.name / runs.FINAL))
    config_lib.save_config(config, str(run / "config.yaml"))
    videos = root / "videos"
    os.makedirs(videos / "sub")
    rng = np.random.default_rng(0)
    # 12 frames of 128 x 160 (height x width), smooth so that compression keeps them
    base = np.linspace(0, 255, 160, dtype=np.float32)[None, :, None]
    frames = [np.clip(base + 20 * i + rng.normal(0, 3, (128, 160, 3)), 0, 255).astype(np.uint8) for i in range(12)]
    write_avi(videos / "a.avi", frames, rate=10)
    write_avi(videos / "sub" / "b.avi", frames[::-1][:7], rate=10)
    (videos / "broken.mp4").write_bytes(b"this is not a video")
    return {"run": str(run), "model": model, "config": config, "videos": videos, "root": root}


@pytest.fixture(scope="module")
def predictor(tiny):
    return classifier.RunPredictor(tiny["run"])


def test_sample_clips_take_the_test_split_frames():
    frames = np.arange(12, dtype=np.uint8)[:, None, None, None] * np.ones((1, STORED, STORED, 3), np.uint8)
    clips, indices = classifier.sample_clips(frames, T, SIZE, CLIPS)
    # floor((t + (k + 0.5) / 2) * 12 / 4): clip 0 -> 0, 3, 6, 9; clip 1 -> 2, 5, 8, 11
    np.testing.assert_array_equal(indices, [[0, 3, 6, 9], [2, 5, 8, 11]])
    assert clips.shape == (CLIPS, T, SIZE, SIZE, 3)
    np.testing.assert_array_equal(clips[:, :, 0, 0, 0], indices)
    # Shorter videos than T repeat frames, as evaluation does.
    _, short = classifier.sample_clips(frames[:2], T, SIZE, 1)
    np.testing.assert_array_equal(short, [[0, 0, 1, 1]])


def test_frame_location_maps_the_crop_onto_the_frame():
    # crop 64 of 72, corner 4: -1 -> 2 * 4 / 72 - 1, +1 -> 2 * 68 / 72 - 1, scale * 64 / 72
    np.testing.assert_allclose(annotated_video.frame_location([-1, 1, 0.5, 0.25], SIZE, STORED),
                               [8 / 72 - 1, 136 / 72 - 1, 0.5 * 64 / 72, 0.25 * 64 / 72])
    np.testing.assert_allclose(annotated_video.frame_location([0.3, -0.2, 0.1, 0.2], SIZE, None), [0.3, -0.2, 0.1, 0.2])


def test_run_prediction_averages_the_clip_logits(tiny, predictor):
    assert predictor.class_names == list(NTU60_CLASS_NAMES[:CLASSES])
    prediction = classifier.predict_video(predictor, str(tiny["videos"] / "a.avi"))
    frames = read_video(str(tiny["videos"] / "a.avi"), size=(STORED, STORED))
    clips, indices = classifier.sample_clips(frames, T, SIZE, CLIPS)
    per_clip = [np.asarray(tiny["model"](clip[None], training=False)["logits"])[0] for clip in clips]
    expected = classifier.softmax(np.mean(per_clip, axis=0))
    np.testing.assert_allclose(prediction.probabilities, expected, atol=2e-4)
    np.testing.assert_array_equal(prediction.frame_indices, indices)
    assert prediction.locations.shape[:2] == (CLIPS, T) and prediction.num_video_frames == 12
    top = prediction.top(5)
    assert [p for _, _, p in top] == sorted((p for _, _, p in top), reverse=True)
    assert top[0][1] == NTU60_CLASS_NAMES[int(np.argmax(expected))]
    assert abs(sum(prediction.probabilities) - 1) < 1e-9


def test_cli_json_over_a_folder_reports_bad_files_and_goes_on(tiny, capsys):
    missing = str(tiny["root"] / "nope.mp4")
    code = predict.main([str(tiny["videos"]), missing, "--run", tiny["run"], "--json", "--top", "3"])
    captured = capsys.readouterr()
    assert code == 1
    document = json.loads(captured.out)
    assert [os.path.basename(p["video"]) for p in document["predictions"]] == ["a.avi", "b.avi"]
    assert all(len(p["top"]) == 3 and p["clips"] == CLIPS for p in document["predictions"])
    assert document["predictions"][0]["top"][0]["class_name"] in NTU60_CLASS_NAMES[:CLASSES]
    errors = {os.path.basename(e["video"]): e["error"] for e in document["errors"]}
    assert set(errors) == {"broken.mp4", "nope.mp4"}
    assert "unreadable container" in errors["broken.mp4"] and "no such file" in errors["nope.mp4"]
    assert "broken.mp4" in captured.err


def test_cli_text_output_lists_five_classes(tiny, capsys):
    assert predict.main([str(tiny["videos"] / "a.avi"), "--run", tiny["run"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(str(tiny["videos"] / "a.avi")) and "12 frames, 2 clips" in lines[0]
    assert [line.split(".")[0].strip() for line in lines[1:6]] == ["1", "2", "3", "4", "5"]
    assert all("%" in line for line in lines[1:6])


def test_output_video_draws_label_and_boxes_on_the_sampled_frames(tiny, predictor, capsys):
    output = str(tiny["root"] / "annotated.mp4")
    source = str(tiny["videos"] / "a.avi")
    assert predict.main([source, "--run", tiny["run"], "--output-video", output]) == 0
    assert f"annotated video: {output}" in capsys.readouterr().out
    written, original = read_video(output), read_video(source)
    assert written.shape == original.shape  # every frame, at its own size
    prediction = classifier.predict_video(predictor, source)
    boxes = annotated_video.boxes_per_frame(prediction, SIZE, STORED)
    assert sorted(boxes) == sorted(set(prediction.frame_indices.ravel().tolist()))
    height, width = original.shape[1:3]
    thickness = border_thickness(min(height, width))
    difference = np.abs(written.astype(int) - original.astype(int)).mean(axis=-1)
    for frame, frame_boxes in boxes.items():
        border = np.zeros((height, width), bool)
        for _, location in frame_boxes:
            border |= box_border_mask(location_to_box(location, height, width), height, width, thickness)
        border[:20] = False  # the label banner
        untouched = np.ones((height, width), bool)
        untouched[:20] = False
        for _, location in frame_boxes:
            x0, y0, x1, y1 = location_to_box(location, height, width)
            untouched[max(0, y0 - 3): y1 + 4, max(0, x0 - 3): x1 + 4] = False
        assert difference[frame][border].mean() > 25, frame
        assert difference[frame][untouched].mean() < 6, frame
    # the banner: dark behind the label on every frame
    assert written[:, 2:6, 1:4].mean() < 60


@pytest.mark.slow
def test_saved_model_gives_the_run_s_answer(tiny, predictor, capsys):
    from glimpse_keras import export

    model, experiment = runs.load_run(tiny["run"])
    base = str(tiny["root"] / "models" / "glimpse_clouds")
    export.export_run_model(model, experiment, base)
    source = str(tiny["videos"] / "a.avi")
    from_run = classifier.predict_video(predictor, source)
    served = classifier.SavedModelPredictor(base)  # the base folder: its newest version
    from_saved = classifier.predict_video(served, source)
    assert served.class_names == experiment.class_names
    np.testing.assert_allclose(from_saved.probabilities, from_run.probabilities, atol=1e-4)
    np.testing.assert_array_equal(from_saved.frame_indices, from_run.frame_indices)
    np.testing.assert_allclose(from_saved.locations, from_run.locations, atol=1e-4)
    assert predict.main([source, "--saved-model", base, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["predictions"][0]["top"][0]["class_name"] == from_run.top(1)[0][1]
    with pytest.raises(classifier.ClassifierError, match="averages 2 clips"):
        classifier.SavedModelPredictor(base, clips=3)


def test_bad_options_name_the_value(tiny, capsys):
    assert predict.main(["x.mp4", "--run", tiny["run"], "--clips", "0"]) == 2
    assert "--clips: expected an integer >= 1, got 0" in capsys.readouterr().err
    empty = tiny["root"] / "empty_model"
    empty.mkdir()
    assert predict.main([str(tiny["videos"] / "a.avi"), "--saved-model", str(empty)]) == 1
    assert f"--saved-model {empty}: no saved_model.pb" in capsys.readouterr().err
    assert predict.main([str(tiny["videos"] / "a.avi"), "--run", tiny["run"], "--output-video", "out.gif"]) == 2
    assert "--output-video out.gif: expected a video file name ending in .mp4" in capsys.readouterr().err
    assert predict.main([str(tiny["videos"] / "a.avi"), "--run", str(tiny["root"] / "norun")]) == 1
    assert "is not a training run" in capsys.readouterr().err
