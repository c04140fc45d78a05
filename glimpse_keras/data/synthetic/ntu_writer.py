"""NTU RGB+D-style samples: `<id>_rgb.avi` + `<id>.skeleton`, from one performance seen by one camera.

Layout (DATASETS.md 5.2): <root>/nturgb+d_rgb/<id>_rgb.avi and <root>/nturgb+d_skeletons/<id>.skeleton.
The figure is drawn from the colorX/colorY values written to the skeleton file (scaled to the video
size), so pose targets read from the file match the pixels exactly.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from glimpse_keras.data.synthetic import kinematics as K
from glimpse_keras.data.synthetic import motions
from glimpse_keras.data.synthetic.defects import assign_defects
from glimpse_keras.data.synthetic.fileio import write_text_atomically
from glimpse_keras.io_utils import atomic_path
from glimpse_keras.data.synthetic.kinematics import body_shape_for_subject
from glimpse_keras.data.synthetic.ntu_skeleton_text import SkeletonBody, round_like_file, skeleton_text
from glimpse_keras.data.synthetic.performance import build_performance
from glimpse_keras.data.synthetic import props
from glimpse_keras.data.synthetic.render import apply_lighting, draw_figure, draw_object, draw_occluder
from glimpse_keras.data.synthetic.scene import (NTU_DEPTH, NTU_REPLICATION_FACING, ORIGINAL_SIZE, camera_shake,
                                                ntu_camera, place_occluder, render_background)
from glimpse_keras.data.synthetic.seeding import rng_for, unit_hash
from glimpse_keras.data.synthetic.video_encoder import encode_avi, truncate_tail

RGB_DIR = "nturgb+d_rgb"
SKELETON_DIR = "nturgb+d_skeletons"
MISSING_LIST = "NTU_RGBD_samples_with_missing_skeletons.txt"
MISSING_LIST_HEADER = ('302 of the captured samples in the "NTU RGB+D" dataset have missing or incomplete '
                       "skeleton data.\nIf you are working on skeleton-based analysis, please ignore these files "
                       "in your training and testing procedures.\n\n")
BODY_ID_BASE = 72057594037927936
_EDGE_RIGHT, _EDGE_LEFT, _EDGE_TOP, _EDGE_BOTTOM = 1, 2, 4, 8
_FIRST_CHILD = {parent: child for child, parent in reversed(K.BONES)}
_FIRST_CHILD.update({K.SPINE_BASE: K.SPINE_MID, K.SPINE_SHOULDER: K.NECK, K.NECK: K.HEAD})


@dataclasses.dataclass(frozen=True)
class NtuTask:
    """One sample to generate; `defects` maps defect name -> True (details are drawn per sample)."""

    setup: int
    camera: int
    subject: int
    replication: int
    action: int
    defects: tuple = ()
    exit_camera: int | None = None
    short_clip: bool = False

    @property
    def name(self) -> str:
        return (f"S{self.setup:03d}C{self.camera:03d}P{self.subject:03d}R{self.replication:03d}"
                f"A{self.action:03d}")

    @property
    def performance_key(self) -> tuple:
        return ("ntu", self.setup, self.subject, self.replication, self.action)


def ntu_paths(root: str, name: str) -> tuple[str, str]:
    """(video path, skeleton path) of sample `name` under `root`."""
    return (os.path.join(root, RGB_DIR, f"{name}_rgb.avi"), os.path.join(root, SKELETON_DIR, f"{name}.skeleton"))


def plan_ntu(seed: int, config: dict) -> list[NtuTask]:
    """Enumerates every sample of the configuration and assigns the defects (DATASETS.md 5.6).

    With `setup_assignment: per_performance`, each (subject, replication, action) is filmed in the one
    setup `performance_setup` draws for it, by each camera.
    """
    base = [NtuTask(s, c, p, r, a) for s in config["setups"] for c in config["cameras"] for p in config["subjects"]
            for r in config["replications"] for a in config["classes"]]
    if config["setup_assignment"] == "per_performance":
        base = [task for task in base
                if task.setup == performance_setup(seed, config, task.subject, task.replication, task.action)]
    performances = sorted({task.performance_key for task in base})
    names = [task.name for task in base]
    two_person = [t.name for t in base if t.action in motions.NTU_TWO_PERSON]
    defect_cfg = config["defects"]
    chosen = assign_defects(seed, defect_cfg, {
        "short_clip": performances, "walk_to_border": performances,
        "empty_frames": names, "zero_body": names, "furniture_body": names, "missing_second_body": two_person,
        "frame_count_mismatch": names, "truncated_avi": names,
    })
    # The corrupt AVI is exactly `minimum` samples (rate 0 in the presets).
    tasks = []
    for task in base:
        defects = tuple(sorted(name for name in ("empty_frames", "zero_body", "furniture_body",
                                                 "missing_second_body", "frame_count_mismatch", "truncated_avi")
                               if task.name in chosen[name]))
        exit_camera = None
        if task.performance_key in chosen["walk_to_border"]:
            cameras = sorted(config["cameras"])
            exit_camera = cameras[int(unit_hash(seed, "exit", task.performance_key) * len(cameras))]
        tasks.append(dataclasses.replace(task, defects=defects, exit_camera=exit_camera,
                                         short_clip=task.performance_key in chosen["short_clip"]))
    return tasks


def performance_setup(seed: int, config: dict, subject: int, replication: int, action: int) -> int:
    """The setup that films performance (subject, replication, action) under `per_performance`
    assignment: one of `config["setups"]`, drawn by a hash of the seed and the performance."""
    setups = sorted(set(config["setups"]))
    return setups[int(unit_hash(seed, "performance-setup", subject, replication, action) * len(setups))]


def ntu_performance(seed: int, config: dict, task: NtuTask):
    """Builds the (camera-independent) performance of `task`."""
    length_rng = rng_for(seed, "length", *task.performance_key)
    low, high = config["frames"]
    num_frames = int(length_rng.integers(3, 8)) if task.short_clip else int(length_rng.integers(low, high + 1))
    shapes = [body_shape_for_subject(seed, "ntu", task.subject)]
    gap = None
    if task.action in motions.NTU_TWO_PERSON:
        shapes.append(body_shape_for_subject(seed, "ntu-partner", task.subject))
        gap = motions.NTU_PARTNER_GAP.get(task.action, motions.DEFAULT_PARTNER_GAP)
    exit_camera = None if task.exit_camera is None else ntu_camera(seed, task.setup, task.exit_camera, config)
    return build_performance(seed=seed, key=task.performance_key, num_frames=num_frames,
                             program=motions.NTU_PROGRAMS[task.action], shapes=shapes,
                             facing_deg=NTU_REPLICATION_FACING[task.replication], config=config,
                             partner_gap=gap, exit_camera=exit_camera,
                             performer_offset=tuple(config["performer_offset"]))


@dataclasses.dataclass
class RenderedNtuSample:
    """Everything of one sample before it is written.

    Attributes:
      frames: (F, H, W, 3) uint8 RGB video frames.
      skeleton: the `.skeleton` file text with '\\n' breaks.
      color_pixels: list over persons of (F, 25, 2) colorX/colorY as written (1920x1080 space) — for
        persons absent from the file, the true values used for drawing.
      tracking: list over persons of (F, 25) joint trackingState as written.
      record: the manifest entry.
    """

    frames: np.ndarray
    skeleton: str
    color_pixels: list
    tracking: list
    record: dict


def render_ntu_sample(seed: int, config: dict, task: NtuTask, draw_figures: bool = True) -> RenderedNtuSample:
    """Generates the video frames, skeleton text and manifest record of `task` (nothing is written).

    `draw_figures=False` renders the identical frames without people (for the geometry self-check).
    """
    width, height = config["size"]
    scale_x, scale_y = width / ORIGINAL_SIZE[0], height / ORIGINAL_SIZE[1]
    perf = ntu_performance(seed, config, task)
    num_frames = perf.num_frames
    camera = ntu_camera(seed, task.setup, task.camera, config)
    rng = rng_for(seed, "ntu-sample", task.name)
    shake = camera_shake(rng, num_frames, float(config["jitter_px"]))
    color_shift = shake * [1.0 / scale_x, 1.0 / scale_y]
    depth_shift = color_shift * (NTU_DEPTH[0] / camera.color[0])

    persons = []
    for person in perf.persons:
        cam_xyz = camera.to_camera(person.joints)
        inferred = rng.random(cam_xyz.shape[:2]) < 0.01
        cam_xyz = cam_xyz + inferred[..., None] * rng.normal(0.0, 0.03, cam_xyz.shape)
        color = round_like_file(camera.project(cam_xyz, "color", color_shift[:, None, :]))
        depth = camera.project(cam_xyz, "depth", depth_shift[:, None, :])
        persons.append({"xyz": cam_xyz, "color": color, "depth": depth, "inferred": inferred, "person": person})
    occluder = None
    if rng.random() < float(config["occluder_prob"]):
        occluder = place_occluder(rng, persons[0]["color"] * [scale_x, scale_y], (width, height))
    for entry in persons:
        state = np.where(entry["inferred"], 1, 2)
        if occluder is not None:
            px = entry["color"] * [scale_x, scale_y]
            inside = ((px[..., 0] >= occluder[0]) & (px[..., 0] <= occluder[2]) & (px[..., 1] >= occluder[1])
                      & (px[..., 1] <= occluder[3]))
            state = np.where(inside, 1, state)
        entry["state"] = state

    held = props.NTU_HELD_PROPS.get(task.action, ()) if config["held_props"] else ()
    clutter = props.place_clutter(rng_for(seed, "clutter", *task.performance_key), config["clutter_props"],
                                  performer_x=float(perf.spot[0]))
    record = {"id": task.name, "setup": task.setup, "camera": task.camera, "subject": task.subject,
              "replication": task.replication, "action": task.action, "label": task.action - 1,
              "frame_size": [width, height], "camera_geometry": camera.as_dict(),
              "performance": perf.notes, "subject_shape": perf.persons[0].shape.as_dict(),
              "jitter_px_max": int(np.abs(shake).max()) if num_frames else 0,
              "occluder": None if occluder is None else list(occluder),
              "distractor_object": None if perf.distractor_object is None else perf.distractor_object.as_dict(),
              "held_props": [dataclasses.asdict(prop) for prop in held],
              "clutter_props": [prop.as_dict() for prop in clutter],
              "defects": {}}
    background = render_background(seed, ("ntu", task.setup), ("ntu", task.setup, task.camera), camera,
                                   (width, height), margin=int(np.ceil(float(config["jitter_px"]) * 2)) + 1)
    skeleton_frames, body_ids, record_defects = _skeleton_frames(seed, task, rng, persons, background, camera,
                                                                  num_frames, (scale_x, scale_y), color_shift)
    record["defects"].update(record_defects)
    frames = _render_frames(seed, config, task, rng, background, camera, perf, persons, occluder, shake,
                            draw_figures, held, clutter)
    crlf = unit_hash(seed, "crlf", task.name) < float(config["crlf_fraction"])
    text = skeleton_text(skeleton_frames, trailing_newline=unit_hash(seed, "eol", task.name) < 0.8)
    clipped = sum(1 for frame in skeleton_frames for body in frame if body.clipped_edges)
    record.update({
        "video_frames": num_frames, "skeleton_frames": len(skeleton_frames),
        "bodies_per_frame": [len(frame) for frame in skeleton_frames], "body_ids": body_ids,
        "num_persons": len(perf.persons), "crlf": bool(crlf), "clipped_body_frames": clipped,
        "occluded_joint_frames": int(sum(int(np.sum(p["state"] == 1)) for p in persons)),
    })
    if clipped:
        record["defects"]["joints_outside_image"] = {"body_frames": clipped}
    return RenderedNtuSample(frames=frames, skeleton=text, color_pixels=[p["color"] for p in persons],
                             tracking=[p["state"] for p in persons], record=record)


def _clipped_edges(color: np.ndarray) -> np.ndarray:
    """(F, 25, 2) colour pixels -> (F,) FrameEdges bit masks."""
    x, y = color[..., 0], color[..., 1]
    with np.errstate(invalid="ignore"):
        return ((np.any(x >= ORIGINAL_SIZE[0], -1) * _EDGE_RIGHT) | (np.any(x < 0, -1) * _EDGE_LEFT)
                | (np.any(y < 0, -1) * _EDGE_TOP) | (np.any(y >= ORIGINAL_SIZE[1], -1) * _EDGE_BOTTOM))


def _orientations(cam_xyz: np.ndarray) -> np.ndarray:
    """(F, 25, 3) -> (F, 25, 4) unit quaternions (w, x, y, z) turning +y onto each joint's bone to its
    first child; end joints get 0 0 0 0 like Kinect."""
    quats = np.zeros(cam_xyz.shape[:2] + (4,))
    for joint, child in _FIRST_CHILD.items():
        if joint in K.LEAF_JOINTS:
            continue
        direction = cam_xyz[:, child] - cam_xyz[:, joint]
        direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-9)
        q = np.stack([1.0 + direction[:, 1] + 1e-6, direction[:, 2], np.zeros(len(direction)), -direction[:, 0]], -1)
        quats[:, joint] = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return quats


def _skeleton_frames(seed, task, rng, persons, background, camera, num_frames, scale, color_shift):
    """Builds the per-frame body lists, applying the skeleton defects; returns (frames, body ids, defects)."""
    defects = {}
    bodies_per_person = []
    body_ids = []
    for index, entry in enumerate(persons):
        body_id = str(BODY_ID_BASE + int(unit_hash(seed, "body-id", task.name, index) * 4000) + 1000 * index)
        body_ids.append(body_id)
        joints = np.concatenate([entry["xyz"], entry["depth"], entry["color"], _orientations(entry["xyz"]),
                                 entry["state"][..., None]], axis=-1)
        edges = _clipped_edges(entry["color"])
        person = entry["person"]
        bodies_per_person.append([SkeletonBody(body_id, int(edges[f]), tuple(person.hand_states[f]),
                                               tuple(np.round(person.lean[f], 7)), joints[f])
                                  for f in range(num_frames)])

    if "zero_body" in task.defects:
        variant = "all_zero" if rng.random() < 0.5 else "nan_joints"
        if variant == "all_zero":
            for body in bodies_per_person[0]:
                body.joints = np.zeros((25, 12))
            defects["zero_body"] = {"variant": variant, "frames": list(range(num_frames)), "listed_missing": True}
        else:
            start = int(rng.integers(0, max(1, num_frames // 2)))
            frames = list(range(start, min(num_frames, start + max(1, num_frames // 3))))
            bad_joints = sorted(int(j) for j in rng.choice(25, size=int(rng.integers(5, 26)), replace=False))
            for f in frames:
                body = bodies_per_person[0][f]
                body.joints = body.joints.copy()
                body.joints[bad_joints, :11] = np.nan
                body.joints[bad_joints, 11] = 0
            defects["zero_body"] = {"variant": variant, "frames": frames, "joints": bad_joints,
                                    "listed_missing": True}
    if "missing_second_body" in task.defects and len(bodies_per_person) == 2:
        bodies_per_person.pop(1)
        defects["missing_second_body"] = {"body_id": body_ids.pop(1)}
    frames = [[bodies[f] for bodies in bodies_per_person] for f in range(num_frames)]

    if "empty_frames" in task.defects:
        count = int(rng.integers(1, max(2, min(11, num_frames // 3 + 1))))
        where = "start" if rng.random() < 0.5 else "end"
        emptied = list(range(count)) if where == "start" else list(range(num_frames - count, num_frames))
        for f in emptied:
            frames[f] = []
        defects["empty_frames"] = {"where": where, "frames": emptied}
    if "furniture_body" in task.defects and background.furniture:
        furniture_id = str(BODY_ID_BASE + 900000 + int(unit_hash(seed, "furniture", task.name) * 1000))
        rect = background.furniture[int(rng.integers(len(background.furniture)))]
        length = int(rng.integers(3, 12))
        start = int(rng.integers(0, max(1, num_frames - length + 1)))
        spurious = _furniture_body(rng, camera, rect, scale, furniture_id)
        span = list(range(start, min(num_frames, start + length)))
        for f in span:
            frames[f] = frames[f] + [spurious]
        body_ids.append(furniture_id)
        defects["furniture_body"] = {"body_id": furniture_id, "frames": span}
    if "frame_count_mismatch" in task.defects:
        delta = int(rng.choice([-3, -2, -1, 1, 2, 3]))
        delta = max(delta, 1 - num_frames)
        if delta < 0:
            frames = frames[:num_frames + delta]
        else:
            frames = frames + [list(frames[-1]) for _ in range(delta)]
        defects["frame_count_mismatch"] = {"delta": delta}
    return frames, body_ids, defects


def _furniture_body(rng, camera, rect, scale, body_id) -> SkeletonBody:
    """A static, wide, flat spurious body sitting on a furniture rectangle of the background."""
    fx, fy, cx, cy = camera.color
    z = float(np.linalg.norm(camera.position)) + rng.uniform(0.8, 1.5)
    u0, u1 = rect[0] / scale[0], rect[2] / scale[0]
    v0, v1 = rect[1] / scale[1], rect[3] / scale[1]
    u = rng.uniform(u0, u1, 25)
    v = rng.uniform(v0 + 0.3 * (v1 - v0), v0 + 0.6 * (v1 - v0), 25)
    xyz = np.stack([(u - cx) * z / fx, -(v - cy) * z / fy, np.full(25, z)], -1)
    color = round_like_file(camera.project(xyz))
    depth = camera.project(xyz, "depth")
    joints = np.concatenate([xyz, depth, color, np.zeros((25, 4)), np.full((25, 1), 1.0)], -1)
    return SkeletonBody(body_id, int(_clipped_edges(color[None])[0]), (0, 0), (0.0, 0.0), joints)


def _render_frames(seed, config, task, rng, background, camera, perf, persons, occluder, shake, draw_figures,
                   held=(), clutter=()):
    width, height = config["size"]
    scale = np.array([width / ORIGINAL_SIZE[0], height / ORIGINAL_SIZE[1]])
    pixels_per_metre = camera.color[0] * scale[0]
    # Frame pixels per metre at depth 1 m along x and y (the frame may be squashed).
    focal = np.array([camera.color[0], camera.color[1]]) * scale
    clutter_cam = [camera.to_camera(np.asarray(prop.position)) for prop in clutter]
    gain = rng.uniform(0.85, 1.15) * rng.uniform(0.94, 1.06, 3)
    noise_bank = [np.round(rng.normal(0.0, float(config["noise_sigma"]), (height, width, 3))).astype(np.int16)
                  for _ in range(3)]
    occluder_colour = tuple(int(c) for c in rng.integers(40, 200, 3))
    obj = perf.distractor_object
    obj_cam = None if obj is None else camera.to_camera(obj.path)
    frames = np.empty((perf.num_frames, height, width, 3), np.uint8)
    for f in range(perf.num_frames):
        image = background.frame(int(shake[f, 0]), int(shake[f, 1]))
        layers = []
        if draw_figures:
            for entry in persons:
                layers.append((float(np.mean(entry["xyz"][f, :, 2])), "person", entry))
        if obj_cam is not None:
            layers.append((float(obj_cam[f, 2]), "object", None))
        for prop, prop_cam in zip(clutter, clutter_cam):
            layers.append((float(prop_cam[2]), "clutter", (prop, prop_cam)))
        for _, kind, entry in sorted(layers, key=lambda item: -item[0]):
            if kind == "person":
                pixels = entry["color"][f] * scale
                draw_figure(image, pixels, entry["xyz"][f, :, 2], entry["person"].shape, pixels_per_metre)
                if entry is persons[0]:
                    _draw_held_props(image, held, pixels, entry["xyz"][f], focal)
            elif kind == "clutter":
                prop, prop_cam = entry
                depth = max(float(prop_cam[2]), 0.3)
                centre = camera.project(prop_cam, "color") * scale + shake[f]
                axis = np.array([np.cos(prop.angle), np.sin(prop.angle)])
                props.draw_prop(image, prop.kind, centre, axis, focal[0] / depth, focal[1] / depth)
            else:
                centre = camera.project(obj_cam[f], "color") * scale + shake[f]
                draw_object(image, centre, obj.radius * pixels_per_metre / max(obj_cam[f, 2], 0.3), obj.kind,
                            obj.colour)
        if occluder is not None:
            draw_occluder(image, occluder, occluder_colour)
        frames[f] = apply_lighting(image, gain, noise_bank[f % len(noise_bank)])
    return frames


def _draw_held_props(image, held, pixels, xyz, focal):
    """Draws the actor's held props at their hands; `xyz` (25, 3) gives the hands' depth."""
    for prop in held:
        placement = props.held_prop_placement(prop, pixels)
        if placement is None:
            continue
        hands = [K.HAND_R, K.HAND_L] if prop.hand == "both" else [K.HAND_R if prop.hand == "right" else K.HAND_L]
        depth = max(float(np.mean(xyz[hands, 2])), 0.3)
        props.draw_prop(image, prop.kind, placement[0], placement[1], focal[0] / depth, focal[1] / depth)


def write_ntu_sample(seed: int, config: dict, task: NtuTask, root: str) -> dict:
    """Generates `task` and writes its AVI and skeleton atomically; returns the manifest record."""
    sample = render_ntu_sample(seed, config, task)
    video_path, skeleton_path = ntu_paths(root, task.name)
    record = sample.record
    write_text_atomically(skeleton_path, sample.skeleton, newline="\r\n" if record["crlf"] else "\n")
    with atomic_path(video_path) as temp:
        encode_avi(temp, iter(sample.frames), tuple(config["size"]))
        if "truncated_avi" in task.defects:
            original, kept = truncate_tail(temp, 0.35)
            record["defects"]["truncated_avi"] = {"original_bytes": original, "kept_bytes": kept}
    record["files"] = {"video": os.path.relpath(video_path, root), "skeleton": os.path.relpath(skeleton_path, root)}
    record["video_bytes"] = os.path.getsize(video_path)
    return record


def ntu_sample_complete(root: str, record: dict) -> bool:
    """True when the files of a manifest record exist with the recorded video size."""
    video_path, skeleton_path = ntu_paths(root, record["id"])
    return (os.path.isfile(skeleton_path) and os.path.isfile(video_path)
            and os.path.getsize(video_path) == record.get("video_bytes"))


def missing_list_text(records: list[dict]) -> str:
    """The missing-skeleton file: the official 3-line header plus the ids whose skeleton was corrupted."""
    ids = sorted(r["id"] for r in records if r["defects"].get("zero_body", {}).get("listed_missing"))
    return MISSING_LIST_HEADER + "".join(f"{name}\n" for name in ids)
