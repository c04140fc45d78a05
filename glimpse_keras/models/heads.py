"""Output heads of Glimpse Clouds: pose regression and the global classifier.

The per-worker classifiers live in `glimpse_keras.layers.worker_classifier`.
"""

import keras
from keras import ops

from glimpse_keras.layers.initialization import check_initialization
from glimpse_keras.layers.initialization import dense_initializers
from glimpse_keras.arguments import check_int


@keras.saving.register_keras_serializable(package="glimpse_keras")
class PoseHead(keras.layers.Layer):
    """Per-frame 2D pose regression from the frame context vector c_t.

    `pose_t = tanh(W c_t + b)` reshaped to `(persons, joints, 2)`: coordinates
    in [-1, 1] of the input crop, x along the width.

    Args:
        num_persons: int, person slots predicted per frame.
        num_joints: int, joints per person.
        initialization: "torch" (PyTorch Linear default, as the authors) or
            "keras" (Glorot kernel, zero bias).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        context: float tensor `(batch, time, channels)`, the spatial mean of
            the res4 map.

    Returns:
        `(batch, time, num_persons, num_joints, 2)` tensor in [-1, 1].

    Raises:
        ValueError: for a non-positive size or an unknown `initialization`.

    Reference:
        MODEL_SPEC.md section 1 ("Pose head").
    """

    def __init__(self, num_persons=2, num_joints=25, initialization="torch", **kwargs):
        super().__init__(**kwargs)
        self.num_persons = check_int("num_persons", num_persons)
        self.num_joints = check_int("num_joints", num_joints)
        self.initialization = check_initialization(initialization)

    def build(self, context_shape):
        fan_in = int(context_shape[-1])
        kernel_init, bias_init = dense_initializers(self.initialization, fan_in)
        outputs = self.num_persons * self.num_joints * 2
        self.kernel = self.add_weight(name="kernel", shape=(fan_in, outputs), initializer=kernel_init)
        self.bias = self.add_weight(name="bias", shape=(outputs,), initializer=bias_init)

    def call(self, context):
        pose = ops.tanh(ops.matmul(context, self.kernel) + self.bias)
        shape = ops.shape(context)
        return ops.reshape(pose, (shape[0], shape[1], self.num_persons, self.num_joints, 2))

    def compute_output_shape(self, context_shape):
        return tuple(context_shape[:2]) + (self.num_persons, self.num_joints, 2)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_persons": self.num_persons,
                "num_joints": self.num_joints,
                "initialization": self.initialization,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="glimpse_keras")
class GlobalPoolClassifier(keras.layers.Layer):
    """The global model's head: average pool over time and space, then linear.

    Args:
        num_classes: int, number of classes.
        initialization: "torch" or "keras", as `PoseHead`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        feature_map: float tensor `(batch, time, height, width, channels)`, Z.

    Returns:
        `(batch, num_classes)` logits.

    Raises:
        ValueError: for a non-positive `num_classes` or unknown `initialization`.

    Reference:
        MODEL_SPEC.md section 1 ("Global-model classifier").
    """

    def __init__(self, num_classes, initialization="torch", **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes)
        self.initialization = check_initialization(initialization)

    def build(self, feature_map_shape):
        channels = int(feature_map_shape[-1])
        kernel_init, bias_init = dense_initializers(self.initialization, channels)
        self.kernel = self.add_weight(
            name="kernel", shape=(channels, self.num_classes), initializer=kernel_init
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_classes,), initializer=bias_init)

    def call(self, feature_map):
        pooled = ops.mean(feature_map, axis=(1, 2, 3))
        return ops.matmul(pooled, self.kernel) + self.bias

    def compute_output_shape(self, feature_map_shape):
        return (feature_map_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "initialization": self.initialization})
        return config
