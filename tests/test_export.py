"""SavedModel export for TF Serving: layout, signatures, parity, client bodies.

One tiny model is trained-for-zero-steps into a run directory and exported
once per module through the `export.py` command line (runs.load_run ->
export_for_serving), then every test reloads the SavedModel the model server
would load.
"""

import importlib.util
import json
import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow.python.framework import op_def_registry

from glimpse_keras import config as config_lib
from glimpse_keras import export
from glimpse_keras import runs
from glimpse_keras.experiment import Experiment
from glimpse_keras.data import video_ops
from glimpse_keras.data.ntu import NTU60_CLASS_NAMES
from glimpse_keras.models.folding import fold_model_batch_norm
from tests.models.model_checks import randomise_batch_norm

FRAMES, SIZE, STORED, CLASSES, CLIPS = 2, 32, 48, 5, 3
CROP = slice((STORED - SIZE) // 2, (STORED - SIZE) // 2 + SIZE)  # 8:40
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASS_NAMES = list(NTU60_CLASS_NAMES[:CLASSES])


def load_script(name, relative_path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relative_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


export_cli = load_script("export_cli", "export.py")
serving_client = load_script("serving_client", os.path.join("examples", "serving_client.py"))


def random_video(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    config = config_lib.load_config(
        None,
        [
            "model.preset=tiny",
            f"model.num_classes={CLASSES}",
            f"data.num_frames={FRAMES}",
            f"data.image_size={SIZE}",
            f"data.stored_size={STORED}",
            f"data.clips_per_video={CLIPS}",
        ],
    )
    stage = config.train.stages[-1]
    keras.utils.set_random_seed(7)
    model = Experiment(config).build_stage_model(stage, tf.distribute.get_strategy(), compile_model=False)
    # Spread the fresh classifier's logits so that probabilities and argmax
    # differ between inputs (a near-uniform softmax would hide mistakes).
    kernel = model.worker_classifier.kernel
    kernel.assign(kernel * 20.0)
    # Trained-like BatchNorm statistics, so that the export's BN folding is
    # exercised (fresh statistics make BN nearly the identity).
    randomise_batch_norm(model.backbone, seed=3)
    run_dir = root / "run"
    (run_dir / stage.name).mkdir(parents=True)
    model.save_weights(str(run_dir / stage.name / runs.FINAL))
    config_lib.save_config(config, str(run_dir / "config.yaml"))
    base = root / "models" / "glimpse_clouds"
    assert export_cli.main(["--run", str(run_dir), "--output", str(base)]) == 0
    version_dir = base / "1"
    return types.SimpleNamespace(
        model=model,
        base=str(base),
        version_dir=str(version_dir),
        loaded=tf.saved_model.load(str(version_dir)),
    )


def model_reference(model, clips):
    """Logits and locations of the in-memory model on centre-cropped clips."""
    outputs = model(clips[..., CROP, CROP, :], training=False)
    return outputs["logits"].numpy(), outputs["locations"].numpy()


# === TF Serving contract ===


def test_layout_is_tf_serving_and_models_config_parses(served):
    from tensorflow_serving.config import model_server_config_pb2

    assert sorted(os.listdir(served.base)) == ["1"]  # no temporary directory left
    assert os.path.isfile(os.path.join(served.version_dir, "saved_model.pb"))
    assert os.path.isfile(os.path.join(served.version_dir, "variables", "variables.index"))
    config = model_server_config_pb2.ModelServerConfig()
    with open(os.path.join(os.path.dirname(served.base), "models.config")) as handle:
        text_format.Parse(handle.read(), config)
    (entry,) = config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == ("glimpse_clouds", served.base, "tensorflow")
    contract = export.read_serving_contract(served.version_dir)
    assert contract["class_names"] == CLASS_NAMES
    assert (contract["num_frames"], contract["image_size"], contract["stored_size"]) == (FRAMES, SIZE, STORED)


def test_every_weight_is_saved_once(served):
    reader = tf.train.load_checkpoint(os.path.join(served.version_dir, "variables", "variables"))
    saved = {key: shape for key, shape in reader.get_variable_to_shape_map().items()
             if key != "_CHECKPOINTABLE_OBJECT_GRAPH"}
    # The export holds the BN-folded copy: each conv gains a bias and each
    # BatchNorm's four vectors are gone.
    folded = fold_model_batch_norm(served.model)
    assert sum(int(np.prod(shape)) for shape in saved.values()) == folded.count_params()
    assert len(saved) == len(folded.weights)
    assert folded.count_params() < served.model.count_params()


def test_signatures_use_the_predict_method_and_uint8_video(served):
    (meta_graph,) = export.read_saved_model_proto(served.version_dir).meta_graphs
    signatures = meta_graph.signature_def
    outputs = {"probabilities", "logits", "class_id", "class_name", "locations"}
    for name, extra in (("serving_default", set()), ("whole_video", {"frame_indices"}), ("windows", set())):
        assert signatures[name].method_name == "tensorflow/serving/predict"
        assert list(signatures[name].inputs) == ["video"]
        assert signatures[name].inputs["video"].dtype == types_pb2.DT_UINT8
        assert set(signatures[name].outputs) == outputs | extra
    assert signatures["serving_default"].outputs["class_name"].dtype == types_pb2.DT_STRING


def test_graph_holds_only_stock_tensorflow_ops(served):
    op_names = export.graph_op_names(served.version_dir)
    # The model itself is in the function library, not only the wrappers.
    assert {"Conv3D", "ResizeArea", "Softmax", "GatherV2"} <= op_names
    unregistered = sorted(name for name in op_names if op_def_registry.get(name) is None)
    assert unregistered == []
    assert not op_names & export.PYTHON_CALLBACK_OPS
    assert export.unservable_ops(served.version_dir) == []


# === Numbers ===


@pytest.mark.parametrize("batch_size", [1, 3])
def test_serving_default_equals_the_in_memory_model(served, batch_size):
    video = random_video((batch_size, FRAMES, STORED, STORED, 3), seed=batch_size)
    result = served.loaded.signatures["serving_default"](video=tf.constant(video))
    logits, locations = model_reference(served.model, video)
    probabilities = result["probabilities"].numpy()
    np.testing.assert_array_less(np.abs(probabilities - softmax(logits)), 1e-5)
    np.testing.assert_allclose(result["logits"].numpy(), logits, atol=1e-4)
    np.testing.assert_allclose(result["locations"].numpy(), locations, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-6)
    class_id = result["class_id"].numpy()
    np.testing.assert_array_equal(class_id, logits.argmax(axis=-1))
    assert [name.decode() for name in result["class_name"].numpy()] == [CLASS_NAMES[i] for i in class_id]
    assert probabilities.max() > 1.5 / CLASSES  # not a uniform softmax


def test_serving_default_resizes_any_frame_size(served):
    # 2 x 3 pixel blocks: area resizing back to 48 x 48 recovers `video`.
    video = random_video((2, FRAMES, STORED, STORED, 3), seed=11)
    large = np.repeat(np.repeat(video, 2, axis=2), 3, axis=3)  # 96 x 144 frames
    result = served.loaded.signatures["serving_default"](video=tf.constant(large))
    logits, _ = model_reference(served.model, video)
    np.testing.assert_allclose(result["probabilities"].numpy(), softmax(logits), atol=1e-5)


def test_preprocess_frames_squash_then_centre_crop():
    frames = np.arange(STORED * STORED * 3, dtype=np.float32).reshape(1, STORED, STORED, 3) % 251
    cropped = video_ops.preprocess_frames(frames, image_size=SIZE, stored_size=STORED).numpy()
    np.testing.assert_allclose(cropped, frames[:, CROP, CROP, :], atol=1e-3)
    blocks = np.repeat(np.repeat(frames[:, :SIZE, :SIZE], 2, axis=1), 3, axis=2)  # 64 x 96
    squashed = video_ops.preprocess_frames(blocks, image_size=SIZE).numpy()
    assert squashed.shape == (1, SIZE, SIZE, 3) and squashed.dtype == np.float32
    np.testing.assert_allclose(squashed, frames[:, :SIZE, :SIZE], atol=1e-3)


def test_test_frame_indices_hand_computed():
    # F = 7, T = 2, K = 3: clip k, bin t -> floor((t + (k + 0.5) / 3) * 3.5).
    indices = video_ops.test_frame_indices(7, FRAMES, CLIPS).numpy()
    np.testing.assert_array_equal(indices, [[0, 4], [1, 5], [2, 6]])


@pytest.mark.parametrize("num_video_frames", [7, 1])
def test_whole_video_averages_the_clip_logits(served, num_video_frames):
    video = random_video((num_video_frames, STORED, STORED, 3), seed=num_video_frames)
    result = served.loaded.signatures["whole_video"](video=tf.constant(video))
    bins = np.arange(FRAMES)[None, :] + ((np.arange(CLIPS) + 0.5) / CLIPS)[:, None]
    indices = np.minimum(np.floor(bins * num_video_frames / FRAMES).astype(int), num_video_frames - 1)
    logits, locations = model_reference(served.model, video[indices])  # K clips as a batch
    expected = softmax(logits.mean(axis=0, keepdims=True))
    np.testing.assert_array_equal(result["frame_indices"].numpy(), indices[None])
    np.testing.assert_array_less(np.abs(result["probabilities"].numpy() - expected), 1e-5)
    np.testing.assert_allclose(result["locations"].numpy(), locations[None], atol=1e-5)
    assert result["class_id"].numpy().tolist() == [expected.argmax()]
    assert result["class_name"].numpy()[0].decode() == CLASS_NAMES[expected.argmax()]


@pytest.mark.parametrize("num_video_frames", [9, 2])
def test_windows_signature_equals_whole_video_on_each_window(served, num_video_frames):
    # Two windows of a long video, each sampled by the client into K clips as
    # `whole_video` samples a whole video: the same probabilities.
    windows = [random_video((num_video_frames, STORED, STORED, 3), seed=10 + i) for i in range(2)]
    indices = serving_client.window_clip_indices(num_video_frames, FRAMES, CLIPS)
    np.testing.assert_array_equal(indices, video_ops.test_frame_indices(num_video_frames, FRAMES, CLIPS).numpy())
    batch = np.stack([window[indices] for window in windows])  # [2, K, T, H, W, 3]
    result = served.loaded.signatures["windows"](video=tf.constant(batch))
    for row, window in enumerate(windows):
        whole = served.loaded.signatures["whole_video"](video=tf.constant(window))
        np.testing.assert_allclose(result["probabilities"].numpy()[row], whole["probabilities"].numpy()[0], atol=1e-5)
        np.testing.assert_allclose(result["locations"].numpy()[row], whole["locations"].numpy()[0], atol=1e-5)
    logits, _ = model_reference(served.model, batch.reshape((-1,) + batch.shape[2:]))
    expected = softmax(logits.reshape(2, CLIPS, -1).mean(axis=1))
    np.testing.assert_allclose(result["probabilities"].numpy(), expected, atol=1e-5)
    assert result["class_name"].numpy()[0].decode() == CLASS_NAMES[expected[0].argmax()]
    # Any K: one clip per window is the serving_default answer.
    single = served.loaded.signatures["windows"](video=tf.constant(batch[:, :1]))
    clip = served.loaded.signatures["serving_default"](video=tf.constant(batch[:, 0]))
    np.testing.assert_allclose(single["probabilities"].numpy(), clip["probabilities"].numpy(), atol=1e-5)


def test_client_windows_bodies_are_accepted(served):
    from tensorflow_serving.apis import predict_pb2

    batch = random_video((3, CLIPS, FRAMES, STORED, STORED, 3), seed=21)
    direct = served.loaded.signatures["windows"](video=tf.constant(batch))["probabilities"].numpy()
    for row_format in (True, False):
        body = json.loads(json.dumps(serving_client.build_rest_body(batch, "windows", row_format)))
        assert body["signature_name"] == "windows"
        if row_format:
            tensor = np.asarray([instance["video"] for instance in body["instances"]], np.uint8)
        else:
            tensor = np.asarray(body["inputs"]["video"], np.uint8)
        np.testing.assert_array_equal(tensor, batch)
        outputs = served.loaded.signatures["windows"](video=tf.constant(tensor))
        response = ({"predictions": [{"probabilities": row.tolist()} for row in outputs["probabilities"].numpy()]}
                    if row_format else {"outputs": {"probabilities": outputs["probabilities"].numpy().tolist()}})
        np.testing.assert_allclose(serving_client.response_probabilities(response), direct, atol=1e-6)
    request = serving_client.build_grpc_request(batch, "glimpse_clouds", "windows")
    parsed = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert parsed.model_spec.signature_name == "windows"
    tensor = tf.make_ndarray(parsed.inputs["video"])
    np.testing.assert_array_equal(tensor, batch)
    outputs = {name: value.numpy() for name, value in
               served.loaded.signatures["windows"](video=tf.constant(tensor)).items()}
    np.testing.assert_array_equal(serving_client.response_probabilities(outputs), direct)


# === Bad input ===


@pytest.mark.parametrize(
    "signature, shape, expected",
    [
        ("serving_default", (FRAMES, STORED, STORED, 3), r"uint8 \[batch, 2, height, width, 3\].*\[2 48 48 3\]"),
        ("serving_default", (1, FRAMES + 1, STORED, STORED, 3), r"\[batch, 2, height, width, 3\].*\[1 3 48 48 3\]"),
        ("serving_default", (1, FRAMES, STORED, STORED, 4), r"\[batch, 2, height, width, 3\].*\[1 2 48 48 4\]"),
        ("serving_default", (1, FRAMES, STORED, STORED, 1), r"RGB channels last.*\[1 2 48 48 1\]"),
        ("serving_default", (1, FRAMES, 0, STORED, 3), r"\[batch, 2, height, width, 3\].*\[1 2 0 48 3\]"),
        ("whole_video", (1, FRAMES, STORED, STORED, 3), r"uint8 \[frames, height, width, 3\].*\[1 2 48 48 3\]"),
        ("whole_video", (0, STORED, STORED, 3), r"\[frames, height, width, 3\].*\[0 48 48 3\]"),
        ("windows", (1, FRAMES, STORED, STORED, 3), r"uint8 \[windows, clips, 2, height, width, 3\].*\[1 2 48 48 3\]"),
        ("windows", (1, 0, FRAMES, STORED, STORED, 3), r"\[windows, clips, 2, height, width, 3\].*\[1 0 2 48 48 3\]"),
        ("windows", (1, 1, 3, STORED, STORED, 3), r"\[windows, clips, 2, height, width, 3\].*\[1 1 3 48 48 3\]"),
    ],
)
def test_wrong_shapes_get_a_message_naming_the_layout(served, signature, shape, expected):
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
        served.loaded.signatures[signature](video=tf.zeros(shape, tf.uint8))


@pytest.mark.parametrize("signature", ["serving_default", "whole_video"])
def test_wrong_dtype_is_rejected_naming_uint8(served, signature):
    video = tf.zeros((1, FRAMES, STORED, STORED, 3) if signature == "serving_default" else (3, 8, 8, 3), tf.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a uint8 tensor but is a float"):
        served.loaded.signatures[signature](video=video)


def test_export_refuses_bad_arguments_and_existing_versions(served, tmp_path):
    arguments = dict(num_frames=FRAMES, image_size=SIZE, class_names=CLASS_NAMES)
    with pytest.raises(export.ExportError, match="already exists.*next free version is 2"):
        export.export_serving_version(served.model, served.base, version=1, **arguments)
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_model(served.model, served.version_dir, **arguments)
    target = str(tmp_path / "model")
    with pytest.raises(export.ExportError, match="4 names but the model has num_classes=5"):
        export.export_model(served.model, target, **dict(arguments, class_names=CLASS_NAMES[:4]))
    with pytest.raises(export.ExportError, match="multiple of 32.*40"):
        export.export_model(served.model, target, **dict(arguments, image_size=40))
    with pytest.raises(export.ExportError, match="stored_size must be an int >= image_size=32"):
        export.export_model(served.model, target, stored_size=16, **arguments)
    with pytest.raises(export.ExportError, match="version must be a positive int, received 0"):
        export.export_serving_version(served.model, str(tmp_path), version=0, **arguments)
    config = config_lib.load_config(None, ["model.preset=tiny", "model.num_classes=5"])
    unbuilt = Experiment(config).build_model("glimpse_clouds")
    with pytest.raises(export.ExportError, match="not built"):
        export.export_model(unbuilt, target, **arguments)
    assert not os.path.exists(target)


@pytest.mark.parametrize("clips", ["0", "-2"])
def test_export_cli_refuses_clips_below_one(clips, capsys, tmp_path):
    # 0 used to fall back silently to data.clips_per_video.
    argv = ["--run", str(tmp_path), "--output", str(tmp_path / "out"), "--clips", clips]
    with pytest.raises(SystemExit) as exit_code:  # argparse's exit: the flag's type refuses it
        export_cli.main(argv)
    assert exit_code.value.code == 2
    assert f"argument --clips: expected an integer >= 1, got {clips}" in capsys.readouterr().err


def test_version_numbering(tmp_path):
    assert export.next_version(str(tmp_path / "missing")) == 1
    for name in ("1", "3", "10", ".10.tmp-x", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "12").write_text("a file, not a version")
    assert export.existing_versions(str(tmp_path)) == [1, 3, 10]
    assert export.next_version(str(tmp_path)) == 11


def test_failed_export_leaves_no_version(served, tmp_path, monkeypatch):
    def fail(self, *args, **kwargs):
        raise RuntimeError("disk full")

    # keras.export.ExportArchive() returns an instance of a backend subclass.
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_serving_version(
            served.model, str(tmp_path), num_frames=FRAMES, image_size=SIZE, class_names=CLASS_NAMES
        )
    assert os.listdir(tmp_path) == []


def test_models_config_keeps_other_models(tmp_path):
    from tensorflow_serving.config import model_server_config_pb2

    path = str(tmp_path / "models.config")
    export.write_models_config(path, "other", "/models/other")
    export.write_models_config(path, "glimpse_clouds", "/models/old")
    export.write_models_config(path, "glimpse_clouds", "/models/glimpse_clouds")
    config = model_server_config_pb2.ModelServerConfig()
    with open(path) as handle:
        text_format.Parse(handle.read(), config)
    entries = {entry.name: entry.base_path for entry in config.model_config_list.config}
    assert entries == {"other": "/models/other", "glimpse_clouds": "/models/glimpse_clouds"}
    (tmp_path / "broken.config").write_text("model_config_list { nonsense: 1 }")
    with pytest.raises(export.ExportError, match="broken.config"):
        export.write_models_config(str(tmp_path / "broken.config"), "glimpse_clouds", "/x")


# === Client requests ===


@pytest.fixture(scope="module")
def video_file(tmp_path_factory):
    import cv2

    path = str(tmp_path_factory.mktemp("video") / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (80, 60))
    rng = np.random.default_rng(5)
    for _ in range(5):
        writer.write(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    writer.release()
    return path


def test_client_frame_indices_match_evaluation_sampling():
    for num_video_frames in range(1, 20):
        for num_frames in (1, 2, 8):
            np.testing.assert_array_equal(
                serving_client.clip_frame_indices(num_video_frames, num_frames),
                video_ops.eval_frame_indices(num_video_frames, num_frames).numpy(),
            )


def test_client_rest_bodies_are_accepted(served, video_file):
    frames = serving_client.load_frames(video_file, STORED)
    assert frames.shape == (5, STORED, STORED, 3)
    video = serving_client.request_video(frames, "serving_default", FRAMES)
    np.testing.assert_array_equal(video, frames[[1, 3]][None])  # floor((t + 0.5) * 5 / 2)
    direct = served.loaded.signatures["serving_default"](video=tf.constant(video))["probabilities"].numpy()
    for row_format in (True, False):
        body = json.loads(json.dumps(serving_client.build_rest_body(video, "serving_default", row_format)))
        assert body["signature_name"] == "serving_default"
        if row_format:
            tensor = np.asarray([instance["video"] for instance in body["instances"]], dtype=np.uint8)
        else:
            tensor = np.asarray(body["inputs"]["video"], dtype=np.uint8)
        np.testing.assert_array_equal(tensor, video)
        result = served.loaded.signatures["serving_default"](video=tf.constant(tensor))
        np.testing.assert_array_equal(result["probabilities"].numpy(), direct)
    whole = serving_client.request_video(frames, "whole_video", FRAMES)
    body = json.loads(json.dumps(serving_client.build_rest_body(whole, "whole_video", row_format=False)))
    result = served.loaded.signatures["whole_video"](video=tf.constant(np.asarray(body["inputs"]["video"], np.uint8)))
    assert result["probabilities"].shape == (1, CLASSES)
    with pytest.raises(serving_client.ServingClientError, match="no batch axis"):
        serving_client.build_rest_body(whole, "whole_video", row_format=True)
    assert (serving_client.rest_url("localhost:8501", version=2)
            == "http://localhost:8501/v1/models/glimpse_clouds/versions/2:predict")


def test_client_resizes_to_the_exported_size_so_the_server_only_crops(served, video_file, tmp_path, capsys):
    # The export records the stored size; the client reads it and resizes
    # with the serving graph's own resize step, so the graph only crops.
    settings = serving_client.export_settings(served.version_dir)
    assert settings == {"num_frames": FRAMES, "frame_size": STORED, "clips_per_video": CLIPS,
                        "clip_seconds": 1.87, "class_names": CLASS_NAMES}  # synthetic demo: 32-80 frames, 30 fps
    contract_file = os.path.join(served.version_dir, export.CONTRACT_FILE)
    assert serving_client.export_settings(contract_file) == settings
    frames = serving_client.load_frames(video_file, settings["frame_size"])
    full = serving_client.load_frames(video_file, 0)
    assert frames.shape == (5, STORED, STORED, 3) and full.shape == (5, 60, 80, 3)
    expected = np.round(video_ops.resize_frames(full, STORED).numpy()).astype(np.uint8)
    np.testing.assert_array_equal(frames, expected)
    view = video_ops.preprocess_frames(frames, image_size=SIZE, stored_size=STORED).numpy()
    np.testing.assert_array_equal(view, frames[:, CROP, CROP].astype(np.float32))
    # Sending the resized frames or the full frames gives the same answer.
    signature = served.loaded.signatures["serving_default"]
    small = signature(video=tf.constant(serving_client.request_video(frames, "serving_default", FRAMES)))
    large = signature(video=tf.constant(serving_client.request_video(full, "serving_default", FRAMES)))
    np.testing.assert_allclose(small["logits"].numpy(), large["logits"].numpy(), atol=0.05)
    assert small["class_id"].numpy().tolist() == large["class_id"].numpy().tolist()
    # The command line takes both sizes from --export.
    body_path = tmp_path / "body.json"
    assert serving_client.main([video_file, "--export", served.version_dir, "--write-rest", str(body_path)]) == 0
    body = json.loads(body_path.read_text())
    sent = np.asarray([instance["video"] for instance in body["instances"]], np.uint8)
    np.testing.assert_array_equal(sent, frames[serving_client.clip_frame_indices(5, FRAMES)][None])
    assert serving_client.resolve_clip_settings(None) == (256, 8)
    assert serving_client.resolve_clip_settings(served.version_dir, frame_size=0) == (0, FRAMES)
    with pytest.raises(serving_client.ServingClientError, match="resize the frames again"):
        serving_client.resolve_clip_settings(served.version_dir, frame_size=256)
    with pytest.raises(serving_client.ServingClientError, match="T=2"):
        serving_client.resolve_clip_settings(served.version_dir, num_frames=8)
    assert serving_client.main([video_file, "--export", str(tmp_path / "nothing")]) == 1
    assert "serving contract" in capsys.readouterr().err


def test_client_grpc_request_is_accepted(served, video_file):
    from tensorflow_serving.apis import predict_pb2

    frames = serving_client.load_frames(video_file, STORED)
    video = serving_client.request_video(frames, "serving_default", FRAMES)
    request = serving_client.build_grpc_request(video, "glimpse_clouds", "serving_default", version=1)
    parsed = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert (parsed.model_spec.name, parsed.model_spec.signature_name) == ("glimpse_clouds", "serving_default")
    assert parsed.model_spec.version.value == 1
    tensor = tf.make_ndarray(parsed.inputs["video"])
    assert tensor.dtype == np.uint8
    np.testing.assert_array_equal(tensor, video)
    result = served.loaded.signatures["serving_default"](video=tf.constant(tensor))
    logits, _ = model_reference(served.model, video)
    np.testing.assert_allclose(result["probabilities"].numpy(), softmax(logits), atol=1e-5)


def test_client_rejects_bad_frames():
    with pytest.raises(serving_client.ServingClientError, match="uint8 \\[frames, height, width, 3\\]"):
        serving_client.request_video(np.zeros((4, 8, 8), np.uint8), "serving_default", 2)
    with pytest.raises(serving_client.ServingClientError, match="unknown signature"):
        serving_client.request_video(np.zeros((4, 8, 8, 3), np.uint8), "predict", 2)


def test_client_summarises_rest_and_grpc_responses(served):
    video = random_video((2, FRAMES, STORED, STORED, 3), seed=3)
    outputs = {name: value.numpy() for name, value in
               served.loaded.signatures["serving_default"](video=tf.constant(video)).items()}
    names = [name.decode() for name in outputs["class_name"]]
    expected = [f"{name} (class {outputs['class_id'][i]}, p={outputs['probabilities'][i].max():.3f})"
                for i, name in enumerate(names)]
    # The server's JSON: row format {"predictions": [...]}, columnar {"outputs": {...}}.
    rows = [{key: value[i].tolist() if key != "class_name" else names[i] for key, value in outputs.items()}
            for i in range(2)]
    columns = {key: [row[key] for row in rows] for key in outputs}
    assert serving_client.summarise_prediction({"predictions": rows}) == expected
    assert serving_client.summarise_prediction({"outputs": columns}) == expected
    assert serving_client.summarise_prediction(outputs) == expected  # gRPC: arrays


def test_models_config_without_the_serving_protos(tmp_path, monkeypatch):
    from tensorflow_serving.config import model_server_config_pb2

    path = str(tmp_path / "models.config")
    with monkeypatch.context() as patch:
        patch.setitem(__import__("sys").modules, "tensorflow_serving.config", None)  # import fails
        export.write_models_config(path, "glimpse_clouds", '/models/a "quoted" \\ path')
        export.write_models_config(path, "glimpse_clouds", "/models/glimpse_clouds")
        other = str(tmp_path / "other.config")
        export.write_models_config(other, "other", "/models/other")
        with pytest.raises(export.ExportError, match=r"lists other models \['other'\].*tensorflow-serving-api"):
            export.write_models_config(other, "glimpse_clouds", "/models/glimpse_clouds")
    config = model_server_config_pb2.ModelServerConfig()
    with open(path) as handle:
        text_format.Parse(handle.read(), config)
    (entry,) = config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == (
        "glimpse_clouds", "/models/glimpse_clouds", "tensorflow")
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(export.models_config_text("m", '/a "b" \\c'), config)
    assert config.model_config_list.config[0].base_path == '/a "b" \\c'


# === Safe files and clear errors (issue 12) ===


def test_empty_batch_gets_a_message_saying_so(served):
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty batch"):
        served.loaded.signatures["serving_default"](video=tf.zeros((0, FRAMES, STORED, STORED, 3), tf.uint8))


def test_exported_version_is_readable_by_other_users(served, tmp_path):
    import stat

    previous = os.umask(0o022)
    try:
        path = export.export_serving_version(
            served.model, str(tmp_path / "base"), num_frames=FRAMES, image_size=SIZE, class_names=CLASS_NAMES,
            fold_batch_norm=False,
        )
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755  # mkdtemp alone gives 0700
    for folder, _, names in os.walk(path):
        assert stat.S_IMODE(os.stat(folder).st_mode) & 0o005 == 0o005, folder
        for name in names:
            assert stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode) & 0o004, name


def test_full_disk_during_export_is_a_clear_error(served, tmp_path, monkeypatch):
    import errno

    from glimpse_keras.io_utils import StorageError

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", full)
    with pytest.raises(StorageError, match=r"cannot write .*base.1: No space left on device"):
        export.export_serving_version(
            served.model, str(tmp_path / "base"), num_frames=FRAMES, image_size=SIZE, class_names=CLASS_NAMES
        )
    assert os.listdir(tmp_path / "base") == []


def test_export_cli_impossible_output_is_checked_first(capsys, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert export_cli.main(["--run", str(tmp_path), "--output", str(blocker / "model")]) == 1
    err = capsys.readouterr().err
    assert "afile" in err and "error:" in err


def test_client_impossible_output_is_checked_before_decoding(video_file, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code = serving_client.main([video_file, "--write-rest", str(blocker / "body.json")])
    assert code == 1
    assert "afile is a file, not a folder" in capsys.readouterr().err
