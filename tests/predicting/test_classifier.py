"""`glimpse_keras.Classifier`: the Python API, the same numbers as the command line, from a run
or its SavedModel, and a long video through the serving client's `windows` requests."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from glimpse_keras import export
from glimpse_keras.cli import predict
from glimpse_keras.classifier import ClassifierError
from glimpse_keras.data.video import read_video
from glimpse_keras.visualize.annotated_video import frame_location
from glimpse_keras.visualize.drawing import location_to_box
from glimpse_keras import runs
from tests.predicting.conftest import CLASS_NAMES, CLIPS, HEIGHT, SIZE, STORED, T, WIDTH
from tests.test_export import serving_client


def test_importing_the_package_loads_no_framework_until_classifier_is_used():
    code = ("import sys, glimpse_keras; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
            "from glimpse_keras import Classifier; print(Classifier.__module__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "glimpse_keras.classifier"


def test_predict_gives_the_command_line_s_probabilities(colour_run, colour_classifier, capsys):
    prediction = colour_classifier.predict(colour_run.video)
    assert predict.main([colour_run.video, "--run", colour_run.run, "--json", "--top", "3"]) == 0
    (document,) = json.loads(capsys.readouterr().out)["predictions"]
    assert [entry["class_name"] for entry in document["top"]] == [name for _, name, _ in prediction.top(3)]
    for entry in document["top"]:
        assert entry["probability"] == pytest.approx(prediction.probabilities[entry["class_id"]], abs=1e-6)
    assert (prediction.num_video_frames, prediction.frame_indices.shape) == (90, (CLIPS, T))
    assert prediction.label == CLASS_NAMES[prediction.class_id] and prediction.probability == max(prediction.probabilities)


def test_predict_on_frames_equals_predict_on_the_file(colour_run, colour_classifier):
    from_file = colour_classifier.predict(colour_run.video)
    frames = read_video(colour_run.video)
    from_frames = colour_classifier.predict(frames)
    np.testing.assert_allclose(from_frames.probabilities, from_file.probabilities, atol=1e-6)
    # The first second of the video is red: class 0.
    assert colour_classifier.predict(frames[:10]).label == CLASS_NAMES[0]
    with pytest.raises(ClassifierError, match=r"frames must be uint8 \(frames, height, width, 3\).*float32"):
        colour_classifier.predict(frames.astype(np.float32))


def test_glimpse_boxes_when_asked(colour_run, colour_classifier):
    assert colour_classifier.predict(colour_run.video).boxes is None
    prediction = colour_classifier.predict(colour_run.video, boxes=True)
    glimpses = prediction.locations.shape[2]
    assert len(prediction.boxes) == len(set(prediction.frame_indices.ravel())) * glimpses
    # Each box: the first clip that sampled the frame, its crop location mapped onto the 128 x 96 frame.
    first = {}
    for k, t in np.ndindex(*prediction.frame_indices.shape):
        first.setdefault(int(prediction.frame_indices[k, t]), (k, t))
    for box in prediction.boxes:
        k, t = first[box["frame"]]
        location = frame_location(prediction.locations[k, t, box["glimpse"]], SIZE, STORED)
        assert tuple(box["box"]) == location_to_box(location, HEIGHT, WIDTH)
        x0, y0, x1, y1 = box["box"]
        assert 0 <= x0 <= x1 < WIDTH and 0 <= y0 <= y1 < HEIGHT
    assert prediction.to_json()["boxes"] == prediction.boxes


@pytest.fixture(scope="module")
def colour_export(colour_run, tmp_path_factory):
    from glimpse_keras import Classifier

    model, experiment = runs.load_run(colour_run.run)
    base = str(tmp_path_factory.mktemp("colour_export") / "glimpse_clouds")
    version = export.export_run_model(model, experiment, base)
    return version, Classifier.from_saved_model(base)


def test_saved_model_gives_the_run_s_predictions_and_timeline(colour_run, colour_classifier, colour_export):
    version, served = colour_export
    contract = export.read_serving_contract(version)
    assert contract["clip_seconds"] == 2.33 and served.clip_seconds == 2.33
    assert set(contract["signatures"]) == {"serving_default", "whole_video", "windows"}
    np.testing.assert_allclose(served.predict(colour_run.video).probabilities,
                               colour_classifier.predict(colour_run.video).probabilities, atol=1e-4)
    from_run = colour_classifier.timeline(colour_run.video, window=1.0, stride=0.5)
    from_saved = served.timeline(colour_run.video, window=1.0, stride=0.5)
    np.testing.assert_allclose([w.probabilities for w in from_saved.windows],
                               [w.probabilities for w in from_run.windows], atol=1e-4)
    assert [s.to_json()["label"] for s in from_saved.segments] == CLASS_NAMES


def test_serving_client_timeline_through_the_windows_signature(colour_run, colour_export, monkeypatch, capsys):
    version, served = colour_export
    signature = tf.saved_model.load(version).signatures["windows"]
    requests = []

    def fake_rest(url, body, timeout=60.0):
        """The model server's REST answer: the JSON body fed to the signature, rows back."""
        body = json.loads(json.dumps(body))
        video = np.asarray([instance["video"] for instance in body["instances"]], np.uint8)
        requests.append((url, body["signature_name"], video.shape))
        outputs = signature(video=tf.constant(video))
        return {"predictions": [{"probabilities": row.tolist()} for row in outputs["probabilities"].numpy()]}

    monkeypatch.setattr(serving_client, "send_rest", fake_rest)
    assert serving_client.main([colour_run.video, "--timeline", "--export", version, "--server", "localhost:8501",
                                "--window", "1", "--stride", "0.5", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    # 17 windows, 4 per request; each window is K clips of T frames at the stored size.
    assert [shape for _, _, shape in requests] == [(4, CLIPS, T, STORED, STORED, 3)] * 4 + [
        (1, CLIPS, T, STORED, STORED, 3)]
    assert requests[0][:2] == ("http://localhost:8501/v1/models/glimpse_clouds:predict", "windows")
    expected = served.timeline(colour_run.video, window=1.0, stride=0.5)
    assert [(w["start"], w["end"]) for w in document["windows"]] == [(w.start, w.end) for w in expected.windows]
    assert [s["label"] for s in document["segments"]] == CLASS_NAMES
    # The client resizes with the serving graph's area resize, the API with OpenCV's: nearly equal.
    for window, reference in zip(document["windows"], expected.windows):
        assert window["label"] == reference.label
        assert window["probability"] == pytest.approx(reference.probability, abs=0.02)
    np.testing.assert_allclose([s["end"] for s in document["segments"]], [s.end for s in expected.segments])


def test_serving_client_timeline_without_a_server_writes_the_first_request(colour_run, colour_export, tmp_path,
                                                                           capsys):
    version, _ = colour_export
    body_path = tmp_path / "body.json"
    assert serving_client.main([colour_run.video, "--timeline", "--export", version, "--write-rest",
                                str(body_path)]) == 0
    assert "2.33 s windows (23 frames) every 1.165 s" in capsys.readouterr().out
    body = json.loads(body_path.read_text())
    assert body["signature_name"] == "windows"
    video = np.asarray([instance["video"] for instance in body["instances"]], np.uint8)
    assert video.shape == (4, CLIPS, T, STORED, STORED, 3)
    # Window 0 covers frames 0..22; its clips are frames floor((t + (k + 0.5) / K) * 23 / T).
    frames = serving_client.load_frames(colour_run.video, STORED)
    indices = serving_client.window_clip_indices(23, T, CLIPS)
    np.testing.assert_array_equal(indices, [[1, 7, 12, 18], [4, 10, 15, 21]])
    np.testing.assert_array_equal(video[0], frames[indices])
    assert serving_client.main([colour_run.video, "--timeline"]) == 1
    assert "--timeline needs --export" in capsys.readouterr().err
