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
