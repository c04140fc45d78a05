"""A 3-D articulated body with the Kinect v2 25-joint topology, and per-subject body shapes.

Body-local frame: x = the person's left, y = up, z = forward (the facing direction); metres.
World frame: y up, floor at y = 0. `pose_to_joints` turns per-frame pose channels into world joints.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from glimpse_keras.data.synthetic.seeding import rng_for

NUM_JOINTS = 25
(SPINE_BASE, SPINE_MID, NECK, HEAD, SHOULDER_L, ELBOW_L, WRIST_L, HAND_L, SHOULDER_R, ELBOW_R, WRIST_R, HAND_R,
 HIP_L, KNEE_L, ANKLE_L, FOOT_L, HIP_R, KNEE_R, ANKLE_R, FOOT_R, SPINE_SHOULDER, HAND_TIP_L, THUMB_L,
 HAND_TIP_R, THUMB_R) = range(NUM_JOINTS)

# (child, parent), 0-based, Kinect v2 order; the official overlay's `connecting_joint` without the root.
BONES = ((1, 0), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9), (11, 10), (12, 0),
         (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18), (20, 1), (21, 7), (22, 7), (23, 11),
         (24, 11))

# Joints whose orientation quaternion Kinect reports as 0 0 0 0 (end joints).
LEAF_JOINTS = frozenset({HEAD, FOOT_L, FOOT_R, HAND_TIP_L, THUMB_L, HAND_TIP_R, THUMB_R})

# Kinect v1 (N-UCLA) 20-joint order expressed as slots of this 25-joint body.
KINECT_V1_FROM_BODY = (SPINE_BASE, SPINE_MID, SPINE_SHOULDER, HEAD, SHOULDER_L, ELBOW_L, WRIST_L, HAND_L,
                       SHOULDER_R, ELBOW_R, WRIST_R, HAND_R, HIP_L, KNEE_L, ANKLE_L, FOOT_L, HIP_R, KNEE_R,
                       ANKLE_R, FOOT_R)

_SHIRTS = ((200, 40, 40), (40, 90, 200), (30, 150, 60), (220, 160, 20), (140, 50, 170), (20, 160, 170),
           (230, 100, 30), (90, 90, 220), (180, 30, 110), (60, 170, 110))
_PANTS = ((40, 40, 70), (70, 50, 30), (30, 30, 30), (50, 80, 120), (90, 90, 90), (60, 30, 60))
_SKINS = ((235, 195, 160), (200, 150, 110), (150, 100, 70), (100, 65, 45), (245, 210, 180))


@dataclasses.dataclass(frozen=True)
class BodyShape:
    """Body proportions and clothing colours of one subject (constant across all their samples).

    Lengths are in metres; colours are RGB uint8 triples.
    """

    height: float
    arm_ratio: float
    leg_ratio: float
    shoulder_ratio: float
    girth: float
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    skin: tuple[int, int, int]

    @property
    def scale(self) -> float:
        return self.height / 1.75

    @property
    def thigh(self) -> float:
        return 0.44 * self.scale * self.leg_ratio

    @property
    def shin(self) -> float:
        return 0.42 * self.scale * self.leg_ratio

    @property
    def ankle_height(self) -> float:
        return 0.08 * self.scale

    @property
    def foot(self) -> float:
        return 0.15 * self.scale

    @property
    def hip_half_width(self) -> float:
        return 0.09 * self.scale

    @property
    def shoulder_half_width(self) -> float:
        return 0.18 * self.scale * self.shoulder_ratio

    @property
    def upper_arm(self) -> float:
        return 0.29 * self.scale * self.arm_ratio

    @property
    def forearm(self) -> float:
        return 0.25 * self.scale * self.arm_ratio

    @property
    def spine_to_shoulder(self) -> float:
        return 0.47 * self.scale

    @property
    def head_radius(self) -> float:
        return 0.11 * self.scale

    def rest_hand(self, side: str) -> np.ndarray:
        """Relaxed hand (wrist) position, torso frame, relative to SpineShoulder."""
        sign = 1.0 if side == "left" else -1.0
        reach = (self.upper_arm + self.forearm) * 0.96
        return np.array([sign * (self.shoulder_half_width + 0.03 * self.scale), -0.03 * self.scale - reach,
                         0.06 * self.scale])

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def body_shape_for_subject(seed: int, dataset: str, subject: int) -> BodyShape:
    """Returns the deterministic body shape of `subject` in `dataset` ('ntu' | 'nucla')."""
    rng = rng_for(seed, dataset, "subject", subject)
    return BodyShape(
        height=float(rng.uniform(1.52, 1.92)),
        arm_ratio=float(rng.uniform(0.9, 1.1)),
        leg_ratio=float(rng.uniform(0.9, 1.1)),
        shoulder_ratio=float(rng.uniform(0.85, 1.2)),
        girth=float(rng.uniform(0.85, 1.25)),
        shirt=_jitter_colour(rng, _SHIRTS[int(rng.integers(len(_SHIRTS)))]),
        pants=_jitter_colour(rng, _PANTS[int(rng.integers(len(_PANTS)))]),
        skin=_jitter_colour(rng, _SKINS[int(rng.integers(len(_SKINS)))]),
    )


def _jitter_colour(rng: np.random.Generator, colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in colour)


@dataclasses.dataclass
class PoseChannels:
    """Per-frame pose parameters of one person; every array has leading length F (frames).

    Attributes:
      root: (F, 3) world position of the floor point under the pelvis.
      facing: (F,) world yaw in radians (0 faces +z).
      squat: (F,) 0 = standing, 1 = seated (thighs horizontal, feet planted).
      lift: (F,) extra vertical pelvis offset in metres (jumps, falls when negative).
      bend, lean, twist: (F,) torso pitch forward, roll to the right, yaw; radians.
      head_pitch, head_yaw, head_roll: (F,) radians (pitch > 0 looks down).
      hip_flex_left/right, knee_left/right: (F,) extra leg angles added to the squat's, radians.
      hand_left, hand_right: (F, 3) wrist targets in the torso frame relative to SpineShoulder, metres.
    """

    root: np.ndarray
    facing: np.ndarray
    squat: np.ndarray
    lift: np.ndarray
    bend: np.ndarray
    lean: np.ndarray
    twist: np.ndarray
    head_pitch: np.ndarray
    head_yaw: np.ndarray
    head_roll: np.ndarray
    hip_flex_left: np.ndarray
    hip_flex_right: np.ndarray
    knee_left: np.ndarray
    knee_right: np.ndarray
    hand_left: np.ndarray
    hand_right: np.ndarray

    @classmethod
    def resting(cls, shape: BodyShape, num_frames: int) -> "PoseChannels":
        zeros = np.zeros(num_frames)
        return cls(root=np.zeros((num_frames, 3)), facing=zeros.copy(), squat=zeros.copy(), lift=zeros.copy(),
                   bend=zeros.copy(), lean=zeros.copy(), twist=zeros.copy(), head_pitch=zeros.copy(),
                   head_yaw=zeros.copy(), head_roll=zeros.copy(), hip_flex_left=zeros.copy(),
                   hip_flex_right=zeros.copy(), knee_left=zeros.copy(), knee_right=zeros.copy(),
                   hand_left=np.tile(shape.rest_hand("left"), (num_frames, 1)),
                   hand_right=np.tile(shape.rest_hand("right"), (num_frames, 1)))


def rotation_x(angle: np.ndarray) -> np.ndarray:
    """(F,) radians -> (F, 3, 3); positive tilts +y towards +z."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rotation_y(angle: np.ndarray) -> np.ndarray:
    """(F,) radians -> (F, 3, 3); positive turns +z towards +x."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rotation_z(angle: np.ndarray) -> np.ndarray:
    """(F,) radians -> (F, 3, 3); positive tilts +y towards -x."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _apply(rotation: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(F, 3, 3) x (F, 3) or (3,) -> (F, 3)."""
    return np.einsum("fij,fj->fi", rotation, np.broadcast_to(vectors, rotation.shape[:-1]))


def pose_to_joints(shape: BodyShape, pose: PoseChannels) -> np.ndarray:
    """Returns world joint positions (F, 25, 3) in metres for one person."""
    frames = pose.root.shape[0]
    joints = np.zeros((frames, NUM_JOINTS, 3))
    squat = np.clip(pose.squat, 0.0, 1.0)
    squat_hip, squat_knee = squat * 1.55, squat * 1.62
    # Feet stay planted during a squat: the pelvis drops and moves back by the leg geometry.
    shin_angle = squat_hip - squat_knee
    pelvis_height = shape.ankle_height + shape.thigh * np.cos(squat_hip) + shape.shin * np.cos(shin_angle)
    pelvis_back = shape.thigh * np.sin(squat_hip) + shape.shin * np.sin(shin_angle)
    body_turn = rotation_y(pose.facing)
    leg_locals = {}
    for side, sign, hip_j, knee_j, ankle_j, foot_j in (("left", 1.0, HIP_L, KNEE_L, ANKLE_L, FOOT_L),
                                                        ("right", -1.0, HIP_R, KNEE_R, ANKLE_R, FOOT_R)):
        hip_angle = squat_hip + getattr(pose, f"hip_flex_{side}")
        lower_angle = hip_angle - (squat_knee + np.maximum(getattr(pose, f"knee_{side}"), -squat_knee))
        hip = np.array([sign * shape.hip_half_width, 0.0, 0.0])
        thigh = np.stack([np.full(frames, sign * 0.04), -np.cos(hip_angle), np.sin(hip_angle)], -1)
        thigh /= np.linalg.norm(thigh, axis=-1, keepdims=True)
        knee = hip + shape.thigh * thigh
        shin_dir = np.stack([np.zeros(frames), -np.cos(lower_angle), np.sin(lower_angle)], -1)
        ankle = knee + shape.shin * shin_dir
        foot_dir = np.stack([np.zeros(frames), np.sin(lower_angle), np.cos(lower_angle)], -1)
        # With the shin swung far back (kneeling) the foot points along the shin, toes on the floor.
        pointed = np.clip((-lower_angle - 0.3) / 0.6, 0.0, 1.0)[:, None]
        foot_dir = pointed * shin_dir + (1.0 - pointed) * foot_dir
        foot_dir /= np.linalg.norm(foot_dir, axis=-1, keepdims=True)
        foot = ankle + shape.foot * foot_dir + 0.6 * shape.ankle_height * shin_dir
        leg_locals.update({hip_j: np.broadcast_to(hip, (frames, 3)), knee_j: knee, ankle_j: ankle, foot_j: foot})
    # Ground contact: nothing goes through the floor (the body is raised instead).
    lowest = np.min(np.stack([local[:, 1] for local in leg_locals.values()], -1), axis=-1)
    height = pelvis_height + pose.lift
    height = np.maximum(height, -lowest + 0.01)
    pelvis_local = np.stack([np.zeros(frames), height, -pelvis_back], -1)
    pelvis = pose.root + _apply(body_turn, pelvis_local)
    for joint, local in leg_locals.items():
        joints[:, joint] = pelvis + _apply(body_turn, local)

    spine_base_local = np.array([0.0, 0.06 * shape.scale, 0.0])
    spine_base = pelvis + _apply(body_turn, spine_base_local)
    torso = body_turn @ rotation_y(pose.twist) @ rotation_x(pose.bend) @ rotation_z(pose.lean)

    def torso_point(local: np.ndarray) -> np.ndarray:
        return spine_base + _apply(torso, local)

    s = shape.scale
    joints[:, SPINE_BASE] = spine_base
    joints[:, SPINE_MID] = torso_point(np.array([0.0, 0.24 * s, 0.01 * s]))
    shoulder_centre = np.array([0.0, shape.spine_to_shoulder, 0.0])
    joints[:, SPINE_SHOULDER] = torso_point(shoulder_centre)
    joints[:, NECK] = torso_point(shoulder_centre + [0.0, 0.07 * s, 0.0])
    head_turn = rotation_y(pose.head_yaw) @ rotation_x(pose.head_pitch) @ rotation_z(pose.head_roll)
    head_local = shoulder_centre + [0.0, 0.07 * s, 0.0] + _apply(head_turn, np.array([0.0, 0.13 * s, 0.02 * s]))
    joints[:, HEAD] = torso_point(head_local)

    for side, sign, joint_ids in (("left", 1.0, (SHOULDER_L, ELBOW_L, WRIST_L, HAND_L, HAND_TIP_L, THUMB_L)),
                                  ("right", -1.0, (SHOULDER_R, ELBOW_R, WRIST_R, HAND_R, HAND_TIP_R, THUMB_R))):
        shoulder_rel = np.array([sign * shape.shoulder_half_width, -0.03 * s, 0.0])
        target = getattr(pose, f"hand_{side}")
        arm = _solve_arm(shape, shoulder_rel, target, sign)
        for joint, local in zip(joint_ids, arm):
            joints[:, joint] = torso_point(shoulder_centre + local)
    return joints


def _solve_arm(shape: BodyShape, shoulder: np.ndarray, target: np.ndarray, sign: float) -> list[np.ndarray]:
    """Two-bone inverse kinematics; returns shoulder, elbow, wrist, hand, hand tip, thumb (F, 3) each,
    relative to SpineShoulder in the torso frame. Unreachable targets are clamped to the arm's reach."""
    frames = target.shape[0]
    upper, fore = shape.upper_arm, shape.forearm
    offset = target - shoulder
    distance = np.linalg.norm(offset, axis=-1, keepdims=True)
    direction = offset / np.maximum(distance, 1e-6)
    distance = np.clip(distance, abs(upper - fore) + 0.05, (upper + fore) * 0.995)
    along = (upper**2 - fore**2 + distance**2) / (2.0 * distance)
    across = np.sqrt(np.maximum(upper**2 - along**2, 0.0))
    # Elbows point down, out and slightly back, like a relaxed arm.
    pole = np.broadcast_to(np.array([sign * 0.45, -1.0, -0.35]), (frames, 3))
    pole = pole - np.sum(pole * direction, -1, keepdims=True) * direction
    pole_norm = np.linalg.norm(pole, axis=-1, keepdims=True)
    fallback = np.broadcast_to(np.array([sign * 1.0, 0.0, 0.0]), (frames, 3))
    pole = np.where(pole_norm > 1e-6, pole / np.maximum(pole_norm, 1e-9), fallback)
    elbow = shoulder + along * direction + across * pole
    wrist = shoulder + distance * direction
    forearm_dir = (wrist - elbow) / fore
    hand = wrist + 0.07 * shape.scale * forearm_dir
    hand_tip = hand + 0.07 * shape.scale * forearm_dir
    side_dir = np.cross(forearm_dir, np.array([0.0, 1.0, 0.0]))
    side_norm = np.linalg.norm(side_dir, axis=-1, keepdims=True)
    side_dir = np.where(side_norm > 1e-6, side_dir / np.maximum(side_norm, 1e-9), pole)
    thumb = hand + 0.04 * shape.scale * (0.6 * forearm_dir - sign * 0.8 * side_dir)
    return [np.broadcast_to(shoulder, (frames, 3)), elbow, wrist, hand, hand_tip, thumb]
