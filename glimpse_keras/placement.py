"""Placement controls: does a trained glimpse model need the places *its* glimpses chose?

A glimpse model may score well because its glimpses look at the right place in each video, or
merely because they look where the action usually happens. The controls tell the two apart
without retraining: the trained model is scored again with the glimpse places swapped (the
crop, the what/where fusion, the memory and the workers re-run on the supplied places, see
`GlimpseClouds.call_on_features`):

- "own": the model's own locations (reproduces its logits exactly; a check of the machinery);
- "mean_schedule": the dataset-mean schedule, the mean location of every (frame, glimpse) over
  all clips of the split, the same for every video: what a placement that ignores the video
  could do at best on average;
- "other_video": the locations another video of the split got (a fixed derangement);
- "random_centres": uniform random centres at the model's own scales;
- "hand_joints": an oracle, the ground-truth hand centres (glimpse g on the g-th visible hand of
  the frame, persons in order, right hand first), at the model's own scales; frames without a
  visible hand keep the model's own location. Only where the split has skeletons.

Everything here is NumPy except `score_placements`, which runs the model. Arrays of locations
are (N, K, T, G, 4): N videos, K clips, T frames, G glimpses, [x, y, s_x, s_y] in the crop's
[-1, 1] frame.
"""

import numpy as np

PLACEMENTS = ("own", "mean_schedule", "other_video", "random_centres", "hand_joints")
DESCRIPTIONS = {
    "own": "the model's own glimpse locations",
    "mean_schedule": "the dataset-mean location of every (frame, glimpse), the same for every video",
    "other_video": "the locations another test video got",
    "random_centres": "uniform random centres at the model's own scales",
    "hand_joints": "ground-truth hand centres at the model's own scales (oracle)",
}
# Hand joints of each side, by skeleton size (NTU's Kinect v2 order; N-UCLA's Kinect v1 order
# shares the first 12 slots): wrist, hand, and in Kinect v2 hand tip and thumb.
HAND_SLOTS = {
    25: {"right": (10, 11, 23, 24), "left": (6, 7, 21, 22)},
    20: {"right": (10, 11), "left": (6, 7)},
}


def mean_schedule(locations):
    """The mean location of every (frame, glimpse) over all clips: (N, K, T, G, 4) -> (T, G, 4)."""
    locations = np.asarray(locations, np.float64)
    return locations.reshape((-1,) + locations.shape[-3:]).mean(axis=0)


def other_video_partners(num_videos, seed=0):
    """A seeded derangement: `partners[i]` is the video whose locations video i gets (never i).

    Returns:
        int array (num_videos,); the identity for fewer than 2 videos.
    """
    if num_videos < 2:
        return np.arange(num_videos)
    order = np.random.default_rng(seed).permutation(num_videos)
    partners = np.empty(num_videos, np.int64)
    partners[order] = np.roll(order, -1)
    return partners


def random_centres(locations, rng):
    """Locations with the same scales and centres uniform in [-(1 - s), 1 - s] per axis."""
    locations = np.asarray(locations, np.float64)
    scales = locations[..., 2:]
    centres = rng.uniform(-1.0, 1.0, scales.shape) * (1.0 - scales)
    return np.concatenate([centres, scales], axis=-1)


def hand_centres(pose, pose_mask):
    """The centre of every hand of every person per frame, and whether it is visible.

    Args:
        pose: (..., P, J, 2) joint coordinates; J = 25 or 20.
        pose_mask: (..., P, J), 1 where the joint is visible.

    Returns:
        (centres (..., 2P, 2), visible (..., 2P) bool): hands ordered person 0 right, person 0
        left, person 1 right, ...; a hand's centre is the mean of its visible joints.

    Raises:
        ValueError: for a skeleton size without known hand joints.
    """
    pose = np.asarray(pose, np.float64)
    mask = np.asarray(pose_mask, np.float64)
    num_joints = pose.shape[-2]
    if num_joints not in HAND_SLOTS:
        raise ValueError(f"hand joints are known for skeletons of {sorted(HAND_SLOTS)} joints, "
                         f"not {num_joints}")
    centres, visible = [], []
    for person in range(pose.shape[-3]):
        for side in ("right", "left"):
            slots = list(HAND_SLOTS[num_joints][side])
            weights = mask[..., person, slots]
            count = weights.sum(axis=-1)
            total = (pose[..., person, slots, :] * weights[..., None]).sum(axis=-2)
            centres.append(total / np.maximum(count, 1.0)[..., None])
            visible.append(count > 0)
    return np.stack(centres, axis=-2), np.stack(visible, axis=-1)


def hand_joint_locations(locations, pose, pose_mask):
    """The oracle: glimpse g of a frame on its (g mod H)-th visible hand, at its own scales.

    Args:
        locations: (..., T, G, 4) the model's own locations.
        pose, pose_mask: (..., T, P, J, 2) and (..., T, P, J), same leading axes.

    Returns:
        (..., T, G, 4); frames without a visible hand keep the model's own locations.
    """
    locations = np.asarray(locations, np.float64)
    centres, visible = hand_centres(pose, pose_mask)
    flat_locations = locations.reshape((-1,) + locations.shape[-2:]).copy()
    flat_centres = centres.reshape((-1,) + centres.shape[-2:])
    flat_visible = visible.reshape((-1, visible.shape[-1]))
    num_glimpses = flat_locations.shape[1]
    for frame, (frame_centres, frame_visible) in enumerate(zip(flat_centres, flat_visible)):
        hands = frame_centres[frame_visible]
        if len(hands):
            flat_locations[frame, :, :2] = hands[np.arange(num_glimpses) % len(hands)]
    return flat_locations.reshape(locations.shape)


def control_locations(name, own, partners=None, rng=None, pose=None, pose_mask=None, schedule=None):
    """The supplied locations of one control for a batch of videos.

    Args:
        name: one of `PLACEMENTS`.
        own: (B, K, T, G, 4) the batch's own locations.
        partners: for "other_video", (B, K, T, G, 4) the partner videos' own locations.
        rng: for "random_centres", a `np.random.Generator`.
        pose, pose_mask: for "hand_joints", (B, K, T, P, J, 2) and (B, K, T, P, J).
        schedule: for "mean_schedule", (T, G, 4).

    Returns:
        float32 (B, K, T, G, 4).
    """
    own = np.asarray(own, np.float64)
    if name == "own":
        result = own
    elif name == "mean_schedule":
        result = np.broadcast_to(schedule, own.shape)
    elif name == "other_video":
        result = partners
    elif name == "random_centres":
        result = random_centres(own, rng)
    elif name == "hand_joints":
        result = hand_joint_locations(own, pose, pose_mask)
    else:
        raise ValueError(f"unknown placement {name!r}; expected one of {PLACEMENTS}")
    return np.asarray(result, np.float32)


def score_placements(model, dataset, own_locations, own_raw_locations, video_ids, seed=0,
                     progress=True):
    """Scores a trained glimpse model with its own glimpse places and the swaps of `PLACEMENTS`.

    Args:
        model: a built glimpse `GlimpseClouds` (not a global variant), e.g. with folded BatchNorm.
        dataset: the split's multi-clip test dataset (as `Experiment.test_dataset`), read in the
            same order as when `own_locations` were collected.
        own_locations, own_raw_locations: (N, K, T, G, 4) the model's own outputs per video, in
            dataset order.
        video_ids: the N video ids in dataset order (checked against the dataset).
        seed: seeds the partners of "other_video" and the draws of "random_centres".
        progress: show a progress bar.

    Returns:
        dict with "top1" {placement: float}, "correct" {placement: list of N 0/1 ints},
        "placements" (the names scored; "hand_joints" only when the split has skeletons),
        "descriptions" and "seed".

    Raises:
        ValueError: when the dataset yields other videos than `video_ids`, in another order.
    """
    from glimpse_keras import console
    from glimpse_keras.backends import compile_forward
    from keras import ops

    own_locations = np.asarray(own_locations, np.float32)
    own_raw_locations = np.asarray(own_raw_locations, np.float32)
    schedule = mean_schedule(own_locations)
    partners = other_video_partners(len(video_ids), seed)
    rng = np.random.default_rng(seed)

    def logits_of(video, locations, raws):
        # video (B, K, T, H, W, 3); locations, raws (B, P, K, T, G, 4) -> logits (B, P, classes).
        batch, clips = ops.shape(video)[0], video.shape[1]
        frames = ops.reshape(video, (-1,) + tuple(video.shape[2:]))
        features = model.backbone_features(frames, training=False)
        per_placement = []
        for index in range(locations.shape[1]):
            def fold(tensor):
                return ops.reshape(tensor[:, index], (-1,) + tuple(tensor.shape[3:]))

            outputs = model.call_on_features(features["res4"], features["res5"], training=False,
                                             locations=fold(locations), raw_locations=fold(raws))
            logits = ops.reshape(outputs["logits"], (batch, clips, -1))
            per_placement.append(ops.mean(logits, axis=1))
        return ops.stack(per_placement, axis=1)

    forward = compile_forward(logits_of, model)
    names = None
    predictions, labels, seen = [], [], []
    start = 0
    for inputs, targets in console.progress(dataset, desc="placement controls", unit="batch",
                                            disable=not progress):
        batch_ids = [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(targets["video_id"])]
        stop = start + len(batch_ids)
        if batch_ids != list(video_ids[start:stop]):
            raise ValueError("the dataset yielded other videos than the own locations were collected "
                             f"from (at videos {start}..{stop - 1}); score_placements needs the same order")
        own = own_locations[start:stop]
        if names is None:
            names = [name for name in PLACEMENTS if name != "hand_joints" or "pose" in targets]
        supplied, raws = [], []
        for name in names:
            locations = control_locations(
                name, own, partners=own_locations[partners[start:stop]], rng=rng,
                pose=targets.get("pose"), pose_mask=targets.get("pose_mask"), schedule=schedule,
            )
            supplied.append(locations)
            if name == "own":
                raws.append(own_raw_locations[start:stop])
            elif name == "other_video":
                raws.append(own_raw_locations[partners[start:stop]])
            else:
                raws.append(_inverse_activation(model, locations))
        logits = np.asarray(forward(inputs["video"], np.stack(supplied, axis=1), np.stack(raws, axis=1)))
        predictions.append(logits.argmax(axis=-1))
        labels.append(np.asarray(targets["label"]))
        seen.extend(batch_ids)
        start = stop
    if seen != list(video_ids):
        raise ValueError(f"the dataset yielded {len(seen)} videos, the own locations cover {len(video_ids)}")
    predictions = np.concatenate(predictions)
    labels = np.concatenate(labels)
    correct = {name: (predictions[:, index] == labels).astype(int).tolist() for index, name in enumerate(names)}
    return {
        "placements": names,
        "top1": {name: float(np.mean(values)) for name, values in correct.items()},
        "correct": correct,
        "descriptions": {name: DESCRIPTIONS[name] for name in names},
        "seed": seed,
    }


def _inverse_activation(model, locations):
    """The core's raw locations of supplied activated `locations` (B, P, K, T, G, 4) or any shape."""
    return np.asarray(model.core.raw_from_locations(np.asarray(locations, np.float32)), np.float32)


def format_placement_controls(controls, indent="  "):
    """Human-readable lines of `score_placements`' result: top-1 per placement and its change."""
    own = controls["top1"].get("own")
    lines = []
    for name in controls["placements"]:
        value = controls["top1"][name]
        change = "" if name == "own" or own is None else f"  ({100 * (value - own):+.1f})"
        lines.append(f"{indent}{controls['descriptions'][name]:<72} {100 * value:5.1f}%{change}")
    return lines
