"""Pure TensorFlow ops on one video: frame sampling, crops, flips, pose targets.

Every function is a pure function of its arguments (randomness comes from an
explicit stateless seed), works inside `tf.data.Dataset.map` and documents its
shapes. Notation: F = frames stored, T = frames per clip, K = clips per video,
P = persons, J = joints, S = crop side in pixels.

Coordinate conventions. Pose arrives as (u, v) normalised to the ORIGINAL
image (u = colorX / 1920 for NTU). Frames are stored squashed to H x W, so a
joint lies at x = u * W, y = v * H pixels of the stored frame (continuous
coordinates: pixel column i covers [i, i + 1)). After cropping an S x S window
at (y0, x0) the target is 2 * (x - x0) / S - 1, so the crop spans [-1, 1] on
both axes. A horizontal flip maps x -> S - x (target -> -target) and swaps
each joint with its left/right partner.
"""

import tensorflow as tf

# === Temporal sampling ===


def _bin_indices(num_frames, offsets):
    """Index floor((t + offset_t) * F / T) of each bin, clamped to [0, F-1].

    Args:
        num_frames: scalar int, F >= 1.
        offsets: float (..., T) in [0, 1): relative position inside each bin.

    Returns:
        int32 (..., T), non-decreasing along T. When F < T frames repeat.
    """
    num_samples = tf.shape(offsets)[-1]
    frames = tf.cast(num_frames, tf.float64)
    bins = tf.cast(tf.range(num_samples), tf.float64)
    positions = (bins + tf.cast(offsets, tf.float64)) * frames
    positions = positions / tf.cast(num_samples, tf.float64)
    indices = tf.cast(tf.floor(positions), tf.int32)
    return tf.clip_by_value(indices, 0, tf.cast(num_frames, tf.int32) - 1)


def train_frame_indices(num_frames, num_samples, seed):
    """One uniformly random frame in each of T equal bins of [0, F).

    Args:
        num_frames: scalar int, F >= 1.
        num_samples: Python int T.
        seed: int (2,) stateless seed.

    Returns:
        int32 (T,), non-decreasing; repeats frames when F < T.
    """
    offsets = tf.random.stateless_uniform(
        [num_samples], seed=seed, dtype=tf.float64
    )
    return _bin_indices(num_frames, offsets)


def eval_frame_indices(num_frames, num_samples):
    """The centre frame of each of T equal bins: floor((t + 0.5) * F / T).

    Returns:
        int32 (T,).
    """
    offsets = tf.fill([num_samples], tf.constant(0.5, tf.float64))
    return _bin_indices(num_frames, offsets)


def test_frame_indices(num_frames, num_samples, num_clips):
    """K clips; clip k takes frame floor((t + (k + 0.5) / K) * F / T) in bin t.

    The clips cover the whole video and their offsets inside the bins are
    spread evenly, so together they look at K different frames per bin when
    the bins are long enough. K = 1 gives `eval_frame_indices`.

    Returns:
        int32 (K, T).
    """
    clip_offsets = (tf.range(num_clips, dtype=tf.float64) + 0.5) / num_clips
    offsets = tf.tile(clip_offsets[:, None], [1, num_samples])
    return _bin_indices(num_frames, offsets)


# The name starts with "test", so pytest would collect it if a test module
# imported it by name.
test_frame_indices.__test__ = False


def random_test_frame_indices(num_frames, num_samples, num_clips, seed):
    """K clips, each with one uniformly random frame in each of T equal bins
    (the sampling of `train_frame_indices`, drawn independently per clip):
    the authors' test clips.

    Args:
        num_frames: scalar int, F >= 1.
        num_samples: Python int T.
        num_clips: Python int K.
        seed: int (2,) stateless seed.

    Returns:
        int32 (K, T), non-decreasing along T.
    """
    offsets = tf.random.stateless_uniform([num_clips, num_samples], seed=seed, dtype=tf.float64)
    return _bin_indices(num_frames, offsets)


# === Spatial crops ===


def center_crop_offset(height, width, crop_size):
    """(y0, x0) of the centred S x S window: ((H - S) // 2, (W - S) // 2).

    Returns:
        int32 (2,).
    """
    return tf.stack([(height - crop_size) // 2, (width - crop_size) // 2])


def stored_frame_side(image_size, stored_size=None):
    """Side of the square frames that `preprocess_frames` crops from: the
    stored size, or image_size without one. A client that shrinks frames
    before sending them to the serving graph resizes them to this side (the
    export records both sizes), so that the graph only crops."""
    return int(stored_size or image_size)


def resize_frames(frames, side):
    """The resize step of `preprocess_frames`: frames squashed (area
    interpolation, aspect ratio NOT kept) to side x side, unchanged when they
    already have that size.

    Args:
        frames: uint8 or float tensor (N, H, W, 3), values in [0, 255].
        side: int, the target side (`stored_frame_side`).

    Returns:
        float32 (N, side, side, 3), values in [0, 255].
    """
    frames = tf.convert_to_tensor(frames)
    static = frames.shape
    if static.rank == 4 and static[1] == side and static[2] == side:
        return tf.cast(frames, tf.float32)
    return tf.cast(tf.image.resize(frames, [side, side], method="area"), tf.float32)


def preprocess_frames(frames, *, image_size, stored_size=None):
    """The evaluation view of frames: squash to the stored size, centre crop.

    The one definition of what the model sees at test time, used by the
    serving graph (`export`), the visualiser and, through
    `center_crop_offset`, the 'eval'/'test' input pipeline (whose frames the
    converter already squashed to `stored_size`). Frames are squashed
    (area interpolation, aspect ratio NOT kept) to stored_size x
    stored_size, unless they already have that size, then the centred
    image_size x image_size window is taken (corner
    `center_crop_offset`). Without a stored size they are squashed to
    image_size x image_size.

    Args:
        frames: uint8 or float tensor (N, H, W, 3), values in [0, 255].
        image_size: int S, side of the model input.
        stored_size: int or None, side the training data was stored at
            (the converted data's `conversion_settings.json`).

    Returns:
        float32 (N, S, S, 3), values in [0, 255].
    """
    side = stored_frame_side(image_size, stored_size)
    resized = resize_frames(frames, side)
    if side == image_size:
        return tf.ensure_shape(resized, [None, image_size, image_size, 3])
    offset = center_crop_offset(side, side, image_size)
    cropped = resized[:, offset[0] : offset[0] + image_size, offset[1] : offset[1] + image_size, :]
    return tf.ensure_shape(cropped, [None, image_size, image_size, 3])


def random_crop_offset(height, width, crop_size, seed, num_crops=None):
    """(y0, x0) drawn uniformly from [0, H - S] x [0, W - S] (inclusive).

    Args:
        height, width: scalar int32, stored frame size (>= crop_size).
        crop_size: Python int S.
        seed: int (2,) stateless seed.
        num_crops: None for one corner, or Python int K for K independent
            corners.

    Returns:
        int32 (2,), or (K, 2) with `num_crops`.
    """
    limits = tf.stack([height - crop_size + 1, width - crop_size + 1])
    shape = [2] if num_crops is None else [num_crops, 2]
    uniform = tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32)
    offset = tf.cast(tf.floor(uniform * tf.cast(limits, tf.float32)), tf.int32)
    return tf.minimum(offset, limits - 1)


def decode_and_crop_frames(jpegs, indices, offset, crop_size):
    """Decodes only the sampled frames and crops them.

    Each distinct frame is decoded once, and only its crop window is decoded
    (`tf.io.decode_and_crop_jpeg`).

    Args:
        jpegs: string (F,) JPEG-encoded RGB frames.
        indices: int32 (...) frame indices into `jpegs`.
        offset: int32 (2,) crop corner (y0, x0).
        crop_size: Python int S.

    Returns:
        uint8 (..., S, S, 3).
    """
    flat = tf.reshape(indices, [-1])
    unique, position = tf.unique(flat)
    window = tf.stack([offset[0], offset[1], crop_size, crop_size])
    frames = tf.map_fn(
        lambda jpeg: tf.io.decode_and_crop_jpeg(jpeg, window, channels=3),
        tf.gather(jpegs, unique),
        fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    )
    frames = tf.gather(frames, position)
    shape = tf.concat([tf.shape(indices), [crop_size, crop_size, 3]], axis=0)
    frames = tf.reshape(frames, shape)
    return tf.ensure_shape(frames, indices.shape.concatenate([crop_size, crop_size, 3]))


def maybe_flip_frames(frames, flip):
    """Mirrors frames left-right when `flip` is True.

    Args:
        frames: (..., S, S, C).
        flip: scalar bool tensor.

    Returns:
        Same shape and dtype.
    """
    return tf.cond(flip, lambda: tf.reverse(frames, axis=[-2]), lambda: frames)


# === Pose targets ===


def transform_pose(uv, mask, stored_height, stored_width, offset, crop_size, flip,
                   flip_partners):
    """Carries pose through the resize, crop and flip of the frames.

    x_pix = u * W - x0, target_x = 2 * x_pix / S - 1 (same for y with v, H,
    y0). Joints whose target falls outside [-1, 1] are clipped into it and
    masked; masked entries are set to 0. With `flip` the x target is negated
    and joint j takes the values of joint `flip_partners[j]`.

    Args:
        uv: float32 (..., P, J, 2) normalised to the original image.
        mask: bool (..., P, J) True where the joint is present.
        stored_height, stored_width: scalar int, size of the stored frames.
        offset: int32 (2,) crop corner (y0, x0) in stored pixels.
        crop_size: Python int S.
        flip: scalar bool tensor.
        flip_partners: sequence of J ints (a permutation of range(J)).

    Returns:
        (pose float32 (..., P, J, 2) in [-1, 1], mask float32 (..., P, J)).
    """
    uv = tf.cast(uv, tf.float32)
    size = tf.cast(tf.stack([stored_width, stored_height]), tf.float32)
    corner = tf.cast(tf.stack([offset[1], offset[0]]), tf.float32)
    pixels = uv * size - corner
    pose = 2.0 * pixels / float(crop_size) - 1.0
    inside = tf.reduce_all(tf.abs(pose) <= 1.0, axis=-1)
    valid = tf.logical_and(mask, inside)

    def mirrored():
        swapped = tf.gather(pose, flip_partners, axis=-2)
        swapped = swapped * tf.constant([-1.0, 1.0])
        return swapped, tf.gather(valid, flip_partners, axis=-1)

    pose, valid = tf.cond(flip, mirrored, lambda: (pose, valid))
    pose = tf.clip_by_value(pose, -1.0, 1.0)
    pose = tf.where(valid[..., None], pose, tf.zeros_like(pose))
    return pose, tf.cast(valid, tf.float32)
