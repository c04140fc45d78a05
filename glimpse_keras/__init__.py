"""glimpse-keras: Glimpse Clouds (Baradel et al., CVPR 2018) in Keras 3, on TensorFlow or JAX.

Import the parts you need: `glimpse_keras.models` (backbone, GlimpseClouds,
presets), `glimpse_keras.layers`, `glimpse_keras.data` (readers, synthetic
generator, conversion, tf.data pipeline), `glimpse_keras.training`,
`glimpse_keras.export`, `glimpse_keras.tuning`, `glimpse_keras.visualize`.
The model (`models`, `layers`, `losses`, `backends`) imports without
TensorFlow; the data pipeline, training jobs and the export need it. Nothing
is imported here, so importing the package loads no framework.

`from glimpse_keras import Classifier` is the Python API of a trained model
(`glimpse_keras.classifier`: predict, timeline, stream); it is imported on
first use.
"""

__version__ = "0.1.0"


def __getattr__(name):
    if name == "Classifier":
        from glimpse_keras.classifier import Classifier

        return Classifier
    raise AttributeError(f"module 'glimpse_keras' has no attribute {name!r}")
