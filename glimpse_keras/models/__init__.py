"""Backbone, model and presets."""

from glimpse_keras.models.backbone import BACKBONE_PRESETS, InflatedResNet3D, build_backbone
from glimpse_keras.models.glimpse_clouds import GlimpseClouds
from glimpse_keras.models.presets import MODEL_PRESETS, build_core_from_preset, build_model_from_preset
