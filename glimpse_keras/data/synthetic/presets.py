"""Generator configurations: the presets as plain data, plus overrides from the command line.

A configuration is a flat dict of JSON-compatible values. `resolve_config` merges a preset with
overrides and validates every key, so a typo in `--set` fails loudly instead of being ignored.
"""

from __future__ import annotations

import copy

import numpy as np
import yaml

from glimpse_keras.errors import GlimpseError
from glimpse_keras.yaml_values import parse_yaml_value


class SyntheticConfigError(GlimpseError, ValueError):
    """A generator configuration key or value is invalid."""


# Defect name -> [rate (fraction of eligible samples or performances), minimum count].
_NTU_DEFECTS_DEFAULT = {
    "empty_frames": [0.05, 1],  # bodyCount = 0 for a few frames at the start or the end
    "zero_body": [0.01, 1],  # all-zero body or NaN joints; the id goes into the missing-skeleton list
    "furniture_body": [0.03, 1],  # a third, static, wide, short-lived spurious body
    "missing_second_body": [0.02, 1],  # two-person class with the second body absent from the skeleton
    "frame_count_mismatch": [0.03, 1],  # skeleton frame count = video frame count +- 1..3
    "truncated_avi": [0.0, 1],  # exactly `minimum` AVIs get a corrupt (truncated) tail
    "walk_to_border": [0.03, 1],  # performance-level: the performer walks out of one camera's view
    "short_clip": [0.02, 1],  # performance-level: fewer than 8 frames
}

_NUCLA_DEFECTS_DEFAULT = {
    "missing_skeleton_frames": [0.05, 1],  # some frames have no _skeletons.txt
    "two_body_blocks": [0.05, 1],  # some frames' skeleton file holds a second body block
    "single_frame": [0.0, 1],  # performance-level: exactly `minimum` performances with 1 frame
}

NTU_DEFAULTS = {
    "classes": [8, 9, 23, 58],
    "setups": [1],
    "cameras": [1, 2, 3],
    "subjects": [1, 2, 3],
    "replications": [1],
    "size": [160, 90],
    "frames": [20, 40],
    "crlf_fraction": 0.3,
    "distractor_gesture_prob": 0.5,
    "distractor_object_prob": 0.5,
    "occluder_prob": 0.25,
    "jitter_px": 1.5,
    "noise_sigma": 4.0,
    "joint_noise_m": 0.004,
    "held_props": True,
    "clutter_props": [0, 0],
    # Where the cameras stand, per setup (NTU's 17 setups differ by camera height and distance).
    # Ranges [min, max] in metres; each setup draws one value of each, shared by its three cameras.
    "camera_height": [0.8, 1.3],  # lens above the floor
    "camera_distance": [2.4, 2.9],  # from the room's centre (each camera adds +-3%)
    "camera_look_height": [0.85, 1.0],  # how high above the room's centre the cameras aim
    "camera_aim_jitter": 0.05,  # per camera: its aim point lies up to this far left or right of the centre
    # Where the performer (or the pair's centre) stands, per performance: [lateral, depth] half-ranges in
    # metres around the room's centre (lateral: across the middle camera's view, depth: along it).
    "performer_offset": [0.15, 0.15],
    # "all": every performance is filmed in every setup of `setups`; "per_performance": each
    # (subject, replication, action) performance is filmed in one setup drawn from `setups` (by a hash
    # of the seed and the performance), so the number of videos does not grow with the setups.
    "setup_assignment": "all",
    "defects": _NTU_DEFECTS_DEFAULT,
}

SETUP_ASSIGNMENTS = ("all", "per_performance")

NUCLA_DEFAULTS = {
    "classes": [1, 2, 5, 6],
    "subjects": [1, 2, 3],
    "episodes": 1,
    "views": [1, 2, 3],
    "drop_view_fraction": 0.1,
    "size": [160, 120],
    "frames": [12, 30],
    "jpeg_quality": 90,
    "distractor_gesture_prob": 0.5,
    "distractor_object_prob": 0.5,
    "occluder_prob": 0.0,
    "jitter_px": 1.0,
    "noise_sigma": 4.0,
    "joint_noise_m": 0.004,
    "defects": _NUCLA_DEFECTS_DEFAULT,
}

# Preset name -> format -> overrides of the defaults above.
PRESETS = {
    "tiny": {
        "ntu": {},
        "nucla": {},
    },
    "demo": {
        "ntu": {
            # Fine-grained hand actions, among NTU's hardest: drink water, eat meal, brush teeth
            # (at the mouth), reading, tear up paper, play with phone (held at the chest), writing,
            # typing (at the waist), phone call (at the ear) and use a fan (at the face). Classes
            # that share where the hands are differ by the small object they hold (cup, bowl and
            # spoon, toothbrush, book, paper, phone, notepad and pen, keyboard, fan); the same
            # objects lie around the room as clutter, so only the object at the hands tells them
            # apart.
            "classes": [1, 2, 3, 11, 12, 13, 28, 29, 30, 49],
            # NTU's Cross-Subject training subjects 1, 2, 4, 5, 8, 9 (360 videos) and its first eleven
            # test subjects 3, 6, 7, 10, 11, 12, 20-24 (660 videos: one accuracy's binomial standard
            # error is at most 2 points): 1020 videos, each performance filmed by the three cameras
            # of one of the 17 setups.
            "subjects": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20, 21, 22, 23, 24],
            "replications": [1, 2],
            "setups": list(range(1, 18)),
            "setup_assignment": "per_performance",
            # Setups and spots vary enough that the hands land in different parts of the frame from
            # video to video (a fixed glimpse schedule covers about a quarter of them:
            # benchmarks/placement_spread.py), the figure filling a third to two thirds of the frame
            # height and the hands inside the model's centre crop in nearly every frame.
            "camera_height": [0.5, 2.0],
            "camera_distance": [2.7, 3.9],
            "camera_look_height": [0.5, 1.5],
            "camera_aim_jitter": 0.5,
            "performer_offset": [1.2, 0.5],
            "size": [320, 180],
            "frames": [32, 80],
            "clutter_props": [1, 3],
        },
        "nucla": {
            "classes": [1, 2, 3, 4, 5, 6, 8, 9, 11, 12],
            "subjects": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "episodes": 2,
            "size": [320, 240],
            "frames": [16, 60],
        },
    },
}

_DEFAULTS = {"ntu": NTU_DEFAULTS, "nucla": NUCLA_DEFAULTS}


def resolve_config(dataset: str, preset: str = "tiny", overrides: dict | None = None) -> dict:
    """Returns the full configuration for `dataset` ('ntu' | 'nucla') from a preset plus overrides.

    Args:
      dataset: 'ntu' or 'nucla'.
      preset: a key of PRESETS.
      overrides: keys of the defaults with new values; 'defects' may be a partial dict.

    Raises:
      SyntheticConfigError: unknown dataset, preset or key, or an invalid value.
    """
    if dataset not in _DEFAULTS:
        raise SyntheticConfigError(f"unknown dataset format {dataset!r}; expected one of {sorted(_DEFAULTS)}")
    if preset not in PRESETS:
        raise SyntheticConfigError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    config = copy.deepcopy(_DEFAULTS[dataset])
    for source in (PRESETS[preset][dataset], overrides or {}):
        for key, value in source.items():
            if key not in config:
                raise SyntheticConfigError(f"unknown {dataset} config key {key!r}; known: {sorted(config)}")
            if key == "defects":
                for name, spec in value.items():
                    if name not in config["defects"]:
                        raise SyntheticConfigError(f"unknown {dataset} defect {name!r}; known: {sorted(config['defects'])}")
                    config["defects"][name] = list(spec) if isinstance(spec, (list, tuple)) else [float(spec), 0]
            else:
                config[key] = copy.deepcopy(value)
    _validate(dataset, config)
    return config


def parse_override(text: str) -> tuple[str, object]:
    """Parses one `key=value` override; the value is read as YAML (so '[1, 2]' is a list, '0.5' a float).

    Raises:
      SyntheticConfigError: `text` has no '=' or the value is not valid YAML.
    """
    if "=" not in text:
        raise SyntheticConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    try:
        value = parse_yaml_value(raw)
    except yaml.YAMLError as error:
        raise SyntheticConfigError(f"override {text!r}: value is not valid YAML ({error})") from None
    return key.strip(), value


def _validate(dataset: str, config: dict) -> None:
    def fail(key: str, reason: str) -> None:
        raise SyntheticConfigError(f"{dataset} config key {key!r} = {config[key]!r}: {reason}")

    width, height = _pair(config, "size", fail)
    if width < 16 or height < 16 or width % 2 or height % 2:
        fail("size", "width and height must be even and >= 16")
    low, high = _pair(config, "frames", fail)
    if not 1 <= low <= high:
        fail("frames", "need 1 <= min <= max")
    if not config["classes"]:
        fail("classes", "must not be empty")
    if dataset == "ntu":
        low, high = _pair(config, "clutter_props", fail)
        if not 0 <= low <= high:
            fail("clutter_props", "need 0 <= min <= max")
        if not isinstance(config["held_props"], bool):
            fail("held_props", "must be true or false")
        for key, top in (("classes", 60), ("setups", 17), ("cameras", 3), ("subjects", 40), ("replications", 2)):
            values = config[key]
            if not values or any(not isinstance(v, int) or not 1 <= v <= top for v in values):
                fail(key, f"must be a non-empty list of integers in 1..{top}")
        for key, bottom in (("camera_height", 0.1), ("camera_distance", 1.0), ("camera_look_height", 0.0)):
            low, high = _metres_pair(config, key, fail)
            if not bottom <= low <= high:
                fail(key, f"need {bottom} <= min <= max (metres)")
        lateral, depth = _metres_pair(config, "performer_offset", fail)
        if lateral < 0 or depth < 0:
            fail("performer_offset", "half-ranges must be >= 0")
        if np.hypot(lateral, depth) > config["camera_distance"][0] * 0.97 - 0.5:
            fail("performer_offset", f"the performer's spot must stay 0.5 m closer to the room's centre than the "
                 f"nearest camera (camera_distance min {config['camera_distance'][0]} less 3%)")
        if not _is_number(config["camera_aim_jitter"]) or not 0 <= config["camera_aim_jitter"] <= 2.0:
            fail("camera_aim_jitter", "must be a number of metres in [0, 2]")
        if config["setup_assignment"] not in SETUP_ASSIGNMENTS:
            fail("setup_assignment", f"must be one of {list(SETUP_ASSIGNMENTS)}")
    else:
        valid_actions = {1, 2, 3, 4, 5, 6, 8, 9, 11, 12}
        if any(a not in valid_actions for a in config["classes"]):
            fail("classes", f"N-UCLA action ids are {sorted(valid_actions)}")
        if any(not isinstance(v, int) or not 1 <= v <= 10 for v in config["subjects"]):
            fail("subjects", "must be integers in 1..10")
        if any(v not in (1, 2, 3) for v in config["views"]) or not config["views"]:
            fail("views", "must be a non-empty subset of [1, 2, 3]")
        if not isinstance(config["episodes"], int) or not 1 <= config["episodes"] <= 11:
            fail("episodes", "must be an integer in 1..11")
    for key in ("crlf_fraction", "distractor_gesture_prob", "distractor_object_prob", "occluder_prob",
                "drop_view_fraction"):
        if key in config and not 0.0 <= float(config[key]) <= 1.0:
            fail(key, "must be in [0, 1]")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metres_pair(config: dict, key: str, fail) -> tuple[float, float]:
    value = config[key]
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_number(v) for v in value):
        fail(key, "must be a pair of numbers (metres)")
    return float(value[0]), float(value[1])


def _pair(config: dict, key: str, fail) -> tuple[int, int]:
    value = config[key]
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, int) for v in value):
        fail(key, "must be a pair of integers")
    return int(value[0]), int(value[1])
