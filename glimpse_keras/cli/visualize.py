"""`glimpse-visualize` (or `python -m glimpse_keras.visualize`): draws a
trained run's glimpses on clips.

    python -m glimpse_keras.visualize --run RUN --video FILE_OR_SAMPLE_ID [MORE ...] --output OUT.png|OUT.gif

Each `--video` is a video file (decoded and sampled as evaluation does) or the
id of a video in the run's converted data (then the ground-truth joints are
drawn too). A .png output holds all frames of a clip side by side, one row per
clip; a .gif shows the frames one after the other (clips stacked). The
attention diagnostics of the clips drawn are printed
(`glimpse_keras.diagnostics`; the input dependence needs two clips or more, the
on-body rate sample ids).
"""

import argparse
import os
import sys

import numpy as np

from glimpse_keras import diagnostics
from glimpse_keras.cli import prologue
from glimpse_keras.errors import GlimpseError
from glimpse_keras.io_utils import atomic_path
from glimpse_keras.visualize import clips
from glimpse_keras.visualize.drawing import (
    BACKGROUND,
    DEFAULT_MIN_FRAME_SIDE,
    FRAME_GAP,
    draw_frames,
    join_side_by_side,
)

OUTPUT_FORMATS = {".png": "PNG", ".gif": "GIF"}
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg")


class VisualizeError(GlimpseError, ValueError):
    """A command-line request that cannot be drawn (the message says why)."""


def output_format(path):
    """'PNG' or 'GIF' from the output file's extension.

    Raises:
        VisualizeError: for any other extension.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension not in OUTPUT_FORMATS:
        raise VisualizeError(
            f"--output {path}: the file must end in .png (frames side by side) or .gif (animation)"
        )
    return OUTPUT_FORMATS[extension]


def _stack_rows(images):
    """Concatenates equal-width images top to bottom with FRAME_GAP background rows."""
    gap = np.empty((FRAME_GAP, images[0].shape[1], 3), np.uint8)
    gap[:] = BACKGROUND
    pieces = [images[0]]
    for image in images[1:]:
        pieces.extend([gap, image])
    return np.concatenate(pieces, axis=0)


def write_images(images, path, fps=2.0):
    """Writes frame images atomically: a strip for .png, an animation for .gif.

    Args:
        images: list of uint8 (H, W, 3) RGB images of equal size (`draw_frames`),
            or a list of such lists, one per clip (a row each in a .png, stacked
            in every frame of a .gif; all clips need the same number of frames).
        path: output file ending in .png or .gif.
        fps: GIF frames per second.
    """
    from PIL import Image

    kind = output_format(path)
    clips_images = images if isinstance(images[0], list) else [images]
    with atomic_path(path) as tmp:
        if kind == "PNG":
            picture = _stack_rows([join_side_by_side(row) for row in clips_images])
            Image.fromarray(picture).save(tmp, format="PNG")
        else:
            frames = [_stack_rows(list(step)) for step in zip(*clips_images)]
            pictures = [Image.fromarray(image) for image in frames]
            pictures[0].save(
                tmp,
                format="GIF",
                save_all=True,
                append_images=pictures[1:],
                duration=max(20, int(round(1000.0 / fps))),
                loop=0,
            )


def _looks_like_a_file(text):
    return os.sep in text or text.lower().endswith(VIDEO_EXTENSIONS)


def load_clip(video, experiment, run_dir, converted_dir=None, cache_root=None):
    """The clip named by `--video`: a video file, else a sample id.

    Raises:
        VisualizeError: for a missing file.
        glimpse_keras.data.errors.VideoDecodeError: for an unreadable file.
        clips.UnknownSampleError: for an id absent from the converted data.
    """
    data = experiment.config.data
    if os.path.isfile(video):
        return clips.clip_from_video_file(video, data.num_frames, data.stored_size, data.image_size)
    if _looks_like_a_file(video):
        raise VisualizeError(f"--video {video}: no such file")
    if converted_dir is None:
        from glimpse_keras.runs import data_cache

        converted_dir = experiment.prepare_data(cache_root or data_cache(run_dir))
    return clips.clip_from_sample_id(video, converted_dir, data)


def predict(model, video):
    """Runs the model on one clip; returns numpy outputs without the batch axis."""
    outputs = model(video[None], training=False)
    return {key: np.asarray(value)[0] for key, value in outputs.items()}


def _describe(clip, outputs, class_names=None):
    logits = outputs["logits"].astype(np.float64)
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    best = int(np.argmax(probabilities))

    def name(label):
        if class_names is None or not 0 <= label < len(class_names):
            return f"class {label}"
        return f"{label} {class_names[label]}"

    lines = [f"{clip.source}: predicted {name(best)} (p={probabilities[best]:.3f})"]
    if clip.label is not None:
        lines[0] += f", ground truth {name(clip.label)}"
    for t, frame in enumerate(clip.frame_indices):
        boxes = "  ".join(
            f"g{g}[x={x:+.2f} y={y:+.2f} sx={sx:.2f} sy={sy:.2f}]"
            for g, (x, y, sx, sy) in enumerate(outputs["locations"][t])
        )
        lines.append(f"  t={t} frame {int(frame)}: {boxes}")
    return "\n".join(lines)


def build_argument_parser():
    parser = argparse.ArgumentParser(
        prog="python -m glimpse_keras.visualize",
        parents=[prologue.parent_parser()],
        description="Draw a trained run's glimpses, worker assignments and ground-truth "
        "joints on a clip.",
    )
    parser.add_argument("--run", required=True, help="training run directory (holds config.yaml)")
    parser.add_argument(
        "--video",
        required=True,
        nargs="+",
        help="video files or ids of videos in the run's converted data (e.g. S001C002P003R002A013); "
        "several clips are drawn one row each",
    )
    parser.add_argument("--output", required=True, help="OUT.png (frames side by side) or OUT.gif")
    parser.add_argument("--stage", default=None, help="stage of the run (default: the last)")
    parser.add_argument("--weights", default=None, help="weights file (default: the stage's final)")
    parser.add_argument(
        "--converted-dir", default=None, help="converted shards to search for a sample id"
    )
    parser.add_argument(
        "--cache-root", default=None, help="data cache of the run (default: RUN/../data_cache)"
    )
    parser.add_argument("--fps", type=float, default=2.0, help="GIF frames per second")
    parser.add_argument(
        "--min-frame-side",
        type=int,
        default=DEFAULT_MIN_FRAME_SIDE,
        help="small frames are enlarged until their short side reaches this (pixels)",
    )
    parser.add_argument(
        "--sampled-region",
        action="store_true",
        help="draw the region the bilinear sampler reads (+-1 = centres of the corner res5 "
        "cells) instead of the pose frame (+-1 = frame edges)",
    )
    return parser


def main(argv=None):
    """Runs the command line; returns the exit code (0 ok, 1 error, 2 a bad --backend)."""
    args = build_argument_parser().parse_args(argv)
    try:
        prologue.start(args)
    except GlimpseError as error:  # a backend this process cannot use
        return prologue.bad_argument(error)
    from glimpse_keras.io_utils import check_output_location
    from glimpse_keras.runs import load_run

    try:
        kind = output_format(args.output)
        if args.fps <= 0:
            raise VisualizeError(f"--fps must be > 0, got {args.fps}")
        check_output_location(args.output)
        model, experiment = load_run(args.run, args.stage, args.weights)
        config = experiment.config
        if model.is_global:
            raise VisualizeError(
                f"run {args.run}: the model of this stage is the {model.variant!r} variant, "
                f"which has no glimpses; choose a glimpse stage with --stage"
            )
        label_map = experiment.label_map
        cells = config.data.image_size // model.backbone.output_stride
        clips_drawn, outputs_drawn, images = [], [], []
        for video in args.video:
            clip = load_clip(video, experiment, args.run, args.converted_dir, args.cache_root)
            if clip.label is not None and label_map is not None:
                # Sample ids carry the stored label; the model's labels index the class subset.
                clip.label = label_map.index(clip.label) if clip.label in label_map else None
            outputs = predict(model, clip.video)
            images.append(draw_frames(
                clip.video,
                outputs["locations"],
                outputs["assignments"],
                clip.pose,
                clip.pose_mask,
                min_frame_side=args.min_frame_side,
                feature_grid=(cells, cells) if args.sampled_region else None,
                frame_titles=[f"t={t} f={int(f)}" for t, f in enumerate(clip.frame_indices)],
            ))
            clips_drawn.append(clip)
            outputs_drawn.append(outputs)
        if len({len(clip.frame_indices) for clip in clips_drawn}) > 1:
            raise VisualizeError("the clips have different numbers of frames and cannot be drawn together")
        write_images(images, args.output, args.fps)
    except GlimpseError as error:
        return prologue.fail(error)
    names = experiment.class_names
    for clip, outputs in zip(clips_drawn, outputs_drawn):
        print(_describe(clip, outputs, names))
    with_pose = all(clip.pose is not None for clip in clips_drawn)
    figures = diagnostics.attention_diagnostics(
        np.stack([outputs["locations"] for outputs in outputs_drawn]),
        np.stack([outputs["assignments"] for outputs in outputs_drawn]),
        np.stack([clip.pose for clip in clips_drawn]) if with_pose else None,
        np.stack([clip.pose_mask for clip in clips_drawn]) if with_pose else None,
        assign_axis=model.core.assign_axis,
    )
    print(f"attention diagnostics of {len(clips_drawn)} clip(s):")
    print("\n".join(diagnostics.format_diagnostics(figures)))
    print(f"wrote {args.output} ({kind}, {len(clips_drawn)} clip(s) of {len(images[0])} frames)")
    return 0



if __name__ == "__main__":
    sys.exit(main())
