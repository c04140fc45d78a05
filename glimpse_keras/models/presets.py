"""Named GlimpseClouds configurations ("presets").

Each preset holds the model's constructor arguments (`kwargs`) and the clip
size it is meant for (`num_frames`, `image_size`); the model itself accepts
any T and any H, W divisible by 32.
"""

import copy

from glimpse_keras.errors import GlimpseError

MODEL_PRESETS = {
    # The authors' configuration (MODEL_SPEC.md section 12): inflated
    # ResNet-50, G = 3 glimpses, C = 3 workers, zoomer and worker GRUs of 512,
    # what/where MLP of 256, 8 frames of 224 x 224, NTU's 60 classes.
    "resnet50": {
        "kwargs": {
            "num_classes": 60,
            "backbone": "resnet50",
            "num_glimpses": 3,
            "num_workers": 3,
            "zoomer_units": 512,
            "worker_units": 512,
            "where_units": 256,
        },
        "num_frames": 8,
        "image_size": 224,
    },
    # A few-second-per-step model for tests and the synthetic demo.
    "tiny": {
        "kwargs": {
            "num_classes": 60,
            "backbone": "tiny",
            "num_glimpses": 3,
            "num_workers": 3,
            "zoomer_units": 32,
            "worker_units": 32,
            "where_units": 16,
        },
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
        dict with "kwargs" (GlimpseClouds arguments), "num_frames" and
        "image_size".

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


def build_model_from_preset(name, **overrides):
    """Builds a `GlimpseClouds` from a preset plus constructor overrides.

    Args:
        name: a key of `MODEL_PRESETS`.
        **overrides: GlimpseClouds arguments replacing the preset's.

    Returns:
        An unbuilt `GlimpseClouds` (weights are created on the first call).

    Raises:
        UnknownPresetError: for an unknown name.
    """
    from glimpse_keras.models.glimpse_clouds import GlimpseClouds

    kwargs = get_model_preset(name)["kwargs"]
    kwargs.update(overrides)
    return GlimpseClouds(**kwargs)
