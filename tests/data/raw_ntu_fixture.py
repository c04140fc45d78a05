"""Writes a tiny raw NTU layout (AVI + .skeleton) for the conversion tests."""

import os

import cv2
import numpy as np

BODY_ID = "72057594037927936"


def write_avi(path, num_frames, width=64, height=36, level=None):
    """MPEG-4 AVI whose frame i is flat grey (level or 8 * i)."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"FMP4"), 30, (width, height))
    assert writer.isOpened()
    for i in range(num_frames):
        value = level if level is not None else 8 * i
        writer.write(np.full((height, width, 3), value, np.uint8))
    writer.release()


def skeleton_text(num_frames, color_xy=(960.0, 540.0)):
    """One body per frame; every joint at color_xy (1920x1080 pixels)."""
    lines = [str(num_frames)]
    for frame in range(num_frames):
        lines += ["1", f"{BODY_ID} 0 1 2 1 2 0 0.1 -0.1 2", "25"]
        for joint in range(25):
            x = 0.01 * joint + 0.001 * frame
            lines.append(
                f"{x:.4f} {0.02 * joint:.4f} 3.1 250 200 {color_xy[0]} {color_xy[1]} "
                "0 0 0 0 2")
    return "\n".join(lines) + "\n"


def write_ntu_sample(root, name, num_frames, skeleton_frames=None, **avi_kwargs):
    rgb_dir = os.path.join(root, "nturgb+d_rgb")
    skeleton_dir = os.path.join(root, "nturgb+d_skeletons")
    os.makedirs(rgb_dir, exist_ok=True)
    os.makedirs(skeleton_dir, exist_ok=True)
    video = os.path.join(rgb_dir, name + "_rgb.avi")
    write_avi(video, num_frames, **avi_kwargs)
    skeleton = os.path.join(skeleton_dir, name + ".skeleton")
    with open(skeleton, "w") as handle:
        handle.write(skeleton_text(num_frames if skeleton_frames is None
                                   else skeleton_frames))
    return video, skeleton


def truncate(path, keep_fraction):
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: int(len(data) * keep_fraction)])
