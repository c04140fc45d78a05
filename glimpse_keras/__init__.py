"""glimpse-keras: Glimpse Clouds (Baradel et al., CVPR 2018) in Keras 3 / TensorFlow.

Import the parts you need: `glimpse_keras.models` (backbone, GlimpseClouds,
presets), `glimpse_keras.layers`, `glimpse_keras.data` (readers, synthetic
generator, conversion, tf.data pipeline), `glimpse_keras.training`,
`glimpse_keras.export`, `glimpse_keras.tuning`, `glimpse_keras.visualize`.
"""

__version__ = "0.1.0"
