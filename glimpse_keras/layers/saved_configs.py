"""Argument names of earlier versions, translated when a saved config loads.

Earlier versions called `time_decay` `decay` (values "recency" | "code"),
`raw_location_embedding` `use_raw_location` and `memory_capacity`
`memory_frames` (None = every frame). Configs saved then (`.keras` files,
`get_config` JSON) still load: each layer's `from_config` passes its config
through `with_current_names`. The constructors take the current names only.
"""

# Old name -> (current name, function mapping an old value to the current one).
OLD_ARGUMENT_NAMES = {
    "decay": ("time_decay", lambda value: "recent" if value == "recency" else value),
    "use_raw_location": ("raw_location_embedding", bool),
    "memory_frames": ("memory_capacity", lambda value: value or 0),
}


def with_current_names(config):
    """A copy of a saved layer or model config with the old argument names
    (`OLD_ARGUMENT_NAMES`) replaced by the current ones, values translated.

    Raises:
        ValueError: the config holds an old name and its current name both.
    """
    config = dict(config)
    for old, (new, translate) in OLD_ARGUMENT_NAMES.items():
        if old not in config:
            continue
        if new in config:
            raise ValueError(
                f"a saved config holds both `{old}` (the old name of `{new}`) and `{new}`: "
                f"{old}={config[old]!r}, {new}={config[new]!r}."
            )
        config[new] = translate(config.pop(old))
    return config
