"""TFRecord layout of a converted video: the single source of truth for keys.

Every converted video is one `tf.train.SequenceExample`:

context (one value each)
    'video/id'                  bytes  sample id, e.g. b'S001C002P003R002A013'
    'video/dataset'             bytes  b'ntu' or b'nucla'
    'video/label'               int64  0-based class label
    'video/subject'             int64  performer id
    'video/camera'              int64  camera id (N-UCLA: the view)
    'video/setup'               int64  setup id (N-UCLA: 0)
    'video/replication'         int64  replication (N-UCLA: the episode)
    'video/num_frames'          int64  F, frames stored = min(video, skeleton)
    'video/num_video_frames'    int64  frames decoded from the video
    'video/num_skeleton_frames' int64  frames in the skeleton (0 = none)
    'video/height', 'video/width' int64 stored frame size, pixels
    'pose/num_persons', 'pose/num_joints' int64  P and J of the pose layout

sequence (F steps each)
    'frames/jpeg'  bytes            one JPEG (RGB, stored size) per frame
    'pose/uv'      float  (P*J*2,)  (u, v) per person and joint, normalised to
                                    the ORIGINAL image (u = x / width); 0 where
                                    masked; may lie outside [0, 1]
    'pose/mask'    int64  (P*J,)    1 where the joint is usable, else 0

This module imports TensorFlow lazily so that conversion worker processes,
which only produce plain Python records, never load it.
"""

import dataclasses

import numpy as np

# === Feature keys ===

VIDEO_ID = "video/id"
DATASET = "video/dataset"
LABEL = "video/label"
SUBJECT = "video/subject"
CAMERA = "video/camera"
SETUP = "video/setup"
REPLICATION = "video/replication"
NUM_FRAMES = "video/num_frames"
NUM_VIDEO_FRAMES = "video/num_video_frames"
NUM_SKELETON_FRAMES = "video/num_skeleton_frames"
HEIGHT = "video/height"
WIDTH = "video/width"
NUM_PERSONS = "pose/num_persons"
NUM_JOINTS = "pose/num_joints"

FRAMES_JPEG = "frames/jpeg"
POSE_UV = "pose/uv"
POSE_MASK = "pose/mask"

INT_CONTEXT_KEYS = (
    LABEL,
    SUBJECT,
    CAMERA,
    SETUP,
    REPLICATION,
    NUM_FRAMES,
    NUM_VIDEO_FRAMES,
    NUM_SKELETON_FRAMES,
    HEIGHT,
    WIDTH,
    NUM_PERSONS,
    NUM_JOINTS,
)

DEFAULT_NUM_PERSONS = 2
DEFAULT_NUM_JOINTS = 25


# === Plain record (what conversion workers produce) ===


@dataclasses.dataclass
class VideoRecord:
    """One converted video, before serialisation.

    Attributes:
        video_id: sample id string.
        dataset: 'ntu' or 'nucla'.
        label, subject, camera, setup, replication: ints (see module doc).
        num_video_frames: frames decoded from the video.
        num_skeleton_frames: frames in the skeleton (0 when there is none).
        jpeg_frames: list of F JPEG byte strings, F = stored frame count.
        uv: float32 (F, P, J, 2) normalised to the original image.
        mask: bool (F, P, J).
        height, width: stored frame size in pixels.
    """

    video_id: str
    dataset: str
    label: int
    subject: int
    camera: int
    setup: int
    replication: int
    num_video_frames: int
    num_skeleton_frames: int
    jpeg_frames: list
    uv: np.ndarray
    mask: np.ndarray
    height: int
    width: int

    @property
    def num_frames(self):
        return len(self.jpeg_frames)

    def validate(self):
        """Checks the array shapes agree; raises ValueError naming the video."""
        frames = self.num_frames
        if frames == 0:
            raise ValueError(f"{self.video_id}: no frames to store")
        if self.uv.ndim != 4 or self.uv.shape[0] != frames or self.uv.shape[-1] != 2:
            raise ValueError(
                f"{self.video_id}: uv has shape {self.uv.shape}, expected "
                f"({frames}, P, J, 2)"
            )
        if self.mask.shape != self.uv.shape[:3]:
            raise ValueError(
                f"{self.video_id}: mask has shape {self.mask.shape}, expected "
                f"{self.uv.shape[:3]}"
            )
        return self


def serialize_video_record(record):
    """Encodes a VideoRecord as a serialised SequenceExample (bytes)."""
    import tensorflow as tf

    record.validate()
    frames, persons, joints, _ = record.uv.shape

    def int_feature(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    def bytes_feature(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    context = {
        VIDEO_ID: bytes_feature(record.video_id.encode()),
        DATASET: bytes_feature(record.dataset.encode()),
        LABEL: int_feature(record.label),
        SUBJECT: int_feature(record.subject),
        CAMERA: int_feature(record.camera),
        SETUP: int_feature(record.setup),
        REPLICATION: int_feature(record.replication),
        NUM_FRAMES: int_feature(frames),
        NUM_VIDEO_FRAMES: int_feature(record.num_video_frames),
        NUM_SKELETON_FRAMES: int_feature(record.num_skeleton_frames),
        HEIGHT: int_feature(record.height),
        WIDTH: int_feature(record.width),
        NUM_PERSONS: int_feature(persons),
        NUM_JOINTS: int_feature(joints),
    }
    uv = np.where(record.mask[..., None], record.uv, 0.0).astype(np.float32)
    uv = uv.reshape(frames, persons * joints * 2)
    mask = record.mask.reshape(frames, persons * joints).astype(np.int64)
    feature_lists = {
        FRAMES_JPEG: tf.train.FeatureList(
            feature=[bytes_feature(jpeg) for jpeg in record.jpeg_frames]
        ),
        POSE_UV: tf.train.FeatureList(
            feature=[
                tf.train.Feature(float_list=tf.train.FloatList(value=row))
                for row in uv
            ]
        ),
        POSE_MASK: tf.train.FeatureList(
            feature=[
                tf.train.Feature(int64_list=tf.train.Int64List(value=row))
                for row in mask
            ]
        ),
    }
    example = tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=feature_lists),
    )
    # deterministic: map entries (the feature names) in sorted order, so the
    # same video gives the same bytes in every process (either engine, any worker).
    return example.SerializeToString(deterministic=True)


# === Decoder (parse only) ===


def parse_label(serialized):
    """The int32 label of one serialised SequenceExample (its context only)."""
    import tensorflow as tf

    context, _ = tf.io.parse_single_sequence_example(
        serialized, context_features={LABEL: tf.io.FixedLenFeature([], tf.int64)}
    )
    return tf.cast(context[LABEL], tf.int32)


def parse_identity(serialized):
    """(video id string, int32 label, int32 subject) of one serialised
    SequenceExample (its context only)."""
    import tensorflow as tf

    context, _ = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            VIDEO_ID: tf.io.FixedLenFeature([], tf.string),
            LABEL: tf.io.FixedLenFeature([], tf.int64),
            SUBJECT: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        },
    )
    return context[VIDEO_ID], tf.cast(context[LABEL], tf.int32), tf.cast(context[SUBJECT], tf.int32)


def parse_video_example(
    serialized,
    num_persons=DEFAULT_NUM_PERSONS,
    num_joints=DEFAULT_NUM_JOINTS,
):
    """Parses one serialised SequenceExample; no decoding, no augmentation.

    Args:
        serialized: scalar tf.string.
        num_persons, num_joints: the pose layout the records were written with.

    Returns:
        dict of tensors: 'video_id' string (), 'label' int32 (), 'num_frames'
        int32 (), 'height', 'width' int32 (), 'jpeg' string (F,),
        'uv' float32 (F, P, J, 2), 'mask' bool (F, P, J).
    """
    import tensorflow as tf

    context_spec = {
        VIDEO_ID: tf.io.FixedLenFeature([], tf.string),
        LABEL: tf.io.FixedLenFeature([], tf.int64),
        NUM_FRAMES: tf.io.FixedLenFeature([], tf.int64),
        HEIGHT: tf.io.FixedLenFeature([], tf.int64),
        WIDTH: tf.io.FixedLenFeature([], tf.int64),
    }
    size = num_persons * num_joints
    sequence_spec = {
        FRAMES_JPEG: tf.io.FixedLenSequenceFeature([], tf.string),
        POSE_UV: tf.io.FixedLenSequenceFeature([size * 2], tf.float32),
        POSE_MASK: tf.io.FixedLenSequenceFeature([size], tf.int64),
    }
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=context_spec, sequence_features=sequence_spec
    )
    return {
        "video_id": context[VIDEO_ID],
        "label": tf.cast(context[LABEL], tf.int32),
        "num_frames": tf.cast(context[NUM_FRAMES], tf.int32),
        "height": tf.cast(context[HEIGHT], tf.int32),
        "width": tf.cast(context[WIDTH], tf.int32),
        "jpeg": sequence[FRAMES_JPEG],
        "uv": tf.reshape(sequence[POSE_UV], [-1, num_persons, num_joints, 2]),
        "mask": tf.reshape(sequence[POSE_MASK], [-1, num_persons, num_joints]) > 0,
    }
