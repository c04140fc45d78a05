"""The dataset registry: one adapter per dataset family.

Everything that differs between dataset families lives in that family's
adapter, so no module above the readers branches on `data.dataset`: the
config's class check, class names (fixed, or read from the data), stored
labels, the split protocol, how a `--data-dir` is recognised and converted,
what the data say of themselves (`DataFacts`: their classes, how many videos
have keypoints; `experiment.Experiment` turns them into model and loss
settings), and the help shown when it is missing. A
new family registers by writing one adapter and calling `register`:

    class MyFamily(DatasetAdapter):
        name = "mine"
        ...
    register(MyFamily())

Built in: NTU RGB+D ("ntu"), N-UCLA ("nucla"), synthetic NTU-format videos
("synthetic") and your own videos ("videos", `data.user_videos`: a folder per
class or list files, class names from the data).

The converter (`data.convert`) reads raw files by their on-disk `raw_format`
("ntu", "nucla" or "videos"); a family with a new on-disk format also needs a
reader in `data.sources`.
"""

import dataclasses
import os

from glimpse_keras import filesystem
from glimpse_keras.errors import ConfigError, DataDirError

# NTU RGB+D: about 70 frames per sample (the paper's totals) at about 30 fps.
NTU_MEAN_FRAMES = 70
NTU_FRAME_RATE = 30


@dataclasses.dataclass(frozen=True)
class DataFacts:
    """What a family reads from its data before a job (`DatasetAdapter.data_facts`).

    Attributes:
        class_names: the classes the data hold, in label order.
        videos: how many videos the data hold.
        videos_with_pose: how many of them have keypoints (0: the pose is
            masked everywhere).
        description: lines describing what was read: the classes found, then any
            class folder left out.
    """

    class_names: tuple
    videos: int
    videos_with_pose: int
    description: tuple = ()


class DatasetAdapter:
    """What one dataset family means to the jobs above the readers.

    Attributes:
        name: the `data.dataset` value of the family.
        title: human name used in messages.
        raw_format: the converter's `--dataset` for its raw files, also the
            `dataset` recorded in `conversion_settings.json`.
        help: where the raw data come from and how they are laid out.
    """

    name = None
    title = None
    raw_format = None
    help = ""

    def class_numbers(self):
        """The family's own class numbers (as users write them in
        `data.classes`), in stored-label order."""
        raise NotImplementedError

    def class_names(self):
        """Names of the stored labels 0..K-1 (a tuple of str)."""
        raise NotImplementedError

    def class_names_for(self, data_config, converted_dir=None):
        """Names of the stored labels 0..K-1 of the data `data_config` reads
        (converted into `converted_dir`, when known). Families whose classes
        are fixed return `class_names()`; families whose classes come from
        the data (user videos) read them there."""
        return self.class_names()

    def data_facts(self, data_config):
        """What the data of `data_config` say of themselves before a job
        starts, for families whose classes or keypoints come from the data.

        Returns:
            a `DataFacts`, or None when the family's data are known in
            advance (nothing to read).

        Raises:
            ConfigError: the data config cannot read the data, naming the key.
        """
        return None

    def stored_label(self, number):
        """The label the converter stores for class `number`."""
        raise NotImplementedError

    def clip_seconds(self, data_config):
        """The typical duration of this family's videos in seconds: what one
        training clip (T frames spread over a whole video) spans, hence the
        default window of `glimpse-predict --timeline` and `--stream`. None
        when the family does not know it (then a window must be given)."""
        return None

    def describe_classes(self):
        """How valid class numbers are described in an error message."""
        return f"{self.title} class numbers {list(self.class_numbers())}"

    def split_protocol(self, data_config):
        """The split protocol of the converted indexes for `data_config`."""
        return data_config.protocol

    def is_raw_tree(self, path):
        """True when `path` holds this family's raw files."""
        raise NotImplementedError

    def raw_tree_problem(self, path):
        """Why `path` is not this family's raw tree, in a few words (shown in
        the missing-data message), or None when there is nothing specific to say."""
        return None

    def generated_raw_dir(self, data_config, cache_root):
        """For a family generated on demand: the raw folder to generate into
        (None: the family is read from `data.data_dir`)."""
        return None

    def generate(self, raw_dir, data_config):
        """The command that generates the raw data into `raw_dir`."""
        raise NotImplementedError


class NTUAdapter(DatasetAdapter):
    """NTU RGB+D 60/120: SsssCcccPpppRrrrAaaa_rgb.avi + .skeleton files."""

    name = "ntu"
    title = "NTU RGB+D"
    raw_format = "ntu"
    help = (
        "NTU RGB+D is distributed by the ROSE Lab of Nanyang Technological "
        "University (https://rose1.ntu.edu.sg/dataset/actionRecognition/) after "
        "signing its licence; unpack the RGB videos into <dir>/nturgb+d_rgb/ and "
        "the skeletons into <dir>/nturgb+d_skeletons/."
    )

    def class_numbers(self):
        return tuple(range(1, 121))

    def describe_classes(self):
        return "NTU action numbers 1..120"

    def class_names(self):
        from glimpse_keras.data.ntu import NTU60_CLASS_NAMES

        return tuple(NTU60_CLASS_NAMES)

    def stored_label(self, number):
        return number - 1

    def clip_seconds(self, data_config):
        # The paper's totals (more than 4 M frames over 56,880 samples,
        # DATASETS.md) give about 70 frames per sample, at about 30 fps.
        return round(NTU_MEAN_FRAMES / NTU_FRAME_RATE, 2)

    def is_raw_tree(self, path):
        return os.path.isdir(os.path.join(path, "nturgb+d_rgb"))


class NUCLAAdapter(DatasetAdapter):
    """Northwestern-UCLA Multiview Action 3D: view_v/aXX_sYY_eZZ/ frames."""

    name = "nucla"
    title = "N-UCLA"
    raw_format = "nucla"
    help = (
        "N-UCLA (Northwestern-UCLA Multiview Action 3D) unpacks to "
        "multiview_action/view_{1,2,3}/aXX_sYY_eZZ/ with frame_<k>_..._rgb.jpg "
        "and frame_<k>_..._skeletons.txt files."
    )

    def class_numbers(self):
        from glimpse_keras.data.nucla import NUCLA_ACTION_TO_LABEL

        return tuple(sorted(NUCLA_ACTION_TO_LABEL, key=NUCLA_ACTION_TO_LABEL.get))

    def describe_classes(self):
        from glimpse_keras.data.nucla import NUCLA_ACTION_TO_LABEL

        return f"N-UCLA action numbers {sorted(NUCLA_ACTION_TO_LABEL)}"

    def class_names(self):
        from glimpse_keras.data.nucla import NUCLA_CLASS_NAMES

        return tuple(NUCLA_CLASS_NAMES)

    def stored_label(self, number):
        from glimpse_keras.data.nucla import NUCLA_ACTION_TO_LABEL

        return NUCLA_ACTION_TO_LABEL[number]

    def split_protocol(self, data_config):
        return "xview"  # N-UCLA defines its cross-view protocol only

    def is_raw_tree(self, path):
        return any(
            os.path.isdir(os.path.join(root, "view_1"))
            for root in (path, os.path.join(path, "multiview_action"))
        )


class SyntheticAdapter(NTUAdapter):
    """Synthetic videos written in NTU's own on-disk format (generated into
    the cache when `data.data_dir` is empty)."""

    name = "synthetic"
    title = "synthetic NTU-format"

    def generated_raw_dir(self, data_config, cache_root):
        if data_config.data_dir:
            return None
        import hashlib
        import json

        from glimpse_keras.data.synthetic import GENERATOR_VERSION, resolve_config

        generator_config = resolve_config("ntu", data_config.synthetic_preset)
        identity = json.dumps([GENERATOR_VERSION, generator_config], sort_keys=True)
        digest = hashlib.sha1(identity.encode()).hexdigest()[:8]
        name = f"synthetic_ntu_{data_config.synthetic_preset}_seed{data_config.synthetic_seed}_{digest}"
        return os.path.join(cache_root, name, "raw")

    def clip_seconds(self, data_config):
        """The middle of the generator preset's frame-count range at the generator's frame rate."""
        from glimpse_keras.data.synthetic import resolve_config
        from glimpse_keras.data.synthetic.video_encoder import FPS

        low, high = resolve_config("ntu", data_config.synthetic_preset)["frames"]
        return round((low + high) / 2 / FPS, 2)

    def generate(self, raw_dir, data_config):
        import sys

        return [
            sys.executable, "-m", "glimpse_keras.data.synthetic", "--format", "ntu", "--output", raw_dir,
            "--preset", data_config.synthetic_preset, "--seed", str(data_config.synthetic_seed),
            "--workers", str(data_config.convert_workers),
        ]


class UserVideosAdapter(DatasetAdapter):
    """Your own videos (`data.user_videos`): a folder per class or list files,
    optional COCO-17 keypoints; class names come from the data."""

    name = "videos"
    title = "your-own-videos"
    raw_format = "videos"

    @property
    def help(self):
        from glimpse_keras.data.user_videos import EXPECTED_LAYOUT

        return f"Your own videos are read as {EXPECTED_LAYOUT}."

    def class_numbers(self):
        return ()  # the classes are the data folder's own; all are used

    def describe_classes(self):
        return (
            "class numbers of --dataset videos: every class of the data folder is used, so leave "
            "data.classes empty (e.g. --config configs/videos.yaml, or --set data.classes=[])"
        )

    def class_names(self):
        raise NotImplementedError("the class names of --dataset videos come from the data: use class_names_for")

    def class_names_for(self, data_config, converted_dir=None):
        """The names the converter recorded (`videos_dataset.json` of the
        converted data), else those of the raw folder `data.data_dir`.

        Raises:
            DataDirError: neither is readable (naming the folder).
        """
        from glimpse_keras.data import user_videos

        for folder in (converted_dir, data_config.data_dir):
            if folder and filesystem.isfile(os.path.join(folder, user_videos.INFO_FILE)):
                return tuple(user_videos.class_names(folder))
        try:
            if not data_config.data_dir:
                raise user_videos.UserVideosError(
                    "--data-dir", f"is required with --dataset videos; expected {user_videos.EXPECTED_LAYOUT}")
            return tuple(user_videos.class_names(data_config.data_dir))
        except user_videos.UserVideosError as error:
            raise DataDirError(f"the class names of --dataset videos come from the data: {error}") from error

    def stored_label(self, number):
        return number

    def split_protocol(self, data_config):
        from glimpse_keras.data.user_videos import PROTOCOL

        return PROTOCOL

    def is_raw_tree(self, path):
        return self.raw_tree_problem(path) is None

    def raw_tree_problem(self, path):
        from glimpse_keras.data import user_videos

        try:
            user_videos.list_entries(path)
        except user_videos.UserVideosError as error:
            return str(error)
        return None

    def data_facts(self, data_config):
        from glimpse_keras.data import user_videos

        try:
            names, videos, with_pose, description = user_videos.read_data_facts(data_config)
        except user_videos.UserVideosError as error:
            raise ConfigError(str(error)) from error
        return DataFacts(class_names=tuple(names), videos=videos, videos_with_pose=with_pose,
                         description=tuple(description))


_REGISTRY = {}


def register(adapter):
    """Adds a dataset family; its `name` becomes a valid `data.dataset`.

    Raises:
        ValueError: the name is taken or the adapter is incomplete.
    """
    if not adapter.name or not adapter.raw_format:
        raise ValueError(f"dataset adapter {type(adapter).__name__} needs a name and a raw_format")
    if adapter.name in _REGISTRY:
        raise ValueError(f"dataset family {adapter.name!r} is already registered")
    _REGISTRY[adapter.name] = adapter
    return adapter


def names():
    """Registered family names, in registration order."""
    return tuple(_REGISTRY)


def get(name):
    """The adapter of family `name`.

    Raises:
        KeyError: naming the registered families.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset family {name!r}; registered: {list(_REGISTRY)}") from None


def formats():
    """The on-disk raw formats of the registered families."""
    return tuple(dict.fromkeys(adapter.raw_format for adapter in _REGISTRY.values()))


for _adapter in (NTUAdapter(), NUCLAAdapter(), SyntheticAdapter(), UserVideosAdapter()):
    register(_adapter)
