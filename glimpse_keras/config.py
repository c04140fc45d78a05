"""Typed experiment configuration: dataclasses, YAML files and `--set` overrides.

An experiment is one `ExperimentConfig`. YAML files in `configs/` hold only the
values that differ from the defaults below; `load_config(path, overrides)` reads
one, applies `section.key=value` overrides and validates the result. Every error
names the offending key and value, e.g.::

    ConfigError: model.num_glimpses: expected an integer >= 1, got 0

The config is turned into constructor arguments in exactly one place
(`glimpse_keras.experiment.Experiment`); layers and models never receive a config
object.
"""

import copy
import dataclasses
import os
import typing

import yaml

from glimpse_keras.errors import ConfigError
from glimpse_keras.yaml_values import EXPONENT_NUMBER, parse_yaml_value


def _choice(default, choices, doc):
    """A field whose value is one of `choices`: a sequence, or a function
    returning one when the value is checked (for registries)."""
    return dataclasses.field(
        default=default,
        metadata={"choices": choices if callable(choices) else tuple(choices), "doc": doc},
    )


def field_choices(field_meta):
    """The allowed values of a field (a tuple), or None."""
    choices = field_meta.get("choices")
    return tuple(choices()) if callable(choices) else choices


def _value(default, doc, minimum=None, maximum=None):
    return dataclasses.field(
        default=default, metadata={"min": minimum, "max": maximum, "doc": doc}
    )


# === Sections ===


def _dataset_families():
    from glimpse_keras.data import datasets

    return datasets.names()


@dataclasses.dataclass
class DataConfig:
    """Where the videos come from and how clips are cut from them."""

    dataset: str = _choice(
        "synthetic", _dataset_families,
        "dataset family (`data.datasets` registry; videos: your own, see data.user_videos)",
    )
    data_dir: str = _value(
        "", "raw dataset or converted shards; empty = the synthetic cache"
    )
    protocol: str = _choice(
        "xsub",
        ("xsub", "xview", "xsub120", "xset120"),
        "evaluation protocol (N-UCLA always uses its cross-view protocol)",
    )
    synthetic_preset: str = _choice(
        "demo", ("tiny", "demo"), "preset of the synthetic generator"
    )
    synthetic_seed: int = _value(0, "seed of the synthetic generator", 0)
    num_frames: int = _value(8, "frames per clip (T)", 1)
    image_size: int = _value(224, "side of the square model input, pixels", 32)
    stored_size: int = _value(256, "side of the stored JPEG frames, pixels", 32)
    classes: typing.List[int] = dataclasses.field(
        default_factory=list,
        metadata={
            "doc": "the dataset's own class numbers to train on (NTU action "
            "numbers 1..120 as in A001, N-UCLA action numbers), in label "
            "order; empty = every class"
        },
    )
    clips_per_video: int = _value(5, "clips averaged per video at test time", 1)
    test_sampling: str = _choice(
        "fixed",
        ("fixed", "random"),
        "how the test clips are cut (evaluate.py): fixed (ours: clip k takes the same offset "
        "(k + 0.5) / K in every temporal bin, centre crop) or random (the authors' code, "
        "MODEL_SPEC.md 11.15: a random frame per bin and a random crop for each clip, drawn from "
        "train.seed and the video id, so an evaluation is reproducible). predict.py and the "
        "exported SavedModel always use the fixed clips",
    )
    validation_fraction: float = _value(
        0.0,
        "share of the training split's subjects held out as a validation split (0 = none): "
        "training reads the other subjects, the per-epoch validation scores the held-out ones "
        "instead of the test split (`tune.py` ranks its trials on it)",
        0.0,
        0.5,
    )
    flip: bool = _value(False, "random horizontal flip in training")
    shuffle_buffer: int = _value(512, "training shuffle buffer, videos", 1)
    convert_workers: int = _value(2, "processes used to convert raw data", 1)


@dataclasses.dataclass
class ModelConfig:
    """Architecture; see `glimpse_keras.models.presets` for named sizes."""

    preset: str = _choice(
        "resnet50", ("resnet50", "tiny"), "named sizes of backbone and heads"
    )
    glimpse_type: str = _choice(
        "attention",
        ("attention", "tube", "random", "saliency"),
        "how glimpse locations are chosen",
    )
    backbone: str = _choice(
        "",
        ("", "resnet50", "resnet50_keras", "tiny"),
        "backbone preset replacing the model preset's (empty = the preset's)",
    )
    pretrained_weights: str = _value(
        "",
        "2D ImageNet ResNet-50 weights inflated into the backbone before the "
        "first stage: a Keras .h5 file (backbone resnet50_keras) or a .npz of a "
        "torchvision state_dict (backbone resnet50); empty = random init",
    )
    inflation: str = _choice(
        "centre", ("centre", "mean"), "how 2D kernels are inflated in time"
    )
    input_normalization: str = _choice(
        "imagenet",
        ("imagenet", "caffe"),
        "input convention: imagenet (RGB mean/std, torchvision weights) or "
        "caffe (BGR mean subtraction, Keras ResNet50 weights)",
    )
    num_classes: int = _value(60, "number of action classes", 2)
    output_stride: int = _choice(
        32,
        (32, 16, 8),
        "downsampling of the res5 map Z that glimpses crop: 32 (ResNet), 16 or "
        "8 (later stages dilated instead of strided: larger maps, same weights)",
    )
    output_stride_dilation: bool = _value(
        True,
        "below output stride 32, dilate the stages whose stride was removed "
        "(DeepLab; keeps receptive fields, right for pretrained weights) or not "
        "(more local res5 features)",
    )
    num_glimpses: int = _value(3, "glimpses per frame (G)", 1)
    num_workers: int = _value(3, "worker GRUs (C)", 1)
    detach_location: bool = _value(
        False, "stop gradients through the crop's location (authors' code)"
    )
    assign_axis: str = _choice(
        "glimpses",
        ("glimpses", "workers"),
        "softmax axis of the memory assignment (code: glimpses; paper: workers)",
    )
    time_decay: str = _choice(
        "recent",
        ("recent", "code"),
        "recent memory counts more (paper) or older memory counts more (code)",
    )
    distance: str = _choice(
        "learned",
        ("learned", "code"),
        "learned metric (paper) or fixed squared distance with batch max (code)",
    )
    memory_capacity: int = _value(
        0, "past frames kept in memory, oldest evicted first (0 = all of the clip)", 0
    )
    share_first_worker_state: bool = _value(
        False, "reproduce the authors' bug: workers share worker 0's state"
    )
    raw_location_embedding: bool = _value(
        False, "feed the pre-activation location to the what/where MLP (code)"
    )
    max_scale: float = _value(
        1.0,
        "largest glimpse scale (half the box side, 1 = the whole map, as the "
        "authors): s = max_scale * sigmoid(raw + scale_bias)",
        0.01,
        1.0,
    )
    zoomer_reset_each_frame: bool = _value(
        False,
        "restart the glimpse GRU's state at every frame (authors' code: carried "
        "across frames, which lets it settle into one schedule for every video)",
    )
    scale_bias: float = _value(
        3.0,
        "offset of the glimpse scale's sigmoid: the first glimpses have scale "
        "sigmoid(scale_bias) (authors: 3, i.e. 0.95 of the map; 0 gives 0.5)",
    )
    locator: str = _choice(
        "linear",
        ("linear", "spatial"),
        "where the glimpse locator looks from: linear (the paper: one linear map of c_t, the "
        "spatial mean of res4, and the glimpse GRU state) or spatial (a soft-argmax over the "
        "cells of the frame's res4 map, queried from the same inputs, so a glimpse can follow "
        "what is where in each video)",
    )
    locator_keypoints: int = _value(
        0,
        "spatial-softmax keypoints of the res4 map whose coordinates are appended to the "
        "locator's input (0 = none, the paper)",
        0,
    )
    fixed_glimpse_scale: float = _value(
        0.5,
        "scale of random and saliency glimpses (glimpse_type random | saliency), unless "
        "glimpse_scale_samples are given",
        0.01,
        1.0,
    )
    glimpse_map: str = _choice(
        "res5",
        ("res5", "res4"),
        "the backbone map the glimpses crop: res5 (Z, the paper) or res4 (one stage earlier: "
        "smaller receptive fields, more local detail)",
    )
    glimpse_scale_samples: typing.List[typing.List[float]] = dataclasses.field(
        default_factory=list,
        metadata={
            "doc": "[s_x, s_y] pairs that random glimpses draw their scales from (empty = "
            "fixed_glimpse_scale); filled from glimpse_scales_from when the run starts"
        },
    )
    glimpse_scales_from: str = _value(
        "",
        "an attention run (folder) or its evaluation report (JSON) whose glimpse scales random "
        "glimpses are drawn at: the like-for-like random control",
    )


# Keys that earlier versions wrote into every saved run config
# (`save_config`) and that nothing read: reading a config skips them, so those
# files still load. Section class -> key names.
_RETIRED_KEYS = {
    ModelConfig: ("variant",),  # the variant is each stage's (train.stages.N.variant)
}


@dataclasses.dataclass
class LossConfig:
    """Weights of L = L_D + w_P L_P + w_G1 L_G1 + w_G2 L_G2."""

    pose_weight: float = _value(0.1, "w_P, pose regression", 0.0)
    diversity_weight: float = _value(1.0, "w_G1, glimpse diversity", 0.0)
    attraction_weight: float = _value(1.0, "w_G2, glimpse attraction", 0.0)
    scale_weight: float = _value(
        0.0, "w_S, prior for small glimpses: mean glimpse scale (0 = off, authors)", 0.0
    )
    attraction_joints: str = _choice(
        "all",
        ("all", "hands"),
        "joints that attract the glimpses (w_G2): every joint (authors) or the hands "
        "(wrists, hands, hand tips, thumbs), where the cue of hand actions is",
    )
    diversity_form: str = _choice(
        "inverse",
        ("inverse", "exponential"),
        "glimpse diversity term: 1/(1 + mean squared spread) (authors' code) or "
        "mean exp(-distance) (paper Eq. 15; keeps a gradient when glimpses coincide)",
    )
    diversity_include_self_pairs: bool = _value(
        False,
        "average the diversity term over all G*G glimpse pairs, the G zero self-distances "
        "included (authors' code, MODEL_SPEC.md 6 and 11.8), not over the G*(G-1) pairs g != g'",
    )
    attraction_per_axis_min: bool = _value(
        False,
        "attraction to the nearest joint taken per axis: the minimum over joints of the "
        "squared x difference plus that of y, possibly from two joints (authors' code, "
        "MODEL_SPEC.md 6 and 11.9), not the squared distance to the nearest joint",
    )
    pose_matching: str = _choice(
        "total",
        ("total", "first_person"),
        "how two ground-truth persons are paired with the two pose slots: the pairing with "
        "the smaller total error (ours) or the authors' code's rule (first_person), decided "
        "on the first person's errors only (MODEL_SPEC.md 6 and 11.10)",
    )
    match_single_person: bool = _value(
        True,
        "a lone ground-truth person is matched to the closer of the two pose slots (ours); "
        "false: to the slot of its own index, the first slot for the first person (authors' "
        "code, MODEL_SPEC.md 6)",
    )


@dataclasses.dataclass
class StageConfig:
    """One training stage (the authors train in two)."""

    name: str = _value("stage", "name; also the sub-folder of the run")
    variant: str = _choice(
        "glimpse_clouds",
        ("global", "global_pose", "glimpse_gru", "glimpse_clouds"),
        "model variant trained in this stage",
    )
    epochs: int = _value(10, "epochs", 1)
    batch_size: int = _value(8, "global batch size", 1)
    learning_rate: float = _value(1e-4, "Adam learning rate", 0.0)
    freeze_backbone: bool = _value(
        False, "backbone frozen (BatchNorm in inference mode, no gradients)"
    )
    train_backbone_from: str = _choice(
        "stem",
        ("stem", "res2", "res3", "res4", "res5"),
        "with freeze_backbone false: the first backbone stage trained; the stages before it "
        "stay frozen (BatchNorm in inference mode, no gradients), which makes a step cheaper",
    )
    frozen_batchnorm: str = _choice(
        "inference",
        ("inference", "drift"),
        "BatchNorm of the frozen backbone (freeze_backbone, or the stages before "
        "train_backbone_from) in training: inference (ours: moving statistics used and kept) "
        "or drift (the authors' frozen stage 2, MODEL_SPEC.md 8 and 11.13: batch statistics "
        "used and the moving statistics updated by every step; weights still frozen)",
    )
    steps_per_epoch: int = _value(0, "0 = one pass over the training split", 0)


# train.strategy: tf.distribute's on TensorFlow, keras.distribution's on JAX
# (glimpse_keras.parallel says which backend takes which).
STRATEGIES = ("default", "mirrored", "multi_worker", "data_parallel")


@dataclasses.dataclass
class TrainConfig:
    """Optimisation, precision, distribution and bookkeeping."""

    stages: typing.List[StageConfig] = dataclasses.field(
        default_factory=lambda: [
            StageConfig(name="stage1", variant="global_pose", batch_size=10),
            StageConfig(
                name="stage2",
                variant="glimpse_clouds",
                batch_size=32,
                freeze_backbone=True,
            ),
        ],
        metadata={"doc": "stages run in order; each starts from the last"},
    )
    seed: int = _value(1234, "global random seed", 0)
    precision: str = _choice(
        "float32", ("float32", "mixed_bfloat16", "mixed_float16"), "dtype policy"
    )
    jit_compile: bool = _value(False, "XLA (slower on CPU, faster on GPU)")
    strategy: str = _choice(
        "default",
        STRATEGIES,
        "default (one device), mirrored or multi_worker (tf.distribute, TensorFlow), data_parallel "
        "(keras.distribution, JAX: every local device, several hosts)",
    )
    validate: bool = _value(
        True, "score the validation split after each epoch (the test split, or the hold-out of "
        "data.validation_fraction)"
    )


@dataclasses.dataclass
class ExperimentConfig:
    """Everything one run needs."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def validate(self):
        """Cross-field checks; raises ConfigError naming the keys."""
        if self.data.image_size > self.data.stored_size:
            raise ConfigError(
                f"data.image_size: {self.data.image_size} is larger than "
                f"data.stored_size={self.data.stored_size}; the crop must fit"
            )
        if self.data.image_size % 32:
            raise ConfigError(
                f"data.image_size: expected a multiple of 32 (the backbone "
                f"downsamples by 32), got {self.data.image_size}"
            )
        classes = self.data.classes
        if len(set(classes)) != len(classes):
            raise ConfigError(f"data.classes: class numbers repeat: {classes}")
        from glimpse_keras.data import datasets

        family = datasets.get(self.data.dataset)
        valid, described = set(family.class_numbers()), family.describe_classes()
        unknown = [number for number in classes if number not in valid]
        if unknown:
            raise ConfigError(f"data.classes: {unknown} are not {described}")
        if classes and len(classes) != self.model.num_classes:
            raise ConfigError(
                f"model.num_classes: {self.model.num_classes} differs from the "
                f"{len(classes)} classes of data.classes {classes}; the model needs one "
                f"output per class"
            )
        for index, pair in enumerate(self.model.glimpse_scale_samples):
            if len(pair) != 2 or not all(0.0 < value <= 1.0 for value in pair):
                raise ConfigError(
                    f"model.glimpse_scale_samples[{index}]: expected a pair [s_x, s_y] in (0, 1], "
                    f"got {pair!r}"
                )
        if not self.train.stages:
            raise ConfigError("train.stages: at least one stage is required")
        names = [stage.name for stage in self.train.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"train.stages: stage names repeat: {names}")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)


# === Conversion from plain data ===


def _type_name(tp):
    return getattr(tp, "__name__", str(tp))


def _coerce(key, value, tp, field_meta):
    """Checks `value` against the annotation `tp` and the field's limits."""
    origin = typing.get_origin(tp)
    if origin in (list, typing.List):
        (item_type,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [
            _coerce(f"{key}[{i}]", item, item_type, {})
            for i, item in enumerate(value)
        ]
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, str) and EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
    else:
        raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")
    choices = field_choices(field_meta)
    if choices and value not in choices:
        raise ConfigError(
            f"{key}: expected one of {', '.join(map(str, choices))}; "
            f"got {value!r}"
        )
    low, high = field_meta.get("min"), field_meta.get("max")
    if low is not None and value < low:
        raise ConfigError(f"{key}: expected a value >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{key}: expected a value <= {high}, got {value!r}")
    return value


def _from_dict(cls, values, prefix):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {values!r}")
    values = {key: value for key, value in values.items() if key not in _RETIRED_KEYS.get(cls, ())}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown key {where}{unknown[0]} (valid keys in "
            f"{prefix or 'the top level'}: {', '.join(sorted(fields))})"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(key, value, hints[name], fields[name].metadata)
    return cls(**kwargs)


def config_from_dict(values):
    """Builds and validates an ExperimentConfig from nested plain data."""
    return _from_dict(ExperimentConfig, values, "").validate()


# === Overrides and files ===


def _set_path(tree, dotted, value):
    parts = dotted.split(".")
    node = tree
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, ".".join(parts[: i + 1]))
            continue
        node = node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"{'.'.join(parts[: i + 1])}: is not a section")
    last = parts[-1]
    if isinstance(node, list):
        index = _index(last, dotted)
        _list_item(node, last, dotted)
        node[index] = value
    else:
        node[last] = value


def _index(text, key):
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{key}: '{text}' is not a list index") from None


def _list_item(items, text, key):
    index = _index(text, key)
    if not 0 <= index < len(items):
        raise ConfigError(f"{key}: index {index} is out of range (0..{len(items) - 1})")
    return items[index]


def apply_overrides(values, overrides):
    """Applies `section.key=value` strings (values parsed as YAML) to a dict.

    List items are addressed by index, e.g. `train.stages.1.epochs=3`.
    """
    values = copy.deepcopy(values)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(
                f"override {item!r}: expected the form section.key=value"
            )
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r}: the key is empty")
        try:
            value = parse_yaml_value(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{key}: cannot parse value {text!r}: {error}")
        _set_path(values, key, value)
    return values


def _defaults_with_stages():
    """Default config as plain data (stages included, so they can be indexed)."""
    return ExperimentConfig().to_dict()


def read_yaml(path):
    """Reads a YAML mapping; errors name the file."""
    if os.path.isdir(path):
        inside = os.path.join(path, "config.yaml")
        hint = f" (did you mean {inside!r}, the config of the run there?)" if os.path.isfile(inside) else ""
        raise ConfigError(f"config file {path!r} is a folder, not a YAML file{hint}")
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path!r} is not valid YAML: {error}")
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path!r} is not a text file (not UTF-8: {error.reason} at byte "
                          f"{error.start})") from None
    except OSError as error:
        raise ConfigError(f"config file {path!r} cannot be read: {error.strerror or error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path!r}: expected a mapping at the top")
    return values


def _merge(base, update):
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path=None, overrides=()):
    """Defaults <- YAML file (if any) <- overrides; validated.

    Args:
        path: YAML file with a subset of the keys, or None for the defaults.
        overrides: iterable of `section.key=value` strings.

    Returns:
        ExperimentConfig.

    Raises:
        ConfigError: naming the file, key or value that is wrong.
    """
    values = _defaults_with_stages()
    if path:
        file_values = read_yaml(path)
        # Validate the file's keys before merging so errors point at the file.
        try:
            _from_dict(ExperimentConfig, file_values, "")
        except ConfigError as error:
            raise ConfigError(f"config file {path!r}: {error}") from None
        values = _merge(values, file_values)
    values = apply_overrides(values, overrides)
    return config_from_dict(values)


def add_config_arguments(parser, default_config, set_example):
    """Adds the options every config-driven CLI shares to an argparse parser.

    --dataset, --data-dir, --config and the repeatable --set KEY=VALUE; turn
    the parsed values into overrides with `overrides_from_args`.

    Args:
        parser: `argparse.ArgumentParser`.
        default_config: path shown as --config's default.
        set_example: a `section.key=value` shown in --set's help.
    """
    parser.add_argument("--dataset", choices=field_choices(DataConfig.__dataclass_fields__["dataset"].metadata),
                        help="overrides data.dataset")
    parser.add_argument("--data-dir", help="raw dataset or converted shards (overrides data.data_dir)")
    parser.add_argument("--config", help=f"experiment YAML (default: {os.path.relpath(default_config)})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value, e.g. --set {set_example} (repeatable)")


def overrides_from_args(args):
    """`--data-dir` and `--dataset` as overrides, before the `--set` ones.

    Args:
        args: an argparse namespace from a parser given `add_config_arguments`.

    Returns:
        list of `section.key=value` strings for `load_config`.
    """
    overrides = []
    if args.data_dir:
        overrides.append(f"data.data_dir={args.data_dir}")
    if args.dataset:
        overrides.append(f"data.dataset={args.dataset}")
    return overrides + list(args.overrides)


def save_config(config, path):
    """Writes the resolved config as YAML, atomically."""
    from glimpse_keras.io_utils import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
