"""Cameras per (setup, camera) or view, room backgrounds, the drifting distractor object and occluders.

Camera space follows the skeleton files: x to the image right, y up, z away from the sensor (m).
NTU colour/depth projections use the constants fitted in DATASETS.md 1.4, perturbed by +-2% per
camera. Pixel positions in NTU space are in the 1920x1080 colour image (0.5 = centre of pixel 0).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from glimpse_keras.data.synthetic.seeding import rng_for

NTU_COLOR = (1066.0, 1060.0, 967.5, 539.0)  # fx, fy, cx, cy in the 1920x1080 image
NTU_DEPTH = (365.4, 365.4, 262.5, 209.7)  # fx, fy, cx, cy in the 512x424 depth image
ORIGINAL_SIZE = (1920, 1080)
NUCLA_FOCAL = 531.15  # Kinect v1 nominal colour focal length at 640x480
NUCLA_SIZE = (640, 480)

# Azimuth of each NTU camera around the performer (degrees). C001 is the middle camera, so it always
# sees the +-45 degree views, while C002 / C003 see the front or the profile depending on R001 / R002.
NTU_CAMERA_AZIMUTH = {1: 0.0, 2: -45.0, 3: 45.0}
NTU_REPLICATION_FACING = {1: -45.0, 2: 45.0}
NUCLA_VIEW_AZIMUTH = {1: -55.0, 2: 5.0, 3: 70.0}


@dataclasses.dataclass(frozen=True)
class Camera:
    """A pinhole camera in the world (y up, floor y = 0).

    Attributes:
      position: (3,) metres.
      axes: (3, 3) rows are the camera's right, up and forward directions in world coordinates.
      color: (fx, fy, cx, cy) in ORIGINAL image pixels (1920x1080 for NTU, 640x480 for N-UCLA).
      depth: (fx, fy, cx, cy) in 512x424 depth pixels (NTU) or None.
    """

    position: tuple
    axes: tuple
    color: tuple
    depth: tuple | None
    original_size: tuple

    def to_camera(self, world: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> camera space (..., 3)."""
        return (np.asarray(world) - np.asarray(self.position)) @ np.asarray(self.axes).T

    def project(self, camera_xyz: np.ndarray, which: str = "color", shift: np.ndarray | None = None) -> np.ndarray:
        """Camera points (..., 3) -> pixels (..., 2); `shift` (..., 2) moves the principal point."""
        fx, fy, cx, cy = self.color if which == "color" else self.depth
        z = np.maximum(camera_xyz[..., 2], 1e-3)
        u = cx + fx * camera_xyz[..., 0] / z
        v = cy - fy * camera_xyz[..., 1] / z
        out = np.stack([u, v], -1)
        return out if shift is None else out + shift

    def as_dict(self) -> dict:
        return {"position": [round(float(v), 4) for v in self.position],
                "forward": [round(float(v), 4) for v in self.axes[2]],
                "color_intrinsics": [round(float(v), 3) for v in self.color],
                "depth_intrinsics": None if self.depth is None else [round(float(v), 3) for v in self.depth]}


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Returns (3, 3) rows right, up, forward for a camera at `position` looking at `target`."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, forward])


def _perturb(values: tuple, rng: np.random.Generator, fraction: float) -> tuple:
    return tuple(float(v * (1.0 + rng.uniform(-fraction, fraction))) for v in values)


def ntu_setup_geometry(seed: int, setup: int, config: dict) -> dict:
    """Camera height, distance and aim height shared by the three cameras of a setup (they vary by setup).

    Each is drawn uniformly from the config's range: `camera_height`, `camera_distance` and
    `camera_look_height` ([min, max] metres).
    """
    rng = rng_for(seed, "ntu", "setup", setup)
    return {"height": float(rng.uniform(*config["camera_height"])),
            "distance": float(rng.uniform(*config["camera_distance"])),
            "look_height": float(rng.uniform(*config["camera_look_height"]))}


def ntu_camera(seed: int, setup: int, camera: int, config: dict) -> Camera:
    """The fixed camera `camera` (1..3) of `setup`; intrinsics are the fitted constants +-2%.

    The camera stands at its setup's height and distance (`ntu_setup_geometry`, +-3% per camera) and
    aims at its setup's look height, up to `config["camera_aim_jitter"]` metres left or right of the
    room's centre.
    """
    geometry = ntu_setup_geometry(seed, setup, config)
    rng = rng_for(seed, "ntu", "camera", setup, camera)
    azimuth = np.radians(NTU_CAMERA_AZIMUTH[camera] + rng.uniform(-3.0, 3.0))
    distance = geometry["distance"] * rng.uniform(0.97, 1.03)
    position = np.array([distance * np.sin(azimuth), geometry["height"], distance * np.cos(azimuth)])
    jitter = float(config["camera_aim_jitter"])
    target = np.array([rng.uniform(-jitter, jitter), geometry["look_height"], 0.0])
    return Camera(position=tuple(position), axes=tuple(map(tuple, look_at(position, target))),
                  color=_perturb(NTU_COLOR, rng, 0.02), depth=_perturb(NTU_DEPTH, rng, 0.02),
                  original_size=ORIGINAL_SIZE)


def nucla_camera(seed: int, view: int) -> Camera:
    """The fixed Kinect v1 of `view` (1..3); intrinsics are the nominal ones (the reader's projection)."""
    rng = rng_for(seed, "nucla", "view", view)
    azimuth = np.radians(NUCLA_VIEW_AZIMUTH[view] + rng.uniform(-3.0, 3.0))
    distance = rng.uniform(2.8, 3.3)
    position = np.array([distance * np.sin(azimuth), rng.uniform(0.9, 1.2), distance * np.cos(azimuth)])
    target = np.array([0.0, 0.9, 0.0])
    return Camera(position=tuple(position), axes=tuple(map(tuple, look_at(position, target))),
                  color=(NUCLA_FOCAL, NUCLA_FOCAL, NUCLA_SIZE[0] / 2, NUCLA_SIZE[1] / 2), depth=None,
                  original_size=NUCLA_SIZE)


def small_rotation(axes: tuple, yaw: float, pitch: float) -> tuple:
    """Returns camera axes turned by small `yaw` and `pitch` (radians), for camera shake."""
    axes = np.asarray(axes)
    c, s = np.cos(yaw), np.sin(yaw)
    turn = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])
    c, s = np.cos(pitch), np.sin(pitch)
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    return tuple(map(tuple, tilt @ turn @ axes))


@dataclasses.dataclass
class Background:
    """A static room image larger than the frame by `margin` pixels on each side (for camera shake).

    Attributes:
      image: (H + 2 margin, W + 2 margin, 3) uint8 RGB.
      furniture: list of (x0, y0, x1, y1) rectangles in frame pixels (without the margin).
      floor_row: image row of the floor/wall line in frame pixels.
    """

    image: np.ndarray
    margin: int
    furniture: list
    floor_row: float

    def frame(self, dx: int, dy: int) -> np.ndarray:
        """The frame seen when the scene appears shifted by (dx, dy) pixels; a fresh copy."""
        m = self.margin
        height, width = self.image.shape[0] - 2 * m, self.image.shape[1] - 2 * m
        return self.image[m - dy:m - dy + height, m - dx:m - dx + width].copy()


def render_background(seed: int, room_key: tuple, view_key: tuple, camera: Camera, size: tuple,
                      margin: int) -> Background:
    """Draws a textured room: wall gradient, floor below the wall line, furniture rectangles and noise.

    Wall and floor colours depend on `room_key` (the setup); furniture on `view_key` (the camera).
    """
    width, height = size
    room = rng_for(seed, "room", *room_key)
    view = rng_for(seed, "room-view", *view_key)
    full_w, full_h = width + 2 * margin, height + 2 * margin
    # Wall/floor line: where the floor meets a wall 2 m behind the performer.
    forward = np.asarray(camera.axes[2])
    flat = np.array([forward[0], 0.0, forward[2]])
    flat /= np.linalg.norm(flat)
    far_floor = np.asarray(camera.position) * [1.0, 0.0, 1.0] + flat * (np.linalg.norm(camera.position) + 2.0)
    row_original = camera.project(camera.to_camera(far_floor))[1]
    floor_row = float(row_original * height / camera.original_size[1])

    wall_top = room.uniform(110, 200, 3)
    wall_bottom = wall_top * room.uniform(0.75, 0.95)
    floor_near = room.uniform(60, 140, 3)
    rows = np.arange(full_h, dtype=float)[:, None]
    line = floor_row + margin
    t_wall = np.clip(rows / max(line, 1.0), 0.0, 1.0)
    t_floor = np.clip((rows - line) / max(full_h - line, 1.0), 0.0, 1.0)
    wall = wall_top * (1 - t_wall) + wall_bottom * t_wall
    floor = floor_near * (0.8 + 0.2 * t_floor)
    column = np.where(rows < line, wall, floor)  # (H, 3)
    image = np.repeat(column[:, None, :], full_w, axis=1)
    image += view.normal(0.0, 1.0, (full_h // 4 + 1, full_w // 4 + 1, 1)).repeat(4, 0).repeat(4, 1)[
        :full_h, :full_w] * 6.0
    image = np.clip(image, 0, 255).astype(np.uint8)

    furniture = []
    for _ in range(int(view.integers(2, 5))):
        w = int(view.uniform(0.08, 0.22) * width)
        h = int(view.uniform(0.12, 0.4) * height)
        x0 = int(view.uniform(-0.05, 0.95) * width)
        bottom = int(floor_row + view.uniform(0.0, 0.08) * height)
        rect = (x0, bottom - h, x0 + w, bottom)
        colour = tuple(int(c) for c in np.clip(column[int(np.clip(bottom + margin, 0, full_h - 1))]
                                               * view.uniform(0.45, 0.8), 0, 255))
        cv2.rectangle(image, (rect[0] + margin, rect[1] + margin), (rect[2] + margin, rect[3] + margin), colour, -1)
        cv2.rectangle(image, (rect[0] + margin, rect[1] + margin), (rect[2] + margin, rect[3] + margin),
                      tuple(int(c * 0.7) for c in colour), max(1, width // 160))
        furniture.append(rect)
    cv2.line(image, (0, int(line)), (full_w, int(line)), tuple(int(c) for c in wall_bottom * 0.6), max(1, height // 90))
    return Background(image=image, margin=margin, furniture=furniture, floor_row=floor_row)


@dataclasses.dataclass(frozen=True)
class DistractorObject:
    """A ball or box drifting through the room; `path` is (F, 3) world positions."""

    kind: str
    radius: float
    colour: tuple
    path: np.ndarray

    def as_dict(self) -> dict:
        return {"kind": self.kind, "radius": round(self.radius, 3), "colour": list(self.colour),
                "start": [round(float(v), 3) for v in self.path[0]], "end": [round(float(v), 3) for v in self.path[-1]]}


def drifting_object(rng: np.random.Generator, num_frames: int) -> DistractorObject:
    """A class-independent object drifting behind the performer, with a slight bob."""
    start = np.array([rng.uniform(-2.2, -1.0), rng.uniform(0.3, 1.6), rng.uniform(-1.8, -1.0)])
    end = np.array([rng.uniform(1.0, 2.2), rng.uniform(0.3, 1.6), rng.uniform(-1.8, -1.0)])
    if rng.random() < 0.5:
        start, end = end, start
    t = np.linspace(0.0, 1.0, num_frames)[:, None]
    path = start * (1 - t) + end * t
    path[:, 1] += 0.08 * np.sin(np.linspace(0, rng.uniform(3, 9), num_frames))
    colour = tuple(int(c) for c in rng.integers(30, 230, 3))
    return DistractorObject(kind=str(rng.choice(["ball", "box"])), radius=float(rng.uniform(0.1, 0.2)),
                            colour=colour, path=path)


def camera_shake(rng: np.random.Generator, num_frames: int, amplitude_px: float) -> np.ndarray:
    """(F, 2) integer pixel offsets of a smooth random walk bounded by `amplitude_px`."""
    steps = rng.normal(0.0, amplitude_px * 0.5, (num_frames, 2))
    walk = np.cumsum(steps, axis=0)
    walk -= np.linspace(0, 1, num_frames)[:, None] * walk[-1:]  # no long-term drift
    return np.clip(np.round(walk), -round(amplitude_px * 2), round(amplitude_px * 2)).astype(int)


def place_occluder(rng: np.random.Generator, pixels: np.ndarray, size: tuple) -> tuple | None:
    """An occluding rectangle (x0, y0, x1, y1) in frame pixels over part of the figure.

    Args:
      pixels: (F, J, 2) the main figure's joint pixels in the frame.
    """
    finite = pixels[np.all(np.isfinite(pixels), axis=-1)]
    if finite.size == 0:
        return None
    x_lo, y_lo = np.percentile(finite, 5, axis=0)
    x_hi, y_hi = np.percentile(finite, 95, axis=0)
    fig_w, fig_h = max(x_hi - x_lo, 4.0), max(y_hi - y_lo, 4.0)
    if rng.random() < 0.6:  # a table-like block over the legs
        top = y_hi - fig_h * rng.uniform(0.25, 0.4)
        rect = (x_lo - fig_w * rng.uniform(0.3, 1.0), top, x_hi + fig_w * rng.uniform(0.3, 1.0), size[1] + 2.0)
    else:  # a post over one side
        centre = rng.uniform(x_lo, x_hi)
        half = fig_w * rng.uniform(0.12, 0.22)
        rect = (centre - half, -2.0, centre + half, size[1] + 2.0)
    return tuple(int(round(v)) for v in rect)
