"""Named GlimpseClouds configurations ("presets").

Each preset names the model's parts: its backbone (a `BACKBONE_PRESETS`
name), the sizes of its glimpse core (`GlimpseCloudsCore` arguments), its
class count, and the clip size it is meant for (`num_frames`, `image_size`);
the model itself accepts any T and any H, W divisible by 32.

    model = build_model_from_preset("tiny", num_classes=10)
    gru = build_model_from_preset("tiny", num_classes=10, variant="glimpse_gru")
    core = build_core_from_preset("tiny", memory=MemorySoftAssignment(3, 3, time_decay="code"))
    model = build_model_from_preset("tiny", num_classes=10, core=core)
"""

import copy

from glimpse_keras.errors import GlimpseError

MODEL_PRESETS = {
    # The authors' configuration (MODEL_SPEC.md section 12): inflated
    # ResNet-50, G = 3 glimpses, C = 3 workers, zoomer and worker GRUs of 512,
    # what/where MLP of 256, 8 frames of 224 x 224, NTU's 60 classes.
    "resnet50": {
        "backbone": "resnet50",
        "core": {
            "num_glimpses": 3,
            "num_workers": 3,
            "zoomer_units": 512,
            "worker_units": 512,
            "fusion_hidden_units": 256,
        },
        "num_classes": 60,
        "num_frames": 8,
        "image_size": 224,
    },
    # A few-second-per-step model for tests and the synthetic demo.
    "tiny": {
        "backbone": "tiny",
        "core": {
            "num_glimpses": 3,
            "num_workers": 3,
            "zoomer_units": 32,
            "worker_units": 32,
            "fusion_hidden_units": 16,
        },
        "num_classes": 60,
        "num_frames": 4,
        "image_size": 64,
    },
}


class UnknownPresetError(GlimpseError, ValueError):
    """A model preset name that is not in `MODEL_PRESETS`."""


def get_model_preset(name):
    """Returns a deep copy of a preset.

    Args:
        name: a key of `MODEL_PRESETS`.

    Returns:
        dict with "backbone" (a backbone preset name), "core" (sizes of the
        glimpse core: `GlimpseCloudsCore` arguments), "num_classes",
        "num_frames" and "image_size".

    Raises:
        UnknownPresetError: naming the preset and the known ones.
    """
    if name not in MODEL_PRESETS:
        raise UnknownPresetError(f"unknown model preset {name!r}; known: {sorted(MODEL_PRESETS)}")
    return copy.deepcopy(MODEL_PRESETS[name])


def preset_video_shape(name):
    """The `(T, H, W, 3)` clip shape a preset is meant for."""
    preset = get_model_preset(name)
    size = preset["image_size"]
    return (preset["num_frames"], size, size, 3)


def build_core_from_preset(name, variant="glimpse_clouds", **overrides):
    """Builds the glimpse core of a preset for a glimpse variant.

    Args:
        name: a key of `MODEL_PRESETS`.
        variant: "glimpse_clouds" (aggregation "workers", with a memory) or
            "glimpse_gru" (aggregation "gru", no memory).
        **overrides: `GlimpseCloudsCore` arguments replacing the preset's
            sizes or the defaults (e.g. `memory=MemorySoftAssignment(...)`,
            `glimpse_type="random"`, `locator="spatial"`).

    Returns:
        An unbuilt `GlimpseCloudsCore` named "glimpse_clouds_core", in float32
        under a mixed policy (`glimpse_clouds.core_dtype_policy`).

    Raises:
        UnknownPresetError: for an unknown name.
        ModelConfigError: for a global variant (no core) or an unknown one.
    """
    from glimpse_keras.layers.glimpse_clouds_core import GlimpseCloudsCore
    from glimpse_keras.models.glimpse_clouds import VARIANT_AGGREGATIONS, ModelConfigError, core_dtype_policy

    if variant not in VARIANT_AGGREGATIONS:
        raise ModelConfigError(
            f"variant {variant!r} has no glimpse core; the glimpse variants are {sorted(VARIANT_AGGREGATIONS)}."
        )
    arguments = get_model_preset(name)["core"]
    arguments.update(aggregation=VARIANT_AGGREGATIONS[variant], dtype=core_dtype_policy(), name="glimpse_clouds_core")
    arguments.update(overrides)
    return GlimpseCloudsCore(**arguments)


def build_model_from_preset(name, **overrides):
    """Builds a `GlimpseClouds` from a preset's backbone and core.

    Args:
        name: a key of `MODEL_PRESETS`.
        **overrides: GlimpseClouds arguments replacing the preset's
            (`num_classes`, `variant`, `freeze_backbone`, loss weights, ...;
            `backbone=` another backbone, `core=` another core, e.g. from
            `build_core_from_preset`). Without `core`, a glimpse variant gets
            the preset's core for its variant and a global variant none (its
            zero glimpse outputs keep the preset's G and C).

    Returns:
        An unbuilt `GlimpseClouds` (weights are created on the first call).

    Raises:
        UnknownPresetError: for an unknown name.
    """
    from glimpse_keras.models.backbone import build_backbone
    from glimpse_keras.models.glimpse_clouds import (
        GLOBAL_VARIANTS,
        VARIANT_AGGREGATIONS,
        GlimpseClouds,
        core_dtype_policy,
    )

    preset = get_model_preset(name)
    arguments = {"num_classes": preset["num_classes"]}
    arguments.update(overrides)
    # The backbone is built before the core, as the model builds its parts:
    # the same seed then gives the same initial weights either way.
    if isinstance(arguments.setdefault("backbone", preset["backbone"]), str):
        arguments["backbone"] = build_backbone(arguments["backbone"])
    variant = arguments.get("variant", "glimpse_clouds")
    if "core" not in arguments and variant in VARIANT_AGGREGATIONS:
        arguments["core"] = build_core_from_preset(
            name, variant, dtype=core_dtype_policy(arguments.get("dtype"))
        )
    elif "core" not in arguments and variant in GLOBAL_VARIANTS:
        arguments.setdefault("num_glimpses", preset["core"]["num_glimpses"])
        arguments.setdefault("num_workers", preset["core"]["num_workers"])
    return GlimpseClouds(**arguments)
