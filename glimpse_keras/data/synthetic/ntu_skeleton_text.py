"""Formatting NTU RGB+D `.skeleton` text (layout of DATASETS.md 1.4).

Numbers use about 7 significant digits like the real files (`%.7g`: 0.2410551, 1027.245), zeros are
written as `0` and non-finite values as `NaN`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

_JOINT_FORMAT = " ".join(["%.7g"] * 11 + ["%d"])
_BODY_FORMAT = "%s %d %d %d %d %d %d %.7g %.7g %d"


@dataclasses.dataclass
class SkeletonBody:
    """One body in one frame.

    Attributes:
      body_id: 17-digit tracking id (string of digits).
      clipped_edges: FrameEdges bit mask (1 right, 2 left, 4 top, 8 bottom).
      hand_states: (left, right) in 0..4; confidences are derived (1 when the state is 2..4).
      lean: (leanX, leanY) in [-1, 1].
      joints: (25, 12) float array in file column order (x y z depthX depthY colorX colorY qW qX qY qZ
        trackingState).
    """

    body_id: str
    clipped_edges: int
    hand_states: tuple
    lean: tuple
    joints: np.ndarray


def format_number(value: float) -> str:
    """Formats one float the way the files do (7 significant digits, `0`, `NaN`)."""
    if not np.isfinite(value):
        return "NaN"
    return "%.7g" % (float(value) + 0.0)


def round_like_file(values: np.ndarray) -> np.ndarray:
    """Returns `values` rounded exactly as writing and re-reading them through the file would."""
    flat = [float(format_number(v)) if np.isfinite(v) else np.nan for v in np.asarray(values, float).ravel()]
    return np.array(flat).reshape(np.shape(values))


def skeleton_text(frames: list[list[SkeletonBody]], trailing_newline: bool = True) -> str:
    """Renders the whole file with '\\n' line breaks.

    Raises:
      ValueError: a body's joints are not (25, 12).
    """
    lines = [str(len(frames))]
    for frame in frames:
        lines.append(str(len(frame)))
        for body in frame:
            if body.joints.shape != (25, 12):
                raise ValueError(f"body {body.body_id}: joints have shape {body.joints.shape}, expected (25, 12)")
            left, right = (int(s) for s in body.hand_states)
            lines.append(_BODY_FORMAT % (body.body_id, body.clipped_edges, int(left >= 2), left, int(right >= 2),
                                         right, 0, body.lean[0] + 0.0, body.lean[1] + 0.0, 2))
            lines.append("25")
            rows = body.joints + 0.0  # turns -0.0 into 0
            for row in rows.tolist():
                line = _JOINT_FORMAT % tuple(row)
                lines.append(line.replace("nan", "NaN") if "nan" in line else line)
    text = "\n".join(lines)
    return text + "\n" if trailing_newline else text
