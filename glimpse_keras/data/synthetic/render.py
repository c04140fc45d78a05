"""Drawing articulated figures, the distractor object and occluders with OpenCV.

Figures are drawn FROM the pixel coordinates that the skeleton files encode, so the written pose and
the pixels agree. Convention: a normalised coordinate u in [0, 1] spans the image width, so pixel
column i covers [i, i + 1) * (1 / W) and its centre is at u = (i + 0.5) / W.
"""

from __future__ import annotations

import cv2
import numpy as np

from glimpse_keras.data.synthetic import kinematics as K
from glimpse_keras.data.synthetic.kinematics import BodyShape

_SHIFT = 4  # OpenCV fixed-point bits for sub-pixel drawing
_ONE = 1 << _SHIFT

# (joint a, joint b, part, width in metres for a girth-1 body).
_LIMBS = (
    (K.SPINE_SHOULDER, K.NECK, "skin", 0.08),
    (K.SHOULDER_L, K.ELBOW_L, "shirt_left", 0.10), (K.ELBOW_L, K.WRIST_L, "shirt_left", 0.08),
    (K.WRIST_L, K.HAND_TIP_L, "skin", 0.065), (K.HAND_L, K.THUMB_L, "skin", 0.04),
    (K.SHOULDER_R, K.ELBOW_R, "shirt_right", 0.10), (K.ELBOW_R, K.WRIST_R, "shirt_right", 0.08),
    (K.WRIST_R, K.HAND_TIP_R, "skin", 0.065), (K.HAND_R, K.THUMB_R, "skin", 0.04),
    (K.SPINE_BASE, K.HIP_L, "pants_left", 0.14), (K.HIP_L, K.KNEE_L, "pants_left", 0.14),
    (K.KNEE_L, K.ANKLE_L, "pants_left", 0.11), (K.ANKLE_L, K.FOOT_L, "shoes", 0.08),
    (K.SPINE_BASE, K.HIP_R, "pants_right", 0.14), (K.HIP_R, K.KNEE_R, "pants_right", 0.14),
    (K.KNEE_R, K.ANKLE_R, "pants_right", 0.11), (K.ANKLE_R, K.FOOT_R, "shoes", 0.08),
    (K.SPINE_BASE, K.SPINE_MID, "shirt", 0.2), (K.SPINE_MID, K.SPINE_SHOULDER, "shirt", 0.22),
)
_TORSO = (K.SHOULDER_L, K.SHOULDER_R, K.SPINE_MID, K.HIP_R, K.HIP_L, K.SPINE_MID)


def figure_palette(shape: BodyShape) -> dict:
    """Part name -> RGB colour; the subject's left side is slightly darker so sides are tellable."""
    def shade(colour, factor):
        return tuple(int(min(255, c * factor)) for c in colour)

    return {"shirt": shape.shirt, "shirt_left": shade(shape.shirt, 0.8), "shirt_right": shade(shape.shirt, 1.1),
            "pants_left": shade(shape.pants, 0.85), "pants_right": shade(shape.pants, 1.15),
            "skin": shape.skin, "shoes": (25, 22, 20)}


def _fixed(point: np.ndarray) -> tuple:
    return int(round((point[0] - 0.5) * _ONE)), int(round((point[1] - 0.5) * _ONE))


def draw_figure(image: np.ndarray, pixels: np.ndarray, depth: np.ndarray, shape: BodyShape,
                pixels_per_metre: float) -> None:
    """Draws one person in place.

    Args:
      image: (H, W, 3) uint8 RGB, modified in place.
      pixels: (25, 2) joint positions in frame pixels (continuous; see module docstring). Non-finite
        joints are skipped.
      depth: (25,) camera-space z of the joints in metres (for painter's order and limb widths).
      shape: the person's body shape (colours, girth).
      pixels_per_metre: focal length in frame pixels; a limb of width w at depth z is w * this / z wide.
    """
    palette = figure_palette(shape)
    ok = np.all(np.isfinite(pixels), axis=-1) & np.isfinite(depth) & (depth > 0.05)
    items = []
    if ok[list(_TORSO)].all():
        items.append((float(np.mean(depth[list(_TORSO)])), "torso", None))
    for a, b, part, width in _LIMBS:
        if ok[a] and ok[b]:
            items.append((float((depth[a] + depth[b]) / 2), "limb", (a, b, part, width)))
    if ok[K.HEAD]:
        items.append((float(depth[K.HEAD]) - 0.05, "head", None))
    for _, kind, spec in sorted(items, key=lambda item: -item[0]):
        if kind == "torso":
            polygon = np.array([_fixed(pixels[j]) for j in _TORSO], dtype=np.int32)
            cv2.fillPoly(image, [polygon], palette["shirt"], cv2.LINE_AA, _SHIFT)
        elif kind == "limb":
            a, b, part, width = spec
            z = max((depth[a] + depth[b]) / 2, 0.3)
            # Limbs are drawn ~30% thicker than life so the figure survives downscaling to 64x64.
            thickness = int(np.clip(round(1.3 * width * shape.girth * pixels_per_metre / z), 2, 400))
            cv2.line(image, _fixed(pixels[a]), _fixed(pixels[b]), palette[part], thickness, cv2.LINE_AA, _SHIFT)
        else:
            z = max(depth[K.HEAD], 0.3)
            radius = shape.head_radius * pixels_per_metre / z
            axes = (max(int(round(radius * 0.85 * _ONE)), _ONE), max(int(round(radius * _ONE)), _ONE))
            cv2.ellipse(image, _fixed(pixels[K.HEAD]), axes, 0.0, 0.0, 360.0, palette["skin"], -1, cv2.LINE_AA,
                        _SHIFT)


def draw_object(image: np.ndarray, centre: np.ndarray, radius_px: float, kind: str, colour: tuple) -> None:
    """Draws the distractor ball (disc) or box (square) centred at `centre` (frame pixels)."""
    if not np.all(np.isfinite(centre)) or radius_px <= 0.5:
        return
    if kind == "ball":
        cv2.circle(image, _fixed(centre), int(round(radius_px * _ONE)), colour, -1, cv2.LINE_AA, _SHIFT)
    else:
        half = radius_px * 0.9
        corners = np.array([_fixed(centre + offset) for offset in
                            ((-half, -half), (half, -half), (half, half), (-half, half))], dtype=np.int32)
        cv2.fillPoly(image, [corners], colour, cv2.LINE_AA, _SHIFT)


def draw_occluder(image: np.ndarray, rect: tuple, colour: tuple) -> None:
    """Draws an opaque occluding rectangle (x0, y0, x1, y1) in frame pixels with a darker border."""
    cv2.rectangle(image, rect[:2], rect[2:], colour, -1)
    cv2.rectangle(image, rect[:2], rect[2:], tuple(int(c * 0.6) for c in colour), max(1, image.shape[1] // 200))


def apply_lighting(image: np.ndarray, gain: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Per-channel gain (3,) and additive int16 sensor noise (H, W, 3); returns uint8."""
    out = image.astype(np.int16) * gain.reshape(1, 1, 3) + noise
    return np.clip(out, 0, 255).astype(np.uint8)


def expand_nucla_pixels(pixels20: np.ndarray) -> np.ndarray:
    """Kinect v1 20-joint pixels (..., 20, 2) -> the 25-joint layout used for drawing.

    Slots without a Kinect v1 joint are derived (neck between shoulder centre and head; hand tip and
    thumb extend the hand), so the figure looks the same; the written 20 joints are drawn exactly.
    """
    out = np.full(pixels20.shape[:-2] + (K.NUM_JOINTS, pixels20.shape[-1]), np.nan)
    for v1_index, slot in enumerate(K.KINECT_V1_FROM_BODY):
        out[..., slot, :] = pixels20[..., v1_index, :]
    out[..., K.NECK, :] = 0.65 * out[..., K.SPINE_SHOULDER, :] + 0.35 * out[..., K.HEAD, :]
    for wrist, hand, tip, thumb in ((K.WRIST_L, K.HAND_L, K.HAND_TIP_L, K.THUMB_L),
                                    (K.WRIST_R, K.HAND_R, K.HAND_TIP_R, K.THUMB_R)):
        out[..., tip, :] = out[..., hand, :] + 0.8 * (out[..., hand, :] - out[..., wrist, :])
        out[..., thumb, :] = out[..., hand, :] + 0.4 * (out[..., hand, :] - out[..., wrist, :])
    return out
