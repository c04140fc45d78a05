"""Custom Keras layers of Glimpse Clouds (all registered under "glimpse_keras")."""

from glimpse_keras.layers.glimpse_clouds_core import GlimpseCloudsCore
from glimpse_keras.layers.glimpse_crop import GlimpseCrop
from glimpse_keras.layers.glimpse_locator import GlimpseLocator
from glimpse_keras.layers.memory_soft_assignment import MemorySoftAssignment
from glimpse_keras.layers.multi_worker_gru_cell import MultiWorkerGRUCell
from glimpse_keras.layers.spatial_glimpse_locator import SpatialGlimpseLocator
from glimpse_keras.layers.spatial_glimpse_locator import SpatialKeypoints
from glimpse_keras.layers.what_where_fusion import WhatWhereFusion
from glimpse_keras.layers.worker_classifier import WorkerClassifier
from glimpse_keras.layers.worker_gru_cell import WorkerGRUCell

__all__ = [
    "GlimpseCloudsCore",
    "GlimpseCrop",
    "GlimpseLocator",
    "MemorySoftAssignment",
    "MultiWorkerGRUCell",
    "SpatialGlimpseLocator",
    "SpatialKeypoints",
    "WhatWhereFusion",
    "WorkerClassifier",
    "WorkerGRUCell",
]
