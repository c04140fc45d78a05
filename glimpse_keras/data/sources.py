"""Raw samples of each dataset as one uniform record list, and their loading.

`list_raw_samples` walks a raw NTU or N-UCLA directory and returns every
candidate sample as a `RawSample` (ids, label, split of every protocol, file
paths) plus a `SampleProblem` for every file or folder that cannot become a
sample (unparseable name, video without skeleton, ...), so that nothing found
is lost silently. `load_raw_sample` decodes one sample into a
`schema.VideoRecord` (JPEG frames at the stored size + pose track).

Paths may be URLs (`glimpse_keras.filesystem`). No TensorFlow here for local
paths: this module runs inside the conversion worker processes.
"""

import dataclasses
import os

import cv2
import numpy as np

from glimpse_keras import filesystem
from glimpse_keras.data import ntu, nucla, schema, user_videos
from glimpse_keras.data.errors import DataReadError
from glimpse_keras.data.ntu_skeleton import read_ntu_skeleton, select_ntu_bodies
from glimpse_keras.data.video import iter_video_frames
from glimpse_keras.errors import GlimpseError

DATASETS = ("ntu", "nucla", user_videos.DATASET)
DATASET_PROTOCOLS = {"ntu": ntu.NTU_PROTOCOLS, "nucla": nucla.NUCLA_PROTOCOLS,
                     user_videos.DATASET: (user_videos.PROTOCOL,)}
NTU_VIDEO_SUFFIX = "_rgb.avi"
NTU_SKELETON_SUFFIX = ".skeleton"
NTU_MISSING_LIST_NAMES = (
    "NTU_RGBD_samples_with_missing_skeletons.txt",
    "NTU_RGBD120_samples_with_missing_skeletons.txt",
)

EXPECTED_LAYOUT = {
    "ntu": (
        "<data-dir>/nturgb+d_rgb/SsssCcccPpppRrrrAaaa_rgb.avi and "
        "<data-dir>/nturgb+d_skeletons/SsssCcccPpppRrrrAaaa.skeleton (any "
        "sub-folders: files are found recursively by these suffixes)"
    ),
    "nucla": (
        "<data-dir>[/multiview_action]/view_<v>/a<AA>_s<SS>_e<EE>/"
        "frame_<k>_..._rgb.jpg (+ frame_<k>_..._skeletons.txt)"
    ),
    user_videos.DATASET: user_videos.EXPECTED_LAYOUT,
}


class EmptyDatasetError(GlimpseError, ValueError):
    """The data directory is missing or holds no sample of the dataset."""


@dataclasses.dataclass(frozen=True)
class SampleProblem:
    """A file or folder that was found but cannot be converted.

    Attributes:
        file: path of the offending file or folder.
        reason: what is wrong with it.
        video_id: the sample id when it is known, else ''.
    """

    file: str
    reason: str
    video_id: str = ""

    def to_json(self):
        return {"file": self.file, "reason": self.reason, "video_id": self.video_id}


@dataclasses.dataclass(frozen=True)
class RawSample:
    """One sample of a raw dataset, ready to be loaded.

    Attributes:
        dataset: 'ntu' or 'nucla'.
        video_id: 'S001C002P003R002A013' or 'a01_s01_e00_v01'.
        label, subject, camera, setup, replication: ints (N-UCLA: camera =
            view, replication = episode, setup = 0).
        splits: tuple of (protocol, 'train' | 'test') pairs, protocol order.
        video_path: NTU video file, or the N-UCLA sample folder.
        skeleton_path: NTU skeleton file (None when absent), None for N-UCLA.
        missing_skeleton_listed: NTU id is on the official missing list.
        nucla_sample: the reader's NuclaSample (N-UCLA only).
    """

    dataset: str
    video_id: str
    label: int
    subject: int
    camera: int
    setup: int
    replication: int
    splits: tuple
    video_path: str
    skeleton_path: object = None
    missing_skeleton_listed: bool = False
    nucla_sample: object = None


# === Listing ===


def _walk_files(root):
    for directory, _, names in filesystem.walk(root, followlinks=True):
        for name in names:
            yield os.path.join(directory, name)


def _ntu_missing_ids(data_dir, missing_list):
    if missing_list:
        return ntu.load_missing_skeleton_ids(missing_list)
    found = [os.path.join(data_dir, name) for name in NTU_MISSING_LIST_NAMES
             if filesystem.isfile(os.path.join(data_dir, name))]
    if not found:
        return ntu.load_missing_skeleton_ids(None, ntu120=True)
    ids = set()
    for path in found:
        ids |= ntu.load_missing_skeleton_ids(path)
    return frozenset(ids)


def _index_by_id(paths, suffix, problems):
    """{id: path} for files named <id><suffix>; bad names -> problems."""
    table = {}
    for path in sorted(paths):
        try:
            sample_id = ntu.parse_ntu_sample_id(os.path.basename(path))
            if os.path.basename(path) != sample_id.name + suffix:
                raise DataReadError(
                    path, f"expected the file name {sample_id.name + suffix!r}")
        except DataReadError as error:
            problems.append(SampleProblem(path, f"unparseable name: {error.reason}"))
            continue
        if sample_id.name in table:
            problems.append(SampleProblem(
                path, f"duplicate of {table[sample_id.name][1]}", sample_id.name))
            continue
        table[sample_id.name] = (sample_id, path)
    return table


def list_ntu_samples(data_dir, protocols, missing_list=None):
    """Every NTU sample under data_dir (recursive), sorted by id.

    A sample needs its `_rgb.avi`; its `.skeleton` may be absent only when the
    id is on the missing-skeleton list (then the pose is masked).

    Returns:
        (list of RawSample, list of SampleProblem).
    """
    videos, skeletons = [], []
    for path in _walk_files(data_dir):
        if path.endswith(NTU_VIDEO_SUFFIX):
            videos.append(path)
        elif path.endswith(NTU_SKELETON_SUFFIX):
            skeletons.append(path)
    problems = []
    video_table = _index_by_id(videos, NTU_VIDEO_SUFFIX, problems)
    skeleton_table = _index_by_id(skeletons, NTU_SKELETON_SUFFIX, problems)
    missing_ids = _ntu_missing_ids(data_dir, missing_list)
    samples = []
    for name in sorted(set(video_table) | set(skeleton_table)):
        if name not in video_table:
            problems.append(SampleProblem(
                skeleton_table[name][1],
                f"no RGB video {name + NTU_VIDEO_SUFFIX!r} for this skeleton", name))
            continue
        sample_id, video_path = video_table[name]
        skeleton_path = skeleton_table.get(name, (None, None))[1]
        listed = name in missing_ids
        if skeleton_path is None and not listed:
            problems.append(SampleProblem(
                video_path,
                f"skeleton file {name + NTU_SKELETON_SUFFIX!r} is missing and the "
                "id is not on the missing-skeleton list", name))
            continue
        samples.append(RawSample(
            dataset="ntu", video_id=name, label=sample_id.label,
            subject=sample_id.subject, camera=sample_id.camera,
            setup=sample_id.setup, replication=sample_id.replication,
            splits=tuple((p, ntu.ntu_split(sample_id, p)) for p in protocols),
            video_path=video_path, skeleton_path=skeleton_path,
            missing_skeleton_listed=listed,
        ))
    return samples, problems


def list_nucla_raw_samples(data_dir, protocols):
    """Every N-UCLA sample folder under data_dir, sorted by id.

    Returns:
        (list of RawSample, list of SampleProblem).
    """
    samples, problems = [], []
    for _, view_dir in nucla.find_view_dirs(data_dir):
        for entry in sorted(filesystem.listdir(view_dir)):
            path = os.path.join(view_dir, entry)
            if not filesystem.isdir(path):
                continue
            try:
                sample = nucla.read_nucla_sample(path)
            except DataReadError as error:
                problems.append(SampleProblem(path, error.reason))
                continue
            sample_id = sample.sample_id
            if sample.num_frames == 0:
                problems.append(SampleProblem(path, "no '_rgb.jpg' frame in the folder",
                                              sample_id.name))
                continue
            samples.append(RawSample(
                dataset="nucla", video_id=sample_id.name, label=sample_id.label,
                subject=sample_id.subject, camera=sample_id.view, setup=0,
                replication=sample_id.episode,
                splits=tuple((p, nucla.nucla_split(sample_id, p)) for p in protocols),
                video_path=path, nucla_sample=sample,
            ))
    samples.sort(key=lambda s: s.video_id)
    return samples, problems


def list_user_video_samples(data_dir, protocols):
    """Every video of a user-video folder (`user_videos`), sorted by id.

    Returns:
        (list of RawSample, list of SampleProblem).

    Raises:
        user_videos.UserVideosError: a malformed layout, list or names file.
    """
    names, entries, listed_problems = user_videos.list_entries(data_dir)
    problems = [SampleProblem(file, reason) for file, reason in listed_problems]
    samples, seen = [], {}
    for path, label, split in entries:
        video_id = user_videos.sample_id(data_dir, path)
        if video_id in seen:
            problems.append(SampleProblem(path, f"listed twice (also as {seen[video_id]})", video_id))
            continue
        seen[video_id] = f"{split} {names[label]}"
        keypoints = user_videos.keypoint_path(path)
        samples.append(RawSample(
            dataset=user_videos.DATASET, video_id=video_id, label=label, subject=0, camera=0, setup=0,
            replication=0, splits=tuple((protocol, split) for protocol in protocols), video_path=path,
            skeleton_path=keypoints if filesystem.isfile(keypoints) else None,
        ))
    samples.sort(key=lambda s: s.video_id)
    return samples, problems


def list_raw_samples(dataset, data_dir, protocols, missing_list=None):
    """Dispatches to the dataset's lister and checks something was found.

    Raises:
        EmptyDatasetError: the directory is missing, or nothing in it looks
            like the dataset; the message states the expected layout.
        ValueError: unknown dataset or protocol.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset: expected one of {DATASETS}, got {dataset!r}")
    unknown = [p for p in protocols if p not in DATASET_PROTOCOLS[dataset]]
    if unknown or not protocols:
        raise ValueError(
            f"protocol {unknown or protocols!r} is not a {dataset} protocol; "
            f"expected some of {DATASET_PROTOCOLS[dataset]}")
    if not filesystem.isdir(data_dir):
        raise EmptyDatasetError(
            f"data directory {data_dir!r} does not exist; expected the raw "
            f"{dataset} layout {EXPECTED_LAYOUT[dataset]}")
    if dataset == "ntu":
        samples, problems = list_ntu_samples(data_dir, protocols, missing_list)
    elif dataset == user_videos.DATASET:
        try:
            samples, problems = list_user_video_samples(data_dir, protocols)
        except user_videos.UserVideosError as error:
            raise EmptyDatasetError(str(error)) from error
    else:
        samples, problems = list_nucla_raw_samples(data_dir, protocols)
    if not samples and not problems:
        raise EmptyDatasetError(
            f"no {dataset} sample found in {data_dir!r}; expected the layout "
            f"{EXPECTED_LAYOUT[dataset]}")
    return samples, problems


# === Loading ===


def _encode_bgr_jpeg(bgr, quality, source):
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise DataReadError(source, "JPEG encoding of a frame failed")
    return data.tobytes()


def _encode_jpeg(rgb, quality, source):
    return _encode_bgr_jpeg(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), quality, source)


def _empty_pose(num_frames, num_persons):
    return (np.zeros((num_frames, num_persons, 25, 2), np.float32),
            np.zeros((num_frames, num_persons, 25), bool))


def _load_ntu(raw, stored_size, jpeg_quality, num_persons, warnings):
    track = None
    if raw.skeleton_path is not None:
        try:
            track = select_ntu_bodies(read_ntu_skeleton(raw.skeleton_path), num_persons)
        except DataReadError as error:
            if not raw.missing_skeleton_listed:
                raise
            warnings.append(f"unreadable skeleton of a listed sample, pose masked: "
                            f"{error}")
    elif raw.missing_skeleton_listed:
        warnings.append("no skeleton file (on the missing-skeleton list), pose masked")
    jpegs = [_encode_jpeg(frame, jpeg_quality, raw.video_path)
             for frame in iter_video_frames(raw.video_path, (stored_size, stored_size))]
    video_frames = len(jpegs)
    skeleton_frames = 0 if track is None else track.num_frames
    if skeleton_frames == 0:
        uv, mask = _empty_pose(video_frames, num_persons)
        stored = video_frames
    else:
        stored = min(video_frames, skeleton_frames)
        uv, mask = track.uv[:stored], track.mask[:stored]
        if skeleton_frames != video_frames:
            warnings.append(f"{video_frames} video frames but {skeleton_frames} "
                            f"skeleton frames: kept the first {stored}")
    return jpegs[:stored], uv, mask, video_frames, skeleton_frames


def _load_nucla(raw, stored_size, jpeg_quality, num_persons, warnings):
    sample = raw.nucla_sample
    track = nucla.nucla_pose_track(sample, num_persons)
    jpegs = []
    for path in sample.rgb_paths:
        with filesystem.local_copy(path) as local:
            bgr = cv2.imread(local, cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataReadError(path, "unreadable or corrupt JPEG frame")
        bgr = cv2.resize(bgr, (stored_size, stored_size), interpolation=cv2.INTER_AREA)
        jpegs.append(_encode_bgr_jpeg(bgr, jpeg_quality, path))
    skeleton_frames = sum(path is not None for path in sample.skeleton_paths)
    if skeleton_frames < len(jpegs):
        warnings.append(f"{len(jpegs) - skeleton_frames} of {len(jpegs)} frames have "
                        "no skeleton file, pose masked there")
    return jpegs, track.uv, track.mask, len(jpegs), skeleton_frames


def load_raw_sample(raw, stored_size=256, jpeg_quality=90, num_persons=2):
    """Decodes one raw sample into a VideoRecord.

    Frames are resized (squashed) to stored_size x stored_size with area
    interpolation and JPEG-encoded (RGB). Frame counts come from decoding.
    NTU: stored frames = min(video, skeleton) frames (video frames when there
    is no skeleton). N-UCLA: every RGB frame; frames without a skeleton file
    have their pose masked.

    Returns:
        (schema.VideoRecord, list of warning strings).

    Raises:
        DataReadError (VideoDecodeError, SkeletonFormatError, ...): naming
            the file and the reason.
    """
    warnings = []
    if raw.dataset == user_videos.DATASET:
        jpegs, uv, mask, video_frames, skeleton_frames = user_videos.load_frames_and_pose(
            raw, stored_size, jpeg_quality, num_persons, warnings, _encode_jpeg)
    else:
        loader = _load_ntu if raw.dataset == "ntu" else _load_nucla
        jpegs, uv, mask, video_frames, skeleton_frames = loader(
            raw, stored_size, jpeg_quality, num_persons, warnings)
    record = schema.VideoRecord(
        video_id=raw.video_id, dataset=raw.dataset, label=raw.label,
        subject=raw.subject, camera=raw.camera, setup=raw.setup,
        replication=raw.replication, num_video_frames=video_frames,
        num_skeleton_frames=skeleton_frames, jpeg_frames=jpegs,
        uv=np.asarray(uv, np.float32), mask=np.asarray(mask, bool),
        height=stored_size, width=stored_size,
    )
    return record.validate(), warnings
