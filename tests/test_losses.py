"""Hand-computed checks of the Glimpse Clouds losses."""

import math

import keras
import numpy as np
import pytest

from glimpse_keras import losses
from tests.backend_testing import gradients


def _pose_arrays(person0, person1, mask0=None, mask1=None):
    """Builds (1, 1, 2, J, 2) coordinates and a (1, 1, 2, J) mask."""
    coords = np.array([person0, person1], dtype="float32")[None, None]
    num_joints = coords.shape[3]
    mask0 = np.ones(num_joints) if mask0 is None else np.asarray(mask0)
    mask1 = np.ones(num_joints) if mask1 is None else np.asarray(mask1)
    mask = np.stack([mask0, mask1]).astype("float32")[None, None]
    return coords, mask


def test_classification_loss_matches_hand_computed_cross_entropy():
    logits = np.array([[math.log(3.0), 0.0], [0.0, 0.0]], dtype="float32")
    labels = np.array([0, 1], dtype="int32")
    expected = (math.log(4.0 / 3.0) + math.log(2.0)) / 2.0
    value = losses.classification_loss(labels, logits)
    assert value.dtype == "float32"
    np.testing.assert_allclose(float(value), expected, rtol=1e-6)


def test_classification_loss_accepts_bfloat16_logits():
    logits = keras.ops.convert_to_tensor([[2.0, 0.0, -1.0]], dtype="bfloat16")
    value = losses.classification_loss(keras.ops.convert_to_tensor([0]), logits)
    expected = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    assert value.dtype == "float32"
    np.testing.assert_allclose(float(value), expected, rtol=1e-2)


def test_pose_loss_straight_value():
    target, mask = _pose_arrays([[0.0, 0.0], [1.0, 0.0]], [[0.5, 0.5], [-0.5, -0.5]])
    pred = target.copy()
    pred[0, 0, 0, 0, 0] += 0.1  # person 0: 0.01 over 4 coords
    pred[0, 0, 1, 1, 1] += 0.2  # person 1: 0.04 over 4 coords
    value = float(losses.pose_loss(pred, target, mask))
    np.testing.assert_allclose(value, 0.01 / 4 + 0.04 / 4, rtol=1e-6)


def test_pose_loss_swapped_prediction_costs_the_same():
    target, mask = _pose_arrays([[0.0, 0.0], [1.0, 0.0]], [[0.5, 0.5], [-0.5, -0.5]])
    pred = target.copy()
    pred[0, 0, 0, 0, 0] += 0.1
    pred[0, 0, 1, 1, 1] += 0.2
    swapped = pred[:, :, ::-1].copy()
    straight_value = float(losses.pose_loss(pred, target, mask))
    swapped_value = float(losses.pose_loss(swapped, target, mask))
    np.testing.assert_allclose(swapped_value, straight_value, rtol=1e-6)
    np.testing.assert_allclose(swapped_value, 0.0125, rtol=1e-6)


def test_pose_loss_matches_on_total_error_not_first_person():
    # Person 0 alone prefers the straight pairing (0.36 < 0.49) but the total
    # prefers the swapped one (0.49 + 0.16 < 0.36 + 2.89).
    target, mask = _pose_arrays([[0.0, 0.0]], [[1.0, 0.0]])
    pred, _ = _pose_arrays([[0.6, 0.0]], [[-0.7, 0.0]])
    value = float(losses.pose_loss(pred, target, mask))
    np.testing.assert_allclose(value, (0.49 + 0.16) / 2.0, rtol=1e-6)


def test_pose_loss_first_person_matching_follows_the_first_persons_errors():
    # The authors' rule: straight when slot 1 is farther from GT person 0 than
    # slot 0 is, otherwise (ties included) swapped, whatever the total says.
    target, mask = _pose_arrays([[0.0, 0.0]], [[1.0, 0.0]])

    def first_person(slot0, slot1):
        pred, _ = _pose_arrays([slot0], [slot1])
        return float(losses.pose_loss(pred, target, mask, pose_matching="first_person"))

    # Person 0 prefers the straight pairing (0.36 < 0.49), the total prefers
    # the swapped one (0.49 + 0.16 < 0.36 + 2.89, see the test above).
    np.testing.assert_allclose(first_person([0.6, 0.0], [-0.7, 0.0]), (0.36 + 2.89) / 2.0, rtol=1e-6)
    # Person 0 prefers the swapped pairing: the total agrees.
    np.testing.assert_allclose(first_person([0.7, 0.0], [0.6, 0.0]), (0.36 + 0.09) / 2.0, rtol=1e-6)
    # A tie on person 0 (0.25 = 0.25) takes the swapped pairing, though the
    # straight one costs 0.25 + 0.25 against 0.25 + 2.25.
    np.testing.assert_allclose(first_person([-0.5, 0.0], [0.5, 0.0]), (0.25 + 2.25) / 2.0, rtol=1e-6)


def test_pose_loss_first_person_matching_leaves_a_lone_person_to_match_single_person():
    target, mask = _pose_arrays([[0.0, 0.0]], [[-1.0, -1.0]], mask1=[0])
    pred, _ = _pose_arrays([[0.8, 0.0]], [[0.2, 0.0]])
    closer = float(losses.pose_loss(pred, target, mask, pose_matching="first_person"))
    authors = float(losses.pose_loss(pred, target, mask, match_single_person=False, pose_matching="first_person"))
    np.testing.assert_allclose(closer, 0.04 / 2, rtol=1e-6)
    np.testing.assert_allclose(authors, 0.64 / 2, rtol=1e-6)
    with pytest.raises(ValueError, match="pose_matching.*'first'"):
        losses.pose_loss(pred, target, mask, pose_matching="first")


def test_pose_loss_ignores_masked_joints():
    target, mask = _pose_arrays(
        [[0.0, 0.0], [0.3, 0.3], [5.0, 5.0]], [[0.5, 0.5], [0.2, 0.2], [0.1, 0.1]], mask0=[1, 1, 0]
    )
    pred = target.copy()
    pred[0, 0, 0, 1, 0] += 0.3  # valid joint of person 0: 0.09 over its 4 valid coords
    pred[0, 0, 0, 2] = [-9.0, 9.0]  # masked joint: must not count
    value = float(losses.pose_loss(pred, target, mask))
    np.testing.assert_allclose(value, 0.09 / 4, rtol=1e-6)


def test_pose_loss_single_person_is_matched_to_the_closer_slot():
    target, mask = _pose_arrays([[0.0, 0.0]], [[-1.0, -1.0]], mask1=[0])
    pred, _ = _pose_arrays([[0.8, 0.0]], [[0.2, 0.0]])
    best = float(losses.pose_loss(pred, target, mask))
    fixed = float(losses.pose_loss(pred, target, mask, match_single_person=False))
    np.testing.assert_allclose(best, 0.04 / 2, rtol=1e-6)
    np.testing.assert_allclose(fixed, 0.64 / 2, rtol=1e-6)


def test_pose_loss_single_person_in_second_slot_without_matching_uses_second_slot():
    target, mask = _pose_arrays([[-1.0, -1.0]], [[0.0, 0.0]], mask0=[0])
    pred, _ = _pose_arrays([[0.8, 0.0]], [[0.2, 0.0]])
    fixed = float(losses.pose_loss(pred, target, mask, match_single_person=False))
    np.testing.assert_allclose(fixed, 0.04 / 2, rtol=1e-6)


def test_pose_loss_sums_over_time_and_averages_over_batch():
    rng = np.random.default_rng(0)
    target = rng.uniform(-1, 1, size=(2, 3, 2, 4, 2)).astype("float32")
    mask = np.ones((2, 3, 2, 4), dtype="float32")
    mask[1, 2] = 0.0  # a frame without any skeleton
    pred = target + 0.1  # every valid coordinate is off by 0.1 in both persons
    # Per valid frame: straight pairing, 0.01 per person -> 0.02; 5 valid frames.
    value = float(losses.pose_loss(pred, target, mask))
    np.testing.assert_allclose(value, 5 * 0.02 / 2, rtol=1e-5)


def test_pose_loss_rejects_mismatched_mask():
    pred = np.zeros((1, 2, 2, 25, 2), dtype="float32")
    with pytest.raises(ValueError, match="pose mask shape"):
        losses.pose_loss(pred, pred, np.ones((1, 2, 2, 20), dtype="float32"))


def test_attraction_euclidean_and_per_axis_differ_as_computed_by_hand():
    locations = np.array([0.0, 0.0, 0.5, 0.5], dtype="float32").reshape(1, 1, 1, 4)
    # Two visible joints at (1, 0.1) and (0.1, 1); a masked joint sits on the glimpse.
    target, mask = _pose_arrays([[1.0, 0.1], [0.0, 0.0]], [[0.1, 1.0], [0.0, 0.0]], [1, 0], [1, 0])
    euclidean = float(losses.glimpse_attraction_loss(locations, target, mask))
    per_axis = float(losses.glimpse_attraction_loss(locations, target, mask, per_axis_min=True))
    np.testing.assert_allclose(euclidean, 1.01, rtol=1e-6)
    np.testing.assert_allclose(per_axis, 0.02, rtol=1e-5)


def test_attraction_to_hands_ignores_the_other_joints():
    # One glimpse on the head (0, -0.8); the right hand (slot 11) at (0.3, 0.2).
    locations = np.array([0.0, -0.8, 0.2, 0.2], dtype="float32").reshape(1, 1, 1, 4)
    target = np.zeros((1, 1, 1, 25, 2), dtype="float32")
    target[..., :, :] = [0.0, 0.5]  # every joint at the hips...
    target[0, 0, 0, 3] = [0.0, -0.8]  # ...but the head, under the glimpse
    target[0, 0, 0, 11] = [0.3, 0.2]
    mask = np.ones((1, 1, 1, 25), dtype="float32")
    mask[0, 0, 0, [6, 7, 10, 21, 22, 23, 24]] = 0.0  # only the right hand visible among the hand joints
    hands = losses.attraction_joint_slots("hands", 25)
    every = float(losses.glimpse_attraction_loss(locations, target, mask))
    to_hands = float(losses.glimpse_attraction_loss(locations, target, mask, joint_slots=hands))
    assert every == 0.0  # the head joint is under the glimpse
    np.testing.assert_allclose(to_hands, 0.3**2 + 1.0**2, rtol=1e-6)
    # No visible hand joint in the frame: the frame contributes 0, as a frame without joints.
    mask[0, 0, 0, 11] = 0.0
    assert float(losses.glimpse_attraction_loss(locations, target, mask, joint_slots=hands)) == 0.0


def test_attraction_joint_slots_name_the_hands_of_both_skeletons():
    assert losses.attraction_joint_slots("all", 25) is None
    assert losses.attraction_joint_slots("hands", 25) == (6, 7, 10, 11, 21, 22, 23, 24)
    assert losses.attraction_joint_slots("hands", 20) == (6, 7, 10, 11)
    with pytest.raises(ValueError, match="num_joints=18"):
        losses.attraction_joint_slots("hands", 18)
    with pytest.raises(ValueError, match="'feet'"):
        losses.attraction_joint_slots("feet", 25)


def test_attraction_sums_glimpses_and_time_and_skips_frames_without_joints():
    locations = np.zeros((2, 2, 2, 4), dtype="float32")
    locations[:, :, 1, :2] = [0.5, 0.0]
    target = np.zeros((2, 2, 2, 1, 2), dtype="float32")
    target[..., 0] = 1.0  # every joint at (1, 0)
    mask = np.ones((2, 2, 2, 1), dtype="float32")
    mask[1, 1] = 0.0  # sample 1, frame 1: no visible joint
    # Per frame: glimpse 0 -> 1.0, glimpse 1 -> 0.25; 3 valid frames over batch 2.
    value = float(losses.glimpse_attraction_loss(locations, target, mask))
    np.testing.assert_allclose(value, 3 * 1.25 / 2, rtol=1e-6)


def test_attraction_gradient_is_finite_with_masked_frames():
    locations = np.zeros((1, 2, 3, 4), "float32")
    target = np.ones((1, 2, 2, 5, 2), "float32")
    mask = (np.array([1.0, 0.0]).reshape(1, 2, 1, 1) * np.ones((1, 2, 2, 5))).astype("float32")
    (grad,) = gradients(lambda loc: losses.glimpse_attraction_loss(loc, target, mask), [locations])
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[0, 0, :, :2], -2.0, rtol=1e-5)  # d/dx (x - 1)^2 at x = 0
    np.testing.assert_allclose(grad[0, 1], 0.0)  # masked frame
    np.testing.assert_allclose(grad[..., 2:], 0.0)  # scales are not used


def test_diversity_values_for_known_points():
    frame = np.array([[0.0, 0.0, 1, 1], [1.0, 0.0, 1, 1], [0.0, 1.0, 1, 1]], dtype="float32")
    coincident = np.zeros((3, 4), dtype="float32")
    locations = np.stack([frame, coincident])[None]
    # Ordered pairs: squared distances 1, 1, 2 (twice each), halved -> sum 4.
    distinct = float(losses.glimpse_diversity_loss(locations))
    with_self = float(losses.glimpse_diversity_loss(locations, include_self_pairs=True))
    np.testing.assert_allclose(distinct, 1.0 / (1.0 + 4.0 / 6.0) + 1.0, rtol=1e-6)
    np.testing.assert_allclose(with_self, 1.0 / (1.0 + 4.0 / 9.0) + 1.0, rtol=1e-6)


def test_diversity_gradient_pushes_glimpses_apart():
    locations = np.array([[[[-0.1, 0.0, 1.0, 1.0], [0.1, 0.0, 1.0, 1.0]]]], "float32")
    (grad,) = gradients(losses.glimpse_diversity_loss, [locations])
    grad = grad[0, 0]
    assert grad[0, 0] > 0 > grad[1, 0]  # descent moves glimpse 0 left, glimpse 1 right


def test_exponential_diversity_values_for_known_points():
    frame = np.array([[0.0, 0.0, 1, 1], [0.3, 0.0, 1, 1], [0.0, 0.4, 1, 1]], dtype="float32")
    locations = np.stack([frame, np.zeros((3, 4), "float32")])[None]
    # Distances 0.3, 0.4, 0.5 (each pair twice among the 6 ordered pairs); coincident frame -> 1.
    expected_frame = (math.exp(-0.3) + math.exp(-0.4) + math.exp(-0.5)) / 3.0
    value = float(losses.glimpse_diversity_loss(locations, form="exponential"))
    np.testing.assert_allclose(value, expected_frame + 1.0, rtol=1e-4)
    with_self = float(losses.glimpse_diversity_loss(locations, include_self_pairs=True, form="exponential"))
    np.testing.assert_allclose(with_self, (6 * expected_frame + 3) / 9 + 1.0, rtol=1e-4)


def test_exponential_diversity_keeps_a_gradient_where_glimpses_nearly_coincide():
    # Two glimpses 0.001 apart: the inverse form's gradient is ~1e-3, the exponential form's ~1.
    start = np.array([[[[-0.0005, 0.0, 1.0, 1.0], [0.0005, 0.0, 1.0, 1.0]]]], "float32")
    by_form = {}
    for form in losses.DIVERSITY_FORMS:
        (grad,) = gradients(lambda loc: losses.glimpse_diversity_loss(loc, form=form), [start])
        by_form[form] = grad[0, 0]
    assert abs(by_form["inverse"][0, 0]) < 2e-3
    # d/dx0 of the mean over the 2 ordered pairs of exp(-d), d = sqrt(0.001^2 + 1e-8) (the epsilon
    # that keeps the gradient finite at d = 0): exp(-d) * 0.001 / d.
    distance = math.sqrt(0.001**2 + 1e-8)
    np.testing.assert_allclose(by_form["exponential"][0, 0], math.exp(-distance) * 0.001 / distance, rtol=1e-4)
    assert by_form["exponential"][0, 0] > 0 > by_form["exponential"][1, 0]


def test_exponential_diversity_gradient_is_finite_at_exact_coincidence():
    locations = np.zeros((1, 2, 3, 4), "float32")
    (grad,) = gradients(lambda loc: losses.glimpse_diversity_loss(loc, form="exponential"), [locations])
    assert np.all(np.isfinite(grad))
    value = losses.glimpse_diversity_loss(locations, form="exponential")
    np.testing.assert_allclose(float(value), 2.0 * math.exp(-1e-4), rtol=1e-6)


def test_diversity_rejects_an_unknown_form():
    with pytest.raises(ValueError, match="received 'squared'"):
        losses.glimpse_diversity_loss(np.zeros((1, 1, 2, 4), "float32"), form="squared")


def test_scale_loss_is_the_mean_scale_summed_over_time():
    locations = np.zeros((2, 2, 2, 4), "float32")
    locations[0, 0, :, 2:] = [[0.2, 0.4], [0.6, 0.8]]  # mean 0.5
    locations[0, 1, :, 2:] = 1.0
    locations[1, :, :, 2:] = 0.1
    # Sample 0: 0.5 + 1.0; sample 1: 0.1 + 0.1; mean over the batch.
    np.testing.assert_allclose(float(losses.glimpse_scale_loss(locations)), (1.5 + 0.2) / 2, rtol=1e-6)
