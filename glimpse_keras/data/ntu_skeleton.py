"""Parser for NTU RGB+D `.skeleton` files and selection of the two actors.

File layout (DATASETS.md section 1.4), read as a stream of lines:

    frameCount
    per frame:  bodyCount
      per body: bodyID clippedEdges handLeftConfidence handLeftState
                handRightConfidence handRightState isRestricted leanX leanY
                trackingState
                jointCount (always 25)
                25 x [x y z depthX depthY colorX colorY
                      orientationW orientationX orientationY orientationZ
                      trackingState]

Tokens are split on any whitespace (LF, CRLF, tabs, runs of spaces); floats go
through Python's `float`, so `NaN`, `Infinity` and `-Infinity` parse. bodyID is
a 17-digit integer above float64's exact range, so it is kept as a string.
"""

import dataclasses

import numpy as np

from glimpse_keras import filesystem
from glimpse_keras.data.errors import SkeletonFormatError
from glimpse_keras.data.ntu import ORIGINAL_HEIGHT, ORIGINAL_WIDTH

NUM_JOINTS = 25
JOINT_FIELDS = ("x", "y", "z", "depthX", "depthY", "colorX", "colorY",
                "orientationW", "orientationX", "orientationY", "orientationZ",
                "trackingState")
COLOR_X_COLUMN = JOINT_FIELDS.index("colorX")
COLOR_Y_COLUMN = JOINT_FIELDS.index("colorY")


@dataclasses.dataclass(frozen=True)
class PoseTrack:
    """2-D pose targets of up to P persons over F frames.

    Attributes:
        uv: float32 (F, P, J, 2): (u, v) = pixel position divided by the
            ORIGINAL image size (1920x1080 for NTU, 640x480 for N-UCLA); not
            clipped, so values outside [0, 1] mean "outside the image". 0 where
            mask is False.
        mask: bool (F, P, J), True where the joint is usable.
        body_ids: list of P str, the tracking id kept in each person slot ('' for
            an unused slot).
    """

    uv: np.ndarray
    mask: np.ndarray
    body_ids: list

    @property
    def num_frames(self):
        return int(self.uv.shape[0])


@dataclasses.dataclass(frozen=True)
class NtuBody:
    """One body in one frame, every field of the file (DATASETS.md 1.4).

    Attributes:
        body_id: the 64-bit tracking id, kept as the file's string.
        clipped_edges: bitmask of frame edges the body touches (1 R, 2 L, 4 T, 8 B).
        hand_left_confidence, hand_right_confidence: 0 low, 1 high.
        hand_left_state, hand_right_state: 0 unknown .. 4 lasso.
        is_restricted: 0/1.
        lean_x, lean_y: floats in [-1, 1] (may be NaN).
        tracking_state: the body line's last integer.
        joints: float64 (25, 12) in file column order (see JOINT_FIELDS).
    """

    body_id: str
    clipped_edges: int
    hand_left_confidence: int
    hand_left_state: int
    hand_right_confidence: int
    hand_right_state: int
    is_restricted: int
    lean_x: float
    lean_y: float
    tracking_state: int
    joints: np.ndarray


@dataclasses.dataclass(frozen=True)
class NtuSkeleton:
    """A parsed `.skeleton` file: frames[t] is the list of bodies in frame t."""

    frames: list

    @property
    def num_frames(self):
        return len(self.frames)


class _LineReader:
    """Yields the non-blank lines of a text as token lists, with line numbers."""

    def __init__(self, text, source):
        self._lines = text.splitlines()
        self._position = 0
        self.source = source
        self.line_number = 0

    def next_tokens(self, expected, what):
        """Returns the tokens of the next non-blank line; checks their count."""
        while self._position < len(self._lines):
            self._position += 1
            tokens = self._lines[self._position - 1].split()
            if tokens:
                self.line_number = self._position
                if len(tokens) != expected:
                    self.fail(f"{what}: expected {expected} value(s), got {len(tokens)}")
                return tokens
        self.line_number = len(self._lines) + 1
        self.fail(f"unexpected end of file (truncated): expected {what}")

    def remaining_content(self):
        """Returns (line_number, text) of the first non-blank line left, or None."""
        for offset, line in enumerate(self._lines[self._position:]):
            if line.strip():
                return self._position + offset + 1, line.strip()
        return None

    def fail(self, reason):
        raise SkeletonFormatError(self.source, reason, line=self.line_number)

    def to_int(self, token, what):
        try:
            return int(token)
        except ValueError:
            pass
        try:
            value = float(token)
        except ValueError:
            value = float("nan")
        if not value.is_integer():
            self.fail(f"{what}: expected an integer, got {token!r}")
        return int(value)

    def to_float(self, token, what):
        try:
            return float(token)
        except ValueError:
            self.fail(f"{what}: expected a number, got {token!r}")


def _parse_body(reader, where):
    tokens = reader.next_tokens(10, f"the body line of {where}")
    body_id = tokens[0]
    if not body_id.lstrip("+-").isdigit():
        reader.fail(f"bodyID of {where}: expected an integer, got {body_id!r}")
    names = ("clippedEdges", "handLeftConfidence", "handLeftState",
             "handRightConfidence", "handRightState", "isRestricted")
    flags = [reader.to_int(token, f"{name} of {where}")
             for name, token in zip(names, tokens[1:7])]
    lean_x = reader.to_float(tokens[7], f"leanX of {where}")
    lean_y = reader.to_float(tokens[8], f"leanY of {where}")
    tracking_state = reader.to_int(tokens[9], f"trackingState of {where}")
    joint_count = reader.to_int(
        reader.next_tokens(1, f"the joint count of {where}")[0], f"joint count of {where}")
    if joint_count != NUM_JOINTS:
        reader.fail(f"joint count of {where}: expected {NUM_JOINTS}, got {joint_count}")
    joints = np.empty((NUM_JOINTS, len(JOINT_FIELDS)), dtype=np.float64)
    for joint in range(NUM_JOINTS):
        what = f"joint {joint + 1} of {where}"
        row = reader.next_tokens(len(JOINT_FIELDS), what)
        try:
            joints[joint] = [float(token) for token in row]
        except ValueError:
            bad = next(t for t in row if not _is_float(t))
            reader.fail(f"{what}: expected a number, got {bad!r}")
    return NtuBody(body_id, *flags, lean_x, lean_y, tracking_state, joints)


def _is_float(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_ntu_skeleton(text, source="<string>"):
    """Parses the text of an NTU `.skeleton` file.

    Args:
        text: the file content (LF or CRLF line ends, any whitespace between
            tokens, blank lines ignored). Each record must be on its own line.
        source: the name used in error messages (normally the file path).

    Returns:
        NtuSkeleton with frameCount frames; frames with bodyCount 0 are empty
        lists.

    Raises:
        SkeletonFormatError: naming `source`, the 1-based line and the reason,
            for a truncated file, a bad token, a wrong token or joint count, a
            negative count, or content after the last frame.
    """
    reader = _LineReader(text, source)
    frame_count = reader.to_int(reader.next_tokens(1, "the frame count")[0], "frame count")
    if frame_count < 0:
        reader.fail(f"frame count must be >= 0, got {frame_count}")
    frames = []
    for frame in range(frame_count):
        where_frame = f"frame {frame + 1} of {frame_count}"
        body_count = reader.to_int(
            reader.next_tokens(1, f"the body count of {where_frame}")[0],
            f"body count of {where_frame}")
        if body_count < 0:
            reader.fail(f"body count of {where_frame} must be >= 0, got {body_count}")
        frames.append([_parse_body(reader, f"body {body + 1} in {where_frame}")
                       for body in range(body_count)])
    leftover = reader.remaining_content()
    if leftover is not None:
        reader.line_number = leftover[0]
        reader.fail(f"unexpected content after the last of {frame_count} frames: "
                    f"{leftover[1][:40]!r}")
    return NtuSkeleton(frames)


def read_ntu_skeleton(path):
    """Reads and parses a `.skeleton` file; see parse_ntu_skeleton.

    Raises:
        FileNotFoundError: the file does not exist.
        SkeletonFormatError: the content is malformed, or not ASCII text.
    """
    with filesystem.open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as error:
        raise SkeletonFormatError(path, f"not an ASCII text file ({error})") from None
    return parse_ntu_skeleton(text, source=str(path))


def joint_usable_mask(joints):
    """True where a joint row (..., 12) can serve as a pose target.

    A joint is unusable when any of x, y, z, colorX, colorY is not finite, when
    x = y = z = 0 (the sensor origin: an all-zero / occluded joint) or when
    colorX = colorY = 0 (no colour projection).
    """
    xyz = joints[..., 0:3]
    color = joints[..., COLOR_X_COLUMN:COLOR_Y_COLUMN + 1]
    finite = np.isfinite(xyz).all(axis=-1) & np.isfinite(color).all(axis=-1)
    return finite & np.any(xyz != 0, axis=-1) & np.any(color != 0, axis=-1)


@dataclasses.dataclass
class _BodyTrack:
    """All appearances of one bodyID: frame indices and their joint arrays."""

    body_id: str
    frames: list
    joints: list

    def arrays(self):
        joints = np.stack(self.joints)
        return np.asarray(self.frames), joints, joint_usable_mask(joints)


def _group_by_body_id(skeleton):
    tracks = {}
    for frame, bodies in enumerate(skeleton.frames):
        for body in bodies:
            track = tracks.setdefault(body.body_id, _BodyTrack(body.body_id, [], []))
            if track.frames and track.frames[-1] == frame:
                continue  # A repeated id within one frame: keep its first entry.
            track.frames.append(frame)
            track.joints.append(body.joints)
    return list(tracks.values())


def _spread_ratio_fraction(joints, usable, ratio):
    """Fraction of frames whose x-spread exceeds `ratio` x the y-spread."""
    flagged = []
    for frame_joints, frame_usable in zip(joints, usable):
        if frame_usable.sum() < 2:
            continue
        xy = frame_joints[frame_usable, :2]
        spread = xy.max(axis=0) - xy.min(axis=0)
        flagged.append(spread[0] > ratio * spread[1])
    return float(np.mean(flagged)) if flagged else 1.0


def _motion_energy(joints, usable):
    """Sum over joints and x/y/z axes of the variance over the usable frames."""
    energy = 0.0
    for joint in range(NUM_JOINTS):
        coords = joints[usable[:, joint], joint, 0:3]
        if len(coords) > 1:
            energy += float(coords.var(axis=0).sum())
    return energy


def _keep_unless_empty(candidates, keep):
    """Applies a filter, but never removes every candidate."""
    kept = [candidate for candidate in candidates if keep(candidate)]
    return kept if kept else candidates


def select_ntu_bodies(skeleton, max_persons=2, *, min_body_frames=12,
                      spread_ratio=0.8, spurious_fraction=0.69754):
    """Tracks up to `max_persons` actors by bodyID and builds 2-D pose targets.

    Steps (DATASETS.md 1.6; in the spirit of the CTR-GCN/SGN denoising):
      1. Group bodies by bodyID (a string, so 17-digit ids never collide).
         Bodies without a single usable joint are discarded.
      2. If more than one body remains, drop bodies seen (with a usable joint)
         in fewer than `min_body_frames` frames, then bodies for which at least
         `spurious_fraction` of the frames have an x-spread above
         `spread_ratio` x the y-spread (furniture lying flat). A filter that
         would remove every body is skipped.
      3. Rank by motion energy (sum of per-joint x/y/z variances over time).
      4. Walk the ranking and put each body into the first slot whose occupied
         frame intervals its own [first, last] frame interval does not overlap
         (so an actor re-detected under a new id continues its slot); bodies
         that fit no slot are dropped. Slot 0 is the most active actor.

    Args:
        skeleton: an NtuSkeleton.
        max_persons: P, the number of person slots.
        min_body_frames: bodies present in fewer frames count as short-lived.
        spread_ratio, spurious_fraction: the furniture heuristic's parameters.

    Returns:
        PoseTrack with uv float32 (F, P, 25, 2) = (colorX / 1920, colorY / 1080),
        not clipped; mask bool (F, P, 25) (see joint_usable_mask; frames where a
        slot holds no body are False); body_ids: per slot, the ids placed there
        joined with '+' in rank order ('' for an empty slot).
    """
    num_frames = skeleton.num_frames
    uv = np.zeros((num_frames, max_persons, NUM_JOINTS, 2), dtype=np.float32)
    mask = np.zeros((num_frames, max_persons, NUM_JOINTS), dtype=bool)

    candidates = []
    for track in _group_by_body_id(skeleton):
        frames, joints, usable = track.arrays()
        present = usable.any(axis=1)
        if present.any():
            candidates.append((track.body_id, frames, joints, usable, int(present.sum())))
    if len(candidates) > 1:
        candidates = _keep_unless_empty(
            candidates, lambda c: c[4] >= min_body_frames)
    if len(candidates) > 1:
        candidates = _keep_unless_empty(
            candidates,
            lambda c: _spread_ratio_fraction(c[2], c[3], spread_ratio) < spurious_fraction)
    ranked = sorted(candidates, key=lambda c: -_motion_energy(c[2], c[3]))

    slot_intervals = [[] for _ in range(max_persons)]
    slot_ids = [[] for _ in range(max_persons)]
    for body_id, frames, joints, usable, _ in ranked:
        # Only frames with a usable joint are written: the id's other frames may
        # lie inside the interval of an earlier body sharing the slot.
        present = usable.any(axis=1)
        frames, joints, usable = frames[present], joints[present], usable[present]
        first, last = int(frames[0]), int(frames[-1])
        for slot in range(max_persons):
            if all(last < start or first > end for start, end in slot_intervals[slot]):
                slot_intervals[slot].append((first, last))
                slot_ids[slot].append(body_id)
                color = joints[..., COLOR_X_COLUMN:COLOR_Y_COLUMN + 1]
                scaled = color / np.array([ORIGINAL_WIDTH, ORIGINAL_HEIGHT])
                uv[frames, slot] = np.where(usable[..., None], scaled, 0.0)
                mask[frames, slot] = usable
                break
    return PoseTrack(uv=uv, mask=mask, body_ids=["+".join(ids) for ids in slot_ids])
