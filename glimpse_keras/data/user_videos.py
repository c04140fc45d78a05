"""Your own videos as a dataset family ("videos"): a folder per class or list files,
optional 2D keypoints.

Two layouts of `--data-dir ROOT` are read:

1. **A folder per class**::

       ROOT/<class name>/<video>.mp4      (any extension of VIDEO_EXTENSIONS, sub-folders included)

   Class names are the folder names, sorted, unless ROOT/classes.txt lists
   them (one per line; line i is label i; every class folder must be listed).
   ROOT/train/<class>/..., ROOT/test/<class>/... (and optionally val/) give the
   splits explicitly; otherwise the split is fixed by file name: in each class
   the videos are sorted by path and the last ceil(n / 5) of a class with
   n >= 2 videos are the test split, the others train.

2. **List files**, one per split: ROOT/train.txt, ROOT/test.txt (ROOT/val.txt
   optional). Each line is `<path> <label>`: the path relative to ROOT (or
   absolute; it may contain spaces, the label is the last word), the label a
   0-based class index or a class name. Blank lines and lines starting with
   `#` are skipped. Class names come from ROOT/classes.txt when present,
   else from the labels if they are names (sorted), else "class_<i>".

Keypoints (optional, per video): a file beside the video with the same name
and the extension `.json` (`drink/clip01.mp4` -> `drink/clip01.json`)::

    {"layout": "coco17",
     "image_size": [width, height],          # optional; default: the video's own size
     "frames": [                             # one entry per video frame, in order
        [ [[x, y, score], ... 17 joints] ,   # person 1 of frame 0 (COCO-17 order)
          ... ],                             # more persons; the first two are used
        ... ]}

x and y are pixels of the frame at `image_size`; a joint with score <= 0 (or
null) is absent. The COCO-17 joints are placed in the NTU-25 layout the model
and pipeline use (`COCO17_TO_NTU25`; spine base, spine centre and spine
shoulder are the mid-points of hips / shoulders; neck, hands, feet and finger
joints stay masked). A keypoint file that cannot be read skips its video with
the reason in conversion_errors.json, as any bad sample.

Without keypoint files the pose is masked everywhere: `read_data_facts` says
so, and `Experiment.adapt_to_data` switches the pose loss (w_P) and the glimpse
attraction loss (w_G2) off and says so once.

The converter writes ROOT's class names to OUT/videos_dataset.json
(`write_dataset_info`), so a run whose data_dir points at converted shards
still knows them.

ROOT may be a URL (`glimpse_keras.filesystem`). No TensorFlow here for local
paths: this module runs inside the conversion worker processes.
"""

import json
import math
import os

import numpy as np

from glimpse_keras import filesystem
from glimpse_keras.data.errors import DataReadError

DATASET = "videos"
PROTOCOL = "user"
SPLITS = ("train", "val", "test")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv")
CLASSES_FILE = "classes.txt"
INFO_FILE = "videos_dataset.json"
KEYPOINT_LAYOUT = "coco17"
NUM_COCO_JOINTS = 17
NUM_NTU_JOINTS = 25
# COCO-17 joint -> NTU-25 joint (0-based): nose -> head, shoulders, elbows,
# wrists, hips, knees, ankles (left is the person's left in both layouts).
COCO17_TO_NTU25 = {0: 3, 5: 4, 7: 5, 9: 6, 6: 8, 8: 9, 10: 10, 11: 12, 13: 13, 15: 14, 12: 16, 14: 17, 16: 18}
# NTU joints placed at the mid-point of two others: spine base (hips),
# spine shoulder (shoulders), then spine centre (those two).
NTU25_MIDPOINTS = ((0, 12, 16), (20, 4, 8), (1, 0, 20))

EXPECTED_LAYOUT = (
    "<data-dir>/<class name>/<video>.mp4 (a folder per class; optional <data-dir>/classes.txt, "
    "optional train/ and test/ levels above the class folders) or list files <data-dir>/train.txt and "
    "<data-dir>/test.txt with '<path> <label>' per line; keypoints optional as <video>.json (COCO-17)"
)


class UserVideosError(DataReadError):
    """The user-video folder, a list file, a names file or a keypoint file is malformed."""


def _is_video(name):
    return name.lower().endswith(VIDEO_EXTENSIONS)


def _videos_below(folder):
    found = []
    for directory, subdirectories, names in filesystem.walk(folder, followlinks=True):
        subdirectories.sort()
        found.extend(os.path.join(directory, name) for name in sorted(names) if _is_video(name))
    return found


def keypoint_path(video_path):
    """The keypoint file of a video: the same path with the extension `.json`."""
    return os.path.splitext(video_path)[0] + ".json"


def _text_lines(path):
    """The lines of a UTF-8 text file.

    Raises:
        UserVideosError: the file cannot be read or is not UTF-8 text.
    """
    try:
        with filesystem.open(path, encoding="utf-8") as handle:
            return handle.readlines()
    except UnicodeDecodeError as error:
        raise UserVideosError(path, f"not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise UserVideosError(path, f"cannot be read ({error.strerror or error})") from None


def read_class_names_file(path):
    """Class names, one per non-blank line (surrounding spaces dropped).

    Raises:
        UserVideosError: an empty file or a repeated name (naming the line).
    """
    names = []
    for number, line in enumerate(_text_lines(path), start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        if name in names:
            raise UserVideosError(path, f"line {number}: class name {name!r} is listed twice")
        names.append(name)
    if not names:
        raise UserVideosError(path, "lists no class name")
    return names


def detect_layout(root):
    """'lists' (train.txt present), 'split_folders' (train/ and test/ folders) or 'folders'.

    Raises:
        UserVideosError: ROOT does not exist.
    """
    if not filesystem.isdir(root):
        raise UserVideosError(root, f"no such folder; expected {EXPECTED_LAYOUT}")
    if filesystem.isfile(os.path.join(root, "train.txt")):
        return "lists"
    if filesystem.isdir(os.path.join(root, "train")) and filesystem.isdir(os.path.join(root, "test")):
        return "split_folders"
    return "folders"


# === Listing: (path, class name or index, split) entries ===


def _class_folders(folder):
    return sorted(
        name for name in filesystem.listdir(folder)
        if filesystem.isdir(os.path.join(folder, name)) and not name.startswith(".")
    )


def _held_out_split(videos_by_class):
    """The fixed train/test split of the plain folder layout (see the module doc)."""
    entries = []
    for name, videos in videos_by_class.items():
        held_out = math.ceil(len(videos) / 5) if len(videos) >= 2 else 0
        for index, path in enumerate(videos):
            entries.append((path, name, "test" if index >= len(videos) - held_out else "train"))
    return entries


def _folder_entries(root, layout):
    if layout == "split_folders":
        entries = []
        for split in SPLITS:
            folder = os.path.join(root, split)
            if filesystem.isdir(folder):
                for name in _class_folders(folder):
                    entries.extend((path, name, split) for path in _videos_below(os.path.join(folder, name)))
        return entries
    videos_by_class = {name: _videos_below(os.path.join(root, name)) for name in _class_folders(root)}
    return _held_out_split(videos_by_class)


def empty_class_folders(root):
    """Class folders of a folder layout that hold no video in any split
    (sorted names); they are not classes unless classes.txt lists them.
    [] for the list-file layout."""
    layout = detect_layout(root)
    if layout == "lists":
        return []
    parents = [os.path.join(root, split) for split in SPLITS] if layout == "split_folders" else [root]
    folders, filled = set(), set()
    for parent in parents:
        if not filesystem.isdir(parent):
            continue
        for name in _class_folders(parent):
            folders.add(name)
            if _videos_below(os.path.join(parent, name)):
                filled.add(name)
    return sorted(folders - filled)


def describe_classes(root, names):
    """Messages on the classes read from ROOT: their count and names, and
    any class folder left out because it holds no video."""
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    messages = [f"{DATASET}: {len(names)} classes in {root} ({shown})"]
    listed = read_class_names_file(os.path.join(root, CLASSES_FILE)) if filesystem.isfile(
        os.path.join(root, CLASSES_FILE)) else []
    empty = [name for name in empty_class_folders(root) if name not in listed]
    if empty:
        messages.append(
            f"{DATASET}: class folder(s) {empty} of {root} hold no video and are left out of the classes; "
            f"add videos to them, or list every class in {CLASSES_FILE} to keep them as classes"
        )
    return messages


def _parse_list_file(path, root, split):
    entries = []
    for number, line in enumerate(_text_lines(path), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.rsplit(None, 1)
        if len(parts) != 2:
            raise UserVideosError(path, f"line {number}: expected '<path> <label>', got {text!r}")
        video, label = parts
        video = video if filesystem.isabs(video) else os.path.join(root, video)
        entries.append((filesystem.normpath(video), label, split, f"{path}:{number}"))
    return entries


def list_entries(root):
    """Every video the layout names, with its class and split.

    Returns:
        (class_names, entries, problems): entries are (video path, label int,
        split); problems are (file, reason) for names that cannot become a
        sample (missing video, unknown label), reported by the converter.

    Raises:
        UserVideosError: no such folder, a malformed list or names file, or
            nothing that looks like the layout.
    """
    layout = detect_layout(root)
    names_path = os.path.join(root, CLASSES_FILE)
    names = read_class_names_file(names_path) if filesystem.isfile(names_path) else None
    problems = []
    if layout == "lists":
        raw = []
        for split in SPLITS:
            path = os.path.join(root, f"{split}.txt")
            if filesystem.isfile(path):
                raw.extend(_parse_list_file(path, root, split))
        if not filesystem.isfile(os.path.join(root, "test.txt")):
            raise UserVideosError(os.path.join(root, "test.txt"), "missing: list files need train.txt and test.txt")
        labels = [label for _, label, _, _ in raw]
        numeric = all(label.lstrip("-").isdigit() for label in labels)
        if names is None:
            if numeric:
                count = max((int(label) for label in labels), default=-1) + 1
                names = [f"class_{index}" for index in range(count)]
            else:
                names = sorted(set(labels))
        entries = []
        for video, label, split, where in raw:
            if label.lstrip("-").isdigit():
                index = int(label)
                if not 0 <= index < len(names):
                    problems.append((where, f"label {index} is outside 0..{len(names) - 1} ({len(names)} classes)"))
                    continue
            elif label in names:
                index = names.index(label)
            else:
                source = names_path if filesystem.isfile(names_path) else "the lists"
                problems.append((where, f"label {label!r} is not a class name of {source}"))
                continue
            if not filesystem.isfile(video):
                problems.append((video, f"listed in {where} but the file does not exist"))
                continue
            entries.append((video, index, split))
    else:
        found = _folder_entries(root, layout)
        folder_names = sorted({name for _, name, _ in found})
        if names is None:
            names = folder_names
        else:
            unlisted = [name for name in folder_names if name not in names]
            if unlisted:
                raise UserVideosError(names_path, f"does not list the class folder(s) {unlisted}")
        entries = [(path, names.index(name), split) for path, name, split in found]
    if not entries and not problems:
        raise UserVideosError(root, f"holds no video; expected {EXPECTED_LAYOUT}")
    return names, entries, problems


def class_names(data_dir):
    """The class names of a user-video folder, or of shards converted from one.

    Raises:
        UserVideosError: neither a readable videos_dataset.json nor a user-video layout.
    """
    info = os.path.join(data_dir, INFO_FILE)
    if filesystem.isfile(info):
        return read_dataset_info(data_dir)["class_names"]
    return list_entries(data_dir)[0]


def sample_id(root, video_path):
    """The id of a video: its path relative to ROOT without the extension, '/'-separated."""
    relative = filesystem.relpath(video_path, root)
    if relative.startswith(os.pardir):  # a list file may name videos outside ROOT
        relative = filesystem.absolute(video_path).lstrip(os.sep)
    return os.path.splitext(relative)[0].replace(os.sep, "/")


# === Keypoints ===


def read_keypoints(path, width, height, num_persons=2):
    """Reads a COCO-17 keypoint JSON (module doc) into the NTU-25 pose layout.

    Args:
        path: the .json file.
        width, height: the video's frame size (used when the file has no image_size).
        num_persons: P, persons kept per frame (the first ones listed).

    Returns:
        (uv float32 (F, P, 25, 2) normalised to the frame, mask bool (F, P, 25)).

    Raises:
        UserVideosError: naming the file and what is wrong (and the frame /
            person / joint when it is one of them).
    """
    try:
        with filesystem.open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise UserVideosError(path, f"not a readable JSON file: {error}") from error
    if not isinstance(data, dict) or data.get("layout") != KEYPOINT_LAYOUT:
        raise UserVideosError(path, f'expected an object with "layout": "{KEYPOINT_LAYOUT}", got '
                                    f"{(data.get('layout') if isinstance(data, dict) else type(data).__name__)!r}")
    size = data.get("image_size", [width, height])
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, (int, float)) and v > 0 for v in size)):
        raise UserVideosError(path, f'"image_size" must be [width, height] > 0, got {size!r}')
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise UserVideosError(path, '"frames" must be a non-empty list (one entry per video frame)')
    uv = np.zeros((len(frames), num_persons, NUM_NTU_JOINTS, 2), np.float32)
    mask = np.zeros((len(frames), num_persons, NUM_NTU_JOINTS), bool)
    scale = np.array([1.0 / size[0], 1.0 / size[1]])
    for f, persons in enumerate(frames):
        if not isinstance(persons, list):
            raise UserVideosError(path, f"frame {f}: expected a list of persons, got {type(persons).__name__}")
        for p, joints in enumerate(persons[:num_persons]):
            try:
                values = np.array([[np.nan if v is None else v for v in joint] for joint in joints], np.float64)
            except (TypeError, ValueError):
                values = None
            if values is None or values.shape != (NUM_COCO_JOINTS, 3):
                raise UserVideosError(
                    path, f"frame {f}, person {p}: expected {NUM_COCO_JOINTS} joints of [x, y, score] "
                          f"(COCO-17 order), got {np.shape(joints) if values is None else values.shape}")
            present = np.isfinite(values).all(axis=1) & (np.nan_to_num(values[:, 2]) > 0)
            for coco, ntu in COCO17_TO_NTU25.items():
                if present[coco]:
                    uv[f, p, ntu] = values[coco, :2] * scale
                    mask[f, p, ntu] = True
            for target, first, second in NTU25_MIDPOINTS:
                if mask[f, p, first] and mask[f, p, second]:
                    uv[f, p, target] = 0.5 * (uv[f, p, first] + uv[f, p, second])
                    mask[f, p, target] = True
    return uv, mask


# === Config ===


def write_dataset_info(output, data_dir, samples):
    """Writes OUT/videos_dataset.json: class names, videos and how many have keypoints."""
    names = list_entries(data_dir)[0]
    with_pose = sum(1 for sample in samples if sample.skeleton_path is not None)
    filesystem.atomic_write_json(os.path.join(output, INFO_FILE), {
        "class_names": names, "videos": len(samples), "videos_with_keypoints": with_pose,
        "source": filesystem.absolute(data_dir),
    })


def read_dataset_info(converted_dir):
    path = os.path.join(converted_dir, INFO_FILE)
    try:
        return filesystem.read_json(path)
    except (OSError, ValueError) as error:
        raise UserVideosError(path, f"cannot read the converted dataset's description: {error}") from error


def dataset_summary(data_dir):
    """(class names, videos, videos with a keypoint file) of a raw folder or converted shards."""
    if filesystem.isfile(os.path.join(data_dir, INFO_FILE)):
        info = read_dataset_info(data_dir)
        return info["class_names"], info["videos"], info["videos_with_keypoints"]
    names, entries, _ = list_entries(data_dir)
    with_pose = sum(1 for path, _, _ in entries if filesystem.isfile(keypoint_path(path)))
    return names, len(entries), with_pose


def read_data_facts(data_config):
    """The classes and videos of the folder `data_config.data_dir` (raw, or converted shards).

    Returns:
        (class names, videos, videos with a keypoint file, description): the
        description is the lines to print once (the classes found, class
        folders left out).

    Raises:
        UserVideosError: data.data_dir is not a user-video folder, or
            data.classes is set (class subsets are NTU / N-UCLA numbers).
    """
    data_dir = data_config.data_dir
    if not data_dir:
        raise UserVideosError("--data-dir", f"is required with --dataset {DATASET}; expected {EXPECTED_LAYOUT}")
    names, videos, with_pose = dataset_summary(data_dir)
    if data_config.classes:
        raise UserVideosError(
            "data.classes", f"{data_config.classes} selects NTU / N-UCLA action numbers; with --dataset {DATASET} "
            "every class of the data folder is used: leave it empty (e.g. --config configs/videos.yaml, or "
            "--set data.classes=[])")
    raw = not os.path.isfile(os.path.join(data_dir, INFO_FILE))
    description = describe_classes(data_dir, names) if raw else [
        f"{DATASET}: {len(names)} classes in {data_dir} ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"]
    return names, videos, with_pose, description


# === Loading (called by sources.load_raw_sample) ===


def load_frames_and_pose(raw, stored_size, jpeg_quality, num_persons, warnings, encode_jpeg):
    """Decodes a user video and its keypoints (as `sources._load_ntu` does for NTU).

    Returns:
        (jpegs, uv, mask, video_frames, keypoint_frames); the stored frames
        are min(video, keypoint) frames when a keypoint file exists.
    """
    import cv2

    from glimpse_keras.data.video import iter_video_frames

    jpegs, size = [], None
    for frame in iter_video_frames(raw.video_path):
        if size is None:
            size = frame.shape[1], frame.shape[0]
        small = cv2.resize(frame, (stored_size, stored_size), interpolation=cv2.INTER_AREA)
        jpegs.append(encode_jpeg(small, jpeg_quality, raw.video_path))
    video_frames = len(jpegs)
    if raw.skeleton_path is None:
        return (jpegs, np.zeros((video_frames, num_persons, NUM_NTU_JOINTS, 2), np.float32),
                np.zeros((video_frames, num_persons, NUM_NTU_JOINTS), bool), video_frames, 0)
    uv, mask = read_keypoints(raw.skeleton_path, size[0], size[1], num_persons)
    stored = min(video_frames, len(uv))
    if len(uv) != video_frames:
        warnings.append(f"{video_frames} video frames but {len(uv)} keypoint frames: kept the first {stored}")
    return jpegs[:stored], uv[:stored], mask[:stored], video_frames, len(uv)
