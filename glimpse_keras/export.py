"""SavedModel export for TensorFlow Serving.

`export_model` writes one SavedModel through `keras.export.ExportArchive` with
three signatures, all built from stock TensorFlow ops only (no `py_function`,
no custom kernels), so the stock `tensorflow_model_server` can load it:

`serving_default` -- one clip per example:
    input  "video"          uint8 [batch, T, height, width, 3] RGB, any height
                            and width (at least 1 pixel).
    output "probabilities"  float32 [batch, classes], softmax of the logits.
           "logits"         float32 [batch, classes].
           "class_id"       int64 [batch], argmax of the probabilities.
           "class_name"     string [batch].
           "locations"      float32 [batch, T, G, 4] glimpse [x, y, s_x, s_y]
                            (zeros for the global variants).

`whole_video` -- one whole video of any length, batch 1:
    input  "video"          uint8 [frames, height, width, 3] RGB.
    output the same keys for a batch of 1 ("locations" gains a clip axis:
           [1, K, T, G, 4]) plus "frame_indices" int32 [1, K, T], the frames
           each clip used.
    The graph samples K clips exactly as the test split is evaluated
    (`video_ops.test_frame_indices`: clip k takes frame
    floor((t + (k + 0.5) / K) * F / T) of bin t, so frames repeat when the
    video is shorter than T) and averages the raw logits over the clips
    before the softmax. These are the fixed clips even for a run whose
    `data.test_sampling` is "random" (the authors' random test frames and
    crops): a served video must get the same answer every time, so the
    random clips stay an evaluation protocol (`evaluate.py`).

`windows` -- a batch of windows of a long video, each already sampled into K clips:
    input  "video"          uint8 [windows, K, T, height, width, 3] RGB, any
                            K >= 1; window w's clips are the frames a client
                            picked from that window at the offsets of
                            `video_ops.test_frame_indices` (as `whole_video`
                            picks them from a whole video).
    output the keys of `serving_default` for each window, the raw logits
           averaged over its K clips before the softmax ("locations" gains a
           clip axis: [windows, K, T, G, 4]). A window sent this way gets the
           probabilities `whole_video` gives for all of its frames, from a
           request K*T frames long (`examples/serving_client.py --timeline`).

Preprocessing inside every graph reproduces evaluation: the model was trained
on crops of frames that the converter squashed (area interpolation, aspect
ratio NOT kept) to `stored_size` x `stored_size`, and is evaluated on the
centred `image_size` crop of those. The serving graph therefore resizes each
frame with `tf.image.resize(method="area")` to stored_size x stored_size and
takes the centred image_size x image_size crop. Without a stored size the
whole frame is squashed to image_size x image_size. ImageNet normalisation
happens inside the model.

A wrong rank, clip length or channel count fails inside the graph with an
`InvalidArgumentError` whose message states the expected layout and the shape
received. The model server does not check fed shapes against a signature,
so the signatures declare "video" with unknown shape and leave every check
to the graph; the expected shapes are written to
`assets.extra/serving_contract.json` (with the class names and clip
settings). A wrong dtype is rejected before the graph runs ("expected to be
a uint8 tensor").

The SavedModel is TensorFlow's format and the serving graph is built with
TensorFlow ops, so exporting needs the TensorFlow backend. A model trained on
another backend (JAX) is exported from its weights file in a process that
runs Keras on TensorFlow: `python export.py --run RUN` (which always uses
TensorFlow), or `export_run_in_subprocess` from Python. The weights files
are the same on every backend, so the SavedModel is the same too.

TF Serving layout: `export_serving_version` writes `<base>/<version>/` (the
next free integer by default) and `write_models_config` the text-format
`ModelServerConfig` for `tensorflow_model_server --model_config_file`.
Every directory is written under a hidden temporary name in the same folder
and renamed at the end, so the server never sees half a version.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import keras
import tensorflow as tf

from glimpse_keras.arguments import check_int
from glimpse_keras.data import video_ops
from glimpse_keras.errors import GlimpseError
from glimpse_keras.io_utils import (
    StorageError,
    apply_umask,
    atomic_write_text,
    check_output_location,
    makedirs,
    storage_error,
)
from glimpse_keras.models.folding import fold_model_batch_norm

SERVING_SIGNATURE = "serving_default"
WHOLE_VIDEO_SIGNATURE = "whole_video"
WINDOWS_SIGNATURE = "windows"
MODELS_CONFIG_NAME = "models.config"
CONTRACT_FILE = os.path.join("assets.extra", "serving_contract.json")
# Registered in stock TensorFlow but they call back into Python, which the
# model server does not have.
PYTHON_CALLBACK_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})

_VERSION_PATTERN = re.compile(r"^[0-9]+$")


class ExportError(GlimpseError, ValueError):
    """An export argument or an export destination that cannot be used."""


# === Preprocessing (in the graph) ===


def _checked_video(video, *, layout, rank, has_batch_axis, num_frames=None, frame_axis=None):
    """Asserts the rank, clip length and channel count of a uint8 video.

    Args:
        video: uint8 tensor of unknown shape.
        layout: str, the expected layout for the message.
        rank: int, expected rank.
        has_batch_axis: bool; axis 0 is a batch axis, which must hold at
            least one clip (an empty batch gets its own message).
        num_frames: int or None; expected size of axis `frame_axis`.
        frame_axis: int, axis holding the frames.

    Returns:
        `video` with static rank and channel count (and clip length), after
        the check has run.
    """
    shape = tf.shape(video)
    padded = tf.concat([shape, tf.zeros([rank], tf.int32)], axis=0)[:rank]
    valid = tf.equal(tf.size(shape), rank)
    valid = tf.logical_and(valid, tf.equal(padded[rank - 1], 3))
    # Every axis but the batch axis must be non-empty.
    for axis in range(1 if has_batch_axis else 0, rank - 1):
        valid = tf.logical_and(valid, padded[axis] > 0)
    if num_frames is not None:
        valid = tf.logical_and(valid, tf.equal(padded[frame_axis], num_frames))
    check = tf.debugging.Assert(
        valid,
        [f"`video` must be uint8 {layout} with RGB channels last; received shape", shape],
        summarize=16,
        name="check_video_shape",
    )
    checks = [check]
    if has_batch_axis:
        # An empty batch would otherwise fail deep inside the model with a
        # misleading depth error.
        checks.append(tf.debugging.Assert(
            tf.logical_or(tf.logical_not(valid), padded[0] > 0),
            ["`video` holds an empty batch (no clip); send at least one clip; received shape", shape],
            summarize=16,
            name="check_video_batch",
        ))
    with tf.control_dependencies(checks):
        video = tf.identity(video)
    static = [None] * rank
    static[-1] = 3
    if num_frames is not None:
        static[frame_axis] = num_frames
    return tf.ensure_shape(video, static)


def _named_outputs(outputs, class_names):
    logits = outputs["logits"]
    class_id = tf.argmax(logits, axis=-1, output_type=tf.int64)
    return {
        "probabilities": tf.nn.softmax(logits, axis=-1),
        "logits": logits,
        "class_id": class_id,
        "class_name": tf.gather(tf.constant(list(class_names), tf.string), class_id),
        "locations": outputs["locations"],
    }


def build_serving_functions(model, *, num_frames, image_size, class_names, clips_per_video=5, stored_size=None):
    """The three endpoint functions and their input signatures.

    Args: see `export_model`.

    Returns:
        dict signature name -> (function, [tf.TensorSpec]) for
        `ExportArchive.add_endpoint`.
    """

    def serve_clips(video, rank):
        # rank 5: a batch of clips (serving_default); rank 6: a batch of
        # windows of K clips each (windows), averaged by the model.
        layout = (f"[batch, {num_frames}, height, width, 3]" if rank == 5
                  else f"[windows, clips, {num_frames}, height, width, 3]")
        video = _checked_video(video, layout=layout, rank=rank, has_batch_axis=True, num_frames=num_frames,
                               frame_axis=rank - 4)
        shape = tf.shape(video)
        frames = tf.reshape(video, tf.concat([[-1], shape[rank - 3:]], axis=0))
        frames = video_ops.preprocess_frames(frames, image_size=image_size, stored_size=stored_size)
        clips = tf.reshape(frames, [shape[axis] for axis in range(rank - 4)] + [num_frames, image_size, image_size, 3])
        return _named_outputs(model(clips, training=False), class_names)

    def serve_clip(video):
        return serve_clips(video, rank=5)

    def serve_whole_video(video):
        video = _checked_video(video, layout="[frames, height, width, 3]", rank=4, has_batch_axis=False)
        indices = video_ops.test_frame_indices(tf.shape(video)[0], num_frames, clips_per_video)
        frames = tf.gather(video, tf.reshape(indices, [-1]))
        frames = video_ops.preprocess_frames(frames, image_size=image_size, stored_size=stored_size)
        clips = tf.reshape(frames, [1, clips_per_video, num_frames, image_size, image_size, 3])
        outputs = _named_outputs(model(clips, training=False), class_names)
        outputs["frame_indices"] = tf.reshape(indices, [1, clips_per_video, num_frames])
        return outputs

    def serve_windows(video):
        return serve_clips(video, rank=6)

    spec = [tf.TensorSpec(shape=None, dtype=tf.uint8, name="video")]
    return {
        SERVING_SIGNATURE: (serve_clip, spec),
        WHOLE_VIDEO_SIGNATURE: (serve_whole_video, spec),
        WINDOWS_SIGNATURE: (serve_windows, spec),
    }


# === SavedModel ===


def _check_arguments(model, num_frames, image_size, class_names, clips_per_video, stored_size):
    for name, value in (("num_frames", num_frames), ("image_size", image_size), ("clips_per_video", clips_per_video)):
        check_int(name, value, error=ExportError)
    if image_size % 32:
        raise ExportError(f"image_size must be a multiple of 32 (backbone stride), received {image_size}")
    if stored_size is not None:
        try:
            check_int("stored_size", stored_size, minimum=image_size, error=ExportError)
        except ExportError:
            raise ExportError(
                f"stored_size must be an int >= image_size={image_size} or None, received {stored_size!r}"
            ) from None
    num_classes = getattr(model, "num_classes", None)
    if len(class_names) != num_classes:
        raise ExportError(
            f"class_names has {len(class_names)} names but the model has num_classes={num_classes}"
        )
    if not model.built:
        raise ExportError("the model is not built: call it once on a batch (or load its weights) before export")
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ExportError(
            f"a SavedModel is exported with the TensorFlow backend, but Keras runs on {backend!r}; "
            "save the weights and export them in a TensorFlow process "
            "(`python export.py --run RUN`, or `export_run_in_subprocess`)"
        )


def serving_contract(*, num_frames, image_size, class_names, clips_per_video, stored_size, clip_seconds=None):
    """The JSON-serialisable description written to assets.extra/."""
    return {
        "signatures": {
            SERVING_SIGNATURE: {
                "inputs": {"video": {"dtype": "uint8", "shape": [-1, num_frames, -1, -1, 3]}},
                "outputs": ["probabilities", "logits", "class_id", "class_name", "locations"],
            },
            WHOLE_VIDEO_SIGNATURE: {
                "inputs": {"video": {"dtype": "uint8", "shape": [-1, -1, -1, 3]}},
                "outputs": ["probabilities", "logits", "class_id", "class_name", "locations", "frame_indices"],
            },
            WINDOWS_SIGNATURE: {
                "inputs": {"video": {"dtype": "uint8", "shape": [-1, -1, num_frames, -1, -1, 3]}},
                "outputs": ["probabilities", "logits", "class_id", "class_name", "locations"],
            },
        },
        "num_frames": num_frames,
        "image_size": image_size,
        "stored_size": stored_size,
        "clips_per_video": clips_per_video,
        # The typical duration of the training videos: the default window of a timeline.
        "clip_seconds": clip_seconds,
        "preprocessing": (
            f"each frame is squashed (area) to {stored_size or image_size} x {stored_size or image_size}"
            + (f", then the centred {image_size} x {image_size} crop is taken" if stored_size else "")
        ),
        "class_names": list(class_names),
    }


def export_model(
    model,
    export_dir,
    *,
    num_frames,
    image_size,
    class_names,
    clips_per_video=5,
    stored_size=None,
    fold_batch_norm=True,
    clip_seconds=None,
):
    """Writes `model` as a SavedModel with the `serving_default`,
    `whole_video` and `windows` signatures (see the module docstring).

    Args:
        model: a built `GlimpseClouds` (its `num_classes` must match
            `class_names`).
        export_dir: the SavedModel directory to create; must not exist yet.
            It is written under a temporary name beside it and renamed.
        num_frames: int T, frames per clip the model was trained on.
        image_size: int S, side of the model's square input.
        class_names: sequence of `num_classes` str.
        clips_per_video: int K, clips averaged by `whole_video`.
        stored_size: int or None, side of the frames the training data was
            stored at (`config.data.stored_size`); see
            `video_ops.preprocess_frames`.
        fold_batch_norm: bool, export the inference-only copy of the model
            whose backbone BatchNorms are folded into its convolutions
            (`models.folding.fold_model_batch_norm`): the same outputs up
            to float rounding, measured ~10% faster
            (`benchmarks/export_speed.py`). `model` itself is unchanged.
        clip_seconds: float or None, the typical duration of the training
            videos in seconds, recorded in the contract as the default window
            of a timeline (`Experiment.serving_settings`).

    Returns:
        `export_dir` (str).

    Raises:
        ExportError: a bad argument, an unbuilt model or an existing
            `export_dir`.
    """
    class_names = [str(name) for name in class_names]
    _check_arguments(model, num_frames, image_size, class_names, clips_per_video, stored_size)
    export_dir = os.fspath(export_dir)
    if os.path.lexists(export_dir):
        raise ExportError(f"export directory {export_dir} already exists; choose another path or version")
    parent = os.path.dirname(os.path.abspath(export_dir))
    check_output_location(export_dir, directory=True)
    makedirs(parent)
    # A leading dot and a non-numeric name: TF Serving ignores it meanwhile.
    if fold_batch_norm and not model.backbone.fold_batch_norm:
        model = fold_model_batch_norm(model)
    try:
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(export_dir)}.tmp-", dir=parent)
    except OSError as error:
        raise storage_error(export_dir, error) from error
    try:
        archive = keras.export.ExportArchive()
        # No `archive.track(model)`: the endpoints' variables are tracked
        # anyway, and tracking the model as well stores every weight twice
        # (once per Keras variable wrapper, once per tf.Variable).
        functions = build_serving_functions(
            model,
            num_frames=num_frames,
            image_size=image_size,
            class_names=class_names,
            clips_per_video=clips_per_video,
            stored_size=stored_size,
        )
        for name, (function, input_signature) in functions.items():
            archive.add_endpoint(name, function, input_signature=input_signature)
        archive.write_out(tmp, verbose=False)
        contract = serving_contract(
            num_frames=num_frames,
            image_size=image_size,
            class_names=class_names,
            clips_per_video=clips_per_video,
            stored_size=stored_size,
            clip_seconds=clip_seconds,
        )
        os.makedirs(os.path.join(tmp, os.path.dirname(CONTRACT_FILE)), exist_ok=True)
        with open(os.path.join(tmp, CONTRACT_FILE), "w") as handle:
            json.dump(contract, handle, indent=2)
        # mkdtemp makes a 0700 folder: a model server running as another
        # user could not read the version. Give every folder the umask's mode.
        for folder, _, _ in os.walk(tmp):
            apply_umask(folder, directory=True)
        os.rename(tmp, export_dir)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError) and not isinstance(error, StorageError):
            raise storage_error(export_dir, error) from error
        if _is_refused_write(error):
            raise storage_error(export_dir, OSError(None, str(error))) from error
        raise
    return export_dir


def _is_refused_write(error):
    """TensorFlow reports a full disk or a read-only folder as its own error."""
    text = str(error).lower()
    return isinstance(error, tf.errors.OpError) and (
        "no space left" in text or "read-only file system" in text or "permission denied" in text
    )


def read_serving_contract(saved_model_dir):
    """Reads the contract JSON that `export_model` stores in assets.extra/."""
    path = os.path.join(saved_model_dir, CONTRACT_FILE)
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ExportError(f"cannot read the serving contract {path}: {error}") from error


# === TF Serving layout ===


def existing_versions(model_base_dir):
    """Sorted integer versions present under a TF Serving model base path."""
    if not os.path.isdir(model_base_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(model_base_dir)
        if _VERSION_PATTERN.match(name) and os.path.isdir(os.path.join(model_base_dir, name))
    )


def next_version(model_base_dir):
    """1 + the largest existing version (1 for an empty or missing base)."""
    versions = existing_versions(model_base_dir)
    return versions[-1] + 1 if versions else 1


def export_serving_version(model, model_base_dir, *, version=None, **export_kwargs):
    """Exports `model` as version `version` of a TF Serving model.

    Args:
        model: see `export_model`.
        model_base_dir: the model's base path (e.g. `models/glimpse_clouds`).
        version: positive int, or None for `next_version(model_base_dir)`.
        **export_kwargs: `export_model` keyword arguments.

    Returns:
        the version directory `<model_base_dir>/<version>`.

    Raises:
        ExportError: a bad version, an existing version or a bad argument.
    """
    if version is None:
        version = next_version(model_base_dir)
    try:
        check_int("version", version, error=ExportError)
    except ExportError:
        raise ExportError(f"version must be a positive int, received {version!r}") from None
    path = os.path.join(model_base_dir, str(version))
    if os.path.lexists(path):
        raise ExportError(
            f"version {version} already exists at {path}; the next free version is "
            f"{next_version(model_base_dir)}"
        )
    return export_model(model, path, **export_kwargs)


def _quote(text):
    """A protobuf text-format string literal."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def models_config_text(model_name, base_path):
    """A one-model `ModelServerConfig` in protobuf text format."""
    return (
        "model_config_list {\n  config {\n"
        f"    name: {_quote(model_name)}\n    base_path: {_quote(base_path)}\n"
        '    model_platform: "tensorflow"\n  }\n}\n'
    )


def write_models_config(config_path, model_name, base_path):
    """Writes or updates a text-format `ModelServerConfig`.

    The entry named `model_name` gets `base_path`; other models already
    listed in an existing file are kept (that merge needs the
    tensorflow-serving-api protos).

    Args:
        config_path: the models.config file.
        model_name: the name clients use (`/v1/models/<name>:predict`).
        base_path: the model base path as the server sees it.

    Returns:
        `config_path`.

    Raises:
        ExportError: an existing file that cannot be read or merged.
    """
    try:
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2
    except ImportError:
        model_server_config_pb2 = None
    if model_server_config_pb2 is None:
        if os.path.exists(config_path):
            with open(config_path) as handle:
                names = set(re.findall(r'name:\s*"([^"]*)"', handle.read()))
            if names - {model_name}:
                raise ExportError(
                    f"{config_path} lists other models {sorted(names - {model_name})}; merging needs "
                    "`pip install --no-deps tensorflow-serving-api`"
                )
        atomic_write_text(config_path, models_config_text(model_name, base_path))
        return config_path
    config = model_server_config_pb2.ModelServerConfig()
    if os.path.exists(config_path):
        try:
            with open(config_path) as handle:
                text_format.Parse(handle.read(), config)
        except (OSError, text_format.ParseError) as error:
            raise ExportError(f"cannot parse the existing {config_path} as a ModelServerConfig: {error}") from error
    entries = config.model_config_list.config
    entry = next((item for item in entries if item.name == model_name), None)
    if entry is None:
        entry = entries.add(name=model_name)
    entry.base_path = base_path
    entry.model_platform = "tensorflow"
    atomic_write_text(config_path, text_format.MessageToString(config))
    return config_path


def export_for_serving(
    model,
    model_base_dir,
    *,
    version=None,
    model_name=None,
    serving_base_path=None,
    **export_kwargs,
):
    """`export_serving_version` plus `models.config` beside the base path.

    Args:
        model: see `export_model`.
        model_base_dir: e.g. `MODELS/glimpse_clouds`; models.config goes to
            `MODELS/models.config`.
        version: int or None (next free).
        model_name: served name (default: the base directory's name).
        serving_base_path: base path written into models.config (default:
            the absolute `model_base_dir`; e.g. "/models/glimpse_clouds"
            when the server runs in a container that mounts MODELS at
            /models).
        **export_kwargs: `export_model` keyword arguments.

    Returns:
        dict with "saved_model" (the version directory), "version",
        "models_config" (path) and "model_name".
    """
    model_base_dir = os.path.abspath(model_base_dir)
    model_name = model_name or os.path.basename(model_base_dir)
    path = export_serving_version(model, model_base_dir, version=version, **export_kwargs)
    config_path = write_models_config(
        os.path.join(os.path.dirname(model_base_dir), MODELS_CONFIG_NAME),
        model_name,
        serving_base_path or model_base_dir,
    )
    return {
        "saved_model": path,
        "version": int(os.path.basename(path)),
        "models_config": config_path,
        "model_name": model_name,
    }


def export_run_model(model, experiment, model_base_dir, *, version=None, serving_base_path=None):
    """Exports a trained model with the clip settings of its `Experiment`.

    Args:
        model: the built model (e.g. from `runs.load_run`).
        experiment: its `Experiment` (`Experiment.serving_settings`: the
            clip size and count, the class names).
        model_base_dir: TF Serving base path of the model.
        version, serving_base_path: see `export_for_serving`.

    Returns:
        the version directory (str).
    """
    result = export_for_serving(
        model,
        model_base_dir,
        version=version,
        serving_base_path=serving_base_path,
        **experiment.serving_settings(),
    )
    return result["saved_model"]


def export_command(run_dir, model_base_dir, *, version=None, stage=None, weights=None):
    """The `export.py` command line that exports a run (a list of str).

    `export.py` always runs Keras on TensorFlow, whatever backend trained
    the run.
    """
    command = [sys.executable, "-m", "glimpse_keras.cli.export", "--run", os.fspath(run_dir), "--output", os.fspath(model_base_dir)]
    for flag, value in (("--version", version), ("--stage", stage), ("--weights", weights)):
        if value is not None:
            command += [flag, os.fspath(value) if not isinstance(value, int) else str(value)]
    return command


def export_run_in_subprocess(run_dir, model_base_dir, *, version=None, stage=None, weights=None):
    """Exports a finished run in a child process running Keras on TensorFlow.

    For a process whose Keras runs on another backend (JAX): the child
    rebuilds the model from the run's config and weights file
    (`runs.load_run`) and calls `export_for_serving`, so the
    SavedModel is the one a TensorFlow-trained run with those weights gives.

    Args:
        run_dir: a directory written by `training.train`.
        model_base_dir: TF Serving base path of the model.
        version: int or None (the next free version).
        stage, weights: see `runs.load_run`.

    Returns:
        the version directory (str).

    Raises:
        ExportError: the child failed; the message holds the command to
            rerun and the end of its error output.
    """
    if version is None:
        version = next_version(model_base_dir)
    command = export_command(run_dir, model_base_dir, version=version, stage=stage, weights=weights)
    environment = dict(os.environ, KERAS_BACKEND="tensorflow")
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ExportError(
            f"the export command failed with exit code {result.returncode}: {shlex.join(command)}\n"
            + "\n".join(detail)
        )
    return os.path.join(os.fspath(model_base_dir), str(version))


# === Checks of a written SavedModel ===


def read_saved_model_proto(saved_model_dir):
    """Parses `saved_model.pb` into a `SavedModel` protocol buffer."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(saved_model_dir, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    try:
        with open(path, "rb") as handle:
            proto.ParseFromString(handle.read())
    except (OSError, ValueError) as error:
        raise ExportError(f"cannot read {path}: {error}") from error
    return proto


def graph_op_names(saved_model_dir):
    """Every op type used by the serving graph and its function library."""
    names = set()
    for meta_graph in read_saved_model_proto(saved_model_dir).meta_graphs:
        names.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            names.update(node.op for node in function.node_def)
    return names


def unservable_ops(saved_model_dir):
    """Op types the stock model server cannot run: unregistered in stock
    TensorFlow (custom kernels) or Python callbacks. Empty when servable."""
    from tensorflow.python.framework import op_def_registry

    names = graph_op_names(saved_model_dir)
    return sorted(name for name in names if op_def_registry.get(name) is None or name in PYTHON_CALLBACK_OPS)
