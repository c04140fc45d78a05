"""Northwestern-UCLA Multiview Action 3D (N-UCLA) reader.

Layout (DATASETS.md section 2): `[multiview_action/]view_<v>/a<AA>_s<SS>_e<EE>/`
holds per-frame files `frame_<k>_<anything>_rgb.jpg` (640x480) and
`frame_<k>_<anything>_skeletons.txt`. Only the `frame_<int>_` prefix and the
suffix are relied on; files with other suffixes (depth, maps, fileList.txt) are
ignored. Frames are ordered by the integer k (frame_10 after frame_2).

Labels: the 10 action ids have gaps (no a07, a10) and are mapped through the
explicit table NUCLA_ACTION_TO_LABEL (a11 -> 8, a12 -> 9); an unknown action id
is an error, never silently dropped.

Pose targets (design choice, DATASETS.md section 3.3 option (b)): the release
has only 3-D camera-space joints (metres) and no pixel coordinates, so joints are
projected with the nominal Kinect v1 colour intrinsics for 640x480, focal length
f = 531.15 px and principal point (320, 240):

    u = (320 + f * x / z) / 640,    v = (240 - f * y / z) / 480,

giving coordinates normalised to the original 640x480 image, like NTU's
colorX/1920, colorY/1080. The x sign (no mirroring) and the missing
colour-depth baseline make this a coarse target on real data (a few pixels off
at best); the synthetic generator draws its figures with this same function, so
the targets are exact there. The 20 Kinect v1 joints are placed into the NTU
25-joint layout through NUCLA_TO_NTU_JOINTS (ShoulderCenter -> SpineShoulder);
the NTU joints with no Kinect v1 counterpart (Neck, HandTip*, Thumb*) are always
masked out, as are joints with state 0 (not tracked), non-finite or all-zero
positions, z <= 0, and every joint of frames without a skeleton file.
"""

import dataclasses
import os
import re

import numpy as np

from glimpse_keras import filesystem
from glimpse_keras.data.errors import (DataReadError, InvalidSampleIdError,
                                       SkeletonFormatError)
from glimpse_keras.data.ntu_skeleton import PoseTrack

ORIGINAL_WIDTH, ORIGINAL_HEIGHT = 640, 480
KINECT_V1_COLOR_FOCAL = 531.15
KINECT_V1_PRINCIPAL_POINT = (320.0, 240.0)

NUCLA_ACTION_TO_LABEL = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 8: 6, 9: 7, 11: 8, 12: 9}
NUCLA_CLASS_NAMES = (
    "pick up with one hand", "pick up with two hands", "drop trash",
    "walk around", "sit down", "stand up", "donning", "doffing", "throw", "carry",
)

# Kinect v1 NUI_SKELETON_POSITION_INDEX order.
NUCLA_JOINT_NAMES = (
    "HipCenter", "Spine", "ShoulderCenter", "Head",
    "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
    "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
    "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
    "HipRight", "KneeRight", "AnkleRight", "FootRight",
)
NUCLA_BONES = ((0, 1), (1, 2), (2, 3), (2, 4), (4, 5), (5, 6), (6, 7), (2, 8),
               (8, 9), (9, 10), (10, 11), (0, 12), (12, 13), (13, 14), (14, 15),
               (0, 16), (16, 17), (17, 18), (18, 19))

# NTU-25 slot of each Kinect v1 joint (NTU order: see ntu.NTU_JOINT_NAMES).
NUCLA_TO_NTU_JOINTS = (0, 1, 20, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                       17, 18, 19)
NUM_NUCLA_JOINTS = 20
NUM_NTU_JOINTS = 25
NUCLA_PROTOCOLS = ("xview",)
XVIEW_TRAIN_VIEWS = frozenset((1, 2))

_SAMPLE_PATTERN = re.compile(r"a(\d+)_s(\d+)_e(\d+)(?:_v(\d+))?")
_VIEW_PATTERN = re.compile(r"view_(\d+)")
_FRAME_PATTERN = re.compile(r"frame_(\d+)_(?:.*_)?(rgb\.jpg|skeletons\.txt)")


@dataclasses.dataclass(frozen=True)
class NuclaSampleId:
    """One N-UCLA recording: view (1-3), action id (with gaps), subject, episode."""

    view: int
    action: int
    subject: int
    episode: int

    @property
    def name(self):
        """'a01_s01_e00_v01', the usual view-suffixed sample name."""
        return (f"a{self.action:02d}_s{self.subject:02d}_e{self.episode:02d}"
                f"_v{self.view:02d}")

    @property
    def label(self):
        """The 0-based class label (NUCLA_ACTION_TO_LABEL[action])."""
        return NUCLA_ACTION_TO_LABEL[self.action]

    def __str__(self):
        return self.name


def parse_nucla_sample_dir(path):
    """Parses '.../view_<v>/a<AA>_s<SS>_e<EE>' (or a name 'aAA_sSS_eEE_vVV').

    Raises:
        InvalidSampleIdError: the folder name does not match, the view is not
            known from the parent folder or a '_v' suffix, the view is not 1-3,
            or the action id is not one of the 10 N-UCLA actions (e.g. a07).
    """
    text = os.fspath(path)
    parts = text.replace("\\", "/").rstrip("/").split("/")
    match = _SAMPLE_PATTERN.fullmatch(parts[-1])
    if match is None:
        raise InvalidSampleIdError(
            text, "not an N-UCLA sample folder: expected 'a<AA>_s<SS>_e<EE>' "
                  "(e.g. 'a01_s01_e00') inside 'view_<v>/'")
    action, subject, episode = (int(group) for group in match.groups()[:3])
    if match.group(4) is not None:
        view = int(match.group(4))
    else:
        view_match = _VIEW_PATTERN.fullmatch(parts[-2]) if len(parts) > 1 else None
        if view_match is None:
            raise InvalidSampleIdError(
                text, "the view is unknown: the sample folder must sit inside "
                      "'view_<v>/' or carry a '_v<VV>' suffix")
        view = int(view_match.group(1))
    if not 1 <= view <= 3:
        raise InvalidSampleIdError(text, f"view {view} is not one of 1, 2, 3")
    if action not in NUCLA_ACTION_TO_LABEL:
        raise InvalidSampleIdError(
            text, f"action a{action:02d} is not an N-UCLA action; expected one of "
                  f"{sorted(NUCLA_ACTION_TO_LABEL)}")
    return NuclaSampleId(view=view, action=action, subject=subject, episode=episode)


def nucla_split(sample_id, protocol="xview"):
    """'train' for views 1 and 2, 'test' for view 3 (cross-view protocol).

    Raises:
        ValueError: unknown protocol.
    """
    if protocol not in NUCLA_PROTOCOLS:
        raise ValueError(
            f"unknown N-UCLA protocol {protocol!r}; expected one of {NUCLA_PROTOCOLS}")
    return "train" if sample_id.view in XVIEW_TRAIN_VIEWS else "test"


def project_nucla_joints(xyz):
    """Projects Kinect v1 camera-space joints to normalised 640x480 image coords.

    u = (320 + 531.15 * x / z) / 640 and v = (240 - 531.15 * y / z) / 480.

    Args:
        xyz: array-like (..., 3) in metres (y up, z away from the sensor).

    Returns:
        float64 (..., 2) of (u, v); NaN where z <= 0 or a coordinate is not
        finite. Not clipped to [0, 1].
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.shape[-1:] != (3,):
        raise ValueError(f"xyz must have a last axis of size 3, got shape {xyz.shape}")
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    valid = np.isfinite(xyz).all(axis=-1) & (z > 0)
    safe_z = np.where(valid, z, 1.0)
    cx, cy = KINECT_V1_PRINCIPAL_POINT
    u = (cx + KINECT_V1_COLOR_FOCAL * x / safe_z) / ORIGINAL_WIDTH
    v = (cy - KINECT_V1_COLOR_FOCAL * y / safe_z) / ORIGINAL_HEIGHT
    uv = np.stack([u, v], axis=-1)
    uv[~valid] = np.nan
    return uv


@dataclasses.dataclass(frozen=True)
class NuclaSample:
    """One sample folder with its per-frame files, aligned by frame index.

    Attributes:
        sample_id: the NuclaSampleId.
        directory: the sample folder.
        frame_indices: the integer k of every frame with an RGB file, sorted
            numerically.
        rgb_paths: the RGB file of each frame in frame_indices.
        skeleton_paths: the skeleton file of each frame, or None when that frame
            has none. Skeleton files of frames without an RGB file are ignored.
    """

    sample_id: NuclaSampleId
    directory: str
    frame_indices: list
    rgb_paths: list
    skeleton_paths: list

    @property
    def num_frames(self):
        return len(self.frame_indices)


def find_view_dirs(root):
    """Returns [(view_number, path)] of the view_<v> folders, sorted by view.

    Looks in `root` first, then in `root/multiview_action`; [] when neither
    holds a view_<v> folder.
    """
    for candidate in (root, os.path.join(root, "multiview_action")):
        if not filesystem.isdir(candidate):
            continue
        views = []
        for entry in filesystem.listdir(candidate):
            match = _VIEW_PATTERN.fullmatch(entry)
            if match and filesystem.isdir(os.path.join(candidate, entry)):
                views.append((int(match.group(1)), os.path.join(candidate, entry)))
        if views:
            return sorted(views)
    return []


def read_nucla_sample(directory):
    """Lists the frames of one sample folder.

    Raises:
        InvalidSampleIdError: the folder name is not a valid sample name.
        DataReadError: two RGB (or two skeleton) files share a frame index.
    """
    sample_id = parse_nucla_sample_dir(directory)
    rgb, skeletons = {}, {}
    for entry in filesystem.listdir(directory):
        match = _FRAME_PATTERN.fullmatch(entry)
        if match is None:
            continue
        index = int(match.group(1))
        table = rgb if match.group(2) == "rgb.jpg" else skeletons
        if index in table:
            raise DataReadError(
                directory, f"two files for frame {index}: "
                           f"{os.path.basename(table[index])!r} and {entry!r}")
        table[index] = os.path.join(directory, entry)
    indices = sorted(rgb)
    return NuclaSample(
        sample_id=sample_id,
        directory=directory,
        frame_indices=indices,
        rgb_paths=[rgb[index] for index in indices],
        skeleton_paths=[skeletons.get(index) for index in indices],
    )


def list_nucla_samples(root):
    """Lists every sample under an N-UCLA root, ordered by view then folder name.

    Args:
        root: the folder holding view_1/, view_2/, view_3/, or the folder above
            'multiview_action/'.

    Returns:
        list of NuclaSample. Folders with no RGB frame are included (with empty
        lists) so the caller can report them rather than lose them silently.
        Entries of a view folder that do not look like 'a<AA>_s<SS>_e<EE>' are
        ignored.

    Raises:
        FileNotFoundError: no view_<v> folder was found.
        InvalidSampleIdError: a sample folder has an unknown action id (e.g. a07).
    """
    root = os.fspath(root)
    views = find_view_dirs(root)
    if not views:
        raise FileNotFoundError(
            f"{root}: no 'view_<v>' folders here or in '{root}/multiview_action'")
    samples = []
    for _, view_dir in views:
        for entry in sorted(filesystem.listdir(view_dir)):
            path = os.path.join(view_dir, entry)
            if filesystem.isdir(path) and _SAMPLE_PATTERN.fullmatch(entry):
                samples.append(read_nucla_sample(path))
    return samples


def _parse_number(token, path, line_number):
    try:
        return float(token)
    except ValueError:
        raise SkeletonFormatError(
            path, f"expected a number, got {token!r}", line=line_number) from None


def parse_nucla_skeleton(text, source="<string>"):
    """Parses the text of one N-UCLA skeleton file.

    Integer-only lines are body block headers; every other non-blank line is a
    joint 'x,y,z,state' (commas and/or whitespace). Joint lines are collected in
    groups of 20, each group one body.

    Returns:
        float64 (num_bodies, 20, 4) of [x, y, z, state]; (0, 20, 4) when the
        file holds no joint line.

    Raises:
        SkeletonFormatError: a line with the wrong number of values, a bad
            number, a header inside a body, or a body cut short (names source,
            line and reason).
    """
    bodies, current, current_start = [], [], None
    for line_number, raw in enumerate(text.splitlines(), start=1):
        tokens = [token for token in re.split(r"[,\s]+", raw.strip()) if token]
        if not tokens:
            continue
        if len(tokens) == 1:
            if not re.fullmatch(r"[+-]?\d+", tokens[0]):
                raise SkeletonFormatError(
                    source, f"expected an integer block header or 'x,y,z,state', "
                            f"got {raw.strip()!r}", line=line_number)
            if current:
                raise SkeletonFormatError(
                    source, f"block header inside a body: the body starting at line "
                            f"{current_start} has {len(current)} of "
                            f"{NUM_NUCLA_JOINTS} joints", line=line_number)
            continue
        if len(tokens) != 4:
            raise SkeletonFormatError(
                source, f"expected 4 values 'x,y,z,state', got {len(tokens)}: "
                        f"{raw.strip()!r}", line=line_number)
        if not current:
            current_start = line_number
        current.append([_parse_number(token, source, line_number) for token in tokens])
        if len(current) == NUM_NUCLA_JOINTS:
            bodies.append(current)
            current = []
    if current:
        raise SkeletonFormatError(
            source, f"truncated: the body starting at line {current_start} has "
                    f"{len(current)} of {NUM_NUCLA_JOINTS} joints",
            line=len(text.splitlines()))
    if not bodies:
        return np.zeros((0, NUM_NUCLA_JOINTS, 4), dtype=np.float64)
    return np.asarray(bodies, dtype=np.float64)


def read_nucla_skeleton(path):
    """Reads one `*_skeletons.txt` file; see parse_nucla_skeleton.

    Raises:
        OSError (e.g. FileNotFoundError): the file cannot be opened.
        SkeletonFormatError: as parse_nucla_skeleton, or the file is not ASCII.
    """
    try:
        with filesystem.open(path, "rb") as handle:
            text = handle.read().decode("ascii", errors="strict")
    except UnicodeDecodeError as error:
        raise SkeletonFormatError(path, f"not an ASCII text file ({error})") from None
    return parse_nucla_skeleton(text, source=os.fspath(path))


def _read_body_ids(path):
    """Returns the integer header lines of a skeleton file, as strings."""
    with filesystem.open(path, encoding="ascii", errors="replace") as handle:
        return [line.strip() for line in handle if re.fullmatch(r"[+-]?\d+", line.strip())]


def nucla_pose_track(sample, num_persons=2):
    """Builds NTU-layout 2-D pose targets for one N-UCLA sample.

    Args:
        sample: a NuclaSample.
        num_persons: P, the number of person slots; body block b of each frame
            goes to slot b (extra blocks are dropped).

    Returns:
        PoseTrack with uv float32 (F, P, 25, 2) normalised to 640x480 and mask
        bool (F, P, 25); F = sample.num_frames. body_ids holds, per slot, the
        first header value seen for that slot ('' if none).

    Raises:
        SkeletonFormatError: a skeleton file of the sample is malformed.
    """
    num_frames = sample.num_frames
    uv = np.zeros((num_frames, num_persons, NUM_NTU_JOINTS, 2), dtype=np.float32)
    mask = np.zeros((num_frames, num_persons, NUM_NTU_JOINTS), dtype=bool)
    body_ids = [""] * num_persons
    ntu_slots = np.asarray(NUCLA_TO_NTU_JOINTS)
    for frame, path in enumerate(sample.skeleton_paths):
        if path is None:
            continue
        bodies = read_nucla_skeleton(path)[:num_persons]
        if len(bodies) == 0:
            continue
        headers = _read_body_ids(path)
        for slot in range(len(bodies)):
            if not body_ids[slot] and slot < len(headers):
                body_ids[slot] = headers[slot]
        xyz, state = bodies[..., :3], bodies[..., 3]
        projected = project_nucla_joints(xyz)
        usable = (np.isfinite(projected).all(axis=-1)
                  & np.any(xyz != 0, axis=-1) & (state != 0))
        projected = np.where(usable[..., None], projected, 0.0)
        uv[frame, :len(bodies)][:, ntu_slots] = projected
        mask[frame, :len(bodies)][:, ntu_slots] = usable
    return PoseTrack(uv=uv, mask=mask, body_ids=body_ids)
