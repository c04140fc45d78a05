"""One performance: the 3-D motion of the person(s) of one (setup, subject, replication, action).

All cameras of a setup film the same performance, so Cross-View compares the same motion seen from
different angles, and each subject keeps their body shape in every performance (Cross-Subject).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from glimpse_keras.data.synthetic.kinematics import BodyShape, pose_to_joints, rotation_y
from glimpse_keras.data.synthetic.motion_primitives import (DISTRACTOR_GESTURES, MotionBuilder, MotionParams,
                                                            apply_nuisance, rise)
from glimpse_keras.data.synthetic.scene import Camera, DistractorObject, drifting_object
from glimpse_keras.data.synthetic.seeding import rng_for


# (lateral, depth) half-ranges of the performer's spot, metres: the N-UCLA generator's and NTU's default.
DEFAULT_PERFORMER_OFFSET = (0.15, 0.15)


@dataclasses.dataclass
class PerformedPerson:
    """A person's world joints (F, 25, 3) in metres, plus body-line values.

    Attributes:
      lean: (F, 2) leanX, leanY in [-1, 1].
      hand_states: (F, 2) int handLeftState, handRightState in 0..4.
    """

    shape: BodyShape
    joints: np.ndarray
    lean: np.ndarray
    hand_states: np.ndarray


@dataclasses.dataclass
class Performance:
    """Everything the cameras film; `notes` are generating parameters for the manifest.

    Attributes:
      spot: (3,) world position (metres, y = 0) where the performer, or the pair's centre, stands.
    """

    num_frames: int
    persons: list
    params: MotionParams
    distractor_object: DistractorObject | None
    notes: dict
    spot: np.ndarray


def motion_params(rng: np.random.Generator, distractor_prob: float) -> MotionParams:
    """Draws the class-independent nuisance parameters of one performance."""
    return MotionParams(
        tempo=float(rng.uniform(0.7, 1.4)), amplitude=float(rng.uniform(0.8, 1.2)),
        lead_in=float(rng.uniform(0.0, 0.2)), lead_out=float(rng.uniform(0.0, 0.2)),
        sway=float(rng.uniform(0.005, 0.03)), sway_phase=float(rng.uniform(0, 2 * np.pi)),
        head_wander=float(rng.uniform(0.0, 0.15)),
        distractor=str(rng.choice(DISTRACTOR_GESTURES)) if rng.random() < distractor_prob else None)


def build_performance(*, seed: int, key: tuple, num_frames: int, program: Callable, shapes: list,
                      facing_deg: float, config: dict, partner_gap: float | None = None,
                      exit_camera: Camera | None = None,
                      performer_offset: tuple = DEFAULT_PERFORMER_OFFSET) -> Performance:
    """Runs a motion program and places the person(s) in the world.

    Args:
      seed: global seed. key: identifies the performance (its random stream).
      num_frames: frames of the performance (>= 1).
      program: a motions.* program; takes one builder, or two when `len(shapes) == 2`.
      shapes: one or two BodyShapes (actor first).
      facing_deg: world yaw the actor (or the pair) faces, degrees.
      config: generator config (distractor probabilities, joint noise).
      partner_gap: initial distance between two people, metres.
      exit_camera: when given, the performer walks sideways out of this camera's view (clipping defect).
      performer_offset: (lateral, depth) half-ranges in metres of the uniform spot where the performer
        stands (world x, world z). A pair's centre is drawn from ranges narrower by half the partner
        gap (`pair_offset`), so neither person stands further out than a single performer may.
    """
    rng = rng_for(seed, "performance", *key)
    params = motion_params(rng, float(config["distractor_gesture_prob"]))
    facing = np.radians(facing_deg + rng.uniform(-8.0, 8.0))
    lateral, depth = performer_offset if len(shapes) == 1 else pair_offset(performer_offset, partner_gap)
    base = np.array([rng.uniform(-lateral, lateral), 0.0, rng.uniform(-depth, depth)])
    builders = [MotionBuilder(shape, num_frames, params, partner_gap=partner_gap) for shape in shapes]
    program(*builders)
    notes = {"program": getattr(program, "__name__", "lambda"), "facing_deg": round(float(np.degrees(facing)), 2),
             "num_persons": len(shapes)}
    persons = []
    for index, builder in enumerate(builders):
        apply_nuisance(builder)
        pose = builder.pose
        if len(builders) == 2:
            # The pair stands on a line across the facing direction, the two people facing each other.
            side = 1.0 if index == 0 else -1.0
            person_yaw = facing - side * np.pi / 2
            origin = base + rotation_y(np.array([facing]))[0] @ np.array([side * partner_gap / 2, 0.0, 0.0])
        else:
            person_yaw, origin = facing, base
        turn = rotation_y(np.array([person_yaw]))[0]
        pose.root = origin + pose.root @ turn.T
        pose.facing = pose.facing + person_yaw
        joints = pose_to_joints(builder.shape, pose)
        joints += rng.normal(0.0, float(config["joint_noise_m"]), joints.shape)
        lean = np.clip(np.stack([-pose.lean / 0.5, pose.bend / 0.8], -1), -1.0, 1.0)
        hand_states = _hand_states(rng, num_frames)
        persons.append(PerformedPerson(builder.shape, joints, lean, hand_states))
    if exit_camera is not None:
        shift = _exit_shift(exit_camera, persons[0].joints, rng)
        ramp = rise(np.linspace(0.0, 1.0, num_frames), 0.3, 1.0)[:, None, None]
        for person in persons:
            person.joints = person.joints + ramp * shift
        notes["exit_shift_m"] = [round(float(v), 3) for v in shift]
    distractor = None
    if rng.random() < float(config["distractor_object_prob"]):
        distractor = drifting_object(rng, num_frames)
    notes["motion"] = params.as_dict()
    return Performance(num_frames=num_frames, persons=persons, params=params, distractor_object=distractor,
                       notes=notes, spot=base)


def pair_offset(performer_offset: tuple, partner_gap: float) -> tuple[float, float]:
    """The (lateral, depth) half-ranges of a pair's centre: `performer_offset` less half the gap
    between the two people, but never below today's +-0.15 m (nor above `performer_offset`), so the
    default draws are unchanged."""
    return tuple(max(half - partner_gap / 2.0, min(half, DEFAULT_PERFORMER_OFFSET[0])) for half in performer_offset)


def _hand_states(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """Piecewise-constant Kinect hand states (mostly open 2 / closed 3, sometimes 0, 1 or 4)."""
    states = np.empty((num_frames, 2), dtype=int)
    for hand in range(2):
        value, frame = 2, 0
        while frame < num_frames:
            run = int(rng.integers(5, 30))
            value = int(rng.choice([0, 1, 2, 3, 4], p=[0.1, 0.1, 0.45, 0.3, 0.05]))
            states[frame:frame + run, hand] = value
            frame += run
    return states


def _exit_shift(camera: Camera, joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A horizontal world translation that takes the performer past one side of `camera`'s image."""
    right = np.asarray(camera.axes[0]) * [1.0, 0.0, 1.0]
    right /= np.linalg.norm(right)
    depth = float(np.mean(camera.to_camera(joints[:, 0])[:, 2]))
    fx, _, cx, _ = camera.color
    half_width = cx / fx * depth
    side = 1.0 if rng.random() < 0.5 else -1.0
    return side * right * (half_width + rng.uniform(0.0, 0.3))
