"""The search space: what is tuned, and how drawn values become a config.

The space is plain data: each `HyperParameterSpec` names a config field (its
`target`), so drawing values only copies the base config and writes them into
it (`apply_hyperparameters`); no `hp` reaches model code.
"""

import copy
import dataclasses

import yaml

from glimpse_keras import config as config_lib
from glimpse_keras.errors import GlimpseError
from glimpse_keras.models.glimpse_clouds import GLOBAL_VARIANTS

KINDS = ("int", "float", "choice")
SAMPLINGS = ("linear", "log", "reverse_log")
# `stage.<field>` addresses the tuned stage, i.e. the config's last stage.
STAGE_PREFIX = "stage."

# The default search space: G, C, the learning rate and the three loss
# weights, centred on the paper's values (G = C = 3, lr 1e-4, w_P = 0.1,
# w_G1 = w_G2 = 1). Every entry can be replaced or removed (set to null).
DEFAULT_SEARCH_SPACE = {
    "num_glimpses": {"type": "int", "min": 1, "max": 4, "target": "model.num_glimpses"},
    "num_workers": {"type": "int", "min": 1, "max": 4, "target": "model.num_workers"},
    "learning_rate": {
        "type": "float", "min": 1.0e-5, "max": 1.0e-3, "sampling": "log",
        "target": "stage.learning_rate",
    },
    "pose_weight": {
        "type": "float", "min": 0.01, "max": 1.0, "sampling": "log",
        "target": "loss.pose_weight",
    },
    "diversity_weight": {
        "type": "float", "min": 0.1, "max": 10.0, "sampling": "log",
        "target": "loss.diversity_weight",
    },
    "attraction_weight": {
        "type": "float", "min": 0.1, "max": 10.0, "sampling": "log",
        "target": "loss.attraction_weight",
    },
}
# Config fields that only matter when the tuned stage uses glimpses.
GLIMPSE_ONLY_TARGETS = (
    "model.num_glimpses", "model.num_workers", "loss.diversity_weight",
    "loss.attraction_weight",
)


class SearchSpaceError(GlimpseError, ValueError):
    """A search-space entry (or a resumed search's settings) is invalid."""


@dataclasses.dataclass(frozen=True)
class HyperParameterSpec:
    """One tuned value and the config field it sets.

    Attributes:
        name: keras-tuner name (also the column of the results table).
        kind: 'int', 'float' or 'choice'.
        target: dotted config path, e.g. 'model.num_glimpses'; 'stage.<field>'
            means that field of the tuned (last) stage.
        min_value, max_value: inclusive bounds ('int', 'float').
        step: grid step (None = continuous float / step 1 for int).
        sampling: 'linear', 'log' or 'reverse_log' ('log' needs min > 0).
        values: the candidates of a 'choice'.
    """

    name: str
    kind: str
    target: str
    min_value: object = None
    max_value: object = None
    step: object = None
    sampling: str = "linear"
    values: tuple = ()

    def register(self, hp):
        """Declares this hyperparameter on `hp` and returns its value."""
        if self.kind == "int":
            return hp.Int(self.name, self.min_value, self.max_value,
                          step=self.step or 1, sampling=self.sampling)
        if self.kind == "float":
            return hp.Float(self.name, self.min_value, self.max_value,
                            step=self.step, sampling=self.sampling)
        return hp.Choice(self.name, list(self.values))

    def to_dict(self):
        """The YAML/JSON form accepted by `load_search_space`."""
        entry = {"type": self.kind, "target": self.target}
        if self.kind == "choice":
            entry["values"] = list(self.values)
        else:
            entry.update(min=self.min_value, max=self.max_value, sampling=self.sampling)
            if self.step is not None:
                entry["step"] = self.step
        return entry


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _spec_from_entry(name, entry):
    where = f"search space entry {name!r}"
    if not isinstance(entry, dict):
        raise SearchSpaceError(f"{where}: expected a mapping, got {entry!r}")
    allowed = {"type", "target", "min", "max", "step", "sampling", "values"}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SearchSpaceError(
            f"{where}: unknown key {unknown[0]!r} (valid: {', '.join(sorted(allowed))})"
        )
    kind = entry.get("type")
    if kind not in KINDS:
        raise SearchSpaceError(f"{where}: type must be one of {KINDS}, got {kind!r}")
    target = entry.get("target")
    if not isinstance(target, str) or "." not in target:
        raise SearchSpaceError(
            f"{where}: target must be a dotted config path such as "
            f"'model.num_glimpses' or 'stage.learning_rate', got {target!r}"
        )
    if kind == "choice":
        values = entry.get("values")
        if not isinstance(values, (list, tuple)) or not values:
            raise SearchSpaceError(f"{where}: a choice needs a non-empty list 'values', got {values!r}")
        return HyperParameterSpec(name, kind, target, values=tuple(values))
    low, high, step = entry.get("min"), entry.get("max"), entry.get("step")
    sampling = entry.get("sampling", "linear")
    if not (_is_number(low) and _is_number(high)):
        raise SearchSpaceError(f"{where}: 'min' and 'max' must be numbers, got {low!r} and {high!r}")
    if low > high:
        raise SearchSpaceError(f"{where}: min {low!r} is larger than max {high!r}")
    if kind == "int" and not (isinstance(low, int) and isinstance(high, int)):
        raise SearchSpaceError(f"{where}: an int range needs integer bounds, got {low!r}..{high!r}")
    if sampling not in SAMPLINGS:
        raise SearchSpaceError(f"{where}: sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if sampling != "linear" and low <= 0:
        raise SearchSpaceError(f"{where}: {sampling} sampling needs min > 0, got {low!r}")
    if step is not None and not (_is_number(step) and step > 0):
        raise SearchSpaceError(f"{where}: step must be a positive number, got {step!r}")
    if kind == "float":
        low, high = float(low), float(high)
    return HyperParameterSpec(name, kind, target, low, high, step, sampling)


def parse_search_space(entries):
    """Turns a `{name: entry}` mapping into specs (entries set to None are dropped).

    Raises:
        SearchSpaceError: naming the entry and the bad key or value.
    """
    if not isinstance(entries, dict):
        raise SearchSpaceError(f"search space: expected a mapping of name -> entry, got {entries!r}")
    specs = tuple(
        _spec_from_entry(str(name), entry) for name, entry in entries.items() if entry is not None
    )
    if not specs:
        raise SearchSpaceError("search space: every entry was removed; nothing to tune")
    targets = [spec.target for spec in specs]
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise SearchSpaceError(f"search space: several entries set {repeated[0]}")
    return specs


def load_search_space(path=None, overrides=()):
    """Default space <- YAML file (if any) <- `name.key=value` overrides.

    A file or override entry is merged key by key into the default entry of
    the same name (so `num_glimpses.max=6` keeps the rest); `null` removes an
    entry, a new name adds one (it then needs `type` and `target`).

    Returns:
        tuple of `HyperParameterSpec`.

    Raises:
        SearchSpaceError: naming the file, entry, key or value.
    """
    entries = copy.deepcopy(DEFAULT_SEARCH_SPACE)
    if path:
        try:
            file_entries = config_lib.read_yaml(path)
        except config_lib.ConfigError as error:
            raise SearchSpaceError(str(error).replace("config file", "search space file")) from None
        for name, entry in file_entries.items():
            _merge_entry(entries, str(name), entry, f"search space file {path!r}")
    for item in overrides or ():
        name, key, value = _parse_space_override(item)
        if key is None:
            _merge_entry(entries, name, value, f"override {item!r}")
        else:
            base = entries.get(name) or {}
            entries[name] = {**base, key: value}
    return parse_search_space(entries)


def _merge_entry(entries, name, entry, source):
    if entry is None:
        entries[name] = None
    elif isinstance(entry, dict):
        entries[name] = {**(entries.get(name) or {}), **entry}
    else:
        raise SearchSpaceError(f"{source}: entry {name!r} must be a mapping or null, got {entry!r}")


def _parse_space_override(item):
    if "=" not in item:
        raise SearchSpaceError(f"space override {item!r}: expected name.key=value or name=null")
    path, text = item.split("=", 1)
    try:
        value = config_lib.parse_yaml_value(text)
    except yaml.YAMLError as error:
        raise SearchSpaceError(f"space override {item!r}: cannot parse the value: {error}") from None
    parts = path.strip().split(".")
    if len(parts) == 1 and parts[0]:
        return parts[0], None, value
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1], value
    raise SearchSpaceError(f"space override {item!r}: expected name.key=value or name=null")


# === Hyperparameters -> config ===


def resolve_target(config, target):
    """The dotted path `target` with 'stage.' replaced by the last stage's index."""
    if target.startswith(STAGE_PREFIX):
        last = len(config.train.stages) - 1
        return f"train.stages.{last}.{target[len(STAGE_PREFIX):]}"
    return target


def _set_field(values, dotted, value, target):
    node = values
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            index = int(part) if part.isdigit() else None
            if index is None or index >= len(node):
                raise SearchSpaceError(f"target {target!r}: {where} is not a stage index")
            key = index
        elif isinstance(node, dict) and part in node:
            key = part
        else:
            raise SearchSpaceError(f"target {target!r}: the config has no field {where}")
        if depth == len(parts) - 1:
            if isinstance(node[key], (dict, list)):
                raise SearchSpaceError(f"target {target!r}: {where} is a section, not a field")
            node[key] = value
        else:
            node = node[key]


def apply_hyperparameters(config, space, values):
    """A copy of `config` with each spec's target set to `values[spec.name]`.

    Names missing from `values` keep the config's value (keras-tuner's
    conditional hyperparameters may be inactive).

    Returns:
        a validated `ExperimentConfig`.

    Raises:
        SearchSpaceError: a target that names no config field.
        ConfigError: a value outside the field's limits (naming the field).
    """
    tree = config.to_dict()
    for spec in space:
        if spec.name in values:
            value = values[spec.name]
            if hasattr(value, "item"):  # numpy scalars from the oracle
                value = value.item()
            _set_field(tree, resolve_target(config, spec.target), value, spec.target)
    return config_lib.config_from_dict(tree)


def check_search_space(config, space):
    """Checks that every bound/choice is a valid value of its config field.

    Raises:
        SearchSpaceError: naming the entry, its target and the reason.
    """
    tuned = config.train.stages[-1]
    for spec in space:
        if spec.target in GLIMPSE_ONLY_TARGETS and tuned.variant in GLOBAL_VARIANTS:
            raise SearchSpaceError(
                f"search space entry {spec.name!r}: {spec.target} has no effect because "
                f"the tuned stage {tuned.name!r} uses variant {tuned.variant!r}; remove "
                f"the entry ({spec.name}=null) or tune a glimpse stage"
            )
        candidates = spec.values if spec.kind == "choice" else (spec.min_value, spec.max_value)
        for candidate in candidates:
            try:
                apply_hyperparameters(config, (spec,), {spec.name: candidate})
            except config_lib.ConfigError as error:
                raise SearchSpaceError(
                    f"search space entry {spec.name!r}: value {candidate!r} is not valid "
                    f"for {spec.target}: {error}"
                ) from None
