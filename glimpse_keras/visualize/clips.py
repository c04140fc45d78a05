"""The clip a visualisation shows: from a video file or from a converted sample.

Both paths produce the model input exactly as evaluation does: T frames at
the centres of T equal temporal bins, each frame squashed to
stored_size x stored_size (area interpolation, as conversion stores them) and
centre-cropped to image_size x image_size.
"""

import dataclasses
import os

import numpy as np

from glimpse_keras.errors import GlimpseError


class UnknownSampleError(GlimpseError, ValueError):
    """A sample id that is not in the run's converted data."""


@dataclasses.dataclass
class Clip:
    """One model input and what is known about it.

    Attributes:
        video: uint8 (T, S, S, 3) RGB.
        frame_indices: int (T,) indices of the frames in the source video.
        source: the file path or sample id shown.
        pose: None or float32 (T, P, J, 2) ground-truth joints in [-1, 1] of the crop.
        pose_mask: None or float32 (T, P, J).
        label: None or the 0-based ground-truth class.
    """

    video: np.ndarray
    frame_indices: np.ndarray
    source: str
    pose: np.ndarray = None
    pose_mask: np.ndarray = None
    label: int = None


def eval_frame_indices(num_frames, num_samples):
    """floor((t + 0.5) * F / T) for t < T, clamped to [0, F-1] (as `video_ops`)."""
    from glimpse_keras.data import video_ops

    return video_ops.eval_frame_indices(int(num_frames), int(num_samples)).numpy()


def clip_from_video_file(path, num_frames, stored_size, image_size):
    """Decodes a video file into an evaluation clip.

    Args:
        path: video file (anything PyAV/OpenCV decodes).
        num_frames: T.
        stored_size: side the frames are squashed to first.
        image_size: side of the centre crop (the model input).

    Returns:
        Clip without pose.

    Raises:
        glimpse_keras.data.errors.VideoDecodeError: naming the file.
    """
    from glimpse_keras.data.video import read_video

    from glimpse_keras.data.video_ops import preprocess_frames

    # Decoded at the stored size as the converter stores frames, then the
    # evaluation view shared with the serving graph.
    frames = read_video(path, size=(stored_size, stored_size))
    indices = eval_frame_indices(len(frames), num_frames)
    view = preprocess_frames(frames[indices], image_size=image_size, stored_size=stored_size)
    video = np.ascontiguousarray(np.clip(np.round(view.numpy()), 0, 255).astype(np.uint8))
    return Clip(video=video, frame_indices=indices, source=str(path))


def _id_variants(text):
    """The given id plus its canonical NTU form when it parses as one."""
    text = os.path.basename(str(text).strip())
    variants = {text}
    try:
        from glimpse_keras.data.ntu import parse_ntu_sample_id

        variants.add(parse_ntu_sample_id(text).name)
    except ValueError:
        pass
    return variants


def _iter_ids(path):
    import tensorflow as tf

    from glimpse_keras.data import schema

    spec = {schema.VIDEO_ID: tf.io.FixedLenFeature([], tf.string)}
    for serialized in tf.data.TFRecordDataset([path]):
        context, _ = tf.io.parse_single_sequence_example(serialized, context_features=spec)
        yield context[schema.VIDEO_ID].numpy().decode()


def find_sample(files, sample_id):
    """Locates a video id in TFRecord shards.

    Args:
        files: TFRecord paths, searched in order.
        sample_id: the id (an NTU file name also matches its id).

    Returns:
        (path, position): the shard and the record's 0-based position in it.

    Raises:
        UnknownSampleError: naming the id, how many videos were searched and
            a few ids that do exist.
    """
    wanted = _id_variants(sample_id)
    seen = []
    for path in files:
        for position, video_id in enumerate(_iter_ids(path)):
            if video_id in wanted:
                return path, position
            seen.append(video_id)
    examples = ", ".join(seen[:5]) or "none"
    raise UnknownSampleError(
        f"sample id {sample_id!r} is neither an existing video file nor one of the "
        f"{len(seen)} videos in {len(files)} TFRecord file(s) searched (e.g. {examples})"
    )


def clip_from_record(path, position, num_frames, image_size, sample_id=None):
    """The evaluation clip of one converted video (`pipeline.build_dataset`, mode 'eval').

    Returns:
        Clip with the ground-truth pose of the crop, its mask and the label.
    """
    import tensorflow as tf

    from glimpse_keras.data import pipeline, schema

    dataset = pipeline.build_dataset(
        [path], "eval", num_frames=num_frames, image_size=image_size, batch_size=1, cycle_length=1
    )
    spec = {schema.NUM_FRAMES: tf.io.FixedLenFeature([], tf.int64)}
    for inputs, targets in dataset.skip(position).take(1):
        raw = next(iter(tf.data.TFRecordDataset([path]).skip(position).take(1)))
        context, _ = tf.io.parse_single_sequence_example(raw, context_features=spec)
        # The pipeline samples min(num_frames, stored JPEGs); they agree in valid records.
        indices = eval_frame_indices(int(context[schema.NUM_FRAMES]), num_frames)
        return Clip(
            video=inputs["video"][0].numpy(),
            frame_indices=indices,
            source=sample_id or f"{path}#{position}",
            pose=targets["pose"][0].numpy(),
            pose_mask=targets["pose_mask"][0].numpy(),
            label=int(targets["label"][0]),
        )
    raise UnknownSampleError(f"{path} has no record at position {position}")


def clip_from_sample_id(sample_id, converted_dir, data_config, splits=("test", "train")):
    """Finds `sample_id` in a converted directory and returns its evaluation clip.

    Args:
        sample_id: video id (e.g. 'S001C002P003R002A013').
        converted_dir: directory with `splits/` written by the converter.
        data_config: `config.DataConfig` (protocol, num_frames, image_size).
        splits: split indexes searched, in order.

    Raises:
        UnknownSampleError: when no split holds the id.
    """
    from glimpse_keras.data import pipeline, preparation

    files = []
    for split in splits:
        try:
            files.extend(preparation.split_files(converted_dir, data_config, split))
        except pipeline.SplitNotFoundError:
            continue
    files = list(dict.fromkeys(files))
    if not files:
        raise UnknownSampleError(
            f"sample id {sample_id!r}: {converted_dir} has no split index "
            f"({', '.join(splits)}) to search"
        )
    path, position = find_sample(files, sample_id)
    return clip_from_record(path, position, data_config.num_frames, data_config.image_size, sample_id)
