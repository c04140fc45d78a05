"""Hand-held props and room clutter: the small objects that fine-grained actions are told apart by.

In NTU RGB+D many of the hardest classes differ by what is in the hands (a cup for drinking, a
toothbrush, a book, a phone, a keyboard) more than by the arm's motion. A class may name a prop that
its performer holds in every frame (`NTU_HELD_PROPS`); it is drawn in the pixels at the hand joints
written to the skeleton file, at its real size in metres. The same kinds of objects also lie around
the room as clutter (`clutter_props`), independent of the class, so that an object seen anywhere in
the frame says little: only the object at the hands tells the class.

Coordinates are frame pixels (the convention of render.py); sizes are metres, turned into pixels with
the camera's focal length and the depth of the hand.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from glimpse_keras.data.synthetic import kinematics as K

_SHIFT = 4  # OpenCV fixed-point bits for sub-pixel drawing
_ONE = 1 << _SHIFT


@dataclasses.dataclass(frozen=True)
class PropKind:
    """What a prop looks like.

    Attributes:
      length: extent along its main axis, metres.
      width: extent across it, metres.
      colour: RGB of the body.
      inset: RGB of an inner rectangle (a phone's screen, a book's pages) or None.
      inset_fraction: side of the inner rectangle relative to the body.
    """

    length: float
    width: float
    colour: tuple
    inset: tuple | None = None
    inset_fraction: float = 0.7


PROP_KINDS = {
    "cup": PropKind(0.12, 0.09, (225, 45, 40), (250, 250, 245), 0.45),
    "toothbrush": PropKind(0.19, 0.03, (40, 215, 235)),
    "book": PropKind(0.26, 0.20, (30, 60, 170), (245, 240, 225), 0.8),
    "notepad": PropKind(0.21, 0.15, (245, 215, 40)),
    "pen": PropKind(0.15, 0.02, (20, 20, 25)),
    "phone": PropKind(0.15, 0.075, (15, 15, 20), (90, 210, 255), 0.75),
    "keyboard": PropKind(0.44, 0.14, (60, 60, 70), (215, 215, 220), 0.8),
    "bowl": PropKind(0.16, 0.08, (245, 135, 35), (120, 70, 25), 0.6),
    "spoon": PropKind(0.17, 0.025, (205, 205, 215)),
    "paper": PropKind(0.28, 0.21, (250, 250, 250)),
    "fan": PropKind(0.24, 0.18, (225, 80, 165), (250, 205, 230), 0.55),
}


@dataclasses.dataclass(frozen=True)
class HeldProp:
    """A prop held by a person: `kind` at `hand` ("right", "left" or "both"), drawn `orientation`
    ("forearm": its long axis continues the forearm; "upright": vertical; "across": horizontal)."""

    kind: str
    hand: str
    orientation: str


# NTU action number -> props its performer holds (drawn at the hands in every frame).
NTU_HELD_PROPS = {
    1: (HeldProp("cup", "right", "upright"),),
    2: (HeldProp("bowl", "left", "across"), HeldProp("spoon", "right", "forearm")),
    3: (HeldProp("toothbrush", "right", "forearm"),),
    11: (HeldProp("book", "both", "across"),),
    12: (HeldProp("notepad", "left", "across"), HeldProp("pen", "right", "forearm")),
    13: (HeldProp("paper", "both", "across"),),
    28: (HeldProp("phone", "right", "upright"),),
    29: (HeldProp("phone", "both", "across"),),
    30: (HeldProp("keyboard", "both", "across"),),
    32: (HeldProp("phone", "right", "upright"),),
    49: (HeldProp("fan", "right", "upright"),),
}

# Kinds that lie around as clutter.
CLUTTER_KINDS = ("cup", "toothbrush", "book", "notepad", "phone", "keyboard", "bowl", "paper", "fan")


@dataclasses.dataclass(frozen=True)
class ClutterProp:
    """A static prop lying in the room: `kind` at world position `position` (3,), turned `angle`
    radians in the image plane."""

    kind: str
    position: tuple
    angle: float

    def as_dict(self) -> dict:
        return {"kind": self.kind, "position": [round(float(v), 3) for v in self.position],
                "angle": round(self.angle, 3)}


# Clutter never lies closer than this to the performer's spot across the room (world x, metres): the
# closest a prop 0.5 m from the room's centre comes to a performer standing 0.15 m off it.
CLUTTER_CLEARANCE = 0.35


def place_clutter(rng: np.random.Generator, count_range: tuple, performer_x: float = 0.0) -> list[ClutterProp]:
    """Draws `count_range[0]..count_range[1]` clutter props on the floor or at table height in the
    room, 0.5 to 1.5 m left or right of its centre, never on the performer: a prop closer than
    CLUTTER_CLEARANCE to `performer_x` (world x of where they stand) is mirrored to the far side of
    that clearance, away from the performer."""
    low, high = int(count_range[0]), int(count_range[1])
    props = []
    for _ in range(int(rng.integers(low, high + 1)) if high > 0 else 0):
        side = 1.0 if rng.random() < 0.5 else -1.0
        x = side * float(rng.uniform(0.5, 1.5))
        apart = x - performer_x
        if abs(apart) < CLUTTER_CLEARANCE:
            x = performer_x + (np.sign(apart) or side) * (2 * CLUTTER_CLEARANCE - abs(apart))
        position = (float(x), float(rng.choice([0.0, 0.75])), float(rng.uniform(-1.0, 0.6)))
        props.append(ClutterProp(kind=str(rng.choice(CLUTTER_KINDS)), position=position,
                                 angle=float(rng.uniform(-0.5, 0.5))))
    return props


def _rectangle(centre: np.ndarray, axis: np.ndarray, length_px: float, width_px: float) -> np.ndarray:
    """(4, 2) corners of a rectangle of `length_px` along the unit vector `axis` and `width_px` across."""
    across = np.array([-axis[1], axis[0]])
    half_l, half_w = axis * length_px / 2.0, across * width_px / 2.0
    return np.stack([centre - half_l - half_w, centre + half_l - half_w, centre + half_l + half_w,
                     centre - half_l + half_w])


def _fill(image: np.ndarray, corners: np.ndarray, colour: tuple) -> None:
    points = np.round((corners - 0.5) * _ONE).astype(np.int32)
    cv2.fillPoly(image, [points], colour, cv2.LINE_AA, _SHIFT)


def draw_prop(image: np.ndarray, kind: str, centre: np.ndarray, axis: np.ndarray,
              pixels_per_metre_x: float, pixels_per_metre_y: float) -> None:
    """Draws prop `kind` centred at `centre` (frame pixels) with its long axis along `axis`.

    Args:
      image: (H, W, 3) uint8 RGB, modified in place.
      kind: a key of PROP_KINDS.
      centre: (2,) frame pixels.
      axis: (2,) direction of the long axis in frame pixels (need not be unit length).
      pixels_per_metre_x, pixels_per_metre_y: the frame's scale at the prop's depth along x and y
        (they differ when the frame is not at the camera's aspect ratio).
    """
    spec = PROP_KINDS[kind]
    if not (np.all(np.isfinite(centre)) and np.all(np.isfinite(axis))):
        return
    norm = float(np.hypot(*axis))
    unit = np.array([1.0, 0.0]) if norm < 1e-6 else np.asarray(axis, float) / norm
    # Metres to pixels along the axis and across it, with the frame's anisotropic scale.
    along = float(np.hypot(unit[0] * pixels_per_metre_x, unit[1] * pixels_per_metre_y))
    across = float(np.hypot(unit[1] * pixels_per_metre_x, unit[0] * pixels_per_metre_y))
    length_px = max(spec.length * along, 1.5)
    width_px = max(spec.width * across, 1.0)
    _fill(image, _rectangle(centre, unit, length_px, width_px), spec.colour)
    if spec.inset is not None:
        inner = _rectangle(centre, unit, length_px * spec.inset_fraction, width_px * spec.inset_fraction)
        _fill(image, inner, spec.inset)


def held_prop_placement(prop: HeldProp, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Centre and long-axis direction (frame pixels) of a held prop, from one frame's (25, 2) joint
    pixels; None when the joints it needs are not finite."""
    def hand_centre(side):
        hand, tip = (K.HAND_R, K.HAND_TIP_R) if side == "right" else (K.HAND_L, K.HAND_TIP_L)
        return 0.5 * (pixels[hand] + pixels[tip])

    def forearm(side):
        wrist, tip = (K.WRIST_R, K.HAND_TIP_R) if side == "right" else (K.WRIST_L, K.HAND_TIP_L)
        return pixels[tip] - pixels[wrist]

    if prop.hand == "both":
        centre = 0.5 * (hand_centre("right") + hand_centre("left"))
        axis = pixels[K.HAND_R] - pixels[K.HAND_L]
    else:
        centre = hand_centre(prop.hand)
        axis = forearm(prop.hand)
        if prop.orientation == "forearm":
            # A stick held in the fist pokes out past the finger tips.
            centre = pixels[K.HAND_TIP_R if prop.hand == "right" else K.HAND_TIP_L]
    if prop.orientation == "upright":
        axis = np.array([0.0, 1.0])
    elif prop.orientation == "across":
        axis = np.array([1.0, 0.0]) if not np.all(np.isfinite(axis)) else np.array([axis[0], 0.25 * axis[1]])
    if not (np.all(np.isfinite(centre)) and np.all(np.isfinite(axis))):
        return None
    return centre, axis
