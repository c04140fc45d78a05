"""Building blocks of the per-class motion programs: envelopes, body-relative targets and a builder.

A program writes pose channels (see kinematics.PoseChannels) as a function of the action phase
`u` in [0, 1] (0 during the idle lead-in, 1 during the lead-out). Positions are in the person's
base frame (x = left, z = forward); the performance later places that frame in the world.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from glimpse_keras.data.synthetic.kinematics import BodyShape, PoseChannels

# Body-relative targets for the RIGHT hand (torso frame, relative to SpineShoulder, metres for a
# 1.75 m person); `MotionBuilder.point` scales them and mirrors x for the left hand.
TARGETS = {
    "head_top": (-0.03, 0.31, 0.03),
    "forehead": (-0.03, 0.22, 0.13),
    "eyes": (-0.02, 0.17, 0.15),
    "mouth": (-0.01, 0.11, 0.14),
    "ear": (-0.11, 0.16, 0.0),
    "neck": (-0.03, 0.04, 0.10),
    "chest": (-0.04, -0.12, 0.16),
    "stomach": (-0.03, -0.32, 0.17),
    "back": (-0.08, -0.30, -0.20),
    "pocket": (-0.21, -0.50, 0.06),
    "front_chest": (-0.06, -0.15, 0.42),
    "front_waist": (-0.08, -0.33, 0.33),
    "front_high": (-0.12, 0.18, 0.56),
    "up_high": (-0.24, 0.62, 0.06),
    "wave": (-0.42, 0.25, 0.12),
    "behind_head": (-0.22, 0.22, -0.22),
    "behind_back": (-0.25, -0.25, -0.28),
    "floor_front": (-0.10, -0.95, 0.40),
    "side_out": (-0.62, -0.05, 0.05),
    "chest_centre": (-0.02, -0.08, 0.22),
}


def smooth(x: np.ndarray) -> np.ndarray:
    """Smoothstep of x clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def rise(u: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 before `start`, 1 after `end`, smooth in between."""
    return smooth((u - start) / max(end - start, 1e-6))


def window(u: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """Rises over [a, b], holds, falls over [c, d]."""
    return rise(u, a, b) * (1.0 - rise(u, c, d))


@dataclasses.dataclass(frozen=True)
class MotionParams:
    """Nuisance parameters of one performance (class-independent)."""

    tempo: float  # oscillation-rate multiplier, 0.7..1.4
    amplitude: float  # displacement multiplier, 0.8..1.2
    lead_in: float  # fraction of frames idle before the action
    lead_out: float  # fraction of frames idle after it
    sway: float  # body-sway amplitude in metres
    sway_phase: float
    head_wander: float  # slow random head turn amplitude, radians
    distractor: str | None  # name of a class-independent gesture of another limb, or None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class MotionBuilder:
    """Accumulates the pose channels of one person over `num_frames` frames.

    `pose.root` and `pose.facing` are in the person's base frame here (offsets from the start spot
    and facing); `performance.py` maps them to the world.
    """

    def __init__(self, shape: BodyShape, num_frames: int, params: MotionParams, reverse: bool = False,
                 partner_gap: float | None = None):
        self.shape = shape
        self.num_frames = num_frames
        self.params = params
        self.pose = PoseChannels.resting(shape, num_frames)
        frames = np.arange(num_frames, dtype=float)
        start = params.lead_in * num_frames
        span = max(num_frames * (1.0 - params.lead_in - params.lead_out) - 1.0, 1.0)
        u = np.clip((frames - start) / span, 0.0, 1.0)
        self.u = 1.0 - u if reverse else u
        self.amp = params.amplitude
        self.partner_gap = partner_gap

    # -- targets -----------------------------------------------------------------------------------
    def point(self, name: str, side: str = "right", shift=(0.0, 0.0, 0.0)) -> np.ndarray:
        """Returns the scaled body-relative target `name` for the hand on `side` (mirrored for left)."""
        x, y, z = (np.asarray(TARGETS[name]) + np.asarray(shift)) * self.shape.scale
        return np.array([-x if side == "left" else x, y, z])

    def toward_partner(self, height: float, side: str = "right", lateral: float = 0.0, short: float = 0.3):
        """A target in front, at the partner (`partner_gap` metres ahead) minus `short`, at `height`
        relative to SpineShoulder."""
        distance = (self.partner_gap or 1.0) - short
        x = -lateral if side == "right" else lateral
        return np.array([x - (0.08 if side == "right" else -0.08), height, distance])

    def osc(self, cycles: float, phase: float = 0.0) -> np.ndarray:
        """sin over the action phase; `cycles` is scaled by the performance tempo."""
        return np.sin(2.0 * np.pi * cycles * self.params.tempo * self.u + phase)

    # -- channel edits -----------------------------------------------------------------------------
    def hand(self, side: str) -> np.ndarray:
        return self.pose.hand_left if side == "left" else self.pose.hand_right

    def reach(self, side: str, target, weight: np.ndarray, offset=None) -> None:
        """Blends the `side` hand towards `target` ((3,) or (F, 3)) by `weight` (F,), plus `offset`."""
        hand = self.hand(side)
        hand += weight[:, None] * (np.asarray(target, dtype=float) - hand)
        if offset is not None:
            hand += offset

    def both(self, name: str, weight: np.ndarray, shift=(0.0, 0.0, 0.0), offset=None) -> None:
        for side in ("left", "right"):
            self.reach(side, self.point(name, side, shift), weight, offset)

    def walk(self, speed: np.ndarray, turn_rate: np.ndarray | None = None, stride: float = 0.65) -> None:
        """Integrates a forward speed (metres per frame, (F,)) along the current facing, with leg gait."""
        turn_rate = np.zeros(self.num_frames) if turn_rate is None else turn_rate
        self.pose.facing += np.cumsum(turn_rate)
        step = np.stack([np.sin(self.pose.facing), np.zeros(self.num_frames), np.cos(self.pose.facing)], -1)
        self.pose.root += np.cumsum(step * speed[:, None], axis=0)
        distance = np.cumsum(np.abs(speed))
        phase = 2.0 * np.pi * distance / (stride * self.shape.scale)
        active = np.clip(np.abs(speed) / 0.02, 0.0, 1.0)
        swing = 0.42 * np.sin(phase) * active
        self.pose.hip_flex_left += swing
        self.pose.hip_flex_right -= swing
        self.pose.knee_left += 0.55 * np.clip(np.sin(phase + 1.2), 0.0, None) * active
        self.pose.knee_right += 0.55 * np.clip(-np.sin(phase + 1.2), 0.0, None) * active
        self.pose.hand_left[:, 2] -= 0.14 * self.shape.scale * np.sin(phase) * active
        self.pose.hand_right[:, 2] += 0.14 * self.shape.scale * np.sin(phase) * active
        self.pose.lift += 0.015 * np.abs(np.sin(phase)) * active


# -- class-independent nuisance motion -----------------------------------------------------------
DISTRACTOR_GESTURES = ("left_arm_swing", "weight_shift", "foot_tap", "head_turn", "shrug")


def apply_nuisance(builder: MotionBuilder) -> None:
    """Adds sway, slow head wander and the performance's distractor gesture (low amplitude)."""
    params, frames = builder.params, builder.num_frames
    time = np.arange(frames) / 30.0
    pose = builder.pose
    sway = params.sway * np.sin(2.0 * np.pi * 0.35 * time + params.sway_phase)
    pose.root[:, 0] += sway
    pose.lean += 0.04 * np.sin(2.0 * np.pi * 0.35 * time + params.sway_phase + 0.5)
    pose.head_yaw += params.head_wander * np.sin(2.0 * np.pi * 0.2 * time + 2.0 * params.sway_phase)
    if params.distractor is None:
        return
    burst = np.sin(np.pi * np.clip(time / max(time[-1], 1e-6), 0.0, 1.0)) if frames > 1 else np.ones(frames)
    wave = np.sin(2.0 * np.pi * 1.1 * time)
    s = builder.shape.scale
    if params.distractor == "left_arm_swing":
        pose.hand_left[:, 2] += 0.1 * s * wave * burst
    elif params.distractor == "weight_shift":
        pose.root[:, 0] += 0.05 * wave * burst
        pose.lean += 0.06 * wave * burst
    elif params.distractor == "foot_tap":
        tap = np.clip(wave, 0.0, None) * burst
        pose.hip_flex_left += 0.15 * tap
        pose.knee_left += 0.3 * tap
    elif params.distractor == "head_turn":
        pose.head_yaw += 0.45 * burst * np.sign(np.sin(params.sway_phase) + 1e-9)
    elif params.distractor == "shrug":
        pose.hand_left[:, 1] += 0.04 * s * np.clip(wave, 0.0, None) * burst
        pose.hand_right[:, 1] += 0.04 * s * np.clip(wave, 0.0, None) * burst
    else:
        raise ValueError(f"unknown distractor gesture {params.distractor!r}; known: {DISTRACTOR_GESTURES}")
