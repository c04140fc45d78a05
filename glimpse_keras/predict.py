"""Classifying video files with a trained run or an exported SavedModel.

    glimpse-predict VIDEO_OR_FOLDER [...] --run runs/demo [--json] [--output-video out.mp4]
    glimpse-predict VIDEO_OR_FOLDER [...] --saved-model runs/demo/export/glimpse_clouds/1

Every video is sampled exactly as the test split is evaluated: it is decoded
(PyAV, or OpenCV without it) and each frame is squashed with area
interpolation to stored_size x stored_size, as the converter stores frames;
K clips of T frames are taken at the fixed bin offsets of
`video_ops.test_frame_indices`, each frame centre-cropped to
image_size x image_size (`video_ops.preprocess_frames`), and the raw logits
of the K clips are averaged before the softmax (the model does this for a
(batch, K, T, S, S, 3) input; the SavedModel's `whole_video` signature does
the same in its graph). T, S, the stored size, K and the class names come
from the run's config.yaml (`--run`) or from the SavedModel's serving contract
(`--saved-model`).

A video that cannot be decoded (or a path that does not exist) is reported on
stderr with its path and the reason, and the other videos are still
classified; the exit code is then 1.

`--output-video` writes the video again at its own size and frame rate with
the predicted class on every frame and the glimpse boxes of the sampled
frames (`glimpse_keras.visualize.annotated_video`).
"""

import argparse
import dataclasses
import json
import os
import sys

import numpy as np

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv")
TOP_K = 5


class PredictError(ValueError):
    """A request that cannot be served (bad option, model folder or output); names what is wrong."""


@dataclasses.dataclass
class Prediction:
    """The classification of one video.

    Attributes:
        source: the video path.
        probabilities: float (classes,), softmax of the clip-averaged logits.
        class_names: the model's class names (len == classes).
        locations: float (K, T, G, 4) glimpse [x, y, s_x, s_y] in [-1, 1] of
            each clip's centre crop (zeros for the global variants).
        frame_indices: int (K, T), the decoded frames each clip used.
        num_video_frames: frames decoded from the file.
    """

    source: str
    probabilities: np.ndarray
    class_names: list
    locations: np.ndarray
    frame_indices: np.ndarray
    num_video_frames: int

    def top(self, k=TOP_K):
        """The k most probable classes, best first: list of (class_id, name, probability)."""
        order = np.argsort(-self.probabilities, kind="stable")[: min(k, len(self.probabilities))]
        return [(int(i), self.class_names[i], float(self.probabilities[i])) for i in order]

    def to_json(self, k=TOP_K):
        """A JSON-serialisable dict: video, frames, clips, top-k list."""
        return {
            "video": self.source,
            "frames": int(self.num_video_frames),
            "clips": int(self.frame_indices.shape[0]),
            "top": [
                {"class_id": class_id, "class_name": name, "probability": round(probability, 6)}
                for class_id, name, probability in self.top(k)
            ],
        }


# === Clip sampling (as evaluation) ===


def sample_clips(frames, num_frames, image_size, num_clips, stored_size=None):
    """The K evaluation clips of a decoded video.

    Args:
        frames: uint8 (F, H, W, 3), already squashed to the stored size.
        num_frames: T, frames per clip.
        image_size: S, side of the centre crop.
        num_clips: K.
        stored_size: the side the model's data were stored at (default: the
            frames' own height, i.e. frames already squashed to it).

    Returns:
        (clips uint8 (K, T, S, S, 3), frame_indices int (K, T)); clip k takes
        frame floor((t + (k + 0.5) / K) * F / T) of bin t
        (`video_ops.test_frame_indices`), so frames repeat when F < T; each
        frame is the evaluation view of `video_ops.preprocess_frames` (the
        one preprocessing shared with the input pipeline and the serving graph).
    """
    from glimpse_keras.data import video_ops

    frames = np.asarray(frames)
    indices = video_ops.test_frame_indices(len(frames), int(num_frames), int(num_clips)).numpy()
    chosen = frames[indices.reshape(-1)]
    view = video_ops.preprocess_frames(chosen, image_size=int(image_size),
                                       stored_size=int(stored_size or frames.shape[1]))
    clips = np.clip(np.round(np.asarray(view)), 0, 255).astype(np.uint8)
    clips = clips.reshape(indices.shape + clips.shape[1:])
    return np.ascontiguousarray(clips), indices.astype(np.int64)


def softmax(logits):
    """Softmax of a 1-D array of logits, in float64."""
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


# === Predictors ===


class RunPredictor:
    """The final (or chosen) model of a training run, loaded as `evaluate.py` loads it.

    Args:
        run_dir: a run folder written by train.py (config.yaml + <stage>/final.weights.h5).
        stage: stage name (default: the last).
        weights: weights file (default: the stage's final weights).
        clips: K clips per video (default: the config's data.clips_per_video).

    Raises:
        glimpse_keras.training.TrainingError: a missing or unreadable run file.
    """

    def __init__(self, run_dir, stage=None, weights=None, clips=None):
        from glimpse_keras import training
        from glimpse_keras.backends import compile_forward
        from glimpse_keras.experiment import Experiment
        from glimpse_keras.models.folding import fold_model_batch_norm

        model, config = training.load_run_model(run_dir, stage, weights)
        # The run's serving settings, as export.py writes them into the
        # SavedModel's contract.
        settings = Experiment(config).serving_settings(clips=clips)
        self.num_frames = settings["num_frames"]
        self.image_size = settings["image_size"]
        self.stored_size = settings["stored_size"]
        self.clips_per_video = settings["clips_per_video"]
        self.class_names = list(settings["class_names"])
        if not model.backbone.fold_batch_norm:
            model = fold_model_batch_norm(model)  # as `evaluation.collect_logits`

        def forward(video):
            outputs = model(video, training=False)
            return {"logits": outputs["logits"], "locations": outputs["locations"]}

        self._forward = compile_forward(forward, model)

    def __call__(self, frames):
        """Classifies stored-size frames (F, stored, stored, 3).

        Returns:
            dict "probabilities" (classes,), "locations" (K, T, G, 4), "frame_indices" (K, T).
        """
        clips, indices = sample_clips(frames, self.num_frames, self.image_size, self.clips_per_video,
                                      stored_size=self.stored_size)
        outputs = self._forward(clips[None])
        return {
            "probabilities": softmax(np.asarray(outputs["logits"])[0]),
            "locations": np.asarray(outputs["locations"], np.float32)[0],
            "frame_indices": indices,
        }


class SavedModelPredictor:
    """A SavedModel written by `export.py`, called through its `whole_video` signature.

    Args:
        saved_model_dir: the version folder (holds saved_model.pb and
            assets.extra/serving_contract.json); a TF Serving base folder
            holding numbered versions is accepted too (the newest is used).
        clips: must be None or the K the model was exported with (K is part
            of the exported graph).

    Raises:
        PredictError: no SavedModel there, or a K that the graph cannot use.
    """

    def __init__(self, saved_model_dir, clips=None):
        import tensorflow as tf

        from glimpse_keras import export

        saved_model_dir = os.fspath(saved_model_dir)
        if not os.path.exists(os.path.join(saved_model_dir, "saved_model.pb")):
            versions = export.existing_versions(saved_model_dir)
            if not versions:
                raise PredictError(
                    f"--saved-model {saved_model_dir}: no saved_model.pb there nor a numbered version folder "
                    "(expected the folder written by export.py, e.g. models/glimpse_clouds/1)"
                )
            saved_model_dir = os.path.join(saved_model_dir, str(versions[-1]))
        try:
            contract = export.read_serving_contract(saved_model_dir)
        except export.ExportError as error:
            raise PredictError(f"--saved-model {saved_model_dir}: {error}") from error
        self.num_frames = int(contract["num_frames"])
        self.image_size = int(contract["image_size"])
        self.stored_size = contract.get("stored_size")
        self.clips_per_video = int(contract["clips_per_video"])
        self.class_names = [str(name) for name in contract["class_names"]]
        if clips is not None and clips != self.clips_per_video:
            raise PredictError(
                f"--clips {clips}: the SavedModel {saved_model_dir} averages {self.clips_per_video} clips "
                "per video (fixed at export; export again with --clips to change it)"
            )
        try:
            loaded = tf.saved_model.load(saved_model_dir)
            self._signature = loaded.signatures[export.WHOLE_VIDEO_SIGNATURE]
        except (KeyError, OSError, ValueError, tf.errors.OpError) as error:  # OpError: damaged variables
            raise PredictError(f"--saved-model {saved_model_dir}: cannot load its whole_video signature: {error}")
        self._loaded = loaded  # keeps the signature's variables alive
        self.path = saved_model_dir

    def __call__(self, frames):
        """Classifies frames (F, H, W, 3); see `RunPredictor.__call__`."""
        import tensorflow as tf

        outputs = self._signature(video=tf.constant(frames, tf.uint8))
        return {
            "probabilities": np.asarray(outputs["probabilities"], np.float64)[0],
            "locations": np.asarray(outputs["locations"], np.float32)[0],
            "frame_indices": np.asarray(outputs["frame_indices"], np.int64)[0],
        }


def predict_video(predictor, path):
    """Decodes one video and classifies it.

    Frames are squashed to stored_size (image_size without one) with area
    interpolation while decoding, as the converter does.

    Returns:
        Prediction.

    Raises:
        glimpse_keras.data.errors.VideoDecodeError: naming the file and the reason.
    """
    from glimpse_keras.data.video import read_video

    side = predictor.stored_size or predictor.image_size
    frames = read_video(path, size=(side, side))
    outputs = predictor(frames)
    return Prediction(
        source=os.fspath(path),
        probabilities=outputs["probabilities"],
        class_names=predictor.class_names,
        locations=outputs["locations"],
        frame_indices=outputs["frame_indices"],
        num_video_frames=len(frames),
    )


# === Inputs ===


def find_videos(paths):
    """Expands the command's paths into video files, in order.

    A folder contributes every file below it whose extension is in
    `VIDEO_EXTENSIONS` (sorted, recursively). A file is taken whatever its
    extension (PyAV decides whether it is a video).

    Returns:
        (videos, problems): list of paths, list of (path, reason) for paths
        that do not exist and folders without a video.
    """
    videos, problems = [], []
    for path in paths:
        path = os.fspath(path)
        if os.path.isfile(path):
            videos.append(path)
        elif os.path.isdir(path):
            found = []
            for folder, subfolders, files in os.walk(path):
                subfolders.sort()
                found.extend(
                    os.path.join(folder, name) for name in sorted(files)
                    if name.lower().endswith(VIDEO_EXTENSIONS)
                )
            if found:
                videos.extend(found)
            else:
                problems.append((path, f"folder holds no video file ({', '.join(VIDEO_EXTENSIONS)})"))
        else:
            problems.append((path, "no such file or folder"))
    return videos, problems


def output_video_path(output, video, several):
    """Where the annotated copy of `video` goes: `output` itself for one video,
    `output/<name>_predicted.mp4` when several videos are classified."""
    if not several:
        return output
    stem = os.path.splitext(os.path.basename(video))[0]
    return os.path.join(output, f"{stem}_predicted.mp4")


def format_prediction(prediction, k=TOP_K):
    """Human-readable lines: the video, then its top-k classes with probabilities."""
    lines = [f"{prediction.source} ({prediction.num_video_frames} frames, "
             f"{prediction.frame_indices.shape[0]} clips)"]
    for rank, (class_id, name, probability) in enumerate(prediction.top(k), start=1):
        lines.append(f"  {rank}. {name:<40} {probability:7.2%}  (class {class_id})")
    return "\n".join(lines)


# === Command line ===


def build_argument_parser(prog="glimpse-predict"):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Classify videos with a trained run or an exported SavedModel: top-5 class names "
        "with probabilities per video.",
    )
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or folders of videos")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--run", help="training run folder written by train.py")
    model.add_argument("--saved-model", help="SavedModel folder written by export.py (a version folder)")
    parser.add_argument("--stage", help="with --run: the stage (default: the last)")
    parser.add_argument("--weights", help="with --run: weights file (default: the stage's final weights)")
    parser.add_argument("--clips", type=int, help="clips averaged per video (default: the model's)")
    parser.add_argument("--top", type=int, default=TOP_K, help=f"classes listed per video (default {TOP_K})")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument(
        "--output-video",
        metavar="PATH",
        help="write the video with the predicted class and the glimpse boxes drawn (a file for one video, "
        "a folder for several)",
    )
    from glimpse_keras import console
    from glimpse_keras.backend_selection import add_backend_argument

    console.add_verbose_argument(parser)
    add_backend_argument(parser)
    return parser


def _check_arguments(args):
    if args.clips is not None and args.clips < 1:
        raise PredictError(f"--clips: expected an integer >= 1, got {args.clips}")
    if args.top < 1:
        raise PredictError(f"--top: expected an integer >= 1, got {args.top}")
    if args.saved_model and (args.stage or args.weights):
        raise PredictError("--stage and --weights apply to --run, not to --saved-model")
    if args.saved_model and args.backend == "jax":
        raise PredictError("--saved-model runs on TensorFlow; --backend jax applies to --run only")


def main(argv=None):
    """Runs the command line; returns 0 when every video was classified, 1 otherwise, 2 for bad options."""
    args = build_argument_parser().parse_args(argv)
    from glimpse_keras import console
    from glimpse_keras.backend_selection import BackendSelectionError, select_backend

    console.configure_logging(verbose=args.verbose)
    try:
        _check_arguments(args)
        select_backend(args.backend)
    except (PredictError, BackendSelectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    console.import_tensorflow_quietly()
    from glimpse_keras.data.errors import VideoDecodeError
    from glimpse_keras.io_utils import StorageError, check_output_location
    from glimpse_keras.training import TrainingError
    from glimpse_keras.visualize import annotated_video

    videos, problems = find_videos(args.videos)
    several = len(videos) > 1
    extension = os.path.splitext(args.output_video or "")[1].lower()
    if args.output_video and not several and extension not in annotated_video.OUTPUT_CONTAINERS:
        print(f"error: --output-video {args.output_video}: expected a video file name ending in "
              f"{', '.join(annotated_video.OUTPUT_CONTAINERS)}", file=sys.stderr)
        return 2
    if args.output_video and several:
        if os.path.isfile(args.output_video):
            print(f"error: --output-video {args.output_video}: with several videos it must be a folder",
                  file=sys.stderr)
            return 2
    if args.output_video:  # checked before the model loads, like every command's outputs
        try:
            check_output_location(args.output_video, directory=several)
        except StorageError as error:
            print(f"error: --output-video: {error}", file=sys.stderr)
            return 1
    try:
        if args.run:
            predictor = RunPredictor(args.run, args.stage, args.weights, args.clips)
        else:
            predictor = SavedModelPredictor(args.saved_model, args.clips)
    except (PredictError, TrainingError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path, reason in problems:
        print(f"error: {path}: {reason}", file=sys.stderr)
    results = []
    bar = console.progress(videos, desc="predicting", unit="video", disable=not several)
    unwritten = []  # (video, reason): classified, but its annotated video could not be written
    for path in bar:
        try:
            prediction = predict_video(predictor, path)
        except (VideoDecodeError, PredictError) as error:
            problems.append((path, str(error)))
            console.write(f"error: {error}", file=sys.stderr)
            continue
        results.append(prediction)
        written = None
        if args.output_video:
            target = output_video_path(args.output_video, path, several)
            try:
                annotated_video.write_annotated_video(
                    prediction, target, predictor.image_size, predictor.stored_size)
                written = target
            except (VideoDecodeError, annotated_video.AnnotatedVideoError, StorageError) as error:
                unwritten.append((path, f"annotated video not written: {error}"))
        if not args.json:
            text = format_prediction(prediction, args.top)
            if written:
                text += f"\n  annotated video: {written}"
            console.write(text)
        if args.output_video and not written:
            console.write(f"error: {path}: {unwritten[-1][1]}", file=sys.stderr)
    if args.json:
        document = {
            "model": args.run or predictor.path,
            "predictions": [prediction.to_json(args.top) for prediction in results],
            "errors": [{"video": path, "error": reason} for path, reason in problems + unwritten],
        }
        print(json.dumps(document, indent=2))
    else:
        if problems:
            print(f"{len(problems)} input(s) could not be classified: "
                  + ", ".join(path for path, _ in problems), file=sys.stderr)
        if unwritten:
            print(f"{len(unwritten)} annotated video(s) could not be written (the predictions are above): "
                  + ", ".join(path for path, _ in unwritten), file=sys.stderr)
    return 1 if problems or unwritten else 0
