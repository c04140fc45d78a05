"""Builds small converted-video TFRecords in memory for the data tests."""

import cv2
import numpy as np
import tensorflow as tf

from glimpse_keras.data import schema


def encode_jpeg(rgb, quality=95):
    """uint8 (H, W, 3) RGB -> JPEG bytes."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return data.tobytes()


def grey_frames(num_frames, size, step=10):
    """Flat frames whose grey level is step * frame index (decodes exactly)."""
    return [np.full((size, size, 3), step * i, np.uint8) for i in range(num_frames)]


def make_record(video_id, label, frames, uv=None, mask=None, persons=2, joints=25):
    """A VideoRecord around RGB frames; default pose: nothing present."""
    count = len(frames)
    if uv is None:
        uv = np.zeros((count, persons, joints, 2), np.float32)
    if mask is None:
        mask = np.zeros((count, persons, joints), bool)
    height, width = frames[0].shape[:2]
    return schema.VideoRecord(
        video_id=video_id, dataset="ntu", label=label, subject=1, camera=1,
        setup=1, replication=1, num_video_frames=count,
        num_skeleton_frames=count, jpeg_frames=[encode_jpeg(f) for f in frames],
        uv=np.asarray(uv, np.float32), mask=np.asarray(mask, bool),
        height=height, width=width,
    )


def write_records(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(schema.serialize_video_record(record))
    return str(path)
