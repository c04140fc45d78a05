"""NTU RGB+D 60/120 metadata: joints, classes, sample ids and evaluation splits.

Sample ids follow the official scheme `SsssCcccPpppRrrrAaaa` (setup, camera,
performer, replication, action; each 3 digits, 1-based), e.g.
`S001C002P003R002A013`. They are parsed by fixed character positions, never by
searching for letters.

Protocols (DATASETS.md section 1.9):
    'xsub':    NTU-60 Cross-Subject, 20 listed training performers (P040 is a
               test performer: the test set has 16,560 samples, not 16,200).
    'xview':   NTU-60 Cross-View, cameras 2 and 3 train, camera 1 tests.
    'xsub120': NTU-120 Cross-Subject, 53 listed training performers.
    'xset120': NTU-120 Cross-Setup, even setup numbers train, odd ones test.
"""

import dataclasses
import os
import re

from glimpse_keras import filesystem
from glimpse_keras.data.errors import InvalidSampleIdError

ORIGINAL_WIDTH, ORIGINAL_HEIGHT = 1920, 1080

# Kinect v2 JointType order, as stored in the .skeleton files.
NTU_JOINT_NAMES = (
    "SpineBase", "SpineMid", "Neck", "Head",
    "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
    "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
    "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
    "HipRight", "KneeRight", "AnkleRight", "FootRight",
    "SpineShoulder", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight",
)

# 1-based parent of each joint, from the official overlay script. SpineBase and
# SpineMid name each other; the tree is rooted at SpineBase, so that pair gives
# one bone and the tree has 24 bones.
_PARENT_1BASED = (2, 1, 21, 3, 21, 5, 6, 7, 21, 9, 10, 11, 1, 13, 14, 15, 1, 17, 18,
                  19, 2, 8, 8, 12, 12)
NTU_BONES = tuple((child, _PARENT_1BASED[child] - 1) for child in range(1, 25))

# Partner joint under a horizontal image flip (left <-> right); centre joints
# map to themselves.
NTU_FLIP_PARTNERS = (
    0, 1, 2, 3,
    8, 9, 10, 11,
    4, 5, 6, 7,
    16, 17, 18, 19,
    12, 13, 14, 15,
    20, 23, 24, 21, 22,
)

NTU60_CLASS_NAMES = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop",
    "pickup", "throw", "sitting down", "standing up (from sitting position)",
    "clapping", "reading", "writing", "tear up paper", "wear jacket",
    "take off jacket", "wear a shoe", "take off a shoe", "wear on glasses",
    "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "reach into pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard",
    "pointing to something with finger", "taking a selfie",
    "check time (from watch)", "rub two hands together", "nod head/bow",
    "shake head", "wipe face", "salute", "put the palms together",
    "cross hands in front (say stop)", "sneeze/cough", "staggering", "falling",
    "touch head (headache)", "touch chest (stomachache/heart pain)",
    "touch back (backache)", "touch neck (neckache)",
    "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person", "kicking other person",
    "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket",
    "handshaking", "walking towards each other",
    "walking apart from each other",
)

# 1-based action numbers of the two-person ("mutual") classes.
TWO_PERSON_ACTIONS = frozenset(list(range(50, 61)) + list(range(106, 121)))

# Valid field ranges over NTU-60 and NTU-120.
_FIELD_RANGES = {
    "setup": (1, 32),
    "camera": (1, 3),
    "subject": (1, 106),
    "replication": (1, 2),
    "action": (1, 120),
}
_NTU60_LIMITS = {"setup": 17, "subject": 40, "action": 60}

_ID_PATTERN = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_ID_LENGTH = 20

XSUB60_TRAIN_SUBJECTS = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
XSUB120_TRAIN_SUBJECTS = XSUB60_TRAIN_SUBJECTS | frozenset(
    (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82,
     83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103))
XVIEW_TRAIN_CAMERAS = frozenset((2, 3))

NTU_PROTOCOLS = ("xsub", "xview", "xsub120", "xset120")

_RESOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources")
MISSING_SKELETONS_NTU60 = os.path.join(
    _RESOURCE_DIR, "NTU_RGBD_samples_with_missing_skeletons.txt")
MISSING_SKELETONS_NTU120 = os.path.join(
    _RESOURCE_DIR, "NTU_RGBD120_samples_with_missing_skeletons.txt")


@dataclasses.dataclass(frozen=True)
class NtuSampleId:
    """One NTU recording, identified by its five 1-based id fields."""

    setup: int
    camera: int
    subject: int
    replication: int
    action: int

    @property
    def name(self):
        """The canonical 20-character id, e.g. 'S001C002P003R002A013'."""
        return (f"S{self.setup:03d}C{self.camera:03d}P{self.subject:03d}"
                f"R{self.replication:03d}A{self.action:03d}")

    @property
    def label(self):
        """The 0-based class label (action - 1)."""
        return self.action - 1

    @property
    def is_ntu60(self):
        """True when the sample belongs to NTU RGB+D 60 (S001-S017, A001-A060)."""
        return all(getattr(self, key) <= limit for key, limit in _NTU60_LIMITS.items())

    def __str__(self):
        return self.name


def parse_ntu_sample_id(text):
    """Parses an NTU id from a bare id, a file name or a path.

    The id is read from fixed character positions of the base name's first 20
    characters: S=[1:4], C=[5:8], P=[9:12], R=[13:16], A=[17:20]. Anything after
    the id must start with '_' or '.' (e.g. '_rgb.avi', '.skeleton').

    Args:
        text: 'S001C002P003R002A013', 'S001C002P003R002A013_rgb.avi',
            '/data/nturgb+d_skeletons/S001C002P003R002A013.skeleton', ...

    Returns:
        The NtuSampleId.

    Raises:
        InvalidSampleIdError: the name does not follow the scheme, or a field is
            outside its range (camera 1-3, replication 1-2, action 1-120,
            setup 1-32, performer 1-106).
    """
    text = os.fspath(text)
    base = os.path.basename(text.rstrip("/\\").replace("\\", "/"))
    stem, rest = base[:_ID_LENGTH], base[_ID_LENGTH:]
    match = _ID_PATTERN.fullmatch(stem)
    if match is None:
        raise InvalidSampleIdError(
            text, "not an NTU sample id: expected 'SsssCcccPpppRrrrAaaa' "
                  "(e.g. 'S001C002P003R002A013') at the start of the file name")
    if rest and rest[0] not in "_.":
        raise InvalidSampleIdError(
            text, f"unexpected characters {rest!r} after the 20-character id")
    fields = dict(zip(("setup", "camera", "subject", "replication", "action"),
                      (int(group) for group in match.groups())))
    for key, value in fields.items():
        low, high = _FIELD_RANGES[key]
        if not low <= value <= high:
            raise InvalidSampleIdError(
                text, f"{key} {value} is outside the NTU range {low}..{high}")
    return NtuSampleId(**fields)


def ntu_split(sample, protocol):
    """Returns 'train' or 'test' for `sample` under an official protocol.

    Args:
        sample: an NtuSampleId (or anything parse_ntu_sample_id accepts).
        protocol: one of NTU_PROTOCOLS.

    Raises:
        ValueError: unknown protocol, or an NTU-120-only sample (setup > 17,
            performer > 40 or action > 60) under an NTU-60 protocol.
    """
    if not isinstance(sample, NtuSampleId):
        sample = parse_ntu_sample_id(sample)
    if protocol not in NTU_PROTOCOLS:
        raise ValueError(
            f"unknown NTU protocol {protocol!r}; expected one of {NTU_PROTOCOLS}")
    if protocol in ("xsub", "xview") and not sample.is_ntu60:
        raise ValueError(
            f"sample {sample.name} is not part of NTU RGB+D 60, so protocol "
            f"{protocol!r} does not apply (use 'xsub120' or 'xset120')")
    if protocol == "xsub":
        is_train = sample.subject in XSUB60_TRAIN_SUBJECTS
    elif protocol == "xview":
        is_train = sample.camera in XVIEW_TRAIN_CAMERAS
    elif protocol == "xsub120":
        is_train = sample.subject in XSUB120_TRAIN_SUBJECTS
    else:
        is_train = sample.setup % 2 == 0
    return "train" if is_train else "test"


def load_missing_skeleton_ids(path=None, ntu120=False):
    """Reads an official list of samples with missing or incomplete skeletons.

    Only lines that are exactly one sample id (after stripping whitespace) are
    kept, so the official 3-line header, blank lines and CRLF endings are
    ignored, and header-less copies work too.

    Args:
        path: the list file; None selects the shipped copy of the official file.
        ntu120: with path=None, selects the NTU-120 list (535 ids) instead of the
            NTU-60 one (302 ids).

    Returns:
        frozenset of 20-character id strings.

    Raises:
        FileNotFoundError: `path` does not exist.
    """
    if path is None:
        path = MISSING_SKELETONS_NTU120 if ntu120 else MISSING_SKELETONS_NTU60
    with filesystem.open(path, encoding="utf-8", errors="replace") as handle:
        lines = [line.strip() for line in handle]
    return frozenset(line for line in lines if _ID_PATTERN.fullmatch(line))
