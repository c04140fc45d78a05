"""N-UCLA-style samples: per-frame `frame_<k>_tc_<ts>_rgb.jpg` + `frame_<k>_tc_<ts>_skeletons.txt`.

Layout (DATASETS.md 5.3): <root>/multiview_action/view_<v>/a<AA>_s<SS>_e<EE>/. The figure is drawn
with `glimpse_keras.data.nucla.project_nucla_joints` applied to the joints exactly as written
(6 significant digits), so the reader's projection reproduces the drawn positions.
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np

from glimpse_keras.data.synthetic import motions
from glimpse_keras.data.synthetic.defects import assign_defects
from glimpse_keras.data.synthetic.fileio import write_bytes_atomically, write_text_atomically
from glimpse_keras.data.synthetic.kinematics import KINECT_V1_FROM_BODY, body_shape_for_subject
from glimpse_keras.data.synthetic.performance import build_performance
from glimpse_keras.data.synthetic.render import (apply_lighting, draw_figure, draw_object, draw_occluder,
                                                 expand_nucla_pixels)
from glimpse_keras.data.synthetic.scene import (NUCLA_FOCAL, NUCLA_SIZE, Camera, camera_shake, nucla_camera,
                                                place_occluder, render_background, small_rotation)
from glimpse_keras.data.synthetic.seeding import rng_for, unit_hash
from glimpse_keras.io_utils import makedirs

ROOT_DIR = "multiview_action"


@dataclasses.dataclass(frozen=True)
class NuclaTask:
    """One sample (one view of one performance) to generate."""

    view: int
    action: int
    subject: int
    episode: int
    defects: tuple = ()
    single_frame: bool = False

    @property
    def name(self) -> str:
        return f"a{self.action:02d}_s{self.subject:02d}_e{self.episode:02d}_v{self.view:02d}"

    @property
    def folder(self) -> str:
        return f"a{self.action:02d}_s{self.subject:02d}_e{self.episode:02d}"

    @property
    def performance_key(self) -> tuple:
        return ("nucla", self.action, self.subject, self.episode)


def nucla_sample_dir(root: str, task_or_record) -> str:
    view = task_or_record.view if isinstance(task_or_record, NuclaTask) else task_or_record["view"]
    folder = task_or_record.folder if isinstance(task_or_record, NuclaTask) else task_or_record["folder"]
    return os.path.join(root, ROOT_DIR, f"view_{view}", folder)


def plan_nucla(seed: int, config: dict) -> list[NuclaTask]:
    """Enumerates the samples (leaving some triplets out of some views) and assigns the defects."""
    views = sorted(config["views"])
    tasks = []
    for action in config["classes"]:
        for subject in config["subjects"]:
            for episode in range(config["episodes"]):
                kept = [v for v in views
                        if unit_hash(seed, "drop-view", action, subject, episode, v) >= config["drop_view_fraction"]]
                if not kept:  # every triplet is filmed by at least one view
                    kept = [views[int(unit_hash(seed, "keep-view", action, subject, episode) * len(views))]]
                tasks.extend(NuclaTask(v, action, subject, episode) for v in kept)
    performances = sorted({t.performance_key for t in tasks})
    names = [t.name for t in tasks]
    chosen = assign_defects(seed, config["defects"], {"single_frame": performances,
                                                      "missing_skeleton_frames": names, "two_body_blocks": names})
    planned = []
    for task in tasks:
        single = task.performance_key in chosen["single_frame"]
        defects = () if single else tuple(sorted(d for d in ("missing_skeleton_frames", "two_body_blocks")
                                                 if task.name in chosen[d]))
        planned.append(dataclasses.replace(task, defects=defects, single_frame=single))
    return planned


def _format(value: float) -> str:
    return "%.6g" % (float(value) + 0.0)


def _round_like_file(values: np.ndarray) -> np.ndarray:
    return np.array([float(_format(v)) for v in values.ravel()]).reshape(values.shape)


@dataclasses.dataclass
class RenderedNuclaSample:
    """One sample before writing: frames (F, H, W, 3) RGB; skeleton texts per frame (None = no file);
    uv: (F, 20, 2) the written joints projected with project_nucla_joints (normalised); record."""

    frames: np.ndarray
    frame_indices: list
    timestamps: list
    skeleton_texts: list
    uv: np.ndarray
    record: dict


def render_nucla_sample(seed: int, config: dict, task: NuclaTask, draw_figures: bool = True) -> RenderedNuclaSample:
    """Generates the frames and per-frame skeleton texts of `task` (nothing is written)."""
    from glimpse_keras.data.nucla import project_nucla_joints  # the readers' projection: targets are exact

    width, height = config["size"]
    perf_rng = rng_for(seed, "length", *task.performance_key)
    low, high = config["frames"]
    num_frames = 1 if task.single_frame else int(perf_rng.integers(low, high + 1))
    shape = body_shape_for_subject(seed, "nucla", task.subject)
    perf = build_performance(seed=seed, key=task.performance_key, num_frames=num_frames,
                             program=motions.NUCLA_PROGRAMS[task.action], shapes=[shape],
                             facing_deg=float(perf_rng.uniform(-15, 15)), config=config)
    camera = nucla_camera(seed, task.view)
    rng = rng_for(seed, "nucla-sample", task.name)
    pixels_per_metre = NUCLA_FOCAL * width / NUCLA_SIZE[0]
    shake = camera_shake(rng, num_frames, float(config["jitter_px"])) / pixels_per_metre  # radians
    xyz = np.empty((num_frames, 20, 3))
    offsets = np.zeros((num_frames, 2), dtype=int)
    joints20 = perf.persons[0].joints[:, list(KINECT_V1_FROM_BODY)]
    far_point = np.asarray(camera.position) + 50.0 * np.asarray(camera.axes[2])
    for f in range(num_frames):
        shaken = Camera(camera.position, small_rotation(camera.axes, shake[f, 0], shake[f, 1]), camera.color,
                        None, camera.original_size)
        xyz[f] = shaken.to_camera(joints20[f])
        moved = project_nucla_joints(shaken.to_camera(far_point))
        offsets[f] = np.round((moved - 0.5) * [width, height]).astype(int)
    state = np.full((num_frames, 20), 2)
    jittered = rng.random((num_frames, 20)) < 0.01
    xyz = xyz + jittered[..., None] * rng.normal(0.0, 0.03, xyz.shape)
    state[jittered] = 1
    xyz = _round_like_file(xyz)
    uv = project_nucla_joints(xyz)
    pixels = uv * [width, height]
    occluder = None
    if rng.random() < float(config["occluder_prob"]):
        occluder = place_occluder(rng, pixels, (width, height))
        inside = ((pixels[..., 0] >= occluder[0]) & (pixels[..., 0] <= occluder[2])
                  & (pixels[..., 1] >= occluder[1]) & (pixels[..., 1] <= occluder[3]))
        state[inside] = 1

    start = int(rng.integers(0, 4))
    frame_indices = list(range(start, start + num_frames))
    stamps = np.cumsum(rng.integers(30, 37, num_frames)) + int(rng.integers(10**5, 10**7))
    header = int(rng.integers(1, 250))
    texts = []
    for f in range(num_frames):
        lines = [str(header)] + [f"{_format(x)},{_format(y)},{_format(z)},{int(s)}"
                                 for (x, y, z), s in zip(xyz[f].tolist(), state[f].tolist())]
        texts.append(lines)
    record = {"id": task.name, "view": task.view, "action": task.action, "subject": task.subject,
              "episode": task.episode, "folder": task.folder, "frame_size": [width, height],
              "camera_geometry": camera.as_dict(), "performance": perf.notes, "subject_shape": shape.as_dict(),
              "occluder": None if occluder is None else list(occluder),
              "distractor_object": None if perf.distractor_object is None else perf.distractor_object.as_dict(),
              "defects": {}}
    if task.single_frame:
        record["defects"]["single_frame"] = True
    if "two_body_blocks" in task.defects:
        chosen = sorted(int(f) for f in rng.choice(num_frames, size=min(num_frames, int(rng.integers(1, 4))),
                                                   replace=False))
        ghost = _round_like_file(xyz + [0.7, 0.0, 0.9] + rng.normal(0.0, 0.05, xyz.shape))
        for f in chosen:
            texts[f] += [str(header + 1)] + [f"{_format(x)},{_format(y)},{_format(z)},1"
                                             for x, y, z in ghost[f].tolist()]
        record["defects"]["two_body_blocks"] = {"frame_indices": [frame_indices[f] for f in chosen]}
    missing = []
    if "missing_skeleton_frames" in task.defects and num_frames > 1:
        missing = sorted(int(f) for f in rng.choice(num_frames, size=min(num_frames - 1, int(rng.integers(1, 4))),
                                                    replace=False))
        record["defects"]["missing_skeleton_frames"] = {"frame_indices": [frame_indices[f] for f in missing]}
    skeleton_texts = [None if f in missing else "\n".join(lines) + "\n" for f, lines in enumerate(texts)]

    background = render_background(seed, ("nucla",), ("nucla", task.view), camera, (width, height),
                                   margin=int(np.abs(offsets).max(initial=0)) + 2)
    gain = rng.uniform(0.85, 1.15) * rng.uniform(0.94, 1.06, 3)
    noise_bank = [np.round(rng.normal(0.0, float(config["noise_sigma"]), (height, width, 3))).astype(np.int16)
                  for _ in range(3)]
    obj = perf.distractor_object
    occluder_colour = tuple(int(c) for c in rng.integers(40, 200, 3))
    draw_pixels = expand_nucla_pixels(pixels)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    depth25 = expand_nucla_pixels(np.concatenate([xyz[..., 2:], xyz[..., 2:]], -1))[..., 0]
    for f in range(num_frames):
        image = background.frame(int(offsets[f, 0]), int(offsets[f, 1]))
        layers = [(float(np.mean(xyz[f, :, 2])), "person")] if draw_figures else []
        if obj is not None:
            obj_cam = camera.to_camera(obj.path[f])
            layers.append((float(obj_cam[2]), "object"))
        for _, kind in sorted(layers, key=lambda item: -item[0]):
            if kind == "person":
                draw_figure(image, draw_pixels[f], depth25[f], shape, pixels_per_metre)
            else:
                centre = project_nucla_joints(obj_cam) * [width, height] + offsets[f]
                draw_object(image, centre, obj.radius * pixels_per_metre / max(obj_cam[2], 0.3), obj.kind, obj.colour)
        if occluder is not None:
            draw_occluder(image, occluder, occluder_colour)
        frames[f] = apply_lighting(image, gain, noise_bank[f % len(noise_bank)])
    record.update({"frames": num_frames, "frame_indices": frame_indices,
                   "skeleton_files": num_frames - len(missing)})
    return RenderedNuclaSample(frames=frames, frame_indices=frame_indices, timestamps=[int(s) for s in stamps],
                               skeleton_texts=skeleton_texts, uv=uv, record=record)


def write_nucla_sample(seed: int, config: dict, task: NuclaTask, root: str) -> dict:
    """Generates `task` and writes its per-frame JPEG and skeleton files atomically; returns the record."""
    sample = render_nucla_sample(seed, config, task)
    directory = nucla_sample_dir(root, task)
    makedirs(directory)
    quality = [cv2.IMWRITE_JPEG_QUALITY, int(config["jpeg_quality"])]
    for frame, index, stamp, text in zip(sample.frames, sample.frame_indices, sample.timestamps,
                                         sample.skeleton_texts):
        stem = os.path.join(directory, f"frame_{index}_tc_{stamp}")
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), quality)
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {stem}_rgb.jpg")
        write_bytes_atomically(f"{stem}_rgb.jpg", encoded.tobytes())
        if text is not None:
            write_text_atomically(f"{stem}_skeletons.txt", text)
    record = sample.record
    record["directory"] = os.path.relpath(directory, root)
    record["timestamps"] = sample.timestamps
    return record


def nucla_sample_complete(root: str, record: dict) -> bool:
    """True when every file of a manifest record exists."""
    directory = os.path.join(root, record["directory"]) if "directory" in record else None
    if directory is None or not os.path.isdir(directory):
        return False
    names = set(os.listdir(directory))
    missing = set(record["defects"].get("missing_skeleton_frames", {}).get("frame_indices", []))
    for index, stamp in zip(record["frame_indices"], record["timestamps"]):
        stem = f"frame_{index}_tc_{stamp}"
        if f"{stem}_rgb.jpg" not in names or (index not in missing and f"{stem}_skeletons.txt" not in names):
            return False
    return True
