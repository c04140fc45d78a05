"""Attention diagnostics: do the glimpses look at the body, zoom in, depend on the video, and do the
workers specialise?

Glimpse Clouds' claim rests on its attention (paper Figure 3: glimpses on hands, heads and feet,
moving with the action), so these figures are reported like accuracy: logged to TensorBoard during
training, written into the evaluation report and printed by the visualiser and at the end of
`python train.py`.

All functions take NumPy arrays of the model's outputs for N clips:

- locations: (N, T, G, 4) glimpse [x, y, s_x, s_y]; centres in [-1, 1] of the crop (x along the
  width), scales in (0, 1] (half the box side in the same units: a scale of 1 covers the frame);
- assignments: (N, T, C, G) soft assignment p_{t,c,g} of glimpse g to worker c;
- pose, pose_mask: (N, T, P, J, 2) joint coordinates in the same [-1, 1] frame and (N, T, P, J)
  their visibility (1 = visible).

`attention_diagnostics` returns a flat dict of floats (JSON-ready); `AttentionDiagnostics`
accumulates batches over a whole evaluation.
"""

import numpy as np

# A glimpse centre "is on the body" when a visible joint lies within this distance of it, in the
# crop's [-1, 1] units (0.15 is 7.5% of the frame side: about a hand's length in NTU's framing).
ON_BODY_RADIUS = 0.15

# Scale pairs kept in a report for `model.glimpse_scales_from`.
SCALE_SAMPLES = 256

# Figures `format_diagnostics` prints, in order, with their labels.
_SUMMARY_LINES = (
    ("on_body_rate", "glimpse centres within {radius} of a visible joint", "{:.1%}"),
    ("on_hands_rate", "  of a visible hand joint (wrist, hand, tip, thumb)", "{:.1%}"),
    ("scale_median", "median glimpse scale (quartiles {scale_q25:.2f} - {scale_q75:.2f}; s_x {scale_x_median:.2f}, s_y {scale_y_median:.2f})", "{:.2f}"),
    ("input_dependence", "input dependence: location std across videos / across frames", "{:.2f}"),
    ("location_std_videos", "  the two stds, in crop units", None),
    ("diversity", "mean distance between the glimpses of a frame", "{:.2f}"),
    ("assignment_max_weight", "mean largest assignment weight (uniform {uniform_weight:.2f})", "{:.2f}"),
    ("assignment_entropy", "assignment entropy / its maximum", "{:.2f}"),
    ("worker_shares", "share of glimpses per dominant worker", None),
)


def on_body_rate(locations, pose, pose_mask, radius=ON_BODY_RADIUS):
    """Share of glimpse centres with a visible joint within `radius`.

    Frames without any visible joint are left out (there is no body to be on).

    Returns:
        float in [0, 1], or None when no frame has a visible joint.
    """
    centres = np.asarray(locations, np.float64)[..., :2]
    joints = np.asarray(pose, np.float64)
    num_clips, num_frames = joints.shape[:2]
    joints = joints.reshape(num_clips, num_frames, -1, 2)
    visible = np.asarray(pose_mask).reshape(num_clips, num_frames, -1) > 0
    # distance[n, t, g, k] between glimpse g and joint k.
    distance = np.linalg.norm(centres[:, :, :, None, :] - joints[:, :, None, :, :], axis=-1)
    distance = np.where(visible[:, :, None, :], distance, np.inf)
    near = distance.min(axis=-1) <= radius
    frames_with_body = visible.any(axis=-1)
    if not frames_with_body.any():
        return None
    return float(near[frames_with_body].mean())


def on_hands_rate(locations, pose, pose_mask, radius=ON_BODY_RADIUS):
    """`on_body_rate` counting the hand joints only (`losses.attraction_joint_slots("hands", J)`).

    Frames without a visible hand joint are left out.

    Returns:
        float in [0, 1], or None when no frame has a visible hand joint or the skeleton's hand
        joints are not known (J other than 25 or 20).
    """
    from glimpse_keras import losses  # here: the module stays NumPy-only until a rate is asked for

    pose = np.asarray(pose)
    try:
        slots = list(losses.attraction_joint_slots("hands", pose.shape[-2]))
    except ValueError:
        return None
    return on_body_rate(locations, pose[..., slots, :], np.asarray(pose_mask)[..., slots], radius)


def input_dependence(locations):
    """How much glimpse centres depend on the video rather than on the frame index.

    For every (frame index t, glimpse g, coordinate), the standard deviation of the centre over the
    N videos, averaged; divided by the standard deviation over the T frames of each (video, glimpse,
    coordinate), averaged. Glimpses that follow the same schedule in every video give ~0; glimpses
    placed by what each video shows give a large ratio (infinite when they never move in time, which
    is reported as `float("inf")`).

    Returns:
        float >= 0, or None with fewer than 2 videos or fewer than 2 frames.
    """
    return _spread_ratio(location_spreads(locations))


def _spread_ratio(spreads):
    """`input_dependence` from `location_spreads`' result (None passes through)."""
    if spreads is None:
        return None
    across_videos, across_frames = spreads
    if across_frames <= 1e-12:
        return float("inf") if across_videos > 1e-12 else 0.0
    return float(across_videos / across_frames)


def location_spreads(locations):
    """The two halves of `input_dependence`, in crop units: (std across videos, std across frames).

    A large ratio alone can hide glimpses that barely move at all (both spreads tiny); these say how
    far, in the frame, the glimpses actually go.

    Returns:
        (float, float), or None with fewer than 2 videos or fewer than 2 frames.
    """
    centres = np.asarray(locations, np.float64)[..., :2]
    if centres.shape[0] < 2 or centres.shape[1] < 2:
        return None
    return float(centres.std(axis=0).mean()), float(centres.std(axis=1).mean())


def diversity(locations):
    """Mean Euclidean distance between the centres of two glimpses of the same frame (0 with G = 1)."""
    centres = np.asarray(locations, np.float64)[..., :2]
    glimpses = centres.shape[2]
    if glimpses < 2:
        return 0.0
    pairwise = np.linalg.norm(centres[:, :, :, None, :] - centres[:, :, None, :, :], axis=-1)
    return float(pairwise.sum(axis=(-1, -2)).mean() / (glimpses * (glimpses - 1)))


def scale_samples(locations, count=SCALE_SAMPLES):
    """Up to `count` [s_x, s_y] pairs taken evenly over every glimpse of N clips, rounded to 1e-4.

    Written into evaluation reports, so that random glimpses can be drawn at the scales an
    attention model used (`model.glimpse_scales_from`).

    Returns:
        list of [s_x, s_y] lists (empty without glimpses).
    """
    scales = np.asarray(locations, np.float64)[..., 2:].reshape(-1, 2)
    if not len(scales):
        return []
    index = np.unique(np.linspace(0, len(scales) - 1, min(count, len(scales))).round().astype(int))
    return np.round(scales[index], 4).tolist()


def assignment_statistics(assignments, axis="glimpses"):
    """Specialisation of the soft assignment p (N, T, C, G).

    Args:
        assignments: (N, T, C, G) non-negative weights.
        axis: "glimpses" (each worker's weights over the G glimpses sum to 1, the authors' code) or
            "workers" (each glimpse's weights over the C workers sum to 1, the paper's figure): the
            axis along which peakedness is measured.

    Returns:
        dict with
        "assignment_max_weight": mean over (clip, frame, the other axis) of the largest weight along
            `axis` (1/size is uniform, 1 is one-hot);
        "assignment_entropy": mean entropy along `axis` divided by its maximum log(size) (1 is
            uniform, 0 one-hot; 0 when the axis has size 1);
        "uniform_weight": 1/size of `axis`;
        "worker_shares": list of C floats, the share of glimpses whose largest weight goes to each
            worker (argmax over workers, ties to the lower index).
    """
    weights = np.asarray(assignments, np.float64)
    along = -1 if axis == "glimpses" else -2
    size = weights.shape[along]
    total = np.maximum(weights.sum(axis=along, keepdims=True), 1e-12)
    probabilities = weights / total
    entropy = -(np.where(probabilities > 0, probabilities * np.log(np.maximum(probabilities, 1e-300)), 0.0)
                ).sum(axis=along)
    dominant = weights.argmax(axis=-2)  # (N, T, G): the worker taking each glimpse most
    workers = weights.shape[-2]
    shares = np.bincount(dominant.ravel(), minlength=workers) / max(dominant.size, 1)
    return {
        "assignment_max_weight": float(probabilities.max(axis=along).mean()),
        "assignment_entropy": float(entropy.mean() / np.log(size)) if size > 1 else 0.0,
        "uniform_weight": 1.0 / size,
        "worker_shares": [float(share) for share in shares],
    }


def attention_diagnostics(locations, assignments, pose=None, pose_mask=None, assign_axis="glimpses",
                          radius=ON_BODY_RADIUS):
    """Every attention figure of N clips (see the module docstring for the arrays).

    Args:
        locations: (N, T, G, 4).
        assignments: (N, T, C, G).
        pose, pose_mask: ground-truth joints and their visibility, or None (no on-body rate).
        assign_axis: the model's assignment softmax axis ("glimpses" or "workers").
        radius: the on-body radius, crop units.

    Returns:
        dict name -> float (or list / None): "clips", "on_body_rate", "on_hands_rate",
        "on_body_radius",
        "scale_median", "scale_q25", "scale_q75", "scale_x_median", "scale_y_median",
        "scale_samples" (`scale_samples`), "input_dependence", "location_std_videos",
        "location_std_frames", "diversity", and those of `assignment_statistics`.
    """
    locations = np.asarray(locations, np.float64)
    scales = locations[..., 2:]
    spreads = location_spreads(locations)
    result = {
        "clips": int(locations.shape[0]),
        "on_body_rate": None if pose is None else on_body_rate(locations, pose, pose_mask, radius),
        "on_hands_rate": None if pose is None else on_hands_rate(locations, pose, pose_mask, radius),
        "on_body_radius": float(radius),
        "scale_median": float(np.median(scales)),
        "scale_q25": float(np.percentile(scales, 25)),
        "scale_q75": float(np.percentile(scales, 75)),
        "scale_x_median": float(np.median(scales[..., 0])),
        "scale_y_median": float(np.median(scales[..., 1])),
        "scale_samples": scale_samples(locations),
        "input_dependence": _spread_ratio(spreads),
        "location_std_videos": None if spreads is None else spreads[0],
        "location_std_frames": None if spreads is None else spreads[1],
        "diversity": diversity(locations),
    }
    result.update(assignment_statistics(assignments, assign_axis))
    return result


class AttentionDiagnostics:
    """Accumulates clips batch by batch, then computes `attention_diagnostics` over all of them.

    Batches may carry a clip axis (N, K, T, ...), which is merged into N.

    Example:
        >>> accumulator = AttentionDiagnostics(assign_axis="glimpses")
        >>> for outputs, targets in batches:
        ...     accumulator.update(outputs["locations"], outputs["assignments"],
        ...                        targets["pose"], targets["pose_mask"])
        >>> figures = accumulator.result()
    """

    def __init__(self, assign_axis="glimpses", radius=ON_BODY_RADIUS):
        self.assign_axis = assign_axis
        self.radius = radius
        self._parts = {"locations": [], "assignments": [], "pose": [], "pose_mask": []}

    def update(self, locations, assignments, pose=None, pose_mask=None):
        """Adds a batch (NumPy or tensors)."""
        def merge(array, tail_rank):
            # (N, [K,] tail...) -> (N * K, tail...)
            array = np.asarray(array, np.float32)
            return array.reshape((-1,) + array.shape[array.ndim - tail_rank:])

        self._parts["locations"].append(merge(locations, 3))
        self._parts["assignments"].append(merge(assignments, 3))
        if pose is not None:
            self._parts["pose"].append(merge(pose, 4))
            self._parts["pose_mask"].append(merge(pose_mask, 3))

    def result(self):
        """The diagnostics of every clip added, or None when none was."""
        if not self._parts["locations"]:
            return None
        parts = {key: np.concatenate(value) if value else None for key, value in self._parts.items()}
        return attention_diagnostics(parts["locations"], parts["assignments"], parts["pose"],
                                     parts["pose_mask"], self.assign_axis, self.radius)


def format_diagnostics(figures, indent="  "):
    """Human-readable lines of `attention_diagnostics`' result."""
    lines = []
    for key, label, fmt in _SUMMARY_LINES:
        if key not in figures:  # a report written before this figure existed
            continue
        value = figures[key]
        text = label.format(radius=figures.get("on_body_radius", ON_BODY_RADIUS),
                            **{k: v for k, v in figures.items() if k != "radius" and isinstance(v, float)})
        if value is None:
            shown = "n/a"
        elif key == "worker_shares":
            shown = " ".join(f"{share:.0%}" for share in value)
        elif key == "location_std_videos":
            shown = f"{value:.3f} / {figures['location_std_frames']:.3f}"
        else:
            shown = fmt.format(value)
        lines.append(f"{indent}{text:<64} {shown}")
    return lines


# --- Fixed glimpse schedules: how much of the hands a placement without per-video information covers ---
#
# A "schedule" is (T, G, 2) glimpse centres per frame index t, the same for every video. If a fixed
# schedule covers the hands of most videos, a model can score well on them without choosing where to
# look per video; the figures below say how much a fixed schedule can cover on given data, from the
# pose targets alone (N, T, P, J, 2 and N, T, P, J, as in the module docstring).

# The hand slots of `losses.attraction_joint_slots("hands", J)`, split into (right hand, left hand):
# wrist, hand, hand tip and thumb in NTU's 25-joint order; wrist and hand in Kinect v1's 20.
HAND_SIDE_SLOTS = {
    25: ((10, 11, 23, 24), (6, 7, 21, 22)),
    20: ((10, 11), (6, 7)),
}


def _hand_sides(num_joints):
    if num_joints not in HAND_SIDE_SLOTS:
        raise ValueError(f"the hand joints of a {num_joints}-joint skeleton are not known; "
                         f"known: {sorted(HAND_SIDE_SLOTS)} joints")
    return HAND_SIDE_SLOTS[num_joints]


def _hand_points(pose, pose_mask):
    """(N, T, P, H, 2) hand joints and (N, T, P, H) their visibility, both hands (right first)."""
    pose = np.asarray(pose, np.float64)
    right, left = _hand_sides(pose.shape[-2])
    slots = list(right) + list(left)
    return pose[..., slots, :], np.asarray(pose_mask)[..., slots] > 0


def mean_hands_schedule(pose, pose_mask):
    """The "mean hands" schedule: per frame index t, the dataset mean of the visible right-hand
    joints, of the visible left-hand joints, and their midpoint.

    Args:
        pose, pose_mask: (N, T, P, J, 2) and (N, T, P, J), J = 25 or 20.

    Returns:
        (T, 3, 2) float64 [right, left, midpoint] per t; a hand never visible at t takes the other
        hand's mean, and a frame index without any visible hand joint gets (0, 0), the frame centre.
    """
    pose = np.asarray(pose, np.float64)
    visible = np.asarray(pose_mask) > 0
    means = []
    for side in _hand_sides(pose.shape[-2]):
        weights = visible[..., list(side)].astype(np.float64)  # (N, T, P, S)
        total = weights.sum(axis=(0, 2, 3))  # (T,)
        summed = (pose[..., list(side), :] * weights[..., None]).sum(axis=(0, 2, 3))  # (T, 2)
        means.append((summed, total))
    (right_sum, right_count), (left_sum, left_count) = means
    both = (right_sum + left_sum) / np.maximum(right_count + left_count, 1.0)[:, None]
    right = np.where(right_count[:, None] > 0, right_sum / np.maximum(right_count, 1.0)[:, None], both)
    left = np.where(left_count[:, None] > 0, left_sum / np.maximum(left_count, 1.0)[:, None], both)
    return np.stack([right, left, (right + left) / 2.0], axis=1)


def fixed_schedule(pose, pose_mask, num_glimpses, seed=0, restarts=4, iterations=50):
    """The "best fixed" schedule: per frame index t, k-means with `num_glimpses` centres over every
    visible hand joint of every video at t (the strongest placement that ignores the video).

    k-means++ seeding from `numpy.random.default_rng(seed)`, `restarts` seedings per t, each refined
    by at most `iterations` Lloyd steps; the one with the least squared distance is kept. The result
    is a deterministic function of the inputs and `seed`.

    Args:
        pose, pose_mask: (N, T, P, J, 2) and (N, T, P, J), J = 25 or 20.
        num_glimpses: G >= 1.

    Returns:
        (T, G, 2) float64. With fewer than G distinct visible points at t, the points repeat; without
        any, the frame centre (0, 0).
    """
    if num_glimpses < 1:
        raise ValueError(f"num_glimpses must be >= 1, got {num_glimpses}")
    points, visible = _hand_points(pose, pose_mask)
    rng = np.random.default_rng(seed)
    schedule = np.zeros((points.shape[1], num_glimpses, 2))
    for t in range(points.shape[1]):
        at_t = points[:, t][visible[:, t]]  # (M, 2)
        distinct = np.unique(at_t, axis=0)
        if len(distinct) <= num_glimpses:
            if len(distinct):
                schedule[t] = distinct[np.arange(num_glimpses) % len(distinct)]
            continue
        best, best_cost = None, np.inf
        for _ in range(restarts):
            centres, cost = _kmeans(at_t, num_glimpses, rng, iterations)
            if cost < best_cost:
                best, best_cost = centres, cost
        schedule[t] = best[np.lexsort((best[:, 1], best[:, 0]))]  # a fixed order: by x, then y
    return schedule


def _kmeans(points, count, rng, iterations):
    """k-means++ seeding then Lloyd steps; returns ((count, 2) centres, summed squared distance)."""
    centres = [points[rng.integers(len(points))]]
    for _ in range(count - 1):
        squared = np.min(((points[:, None] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(points[rng.choice(len(points), p=squared / squared.sum())])
    centres = np.asarray(centres)
    for _ in range(iterations):
        nearest = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(axis=1)
        moved = np.array([points[nearest == k].mean(axis=0) if np.any(nearest == k) else centres[k]
                          for k in range(count)])
        if np.array_equal(moved, centres):
            break
        centres = moved
    cost = float(((points[:, None] - centres[None]) ** 2).sum(-1).min(axis=1).sum())
    return centres, cost


def schedule_coverage(pose, pose_mask, schedule, radius=ON_BODY_RADIUS):
    """Share of the visible hand joints (`losses.attraction_joint_slots("hands", J)`) within `radius`
    of the nearest point of `schedule` at the same frame index.

    Args:
        pose, pose_mask: (N, T, P, J, 2) and (N, T, P, J), J = 25 or 20.
        schedule: (T, G, 2) centres in the same [-1, 1] crop units.
        radius: crop units (the frame is 2 wide).

    Returns:
        float in [0, 1], or None when no hand joint is visible.
    """
    points, visible = _hand_points(pose, pose_mask)
    schedule = np.asarray(schedule, np.float64)
    if schedule.shape[0] != points.shape[1]:
        raise ValueError(f"schedule has {schedule.shape[0]} frame indices, the pose {points.shape[1]}")
    # distance[n, t, p, h, g] from hand joint h to schedule point g of frame index t.
    distance = np.linalg.norm(points[..., None, :] - schedule[None, :, None, None], axis=-1)
    if not visible.any():
        return None
    return float((distance.min(axis=-1) <= radius)[visible].mean())


def hand_spread(pose, pose_mask):
    """How far the hands move from video to video: per frame index t and axis, the standard deviation
    over videos of each video's mean visible hand position, averaged over t.

    Returns:
        (std_x, std_y) in crop units, or None with fewer than 2 videos showing a hand at some t.
    """
    points, visible = _hand_points(pose, pose_mask)
    weights = visible.astype(np.float64)
    count = weights.sum(axis=(2, 3))  # (N, T)
    mean = (points * weights[..., None]).sum(axis=(2, 3)) / np.maximum(count, 1.0)[..., None]  # (N, T, 2)
    stds = [mean[count[:, t] > 0, t].std(axis=0) for t in range(points.shape[1]) if (count[:, t] > 0).sum() >= 2]
    if not stds:
        return None
    return tuple(float(v) for v in np.mean(stds, axis=0))
