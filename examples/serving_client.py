"""Ask a TensorFlow Serving model server to classify a video.

Builds both request kinds the server understands from one video file:

* REST: ``POST <server>/v1/models/<model>[/versions/<N>]:predict`` with a JSON
  body, ``{"signature_name": ..., "instances": [clip]}`` (row format) or
  ``{"signature_name": ..., "inputs": {"video": ...}}`` (columnar format);
* gRPC: a ``tensorflow.serving.PredictRequest`` for
  ``PredictionService/Predict`` (needs ``tensorflow-serving-api``; install
  it with ``pip install --no-deps tensorflow-serving-api==2.21.0`` so it does
  not pull in a second TensorFlow wheel).

Signatures (see ``glimpse_keras/export.py``):

* ``serving_default``: the client samples one clip of T frames (the centre
  frame of T equal bins, as validation does) and sends uint8
  ``[1, T, H, W, 3]``;
* ``whole_video``: the client sends every frame, ``[frames, H, W, 3]``; the
  server samples K clips and averages them (columnar format only, because
  the input has no batch axis).
* ``windows`` (``--timeline``): the client slides windows over a long video
  (``--window``, ``--stride`` seconds; defaults: the training videos' length
  recorded in the export, half of it), samples K clips of T frames from each
  window at the offsets evaluation uses (``window_clip_indices``) and sends
  ``[windows, K, T, H, W, 3]``, a few windows per request
  (``--windows-per-request``); the server averages each window's K clips. The
  answers become a timeline of segments exactly as ``glimpse-predict
  --timeline`` builds it (``glimpse_keras.timeline``), and only one window of
  frames is held in memory. Needs ``--export`` (T, K, the frame size, the
  window and the class names come from its serving contract).

The server's graph preprocesses every frame (``video_ops.preprocess_frames``):
it squashes it (area interpolation) to the stored size of the training data,
unless it already has that size, then takes the centred crop. To keep requests
small the client does the resize step itself, with the same function
(``video_ops.resize_frames``), to the size the export records in
``assets.extra/serving_contract.json``: pass the exported version folder with
``--export`` and the client reads the frame size (and T) from it, so the
server only crops. ``--frame-size N`` sets the size by hand (default without
``--export``: 256, the default stored size); ``--frame-size 0`` sends the
frames at full resolution and leaves the resize to the server.

Examples::

    # print what would be sent, write the bodies to files
    python examples/serving_client.py video.avi --write-rest body.json --write-grpc request.pb
    # query a running server
    python examples/serving_client.py video.avi --server http://localhost:8501 --export models/glimpse_clouds/1
    python examples/serving_client.py video.avi --grpc-server localhost:8500 --signature whole_video
    # when each action happens in a long video, through the server
    python examples/serving_client.py session.mp4 --timeline --export models/glimpse_clouds/1 \
        --server http://localhost:8501 [--window 3 --stride 1] [--json]
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

import numpy as np

SIGNATURES = ("serving_default", "whole_video")
# Without --export: the default data.stored_size and data.num_frames.
DEFAULT_FRAME_SIZE = 256
DEFAULT_NUM_FRAMES = 8
# Frames resized at a time while decoding (bounds the memory of long videos).
RESIZE_CHUNK = 32
WINDOWS_SIGNATURE = "windows"
DEFAULT_WINDOWS_PER_REQUEST = 4
SERVING_API_HINT = (
    "the gRPC request needs tensorflow-serving-api: "
    "pip install --no-deps tensorflow-serving-api==2.21.0"
)


class ServingClientError(ValueError):
    """A request that cannot be built or sent; the message says why."""


# === Frames ===


def clip_frame_indices(num_video_frames, num_frames):
    """The centre frame of each of T equal bins: floor((t + 0.5) * F / T).

    Args:
        num_video_frames: int F >= 1.
        num_frames: int T >= 1.

    Returns:
        int64 (T,), clamped to [0, F - 1]; frames repeat when F < T.
    """
    if num_video_frames < 1 or num_frames < 1:
        raise ServingClientError(f"need at least one frame, received F={num_video_frames}, T={num_frames}")
    positions = (np.arange(num_frames) + 0.5) * num_video_frames / num_frames
    return np.clip(np.floor(positions).astype(np.int64), 0, num_video_frames - 1)


def window_clip_indices(num_video_frames, num_frames, clips):
    """The K evaluation clips of a window of F frames: clip k takes frame
    floor((t + (k + 0.5) / K) * F / T) of bin t (`video_ops.test_frame_indices`).

    Returns:
        int64 (K, T), clamped to [0, F - 1].
    """
    if num_video_frames < 1 or num_frames < 1 or clips < 1:
        raise ServingClientError(
            f"need at least one frame and one clip, received F={num_video_frames}, T={num_frames}, K={clips}")
    offsets = (np.arange(clips, dtype=np.float64)[:, None] + 0.5) / clips
    positions = (np.arange(num_frames, dtype=np.float64)[None, :] + offsets) * num_video_frames / num_frames
    return np.clip(np.floor(positions).astype(np.int64), 0, num_video_frames - 1)


def export_settings(path):
    """The clip settings an export records (its serving contract).

    Args:
        path: an exported SavedModel version folder, or its
            `assets.extra/serving_contract.json`.

    Returns:
        dict with "num_frames" (T of serving_default), "frame_size", the
        side the serving graph resizes frames to before its centre crop
        (`video_ops.stored_frame_side`: the stored size, or image_size),
        "clips_per_video" (K), "clip_seconds" (the training videos' length,
        or None) and "class_names".

    Raises:
        ExportError (a ValueError): naming the file that cannot be read.
    """
    from glimpse_keras import export
    from glimpse_keras.data import video_ops

    if os.path.isfile(path):
        try:
            with open(path) as handle:
                contract = json.load(handle)
        except (OSError, ValueError) as error:
            raise export.ExportError(f"cannot read the serving contract {path}: {error}") from error
    else:
        contract = export.read_serving_contract(path)
    try:
        side = video_ops.stored_frame_side(contract["image_size"], contract.get("stored_size"))
        return {"num_frames": int(contract["num_frames"]), "frame_size": side,
                "clips_per_video": int(contract["clips_per_video"]), "clip_seconds": contract.get("clip_seconds"),
                "class_names": [str(name) for name in contract["class_names"]]}
    except (KeyError, TypeError, ValueError) as error:
        raise export.ExportError(f"the serving contract of {path} lacks the clip sizes: {error!r}") from error


def load_frames(path, frame_size=DEFAULT_FRAME_SIZE):
    """Decodes a video file to uint8 RGB frames, resized as the server would.

    The resize is the serving graph's own (`video_ops.resize_frames`, area
    interpolation, aspect ratio not kept), rounded to uint8; given the size
    the export records (`export_settings`), the server then only crops.

    Args:
        path: the video file.
        frame_size: int; frames are squashed to frame_size x frame_size,
            0 or None keeps the original size.

    Returns:
        uint8 (F, H, W, 3).

    Raises:
        VideoDecodeError: naming the path and the reason.
    """
    return np.stack(list(iter_frames(path, frame_size)))


def iter_frames(path, frame_size=DEFAULT_FRAME_SIZE):
    """`load_frames` one frame at a time (resized `RESIZE_CHUNK` frames at a time).

    Yields:
        uint8 (H, W, 3) frames.

    Raises:
        VideoDecodeError: naming the path and the reason.
    """
    from glimpse_keras.data.video import iter_video_frames

    if not frame_size:
        yield from iter_video_frames(path)
        return
    from glimpse_keras.data import video_ops

    pending = []

    def flush():
        frames = video_ops.resize_frames(np.stack(pending), int(frame_size)).numpy()
        pending.clear()
        return np.clip(np.round(frames), 0, 255).astype(np.uint8)

    for frame in iter_video_frames(path):
        pending.append(frame)
        if len(pending) == RESIZE_CHUNK:
            yield from flush()
    if pending:
        yield from flush()


def resolve_clip_settings(export_dir=None, frame_size=None, num_frames=None):
    """The frame size and T of the requests: the export's (when given),
    explicit values otherwise, else the defaults (256, 8).

    Raises:
        ServingClientError: an explicit value that contradicts the export.
    """
    if export_dir is None:
        return (DEFAULT_FRAME_SIZE if frame_size is None else frame_size,
                DEFAULT_NUM_FRAMES if num_frames is None else num_frames)
    settings = export_settings(export_dir)
    if frame_size not in (None, 0, settings["frame_size"]):
        raise ServingClientError(
            f"--frame-size {frame_size} differs from the export's {settings['frame_size']} "
            f"({export_dir}): the server would resize the frames again; leave --frame-size out")
    if num_frames not in (None, settings["num_frames"]):
        raise ServingClientError(
            f"--num-frames {num_frames} differs from the export's T={settings['num_frames']} ({export_dir})")
    return (settings["frame_size"] if frame_size is None else frame_size), settings["num_frames"]


def request_video(frames, signature_name, num_frames):
    """The uint8 tensor one request carries for `signature_name`.

    Returns:
        `[1, T, H, W, 3]` for serving_default (one sampled clip) or the
        frames unchanged `[F, H, W, 3]` for whole_video.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ServingClientError(
            f"frames must be uint8 [frames, height, width, 3], received {frames.dtype} {frames.shape}"
        )
    if signature_name == "whole_video":
        return frames
    if signature_name != "serving_default":
        raise ServingClientError(f"unknown signature {signature_name!r}; known: {SIGNATURES}")
    return frames[clip_frame_indices(len(frames), num_frames)][None]


# === Requests ===


def build_rest_body(video, signature_name="serving_default", row_format=True):
    """The JSON body of a TF Serving REST predict request.

    Args:
        video: uint8 array, the signature's "video" input.
        signature_name: "serving_default" or "whole_video".
        row_format: True for {"instances": [...]} (one list item per batch
            element); False for {"inputs": {"video": ...}}. The whole_video
            signature has no batch axis and needs the columnar format.

    Returns:
        dict, ready for `json.dumps`.
    """
    video = np.asarray(video, dtype=np.uint8)
    if row_format and signature_name == "whole_video":
        raise ServingClientError("the whole_video signature has no batch axis: use the columnar 'inputs' format")
    body = {"signature_name": signature_name}
    if row_format:
        body["instances"] = [{"video": example.tolist()} for example in video]
    else:
        body["inputs"] = {"video": video.tolist()}
    return body


def rest_url(server, model_name="glimpse_clouds", version=None):
    """`<server>/v1/models/<model>[/versions/<N>]:predict`."""
    server = server.rstrip("/")
    if "://" not in server:
        server = "http://" + server
    versioned = f"/versions/{int(version)}" if version is not None else ""
    return f"{server}/v1/models/{model_name}{versioned}:predict"


def _serving_apis():
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as error:
        raise ServingClientError(f"{SERVING_API_HINT} ({error})") from error
    return predict_pb2, prediction_service_pb2_grpc


def build_grpc_request(video, model_name="glimpse_clouds", signature_name="serving_default", version=None):
    """A `tensorflow.serving.PredictRequest` carrying `video` as uint8.

    Raises:
        ServingClientError: when tensorflow-serving-api is not installed.
    """
    predict_pb2, _ = _serving_apis()
    from tensorflow.core.framework import tensor_pb2, types_pb2

    video = np.ascontiguousarray(video, dtype=np.uint8)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_content=video.tobytes())
    for size in video.shape:
        tensor.tensor_shape.dim.add(size=size)
    request.inputs["video"].CopyFrom(tensor)
    return request


# === Sending ===


def send_rest(url, body, timeout=60.0):
    """POSTs a JSON body; returns the decoded JSON response.

    Raises:
        ServingClientError: naming the URL and the server's message.
    """
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise ServingClientError(f"{url} answered {error.code}: {error.read().decode(errors='replace')}") from error
    except (urllib.error.URLError, OSError) as error:
        raise ServingClientError(f"cannot reach {url}: {error}") from error


def send_grpc(target, request, timeout=60.0):
    """Calls PredictionService/Predict; returns {output name: np.ndarray}."""
    _, prediction_service_pb2_grpc = _serving_apis()
    import grpc
    import tensorflow as tf

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ServingClientError(f"gRPC Predict on {target} failed: {error.code()}: {error.details()}") from error
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def summarise_prediction(outputs):
    """One line per video: class name, id and probability."""
    lines = []
    if "predictions" in outputs:  # REST row format: a list of dicts
        rows = outputs["predictions"]
    elif "outputs" in outputs:  # REST columnar format
        columns = outputs["outputs"]
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    else:  # gRPC: arrays with a batch axis
        rows = [dict(zip(outputs, values)) for values in zip(*outputs.values())]
    for row in rows:
        name = row["class_name"]
        name = name.decode() if isinstance(name, bytes) else name
        probability = float(np.max(row["probabilities"]))
        lines.append(f"{name} (class {int(row['class_id'])}, p={probability:.3f})")
    return lines


def response_probabilities(outputs):
    """The "probabilities" of a response, one row per example: float64 (batch, classes).

    `outputs`: the decoded REST JSON (row format {"predictions": [...]} or
    columnar {"outputs": {...}}) or the gRPC dict of arrays.
    """
    if "predictions" in outputs:
        return np.asarray([row["probabilities"] for row in outputs["predictions"]], np.float64)
    if "outputs" in outputs:
        return np.asarray(outputs["outputs"]["probabilities"], np.float64)
    return np.asarray(outputs["probabilities"], np.float64)


# === Timeline through the server ===


class WindowRequests:
    """The `windows` requests of a long video: batches of windows, each sampled into K clips.

    Args:
        path: the video file.
        settings: `export_settings` of the export.
        window, stride: seconds (defaults: the export's clip_seconds, half a window).
        fps: frames per second (default: the container's).
        windows_per_request: B, windows sent together.

    Iterating yields (starts, uint8 [B, K, T, H, W, 3]): the windows' first
    frames and their clips, frames resized as `iter_frames` does, windows
    placed as `glimpse_keras.timeline.SlidingWindows` places them (one
    window of frames in memory).

    Raises:
        TimelineError: no frame rate, a bad window or stride.
        VideoDecodeError: the video cannot be decoded.
    """

    def __init__(self, path, settings, *, window=None, stride=None, fps=None,
                 windows_per_request=DEFAULT_WINDOWS_PER_REQUEST):
        from glimpse_keras import timeline as timeline_lib
        from glimpse_keras.data.video import probe_video

        if windows_per_request < 1:
            raise ServingClientError(f"--windows-per-request: expected an integer >= 1, got {windows_per_request}")
        if fps is None:
            fps = probe_video(path)["frame_rate"]
            if fps is None:
                raise timeline_lib.TimelineError(f"{path}: the container declares no frame rate; pass --fps")
        self.path, self.settings, self.fps = os.fspath(path), settings, float(fps)
        self.window, self.stride, self.window_frames, self.stride_frames = timeline_lib.window_lengths(
            window, stride, fps, settings["clip_seconds"], self.path)
        self.indices = window_clip_indices(self.window_frames, settings["num_frames"], settings["clips_per_video"])
        self.windows_per_request = int(windows_per_request)
        self._sliding = timeline_lib.SlidingWindows(
            iter_frames(self.path, settings["frame_size"]), self.window_frames, self.stride_frames)

    @property
    def frames_seen(self):
        return self._sliding.frames_seen

    def __iter__(self):
        starts, clips = [], []
        for start, frames in self._sliding:
            starts.append(start)
            picked = np.stack([frames[i] for i in self.indices.reshape(-1)])
            clips.append(picked.reshape(self.indices.shape + picked.shape[1:]))
            if len(starts) == self.windows_per_request:
                yield starts, np.stack(clips)
                starts, clips = [], []
        if starts:
            yield starts, np.stack(clips)


def timeline_through_server(path, send, settings, **kwargs):
    """The timeline of a long video, each window classified by the server's `windows` signature.

    Args:
        path: the video file.
        send: function uint8 [B, K, T, H, W, 3] -> float (B, classes), the
            probabilities the server returns for B windows.
        settings: `export_settings` of the export.
        **kwargs: `WindowRequests` arguments (window, stride, fps, windows_per_request).

    Returns:
        a `glimpse_keras.timeline.Timeline`, built as `glimpse-predict
        --timeline` builds it (windows, tail window, segments).

    Raises:
        TimelineError: no frame rate, a bad window, a window longer than the video.
        VideoDecodeError: the video cannot be decoded.
    """
    from glimpse_keras import timeline as timeline_lib

    requests = WindowRequests(path, settings, **kwargs)
    class_names = settings["class_names"]
    windows = []
    for starts, batch in requests:
        for start, row in zip(starts, send(batch)):
            windows.append(timeline_lib.Window(
                index=len(windows), start_frame=start, end_frame=start + requests.window_frames, fps=requests.fps,
                probabilities=np.asarray(row, np.float64), class_names=class_names))
    if requests.frames_seen < requests.window_frames:
        raise timeline_lib.TimelineError(
            f"{path}: the window of {requests.window:g} s ({requests.window_frames} frames) is longer than the "
            f"video ({requests.frames_seen} frames); pass a shorter --window")
    return timeline_lib.Timeline(
        source=requests.path, fps=requests.fps, window_seconds=requests.window, stride_seconds=requests.stride,
        window_frames=requests.window_frames, stride_frames=requests.stride_frames,
        num_frames=requests.frames_seen, class_names=class_names, windows=windows,
        segments=timeline_lib.merge_segments(windows, requests.frames_seen / requests.fps))


def _timeline_main(args):
    """`--timeline`: windows through the server; without one, the first request is described (and written)."""
    from glimpse_keras import timeline as timeline_lib

    if not args.export:
        raise ServingClientError("--timeline needs --export DIR (or its serving_contract.json): T, K, the frame "
                                 "size, the window length and the class names come from it")
    settings = export_settings(args.export)
    if args.frame_size not in (None, settings["frame_size"]):
        raise ServingClientError(f"--frame-size {args.frame_size}: --timeline sends frames at the export's "
                                 f"{settings['frame_size']}; leave --frame-size out")
    options = dict(window=args.window, stride=args.stride, fps=args.fps, windows_per_request=args.windows_per_request)
    url = rest_url(args.server or "http://localhost:8501", args.model, args.version)
    row_format = not args.columnar
    sent = []

    def write_request(batch):
        """Writes the request files asked for (the first request of the timeline); returns the REST body."""
        body = build_rest_body(batch, WINDOWS_SIGNATURE, row_format)
        if args.write_rest:
            _write(args.write_rest, json.dumps(body).encode())
        if args.write_grpc:
            _write(args.write_grpc,
                   build_grpc_request(batch, args.model, WINDOWS_SIGNATURE, args.version).SerializeToString())
        return body

    def send(batch):
        if not sent:
            print(f"video {args.video}: sending uint8 [windows, K, T, H, W, 3] = {list(batch.shape)} per request "
                  f"to signature {WINDOWS_SIGNATURE}", file=sys.stderr)
            write_request(batch)
        sent.append(len(batch))
        if args.server:
            body = build_rest_body(batch, WINDOWS_SIGNATURE, row_format)
            return response_probabilities(send_rest(url, body, args.timeout))
        request = build_grpc_request(batch, args.model, WINDOWS_SIGNATURE, args.version)
        return response_probabilities(send_grpc(args.grpc_server, request, args.timeout))

    if not (args.server or args.grpc_server):
        requests = WindowRequests(args.video, settings, **options)
        for _, batch in requests:
            body = write_request(batch)
            print(f"video {args.video}: {requests.window:g} s windows ({requests.window_frames} frames) every "
                  f"{requests.stride:g} s; the first request carries uint8 {list(batch.shape)} "
                  f"({len(json.dumps(body)) / 1e6:.1f} MB of REST JSON) for signature {WINDOWS_SIGNATURE}; "
                  "pass --server or --grpc-server to send them all")
            break
        return 0
    timeline = timeline_through_server(args.video, send, settings, **options)
    if args.json:
        print(json.dumps(timeline.to_json(), indent=2))
    else:
        print(timeline_lib.format_timeline(timeline))
        print(f"({sum(sent)} windows in {len(sent)} requests)")
    return 0


# === Command line ===


def parse_args(argv):
    # Run from a checkout without installing: the repository root is importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from glimpse_keras.arguments import at_least

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", help="video file (anything PyAV or OpenCV decodes)")
    parser.add_argument("--signature", choices=SIGNATURES, default="serving_default")
    parser.add_argument("--export", metavar="DIR",
                        help="the exported version folder (or its assets.extra/serving_contract.json): "
                             "frame size and T are read from it")
    parser.add_argument("--num-frames", type=at_least(1),
                        help=f"T of the exported model (serving_default; default: the export's, else {DEFAULT_NUM_FRAMES})")
    parser.add_argument("--frame-size", type=at_least(0),
                        help="squash frames to N x N before sending (default: the export's stored size, else "
                             f"{DEFAULT_FRAME_SIZE}); 0 = as decoded, the server resizes")
    parser.add_argument("--columnar", action="store_true",
                        help='REST body as {"inputs": ...} instead of {"instances": ...}')
    parser.add_argument("--model", default="glimpse_clouds", help="served model name")
    parser.add_argument("--version", type=at_least(1), help="model version (default: the server's latest)")
    parser.add_argument("--write-rest", metavar="FILE", help="write the REST JSON body here")
    parser.add_argument("--write-grpc", metavar="FILE", help="write the serialized PredictRequest here")
    parser.add_argument("--server", help="REST endpoint, e.g. http://localhost:8501: send the request")
    parser.add_argument("--grpc-server", help="gRPC endpoint, e.g. localhost:8500: send the request")
    parser.add_argument("--timeout", type=at_least(0.001, float), default=60.0, help="seconds")
    timeline = parser.add_argument_group("a long video through the server (windows signature)")
    timeline.add_argument("--timeline", action="store_true",
                          help="classify sliding windows and merge them into segments (needs --export)")
    timeline.add_argument("--window", type=at_least(0.001, float), help="window length in seconds (default: the export's)")
    timeline.add_argument("--stride", type=at_least(0.001, float), help="seconds between windows (default: half a window)")
    timeline.add_argument("--fps", type=at_least(0.001, float), help="frames per second (default: the container's)")
    timeline.add_argument("--windows-per-request", type=at_least(1), default=DEFAULT_WINDOWS_PER_REQUEST,
                          help=f"windows sent in one request (default {DEFAULT_WINDOWS_PER_REQUEST})")
    timeline.add_argument("--json", action="store_true", help="print the timeline as JSON")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        from glimpse_keras.io_utils import StorageError, check_output_location

        for path in (args.write_rest, args.write_grpc):
            if path:
                check_output_location(path)
        if args.timeline:
            return _timeline_main(args)
        frame_size, num_frames = resolve_clip_settings(args.export, args.frame_size, args.num_frames)
        frames = load_frames(args.video, frame_size)
        video = request_video(frames, args.signature, num_frames)
        row_format = not args.columnar and args.signature == "serving_default"
        body = build_rest_body(video, args.signature, row_format)
        url = rest_url(args.server or "http://localhost:8501", args.model, args.version)
        text = json.dumps(body)
        print(f"video {args.video}: {len(frames)} frames decoded; sending uint8 {list(video.shape)} "
              f"to signature {args.signature}")
        print(f"REST: POST {url}  body {len(text) / 1e6:.1f} MB ({'instances' if row_format else 'inputs'} format)")
        if args.write_rest:
            _write(args.write_rest, text.encode())
            print(f"  written to {args.write_rest}")
        try:
            request = build_grpc_request(video, args.model, args.signature, args.version)
        except ServingClientError as error:
            request = None
            print(f"gRPC: skipped, {error}")
        if request is not None:
            print(f"gRPC: PredictionService/Predict  request {request.ByteSize() / 1e6:.1f} MB")
            if args.write_grpc:
                _write(args.write_grpc, request.SerializeToString())
                print(f"  written to {args.write_grpc}")
        if args.server:
            for line in summarise_prediction(send_rest(url, body, args.timeout)):
                print(f"REST prediction: {line}")
        if args.grpc_server:
            if request is None:
                raise ServingClientError(SERVING_API_HINT)
            for line in summarise_prediction(send_grpc(args.grpc_server, request, args.timeout)):
                print(f"gRPC prediction: {line}")
    except (ValueError, StorageError) as error:  # ServingClientError, VideoDecodeError, a refused write
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _write(path, data):
    """Writes a request file atomically; a refused write is a `StorageError`."""
    from glimpse_keras.io_utils import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)


if __name__ == "__main__":
    sys.exit(main())
