"""Classifying video files, long recordings and live streams with a trained run or an exported SavedModel.

    glimpse-predict VIDEO_OR_FOLDER [...] --run runs/demo [--json] [--output-video out.mp4]
    glimpse-predict VIDEO_OR_FOLDER [...] --saved-model runs/demo/export/glimpse_clouds/1
    glimpse-predict LONG_VIDEO [...] --run runs/demo --timeline [--window S] [--stride S] [--plot timeline.png]
    glimpse-predict --stream SOURCE --run runs/demo [--json] [--output-video live.mp4] [--rate R]

The command line over `glimpse_keras.Classifier` (`classifier.py`), which
holds the model, the clip sampling and the results. Every video is sampled
exactly as the test split is evaluated: it is decoded (PyAV, or OpenCV
without it) and each frame is squashed with area interpolation to
stored_size x stored_size, as the converter stores frames; K clips of T
frames are taken at the fixed bin offsets of `video_ops.test_frame_indices`,
each frame centre-cropped to image_size x image_size
(`video_ops.preprocess_frames`), and the raw logits of the K clips are
averaged before the softmax (the model does this for a
(batch, K, T, S, S, 3) input; the SavedModel's `whole_video` signature does
the same in its graph). T, S, the stored size, K and the class names come
from the run's config.yaml (`--run`) or from the SavedModel's serving contract
(`--saved-model`). Both use these fixed clips, also for a run whose
`data.test_sampling` is "random" (the authors' random test clips, which
`evaluate.py` applies): a video gets the same answer every time, and
`--run` answers as the exported model does.

A video that cannot be decoded (or a path that does not exist) is reported on
stderr with its path and the reason, and the other videos are still
classified; the exit code is then 1.

`--output-video` writes the video again at its own size and frame rate with
the predicted class on every frame and the glimpse boxes of the sampled
frames (`glimpse_keras.visualize.annotated_video`).

`--timeline` slides windows over each video and merges them into segments
(`glimpse_keras.timeline`); `--stream` classifies a camera, a network stream
or a file read in real time (`glimpse_keras.streaming`). docs/predicting.md
describes both.
"""

import argparse
import json
import os
import sys

from glimpse_keras.class_probabilities import TOP_K
from glimpse_keras.class_probabilities import ClassifierError as PredictError
from glimpse_keras.cli import prologue
from glimpse_keras.errors import GlimpseError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


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


def output_video_path(output, video, several, suffix="_predicted.mp4"):
    """Where the annotated copy of `video` goes: `output` itself for one video,
    `output/<name>_predicted.mp4` when several videos are classified (the
    `--plot` of a timeline: `output/<name>_timeline.png`)."""
    if not several:
        return output
    stem = os.path.splitext(os.path.basename(video))[0]
    return os.path.join(output, f"{stem}{suffix}")


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
        parents=[prologue.parent_parser()],
        description="Classify videos with a trained run or an exported SavedModel: top-5 class names "
        "with probabilities per video; --timeline for when each action happens in a long video, "
        "--stream for a camera or a network stream.",
    )
    parser.add_argument("videos", nargs="*", metavar="VIDEO", help="video files or folders of videos")
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
        "a folder for several); with --timeline each frame shows its segment's label, with --stream the "
        "current label",
    )
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="with --run: Keras dtype policy of the model (default float32); mixed_bfloat16 is "
                        "faster on CPUs with bfloat16 units")
    windows = parser.add_argument_group("long videos and streams (docs/predicting.md)")
    windows.add_argument("--timeline", action="store_true",
                         help="slide windows over each video and merge same-label windows into segments")
    windows.add_argument("--stream", metavar="SOURCE",
                         help="classify a live source: a camera (/dev/video0 or 0), an rtsp:// or http:// URL, "
                         "or a video file read at its own frame rate")
    windows.add_argument("--window", type=float, metavar="S",
                         help="window length in seconds (default: the typical length of the training videos)")
    windows.add_argument("--stride", type=float, metavar="S",
                         help="seconds between windows (default: half a window)")
    windows.add_argument("--fps", type=float,
                         help="frames per second of the video or source (default: what its container declares)")
    windows.add_argument("--plot", metavar="FILE.png",
                         help="with --timeline: draw the top classes' probabilities over time with the segments "
                         "shaded (a file for one video, a folder for several)")
    windows.add_argument("--rate", type=float, default=1.0,
                         help="with --stream of a file: speed factor of the reading (default 1 = real time; "
                         "0 = as fast as the model goes, every window classified)")
    windows.add_argument("--duration", type=float, metavar="S",
                         help="with --stream: stop after this many seconds of the source")
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
    if args.saved_model and args.precision:
        raise PredictError("--precision applies to --run; a SavedModel keeps the precision it was exported with")
    if args.stream and (args.videos or args.timeline):
        raise PredictError("--stream SOURCE takes no VIDEO argument and no --timeline")
    if not args.stream and not args.videos:
        raise PredictError("give VIDEO files or folders, or --stream SOURCE")
    for name in ("window", "stride", "fps", "duration"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise PredictError(f"--{name}: expected a positive number, got {value:g}")
    if not (args.timeline or args.stream):
        given = [f"--{name}" for name in ("window", "stride", "fps") if getattr(args, name) is not None]
        if given:
            raise PredictError(f"{', '.join(given)} apply to --timeline and --stream")
    if args.plot and not args.timeline:
        raise PredictError("--plot applies to --timeline")
    if not args.stream and (args.rate != 1.0 or args.duration is not None):
        raise PredictError("--rate and --duration apply to --stream")
    if args.rate < 0:
        raise PredictError(f"--rate: expected a number >= 0, got {args.rate:g}")


def main(argv=None):
    """Runs the command line; returns 0 when every video was classified, 1 otherwise, 2 for bad options."""
    args = build_argument_parser().parse_args(argv)
    try:
        _check_arguments(args)
        prologue.start(args)
    except GlimpseError as error:  # a bad option, or a backend this process cannot use
        return prologue.bad_argument(error)
    try:
        return _predict(args)
    except GlimpseError as error:
        return prologue.fail(error)


def _predict(args):
    """The command after its prologue; returns the exit code."""
    from glimpse_keras import console
    from glimpse_keras.classifier import Classifier
    from glimpse_keras.data.errors import VideoDecodeError
    from glimpse_keras.io_utils import StorageError, check_output_location
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
    if args.output_video and not args.stream:  # checked before the model loads, like every command's outputs
        try:
            check_output_location(args.output_video, directory=several)
        except StorageError as error:
            print(f"error: --output-video: {error}", file=sys.stderr)
            return 1
    if args.plot and not several and not args.plot.lower().endswith(".png"):
        print(f"error: --plot {args.plot}: expected a file name ending in .png", file=sys.stderr)
        return 2
    if args.plot and several:
        if os.path.isfile(args.plot):
            print(f"error: --plot {args.plot}: with several videos it must be a folder", file=sys.stderr)
            return 2
        os.makedirs(args.plot, exist_ok=True)
    if args.run:
        classifier = Classifier.from_run(args.run, stage=args.stage, weights=args.weights, clips=args.clips,
                                         precision=args.precision)
    else:
        classifier = Classifier.from_saved_model(args.saved_model, clips=args.clips)
    if args.stream:
        return _main_stream(args, classifier)
    for path, reason in problems:
        print(f"error: {path}: {reason}", file=sys.stderr)
    if args.timeline:
        return _main_timeline(args, classifier, videos, problems)
    results = []
    unwritten = []  # (video, reason): classified, but its annotated video could not be written
    bar = console.progress(videos, desc="predicting", unit="video", disable=not several)
    for path in bar:
        try:
            prediction = classifier.predict(path)
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
                    prediction, target, classifier.image_size, classifier.stored_size)
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
    documents = [prediction.to_json(args.top) for prediction in results]
    if args.json:
        return _finish(args, classifier, "predictions", documents, problems + unwritten, "")
    code = _finish(args, classifier, "predictions", documents, problems, "could not be classified")
    if unwritten:
        print(f"{len(unwritten)} annotated video(s) could not be written (the predictions are above): "
              + ", ".join(path for path, _ in unwritten), file=sys.stderr)
        code = 1
    return code


def _finish(args, classifier, key, documents, problems, failed):
    """The end of a run over videos: one JSON document (the results under `key`, the errors) with
    --json, else a line naming the inputs that failed. Returns the exit code."""
    if args.json:
        document = {
            "model": args.run or classifier.source,
            key: documents,
            "errors": [{"video": path, "error": reason} for path, reason in problems],
        }
        print(json.dumps(document, indent=2))
    elif problems:
        print(f"{len(problems)} input(s) {failed}: " + ", ".join(path for path, _ in problems), file=sys.stderr)
    return 1 if problems else 0


def _main_timeline(args, classifier, videos, problems):
    """`--timeline`: a table of segments per video (or one JSON document), with the plots and videos asked for."""
    from glimpse_keras import console, timeline as timeline_lib
    from glimpse_keras.data.errors import VideoDecodeError
    from glimpse_keras.io_utils import StorageError
    from glimpse_keras.visualize.annotated_video import AnnotatedVideoError

    several = len(videos) > 1
    results = []
    for path in console.progress(videos, desc="timelines", unit="video", disable=not several):
        try:
            timeline = classifier.timeline(path, window=args.window, stride=args.stride, fps=args.fps)
        except (VideoDecodeError, PredictError) as error:
            problems.append((path, str(error)))
            console.write(f"error: {error}", file=sys.stderr)
            # A video that stops decoding keeps the windows it had.
            timeline = getattr(error, "timeline", None)
            if timeline is None:
                continue
        results.append(timeline)
        notes = []
        try:
            if args.plot:
                target = output_video_path(args.plot, path, several, suffix="_timeline.png")
                timeline_lib.plot_timeline(timeline, target, top=args.top)
                notes.append(f"  timeline plot: {target}")
            if args.output_video:
                target = output_video_path(args.output_video, path, several)
                timeline_lib.write_timeline_video(timeline, target)
                notes.append(f"  annotated video: {target}")
        except (StorageError, AnnotatedVideoError, VideoDecodeError) as error:
            problems.append((path, str(error)))
            console.write(f"error: {error}", file=sys.stderr)
        if not args.json:
            console.write("\n".join([timeline_lib.format_timeline(timeline)] + notes))
    return _finish(args, classifier, "timelines", [timeline.to_json(args.top) for timeline in results],
                   problems, "could not be classified to the end")


def _main_stream(args, classifier):
    """`--stream`: a line (or a JSON line) per prediction, then the stream's summary; 1 when it stopped."""
    from glimpse_keras import streaming
    from glimpse_keras.io_utils import StorageError
    from glimpse_keras.visualize.annotated_video import AnnotatedVideoError

    stream = classifier.stream(args.stream, window=args.window, stride=args.stride, fps=args.fps,
                               rate=args.rate, duration=args.duration, output_video=args.output_video)
    code = 0
    results = iter(stream)
    try:
        for result in results:
            if args.json:
                print(json.dumps(result.to_json(args.top)), flush=True)
            else:
                print(streaming.format_result(result), flush=True)
    except KeyboardInterrupt:
        results.close()
    except (streaming.StreamError, AnnotatedVideoError, StorageError) as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    if args.json:
        print(json.dumps({"summary": stream.stats.to_json()}), flush=True)
    else:
        print(stream.stats.summary(), flush=True)
        if args.output_video and code == 0:
            print(f"annotated video: {args.output_video}")
    return code


if __name__ == "__main__":
    sys.exit(main())
