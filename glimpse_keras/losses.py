"""Training losses of Glimpse Clouds: classification, pose and glimpse terms.

All functions are pure tensor functions written with `keras.ops`, so they run
inside a compiled `train_step`. Every input is cast to float32 first: under a
`mixed_bfloat16` policy the model's outputs may be bfloat16, but the losses are
always reduced in float32.

Reductions follow the authors' code (MODEL_SPEC.md sections 6 and 11): the
classification loss is a batch mean; the pose, attraction and diversity losses
are summed over time and glimpses, then averaged over the batch ("sum over T,
mean over B"), which keeps the loss balances of the original weights
(1, 0.1, 1, 1).

Coordinates: pose targets and glimpse centres share one frame, normalised to
[-1, 1] over the input crop, x along the width (columns) and y along the rows.

Reference: Baradel et al., "Glimpse Clouds: Human Activity Recognition from
Unstructured Feature Points", CVPR 2018.
"""

from keras import ops

# Stand-in distance for masked joints before a minimum; large enough never to
# win against a real squared distance in [-1, 1] coordinates (at most 8), and
# finite so no inf * 0 = NaN can appear in a gradient.
_MASKED_DISTANCE = 1e9


def classification_loss(labels, logits):
    """Mean sparse categorical cross-entropy on raw logits.

    Args:
        labels: int tensor `(batch,)` of class ids in `[0, num_classes)`.
        logits: float tensor `(batch, num_classes)` of unnormalised scores (the
            model averages raw logits over time and workers before this).

    Returns:
        Scalar float32 tensor: cross-entropy averaged over the batch.
    """
    logits = ops.cast(logits, "float32")
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    per_sample = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    return ops.mean(per_sample)


def _person_errors(pred, target, mask):
    """Masked mean squared error of every (prediction slot, GT person) pair.

    Args:
        pred: `(batch, time, persons, joints, 2)` float32.
        target: same shape as `pred`.
        mask: `(batch, time, persons, joints)` float32 in {0, 1}.

    Returns:
        `(errors, present)`: `errors[..., i, j]` `(batch, time, persons,
        persons)` is the mean of the squared differences between prediction
        slot i and GT person j over the valid coordinates of person j (0 when
        person j has no valid joint); `present` `(batch, time, persons)` is 1.0
        where the GT person has at least one valid joint.
    """
    # diff[b, t, i, j, k, d] = pred slot i minus GT person j.
    diff = ops.expand_dims(pred, 3) - ops.expand_dims(target, 2)
    squared = ops.sum(ops.square(diff), axis=-1)
    joint_mask = ops.expand_dims(mask, 2)
    valid_coords = 2.0 * ops.sum(mask, axis=-1)
    summed = ops.sum(squared * joint_mask, axis=-1)
    errors = summed / ops.maximum(ops.expand_dims(valid_coords, 2), 1.0)
    present = ops.cast(valid_coords > 0, "float32")
    return errors, present


POSE_MATCHINGS = ("total", "first_person")


def pose_loss(pred, target, mask, match_single_person=True, pose_matching="total"):
    """Masked pose regression loss with two-person matching.

    For each frame, the error of a (prediction slot, GT person) pair is the mean
    of the squared coordinate differences over that person's valid joints
    (masked joints are ignored; a person with no valid joint is absent and
    contributes 0, so a frame without any skeleton contributes 0). With two GT
    persons present, `pose_matching` picks the pairing (straight: slot 0 <->
    person 0, slot 1 <-> person 1; or swapped):

    - "total": the pairing with the smaller **total** error, so a prediction
      whose two persons are swapped costs the same as the straight one
      (MODEL_SPEC.md 11.10);
    - "first_person": the authors' code (MODEL_SPEC.md section 6), which judges
      on GT person 0's errors only: straight when slot 1 is farther from
      person 0 than slot 0 is, otherwise (ties included) swapped, whatever
      person 1's errors are.

    With exactly one GT person present, the same rule (minimum total error,
    absent person contributing 0) matches that person to whichever prediction
    slot is closer; the other slot is unconstrained in that frame. With
    `match_single_person=False` the person is compared with the prediction
    slot of the same index instead (the authors' behaviour when the single
    person is in slot 0).

    Args:
        pred: `(batch, time, persons, joints, 2)` predicted coordinates in
            [-1, 1]; `persons` is 1 or 2.
        target: same shape, ground-truth coordinates.
        mask: `(batch, time, persons, joints)`, 1 where the joint is valid.
        match_single_person: whether a lone GT person may be matched to either
            prediction slot.
        pose_matching: "total" or "first_person", the rule that pairs two GT
            persons with the two prediction slots.

    Returns:
        Scalar float32 tensor: per-frame errors summed over time, averaged over
        the batch.

    Raises:
        ValueError: if the shapes disagree, `persons` is not 1 or 2, or
            `pose_matching` is unknown.
    """
    if pose_matching not in POSE_MATCHINGS:
        raise ValueError(f"pose_matching must be one of {POSE_MATCHINGS}, received {pose_matching!r}")
    pred = ops.cast(pred, "float32")
    target = ops.cast(target, "float32")
    mask = ops.cast(mask, "float32")
    _check_pose_shapes(pred, target, mask)
    errors, present = _person_errors(pred, target, mask)
    if pred.shape[2] == 1:
        per_frame = errors[..., 0, 0]
    else:
        straight = errors[..., 0, 0] + errors[..., 1, 1]
        swapped = errors[..., 1, 0] + errors[..., 0, 1]
        both_present = present[..., 0] * present[..., 1]
        if match_single_person:
            allow_swap = ops.maximum(present[..., 0], present[..., 1])
        else:
            allow_swap = both_present
        per_frame = ops.where(allow_swap > 0, ops.minimum(straight, swapped), straight)
        if pose_matching == "first_person":
            first_prefers_straight = errors[..., 1, 0] > errors[..., 0, 0]
            paired = ops.where(first_prefers_straight, straight, swapped)
            per_frame = ops.where(both_present > 0, paired, per_frame)
    return ops.mean(ops.sum(per_frame, axis=1))


def _check_pose_shapes(pred, target, mask):
    if len(pred.shape) != 5 or pred.shape[-1] != 2:
        raise ValueError(
            f"pose prediction must have shape (batch, time, persons, joints, 2), got {pred.shape}"
        )
    if tuple(target.shape[1:]) != tuple(pred.shape[1:]):
        raise ValueError(
            f"pose target shape {target.shape} does not match prediction shape {pred.shape}"
        )
    if tuple(mask.shape[1:]) != tuple(pred.shape[1:-1]):
        raise ValueError(
            f"pose mask shape {mask.shape} must be (batch, time, persons, joints) = "
            f"{pred.shape[:-1]}"
        )
    if pred.shape[2] not in (1, 2):
        raise ValueError(f"pose loss supports 1 or 2 persons, got {pred.shape[2]}")


# Joint subsets that may attract glimpses (`attraction_joints`), as 0-based
# joint slots for each skeleton size: the Kinect v2 order of NTU (25 joints)
# and the Kinect v1 order of N-UCLA (20 joints), which share their first 12
# slots. "hands": wrists, hands and, in Kinect v2, hand tips and thumbs.
ATTRACTION_JOINTS = ("all", "hands")
_HAND_JOINTS = {
    25: (6, 7, 10, 11, 21, 22, 23, 24),
    20: (6, 7, 10, 11),
}


def attraction_joint_slots(attraction_joints, num_joints):
    """The joint slots named by `attraction_joints` for a skeleton of `num_joints`.

    Args:
        attraction_joints: "all" (every joint, the authors) or "hands".
        num_joints: joints per person of the pose targets.

    Returns:
        None for "all", else a tuple of 0-based joint slots.

    Raises:
        ValueError: for an unknown name, or "hands" with a skeleton size
            whose hand joints are not known.
    """
    if attraction_joints not in ATTRACTION_JOINTS:
        raise ValueError(
            f"attraction_joints must be one of {ATTRACTION_JOINTS}, received {attraction_joints!r}"
        )
    if attraction_joints == "all":
        return None
    if num_joints not in _HAND_JOINTS:
        raise ValueError(
            f"attraction_joints='hands' knows the hand joints of skeletons with "
            f"{sorted(_HAND_JOINTS)} joints, not num_joints={num_joints}"
        )
    return _HAND_JOINTS[num_joints]


def glimpse_attraction_loss(locations, target, mask, per_axis_min=False, joint_slots=None):
    """Pulls every glimpse centre towards the nearest visible joint.

    For each frame and glimpse, the squared Euclidean distance from the glimpse
    centre `(x, y)` to the nearest visible joint (of any person); summed over
    glimpses and time, averaged over the batch. Frames without a visible joint
    contribute 0. Glimpse scales are not used. With `joint_slots`, only those
    joints attract (e.g. the hands, `attraction_joint_slots("hands", 25)`):
    with every joint attracting, a glimpse on the head or a knee is already at
    its minimum, wherever the action's cue is.

    With `per_axis_min=True`, the authors' variant: the minimum over joints is
    taken separately for x and for y, and the two minima are added (the two
    minima may come from different joints, so this is never larger than the
    Euclidean version).

    Args:
        locations: `(batch, time, glimpses, 4)` glimpse parameters
            `[x, y, scale_x, scale_y]`, centres in [-1, 1].
        target: `(batch, time, persons, joints, 2)` joint coordinates in the
            same frame.
        mask: `(batch, time, persons, joints)`, 1 where the joint is visible.
        per_axis_min: use the authors' per-axis minimum.
        joint_slots: None (every joint) or a sequence of 0-based joint slots
            that attract; the others are ignored.

    Returns:
        Scalar float32 tensor.
    """
    locations = ops.cast(locations, "float32")
    target = ops.cast(target, "float32")
    mask = ops.cast(mask, "float32")
    if joint_slots is not None:
        slots = ops.convert_to_tensor(list(joint_slots), "int32")
        target = ops.take(target, slots, axis=3)
        mask = ops.take(mask, slots, axis=3)
    centres = locations[..., :2]
    batch, time = ops.shape(target)[0], ops.shape(target)[1]
    joints = ops.reshape(target, (batch, time, -1, 2))
    joint_mask = ops.reshape(mask, (batch, time, 1, -1, 1))
    # squared[b, t, g, k, d]: squared difference of glimpse g and joint k.
    squared = ops.square(ops.expand_dims(centres, 3) - ops.expand_dims(joints, 2))
    if not per_axis_min:
        squared = ops.sum(squared, axis=-1, keepdims=True)
    masked = ops.where(joint_mask > 0, squared, _MASKED_DISTANCE)
    nearest = ops.sum(ops.min(masked, axis=3), axis=-1)
    frame_has_joint = ops.max(ops.reshape(mask, (batch, time, -1)), axis=-1, keepdims=True)
    nearest = ops.where(frame_has_joint > 0, nearest, 0.0)
    return ops.mean(ops.sum(nearest, axis=(1, 2)))


DIVERSITY_FORMS = ("inverse", "exponential")

# Added under the square root of the exponential form's distances: the
# gradient of sqrt at 0 is infinite, and coinciding glimpses are its start.
_DISTANCE_EPSILON = 1e-8


def glimpse_diversity_loss(locations, include_self_pairs=False, form="inverse"):
    """Pushes the glimpses of one frame apart; 1 when they coincide, towards 0 as they spread.

    form "inverse" (the authors' code): per frame, `d = mean over ordered
    glimpse pairs (g, g') of the squared coordinate difference averaged over
    x and y` (half the squared Euclidean distance) and the frame's loss is
    `1 / (1 + d)`. Its gradient vanishes where glimpses coincide (d ~ 0): at a
    spread of 0.001 it is ~1e-3, so glimpses that start together stay
    together.

    form "exponential" (the paper's Eq. 15 as we read it): per frame, the mean
    over ordered pairs of `exp(-|l_g - l_g'|)`, with the Euclidean (not
    squared) distance, whose gradient has a magnitude of about 1 per pair
    however close the glimpses are.

    Summed over time, averaged over the batch. By default only pairs with
    `g != g'` count; `include_self_pairs=True` also averages the `G` zero
    self-distances in, as the authors' code does (for "inverse" this scales
    `d` by `(G - 1) / G`). With a single glimpse there is no pair and every
    frame costs a constant 1.

    Args:
        locations: `(batch, time, glimpses, 4)` glimpse parameters, centres in
            the first two channels.
        include_self_pairs: average over all `G * G` pairs.
        form: "inverse" or "exponential".

    Returns:
        Scalar float32 tensor.

    Raises:
        ValueError: for an unknown `form`.
    """
    if form not in DIVERSITY_FORMS:
        raise ValueError(f"diversity form must be one of {DIVERSITY_FORMS}, received {form!r}")
    centres = ops.cast(locations, "float32")[..., :2]
    num_glimpses = centres.shape[2]
    squared = ops.square(ops.expand_dims(centres, 3) - ops.expand_dims(centres, 2))
    num_pairs = num_glimpses * num_glimpses if include_self_pairs else num_glimpses * (num_glimpses - 1)
    if num_pairs == 0:
        return ops.mean(ops.sum(ops.ones_like(centres[:, :, 0, 0]), axis=1))
    if form == "inverse":
        spread = ops.sum(ops.mean(squared, axis=-1), axis=(2, 3)) / float(num_pairs)
        per_frame = 1.0 / (1.0 + spread)
    else:
        closeness = ops.exp(-ops.sqrt(ops.sum(squared, axis=-1) + _DISTANCE_EPSILON))
        if not include_self_pairs:
            closeness = closeness * (1.0 - ops.eye(num_glimpses, dtype="float32"))
        per_frame = ops.sum(closeness, axis=(2, 3)) / float(num_pairs)
    return ops.mean(ops.sum(per_frame, axis=1))


def glimpse_scale_loss(locations):
    """A prior for small glimpses: the mean glimpse scale of a frame.

    Per frame, the mean of `(s_x + s_y) / 2` over the glimpses, in (0, 1];
    summed over time, averaged over the batch (as the other glimpse terms).
    Nothing in the authors' losses involves the scale, whose initial value
    (sigmoid(3) = 0.95) then makes whole-frame boxes the easy optimum; this
    term asks for boxes only as large as the classification needs.

    Args:
        locations: `(batch, time, glimpses, 4)`, scales in the last two
            channels.

    Returns:
        Scalar float32 tensor.
    """
    scales = ops.cast(locations, "float32")[..., 2:]
    return ops.mean(ops.sum(ops.mean(scales, axis=(2, 3)), axis=1))
