"""What either conversion engine does per sample and per shard: decode a raw
sample (`convert_sample`) and write one shard of records (`ShardWriter`).

The launcher with its local engine (`convert`) and the Apache Beam engine
(`convert_beam`) both build on this module.
"""

import os

from glimpse_keras import filesystem
from glimpse_keras.data import schema, sources
from glimpse_keras.data.errors import DataReadError
from glimpse_keras.errors import GlimpseError
from glimpse_keras.filesystem import atomic_write_json
from glimpse_keras.io_utils import storage_errors

SETTINGS_FILE = "conversion_settings.json"
PARTIAL_SUFFIX = ".partial"


class ConversionError(GlimpseError, ValueError):
    """Conversion cannot proceed (bad settings, nothing converted, ...)."""


# === Work done per sample (no TensorFlow) ===


def init_decoding_process():
    """Prepares a process (or Beam worker) that decodes videos: OpenCV on one
    thread, since the engines already run one sample per process."""
    import cv2

    cv2.setNumThreads(1)


def convert_sample(raw, stored_size, jpeg_quality):
    """Decodes one raw sample; the per-sample step of both engines.

    Args:
        raw: a `sources.RawSample`.
        stored_size: side of the stored square frames, pixels.
        jpeg_quality: 1..100.

    Returns:
        (video_id, record, warnings, error): `record` a `schema.VideoRecord`
        (None for a bad sample), `warnings` a list of messages, `error` None
        or {"file", "reason"} naming why the sample is skipped.
    """
    try:
        record, warnings = sources.load_raw_sample(raw, stored_size, jpeg_quality)
        return raw.video_id, record, warnings, None
    except DataReadError as error:
        return raw.video_id, None, [], {"file": error.path, "reason": error.reason}
    except filesystem.TransientStorageError:
        raise  # not the sample's fault: the run fails (a Beam runner retries the shard)
    except Exception as error:  # noqa: BLE001 - one bad file must not stop a long run
        return raw.video_id, None, [], {
            "file": raw.video_path, "reason": f"{type(error).__name__}: {error}"}


# === Shard writing (the main process, or a Beam worker) ===


class ShardWriter:
    """Collects one shard's records into a '.partial' file, then publishes it.

    A write the file system refuses (TensorFlow reports a full disk as
    `ResourceExhaustedError`) raises `StorageError` naming the shard; the
    partial file is removed (`abort`).

    The sidecar '<shard>.json' (videos, errors, warnings, splits) is written
    atomically just before the finished shard is renamed into place, so a
    shard that exists is complete and described.

    Args:
        output: the conversion's output directory.
        path: the shard's path relative to `output` (`ShardPlan.path`).
        splits: the shard's (protocol, split) pairs (`ShardPlan.splits`).
        partial_path: where the records are collected; default
            '<shard>.partial'. It must end with '.partial' (removed by the
            next run if left behind).
    """

    def __init__(self, output, path, splits, partial_path=None):
        import tensorflow as tf

        self.splits = splits
        self.final_path = os.path.join(output, path)
        self.partial_path = partial_path or self.final_path + PARTIAL_SUFFIX
        filesystem.makedirs(os.path.dirname(self.final_path))
        with storage_errors(self.final_path):
            self.writer = tf.io.TFRecordWriter(self.partial_path)
        self.videos, self.errors, self.warnings = [], [], []

    def add(self, video_id, record, warnings, error):
        for message in warnings:
            self.warnings.append({"video_id": video_id, "message": message})
        if error is not None:
            self.errors.append(dict(error, video_id=video_id))
            return
        with storage_errors(self.final_path):
            self.writer.write(schema.serialize_video_record(record))
        self.videos.append({
            "id": video_id, "label": record.label, "num_frames": record.num_frames,
            "num_video_frames": record.num_video_frames,
            "num_skeleton_frames": record.num_skeleton_frames,
            "pose_present": bool(record.mask.any()),
        })

    def finish(self):
        with storage_errors(self.final_path):
            self.writer.close()
            atomic_write_json(self.final_path + ".json", {
                "videos": self.videos, "errors": self.errors, "warnings": self.warnings,
                "splits": [list(pair) for pair in self.splits],
            })
            filesystem.replace(self.partial_path, self.final_path)

    def abort(self):
        """Closes and removes the partial file (the shard stays unwritten)."""
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - the failure being handled already says why
            pass
        if filesystem.exists(self.partial_path):
            filesystem.remove(self.partial_path)
