"""Glimpse overlays on video frames (as in Figure 3 of the paper).

Pure NumPy/OpenCV functions: they take the model's outputs for one clip and
return uint8 RGB images; nothing here imports TensorFlow.

Coordinates. A glimpse location is `[x, y, s_x, s_y]` in the normalised
[-1, 1] frame of the res5 feature map, x along the width. The glimpse samples
`x + s_x * linspace(-1, 1, k)`, so it spans `[x - s_x, x + s_x]` (likewise in
y). The res5 map covers the whole input frame, and the attraction loss
compares glimpse centres with the ground-truth joints, which are normalised so
that -1 and +1 are the frame's outer edges. `location_to_box` draws in that
frame by default. With `feature_grid=(rows, cols)` it instead maps -1 and +1
to the centres of the corner res5 cells (bilinear sampling with
align_corners=True), which is the region the sampler actually reads. The two
differ by under one res5 cell (MODEL_SPEC.md section 6).

Continuous pixel coordinates: pixel column i covers [i, i + 1).
"""

import colorsys
import math

import cv2
import numpy as np

from glimpse_keras.errors import GlimpseError

# Distinct, saturated colours (RGB) for glimpses 0..9; later indices are
# generated (see `glimpse_colour`).
GLIMPSE_PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (255, 225, 25),
    (0, 128, 128),
)
PERSON_COLOURS = ((255, 255, 255), (255, 255, 150))
BACKGROUND = (24, 24, 24)
PANEL_TEXT = (235, 235, 235)
INACTIVE_BAR = (110, 110, 110)
FRAME_GAP = 4
DEFAULT_MIN_FRAME_SIDE = 192
PANEL_ROW_HEIGHT = 16
PANEL_HEADER_HEIGHT = 16


class VisualizationInputError(GlimpseError, ValueError):
    """Arrays given to the drawing functions have wrong or inconsistent shapes."""


def glimpse_colour(index):
    """The RGB colour of glimpse `index`; the same index always gets the same colour.

    Args:
        index: int >= 0.

    Returns:
        tuple of 3 ints in [0, 255]. Indices 0..9 use `GLIMPSE_PALETTE`;
        later ones step the hue by the golden ratio.
    """
    index = int(index)
    if index < 0:
        raise VisualizationInputError(f"glimpse index must be >= 0, got {index}")
    if index < len(GLIMPSE_PALETTE):
        return GLIMPSE_PALETTE[index]
    hue = (index * 0.618033988749895) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return (round(red * 255), round(green * 255), round(blue * 255))


def _span_to_pixels(low, high, size):
    """Pixel indices [first, last] whose centres lie in [low, high], clipped;
    the pixel holding the span's midpoint when no centre lies inside."""
    first = math.ceil(low - 0.5)
    last = math.floor(high - 0.5)
    if last < first:
        first = last = math.floor(0.5 * (low + high))
    first = min(max(first, 0), size - 1)
    last = min(max(last, 0), size - 1)
    return first, last


def _normalised_to_continuous(value, size, cells):
    if cells is None:
        return (value + 1.0) * 0.5 * size
    cell = (value + 1.0) * 0.5 * (cells - 1)
    return (cell + 0.5) * size / cells


def location_to_box(location, height, width, feature_grid=None):
    """Pixel box covered by one glimpse.

    The glimpse spans `[x - s_x, x + s_x]` by `[y - s_y, y + s_y]` in
    normalised coordinates. With `feature_grid=None`, u in [-1, 1] maps to the
    continuous pixel coordinate `(u + 1) / 2 * width` (edges of the frame at
    -1 and +1), the convention of the pose targets. With `feature_grid=(rows,
    cols)`, u maps to res5 cell `(u + 1) / 2 * (cols - 1)`, whose centre is at
    `(cell + 0.5) * width / cols` pixels (align_corners=True sampling).

    The box holds the pixels whose centres lie inside that span, clipped to
    the image; a span holding no pixel centre gives the one pixel that holds
    its midpoint.

    Example: `location_to_box([0, 0, 0.5, 0.5], 64, 64)` is (16, 16, 47, 47):
    the span [16, 48) holds pixels 16..47.

    Args:
        location: sequence of 4 floats [x, y, s_x, s_y].
        height, width: image size in pixels (>= 1).
        feature_grid: None or (rows, cols) of the res5 map.

    Returns:
        (x0, y0, x1, y1): ints, inclusive pixel indices of the box corners,
        0 <= x0 <= x1 < width, 0 <= y0 <= y1 < height.

    Raises:
        VisualizationInputError: for a location without 4 finite values or a
            non-positive size.
    """
    values = np.asarray(location, dtype=np.float64).reshape(-1)
    if values.shape != (4,) or not np.all(np.isfinite(values)):
        raise VisualizationInputError(
            f"a glimpse location must be 4 finite numbers [x, y, s_x, s_y], got {location!r}"
        )
    if int(height) < 1 or int(width) < 1:
        raise VisualizationInputError(f"image size must be positive, got {height}x{width}")
    rows, cols = (None, None) if feature_grid is None else (int(v) for v in feature_grid)
    x, y, scale_x, scale_y = values
    scale_x, scale_y = abs(scale_x), abs(scale_y)
    left = _normalised_to_continuous(x - scale_x, width, cols)
    right = _normalised_to_continuous(x + scale_x, width, cols)
    top = _normalised_to_continuous(y - scale_y, height, rows)
    bottom = _normalised_to_continuous(y + scale_y, height, rows)
    x0, x1 = _span_to_pixels(left, right, int(width))
    y0, y1 = _span_to_pixels(top, bottom, int(height))
    return x0, y0, x1, y1


def joint_to_pixel(joint, height, width):
    """Pixel (column, row) holding a joint given in [-1, 1] of the frame.

    Returns:
        (column, row) ints, clipped to the image.
    """
    column = math.floor((float(joint[0]) + 1.0) * 0.5 * width)
    row = math.floor((float(joint[1]) + 1.0) * 0.5 * height)
    return min(max(column, 0), width - 1), min(max(row, 0), height - 1)


def border_thickness(frame_side):
    """Box line width in pixels for a displayed frame whose short side is `frame_side`."""
    return max(1, int(frame_side) // 96)


def upscale_factor(height, width, min_frame_side=DEFAULT_MIN_FRAME_SIDE):
    """Integer nearest-neighbour factor making the short side >= `min_frame_side`."""
    return max(1, math.ceil(min_frame_side / max(1, min(height, width))))


def draw_box(image, box, colour, thickness):
    """Draws a rectangle outline in place; the line lies inside the box.

    Args:
        image: uint8 (H, W, 3), modified.
        box: (x0, y0, x1, y1) inclusive pixel corners.
        colour: RGB tuple.
        thickness: line width in pixels (clipped to the box size).
    """
    x0, y0, x1, y1 = box
    colour = np.asarray(colour, np.uint8)
    across = min(thickness, x1 - x0 + 1)
    down = min(thickness, y1 - y0 + 1)
    image[y0 : y0 + down, x0 : x1 + 1] = colour
    image[y1 - down + 1 : y1 + 1, x0 : x1 + 1] = colour
    image[y0 : y1 + 1, x0 : x0 + across] = colour
    image[y0 : y1 + 1, x1 - across + 1 : x1 + 1] = colour


def box_border_mask(box, height, width, thickness):
    """Boolean (H, W) mask of the pixels `draw_box` paints for `box`."""
    painted = np.zeros((height, width, 1), np.uint8)
    draw_box(painted, box, (1,), thickness)
    return painted[..., 0] > 0


def _bones(num_joints):
    if num_joints != 25:
        return ()
    from glimpse_keras.data.ntu import NTU_BONES

    return NTU_BONES


def draw_pose(image, pose, pose_mask=None, radius=2):
    """Draws the skeletons of one frame in place (joints as dots, NTU bones as lines).

    Args:
        image: uint8 (H, W, 3), modified.
        pose: (P, J, 2) joints in [-1, 1] of the frame (x, y).
        pose_mask: (P, J), joints with value > 0.5 are drawn; None draws all.
        radius: dot radius in pixels.
    """
    height, width = image.shape[:2]
    pose = np.asarray(pose, np.float64)
    present = np.ones(pose.shape[:2], bool) if pose_mask is None else np.asarray(pose_mask) > 0.5
    present &= np.all(np.isfinite(pose), axis=-1)
    for person in range(pose.shape[0]):
        colour = PERSON_COLOURS[person % len(PERSON_COLOURS)]
        points = [joint_to_pixel(joint, height, width) for joint in pose[person]]
        for child, parent in _bones(pose.shape[1]):
            if present[person, child] and present[person, parent]:
                cv2.line(image, points[child], points[parent], colour, 1, cv2.LINE_AA)
        for joint, point in enumerate(points):
            if present[person, joint]:
                cv2.circle(image, point, radius, colour, -1, cv2.LINE_AA)


def _put_text(image, text, origin, scale, colour):
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def panel_height(num_glimpses):
    """Height in pixels of the assignment panel under each frame."""
    return PANEL_HEADER_HEIGHT + num_glimpses * PANEL_ROW_HEIGHT


def draw_assignment_panel(width, assignments, title):
    """The panel under a frame: one row per glimpse with its worker assignment.

    Row g shows glimpse g's colour swatch, the text "g<g> w<c> <weight>" for
    the worker c with the highest assignment weight, and one bar per worker
    whose height is the weight (full row height = 1); the winning worker's bar
    has the glimpse's colour, the others are grey.

    Args:
        width: panel width in pixels.
        assignments: (C, G) assignment weights of one frame.
        title: text of the header row (e.g. "t=3").

    Returns:
        uint8 (panel_height(G), width, 3).
    """
    assignments = np.asarray(assignments, np.float64)
    workers, glimpses = assignments.shape
    panel = np.empty((panel_height(glimpses), width, 3), np.uint8)
    panel[:] = BACKGROUND
    _put_text(panel, title, (3, PANEL_HEADER_HEIGHT - 4), 0.4, PANEL_TEXT)
    bar_width = 5
    bars_left = max(0, width - workers * (bar_width + 2) - 2)
    for glimpse in range(glimpses):
        top = PANEL_HEADER_HEIGHT + glimpse * PANEL_ROW_HEIGHT
        colour = glimpse_colour(glimpse)
        panel[top + 3 : top + PANEL_ROW_HEIGHT - 3, 3:13] = colour
        weights = assignments[:, glimpse]
        winner = int(np.argmax(weights)) if workers else 0
        label = f"g{glimpse} w{winner} {weights[winner]:.2f}" if workers else f"g{glimpse}"
        _put_text(panel, label, (17, top + PANEL_ROW_HEIGHT - 4), 0.38, PANEL_TEXT)
        usable = PANEL_ROW_HEIGHT - 4
        for worker in range(workers):
            value = float(np.clip(weights[worker], 0.0, 1.0)) if np.isfinite(weights[worker]) else 0.0
            bar_height = int(round(value * usable))
            left = bars_left + worker * (bar_width + 2)
            bottom = top + PANEL_ROW_HEIGHT - 2
            panel[bottom - usable : bottom, left : left + bar_width] = (50, 50, 50)
            if bar_height:
                shade = colour if worker == winner else INACTIVE_BAR
                panel[bottom - bar_height : bottom, left : left + bar_width] = shade
    return panel


def _check_inputs(video, locations, assignments, pose, pose_mask):
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise VisualizationInputError(f"video must be (T, H, W, 3), got shape {video.shape}")
    frames = video.shape[0]
    locations = np.asarray(locations, np.float64)
    if locations.ndim != 3 or locations.shape[0] != frames or locations.shape[-1] != 4:
        raise VisualizationInputError(
            f"locations must be (T={frames}, G, 4), got shape {locations.shape}"
        )
    glimpses = locations.shape[1]
    assignments = np.asarray(assignments, np.float64)
    if assignments.ndim != 3 or assignments.shape[0] != frames or assignments.shape[2] != glimpses:
        raise VisualizationInputError(
            f"assignments must be (T={frames}, C, G={glimpses}), got shape {assignments.shape}"
        )
    if not np.issubdtype(video.dtype, np.integer):
        video = np.nan_to_num(video.astype(np.float64))
        video = np.clip(np.round(video), 0, 255)
    video = video.astype(np.uint8)
    if pose is not None:
        pose = np.asarray(pose, np.float64)
        if pose.ndim != 4 or pose.shape[0] != frames or pose.shape[-1] != 2:
            raise VisualizationInputError(f"pose must be (T={frames}, P, J, 2), got shape {pose.shape}")
        if pose_mask is not None:
            pose_mask = np.asarray(pose_mask)
            if pose_mask.shape != pose.shape[:3]:
                raise VisualizationInputError(
                    f"pose_mask must have shape {pose.shape[:3]} (T, P, J), got {pose_mask.shape}"
                )
    elif pose_mask is not None:
        raise VisualizationInputError("pose_mask was given without pose")
    return video, locations, assignments, pose, pose_mask


def draw_frames(
    video,
    locations,
    assignments,
    pose=None,
    pose_mask=None,
    *,
    min_frame_side=DEFAULT_MIN_FRAME_SIDE,
    feature_grid=None,
    frame_titles=None,
):
    """Draws every frame of a clip with its glimpses, skeletons and assignment panel.

    Each frame is upscaled by the integer nearest-neighbour factor
    `k = upscale_factor(H, W, min_frame_side)`; the ground-truth skeletons are
    drawn first, then glimpse g's box (`location_to_box` on the upscaled
    frame) in `glimpse_colour(g)` with a line of `border_thickness(min(H, W) *
    k)` pixels lying inside the box, glimpses in increasing order (a later
    glimpse covers an earlier one where their lines cross). Below the frame,
    `draw_assignment_panel` shows which worker each glimpse is assigned to.

    Args:
        video: (T, H, W, 3) RGB uint8 (or float in [0, 255], rounded).
        locations: (T, G, 4) glimpse [x, y, s_x, s_y] in [-1, 1] (see module doc).
        assignments: (T, C, G) soft assignment of glimpse g to worker c.
        pose: None or (T, P, J, 2) ground-truth joints in [-1, 1] of the frame.
        pose_mask: None or (T, P, J); joints with value > 0.5 are drawn.
        min_frame_side: frames are upscaled until their short side reaches it.
        feature_grid: None or (rows, cols) of the res5 map; see `location_to_box`.
        frame_titles: None or T strings for the panel headers (default "t=<t>").

    Returns:
        list of T uint8 images (k*H + panel_height(G), k*W, 3).

    Raises:
        VisualizationInputError: naming the array whose shape is wrong.
    """
    video, locations, assignments, pose, pose_mask = _check_inputs(
        video, locations, assignments, pose, pose_mask
    )
    frames, height, width, _ = video.shape
    factor = upscale_factor(height, width, min_frame_side)
    shown_height, shown_width = height * factor, width * factor
    thickness = border_thickness(min(shown_height, shown_width))
    if frame_titles is None:
        frame_titles = [f"t={t}" for t in range(frames)]
    if len(frame_titles) != frames:
        raise VisualizationInputError(
            f"frame_titles must hold T={frames} strings, got {len(frame_titles)}"
        )
    images = []
    for t in range(frames):
        frame = np.repeat(np.repeat(video[t], factor, axis=0), factor, axis=1)
        frame = np.ascontiguousarray(frame)
        if pose is not None:
            draw_pose(frame, pose[t], None if pose_mask is None else pose_mask[t], radius=max(1, factor))
        for glimpse in range(locations.shape[1]):
            box = location_to_box(locations[t, glimpse], shown_height, shown_width, feature_grid)
            draw_box(frame, box, glimpse_colour(glimpse), thickness)
        panel = draw_assignment_panel(shown_width, assignments[t], frame_titles[t])
        images.append(np.concatenate([frame, panel], axis=0))
    return images


def draw_clip_strip(video, locations, assignments, pose=None, pose_mask=None, **options):
    """All frames of a clip side by side in one image (for PNG files and TensorBoard).

    Args:
        video, locations, assignments, pose, pose_mask, **options: as for
            `draw_frames`.

    Returns:
        uint8 (k*H + panel_height(G), T*k*W + (T-1)*FRAME_GAP, 3): the images of
        `draw_frames` left to right (frame t starts at column
        t*(k*W + FRAME_GAP)), separated by FRAME_GAP background columns.
    """
    return join_side_by_side(
        draw_frames(video, locations, assignments, pose, pose_mask, **options)
    )


def join_side_by_side(images):
    """Concatenates equal-height images left to right with FRAME_GAP background columns."""
    gap = np.empty((images[0].shape[0], FRAME_GAP, 3), np.uint8)
    gap[:] = BACKGROUND
    pieces = [images[0]]
    for image in images[1:]:
        pieces.extend([gap, image])
    return np.concatenate(pieces, axis=1)
