"""Glimpse visualisation: frames with each glimpse's box, the ground-truth
joints and the worker assignment of every glimpse (the paper's Figure 3).

Library: `draw_clip_strip` (one image, also used for TensorBoard by
`glimpse_keras.callbacks`), `draw_frames` (one image per frame, for GIFs) and
`location_to_box` (the pixel geometry). Command line::

    python -m glimpse_keras.visualize --run RUN --video FILE_OR_SAMPLE_ID --output OUT.png|OUT.gif
"""

from glimpse_keras.visualize.drawing import (
    GLIMPSE_PALETTE,
    VisualizationInputError,
    border_thickness,
    box_border_mask,
    draw_clip_strip,
    draw_frames,
    glimpse_colour,
    join_side_by_side,
    joint_to_pixel,
    location_to_box,
    upscale_factor,
)

__all__ = [
    "GLIMPSE_PALETTE",
    "VisualizationInputError",
    "border_thickness",
    "box_border_mask",
    "draw_clip_strip",
    "draw_frames",
    "glimpse_colour",
    "join_side_by_side",
    "joint_to_pixel",
    "location_to_box",
    "upscale_factor",
]
