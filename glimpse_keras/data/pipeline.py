"""tf.data input pipeline over the converted TFRecords.

`build_dataset` reads shards (interleaved; file order shuffled in training),
parses each SequenceExample (`schema.parse_video_example`), samples clip
frames, decodes only those JPEGs, crops (and optionally flips) them and carries
the pose targets through the same transform (`video_ops`). The three modes
differ visibly:

    train  one clip, one random frame per temporal bin, random crop,
           optional flip, shuffled; deterministic given `seed`
    eval   one clip, bin-centre frames, centre crop
    test   K clips per video at fixed bin offsets, centre crop, plus the id;
           with test_sampling='random' (the authors' test) each clip takes a
           random frame per bin and its own random crop, drawn from `seed`
           and the video id

Videos stay uint8: ImageNet normalisation happens inside the model.

Split files: the converter writes `OUT/splits/<protocol>/<split>.json` listing
the shards of each split; `list_split_files` and `count_split_videos` read it.
OUT may be a URL (e.g. gs://bucket/ntu_tfrecords; `glimpse_keras.filesystem`).
"""

import os

import numpy as np
import tensorflow as tf

from glimpse_keras import filesystem
from glimpse_keras.data import schema, video_ops
from glimpse_keras.errors import GlimpseError


MODES = ("train", "eval", "test")
TEST_SAMPLINGS = ("fixed", "random")

AUTOTUNE = tf.data.AUTOTUNE


class SplitNotFoundError(GlimpseError, ValueError):
    """A converted data directory has no (readable) index for the requested split."""


def _default_flip_partners(num_joints):
    from glimpse_keras.data.ntu import NTU_FLIP_PARTNERS

    if num_joints != len(NTU_FLIP_PARTNERS):
        raise ValueError(
            f"flip=True needs flip partners for {num_joints} joints; the NTU "
            f"table has {len(NTU_FLIP_PARTNERS)}. Pass flip_partners."
        )
    return tuple(NTU_FLIP_PARTNERS)


# === Split files ===


def split_index_path(data_dir, protocol, split):
    """Path of the JSON index of one split of a converted directory."""
    return os.path.join(data_dir, "splits", protocol, f"{split}.json")


def read_split_index(data_dir, protocol, split):
    """Reads `OUT/splits/<protocol>/<split>.json`.

    Raises:
        SplitNotFoundError: naming the path and the splits that do exist.
    """
    path = split_index_path(data_dir, protocol, split)
    if not filesystem.isfile(path):
        available = []
        splits_dir = os.path.join(data_dir, "splits")
        if filesystem.isdir(splits_dir):
            for name in sorted(filesystem.listdir(splits_dir)):
                for entry in sorted(filesystem.listdir(os.path.join(splits_dir, name))):
                    if entry.endswith(".json"):
                        available.append(f"{name}/{entry[:-5]}")
        raise SplitNotFoundError(
            f"{path}: no index for protocol {protocol!r} split {split!r} in the "
            f"converted directory {data_dir!r}; available: "
            f"{', '.join(available) or 'none (run glimpse_keras.data.convert)'}"
        )
    return filesystem.read_json(path, dict, SplitNotFoundError, required={"files": list, "num_videos": int},
                     fix="convert the data again into a new folder (python -m glimpse_keras.data.convert)")


def list_split_files(data_dir, protocol, split):
    """Absolute paths of the TFRecord shards holding one split (sorted)."""
    index = read_split_index(data_dir, protocol, split)
    return [os.path.join(data_dir, name) for name in index["files"]]


def count_split_videos(data_dir, protocol, split, label_map=None):
    """Number of videos in one split, from its index (no file reading).

    Args:
        label_map: stored labels kept (see `build_dataset`); None counts all.
    """
    index = read_split_index(data_dir, protocol, split)
    if label_map is None:
        return int(index["num_videos"])
    counts = index.get("class_counts", {})
    return int(sum(counts.get(str(label), 0) for label in set(label_map)))


def read_identities(files):
    """(video id, label, subject) of every record in TFRecord files, in file
    order; reads only the records' context (one pass over the files)."""
    dataset = tf.data.TFRecordDataset(list(files)).map(schema.parse_identity, num_parallel_calls=AUTOTUNE)
    return [(video_id.decode(), int(label), int(subject))
            for video_id, label, subject in dataset.as_numpy_iterator()]


def count_records(files):
    """Counts the records in TFRecord files by reading them (any file list)."""
    dataset = tf.data.TFRecordDataset(list(files))
    return int(dataset.reduce(np.int64(0), lambda count, _: count + 1).numpy())


def _resolve_files(file_pattern_or_list):
    if isinstance(file_pattern_or_list, (str, os.PathLike)):
        pattern = os.fspath(file_pattern_or_list)
        files = sorted(tf.io.gfile.glob(pattern))
        if not files:
            raise FileNotFoundError(f"no TFRecord file matches {pattern!r}")
        return files
    files = [os.fspath(name) for name in file_pattern_or_list]
    if not files:
        raise FileNotFoundError("build_dataset: the list of TFRecord files is empty")
    missing = [name for name in files if not tf.io.gfile.exists(name)]
    if missing:
        raise FileNotFoundError(f"TFRecord file(s) do not exist: {missing[:3]}")
    return files


# === Per-video processing ===


def _make_processor(mode, num_frames, image_size, clips_per_video, flip,
                    flip_partners, num_persons, num_joints, label_table=None,
                    test_sampling="fixed"):
    """Returns fn(index, serialized, base_seed) -> (inputs, targets)."""

    def process(index, serialized, base_seed):
        video = schema.parse_video_example(serialized, num_persons, num_joints)
        length = tf.minimum(video["num_frames"], tf.shape(video["jpeg"])[0])
        tf.debugging.assert_greater_equal(
            tf.minimum(video["height"], video["width"]), image_size,
            message=f"stored frames are smaller than image_size={image_size}",
        )
        seeds = tf.random.experimental.stateless_split(
            tf.stack([base_seed, tf.cast(index, tf.int64)]), num=3
        )
        if mode == "train":
            indices = video_ops.train_frame_indices(length, num_frames, seeds[0])
            offset = video_ops.random_crop_offset(
                video["height"], video["width"], image_size, seeds[1]
            )
            if flip:
                do_flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
            else:
                do_flip = tf.constant(False)
        elif mode == "eval":
            indices = video_ops.eval_frame_indices(length, num_frames)
            offset = video_ops.center_crop_offset(
                video["height"], video["width"], image_size
            )
            do_flip = tf.constant(False)
        elif test_sampling == "fixed":
            indices = video_ops.test_frame_indices(
                length, num_frames, clips_per_video
            )
            offset = video_ops.center_crop_offset(
                video["height"], video["width"], image_size
            )
            do_flip = tf.constant(False)
        else:
            # Seeded by the video id, not the position in the stream: a video
            # gets the same clips whatever else is read with it.
            video_seed = tf.strings.to_hash_bucket_fast(video["video_id"], 2**62)
            clip_seeds = tf.random.experimental.stateless_split(
                tf.stack([base_seed, video_seed]), num=2
            )
            indices = video_ops.random_test_frame_indices(
                length, num_frames, clips_per_video, clip_seeds[0]
            )
            offset = video_ops.random_crop_offset(
                video["height"], video["width"], image_size, clip_seeds[1],
                num_crops=clips_per_video,
            )
            do_flip = tf.constant(False)

        def cut(indices, offset):
            frames = video_ops.decode_and_crop_frames(
                video["jpeg"], indices, offset, image_size
            )
            pose, pose_mask = video_ops.transform_pose(
                tf.gather(video["uv"], indices),
                tf.gather(video["mask"], indices),
                video["height"],
                video["width"],
                offset,
                image_size,
                do_flip,
                flip_partners,
            )
            return frames, pose, pose_mask

        if offset.shape.rank == 2:  # one crop per clip
            clips = [cut(indices[k], offset[k]) for k in range(clips_per_video)]
            frames, pose, pose_mask = (tf.stack(parts) for parts in zip(*clips))
        else:
            frames, pose, pose_mask = cut(indices, offset)
        if flip:
            frames = video_ops.maybe_flip_frames(frames, do_flip)
        inputs = {"video": frames}
        label = video["label"]
        if label_table is not None:
            label = tf.gather(label_table, label)
        targets = {"label": label, "pose": pose, "pose_mask": pose_mask}
        if mode == "test":
            targets["video_id"] = video["video_id"]
        return inputs, targets

    return process


# === Dataset ===


def build_dataset(
    file_pattern_or_list,
    mode,
    *,
    num_frames=8,
    image_size=224,
    batch_size=8,
    clips_per_video=5,
    flip=False,
    shuffle_buffer=256,
    seed=None,
    num_persons=2,
    num_joints=25,
    drop_remainder=None,
    repeat=False,
    flip_partners=None,
    cycle_length=4,
    label_map=None,
    include_ids=None,
    exclude_ids=None,
    test_sampling="fixed",
):
    """Batched (inputs, targets) clips from converted TFRecord shards.

    Args:
        file_pattern_or_list: glob pattern or list of TFRecord paths (e.g.
            `list_split_files(out, 'xsub', 'train')`).
        mode: 'train', 'eval' or 'test' (see module doc).
        num_frames: T, frames per clip.
        image_size: S, side of the square crop (<= stored size).
        batch_size: B, videos per batch.
        clips_per_video: K, clips per video in 'test' mode.
        flip: random horizontal flip with left/right joint swap ('train' only).
        shuffle_buffer: videos in the training shuffle buffer.
        seed: int; the same seed gives the same stream. None draws one.
        num_persons, num_joints: P, J of the stored pose layout.
        drop_remainder: drop the last partial batch; default mode == 'train'.
        repeat: repeat forever (each pass reshuffled in training).
        flip_partners: J ints; default NTU_FLIP_PARTNERS.
        cycle_length: shards read at the same time.
        label_map: None (labels as stored), or a list of stored labels: only
            videos with one of them are read, and the label of a video
            becomes its label's position in the list (a class subset, e.g.
            the 10 NTU classes of the demo as labels 0..9).
        include_ids: None, or video ids: only these videos are read.
        exclude_ids: None, or video ids that are not read (a validation
            split carved from the training split: the training clips
            exclude it, the validation clips include only it).
        test_sampling: how 'test' mode cuts its K clips: "fixed" (clip k
            at offset (k + 0.5) / K in every bin, centre crop) or "random"
            (a random frame per bin and a random crop for each clip, from
            `seed` and the video id: the same seed gives the same clips of a
            video whatever the batch size or the other videos read).

    Returns:
        tf.data.Dataset of (inputs, targets):
          train/eval: inputs {'video': uint8 (B, T, S, S, 3)}, targets
            {'label': int32 (B,), 'pose': float32 (B, T, P, J, 2) in [-1, 1]
            of the crop, 'pose_mask': float32 (B, T, P, J)}.
          test: 'video' uint8 (B, K, T, S, S, 3), 'pose' (B, K, T, P, J, 2),
            'pose_mask' (B, K, T, P, J), plus 'video_id' string (B,).

    Raises:
        ValueError: unknown mode or bad sizes. FileNotFoundError: no files.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    for name, value in (("num_frames", num_frames), ("image_size", image_size),
                        ("batch_size", batch_size),
                        ("clips_per_video", clips_per_video)):
        if int(value) < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if flip and mode != "train":
        raise ValueError(f"flip=True is a training augmentation; mode is {mode!r}")
    if test_sampling not in TEST_SAMPLINGS:
        raise ValueError(f"test_sampling: expected one of {TEST_SAMPLINGS}, got {test_sampling!r}")
    if drop_remainder is None:
        drop_remainder = mode == "train"
    if flip:
        flip_partners = tuple(flip_partners or _default_flip_partners(num_joints))
    else:
        flip_partners = tuple(flip_partners or range(num_joints))
    if sorted(flip_partners) != list(range(num_joints)):
        raise ValueError(
            f"flip_partners must be a permutation of range({num_joints}), got "
            f"{flip_partners}"
        )
    label_table = None
    if label_map is not None:
        label_map = [int(label) for label in label_map]
        if not label_map or min(label_map) < 0 or len(set(label_map)) != len(label_map):
            raise ValueError(
                f"label_map: expected distinct stored labels >= 0, got {label_map!r}"
            )
        # Stored label -> new label; -1 for labels outside the subset. The
        # table covers every int32 a record could hold up to the largest kept
        # label; larger labels are filtered out before the lookup.
        table = np.full(max(label_map) + 1, -1, np.int32)
        table[label_map] = np.arange(len(label_map), dtype=np.int32)
        label_table = tf.constant(table)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    files = _resolve_files(file_pattern_or_list)
    training = mode == "train"

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=max(1, min(cycle_length, len(files))),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    if label_table is not None:
        kept = tf.constant(label_map, tf.int32)
        dataset = dataset.filter(
            lambda serialized: tf.reduce_any(tf.equal(schema.parse_label(serialized), kept))
        )
    for ids, keep in ((include_ids, True), (exclude_ids, False)):
        if ids is None:
            continue
        ids = sorted(str(video_id) for video_id in ids)
        if not ids:
            if keep:
                raise ValueError("include_ids: the list of video ids is empty")
            continue
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(ids), tf.ones(len(ids), tf.int32)), 0
        )
        dataset = dataset.filter(
            lambda serialized, table=table, keep=keep: tf.equal(
                table.lookup(schema.parse_identity(serialized)[0]) > 0, keep
            )
        )
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed + 1,
                                  reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    process = _make_processor(mode, num_frames, image_size, clips_per_video, flip,
                              flip_partners, num_persons, num_joints, label_table,
                              test_sampling)
    base_seed = tf.constant(seed % (2**62), tf.int64)
    dataset = dataset.enumerate().map(
        lambda index, serialized: process(index, serialized, base_seed),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(AUTOTUNE)
