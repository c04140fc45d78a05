"""Writing AVI (MPEG-4 Part 2, FourCC FMP4) with PyAV at fixed quantiser 3 (like `-c:v mpeg4 -q:v 3`)."""

from __future__ import annotations

import os
from collections.abc import Iterable

import av
import numpy as np

FPS = 30
_QSCALE = 3
_FF_QP2LAMBDA = 118  # FFmpeg's quantiser -> lambda factor (what the ffmpeg CLI does for -q:v)


def encode_avi(path: str, frames: Iterable[np.ndarray], size: tuple[int, int]) -> int:
    """Encodes RGB uint8 frames (H, W, 3) into an AVI at `path`; returns the number of frames written.

    Args:
      path: output file (written directly; callers wanting atomicity pass a temp name).
      frames: iterable of (height, width, 3) uint8 RGB arrays matching `size`.
      size: (width, height), both even.

    Raises:
      ValueError: a frame does not match `size` or is not uint8 RGB.
    """
    width, height = size
    count = 0
    with av.open(path, mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"flags": "+qscale", "global_quality": str(_QSCALE * _FF_QP2LAMBDA),
                          "qmin": str(_QSCALE), "qmax": str(_QSCALE)}
        for frame in frames:
            if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                raise ValueError(f"{path}: frame {count} has shape {frame.shape} {frame.dtype}, "
                                 f"expected ({height}, {width}, 3) uint8")
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            count += 1
        for packet in stream.encode():
            container.mux(packet)
    return count


def truncate_tail(path: str, fraction: float) -> tuple[int, int]:
    """Cuts the last `fraction` of the file's bytes (a corrupt tail: lost index and frames).

    Returns:
      (original size, new size) in bytes.
    """
    original = os.path.getsize(path)
    kept = max(1, int(original * (1.0 - fraction)))
    with open(path, "r+b") as stream:
        stream.truncate(kept)
    return original, kept
