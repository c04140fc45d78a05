"""TensorFlow pieces: the `GradientTape` training step, BiasAdd, tf.function.

Imported by `glimpse_keras.backends` only when Keras runs on TensorFlow.
"""

import tensorflow as tf


class TrainingSteps:
    """`train_step`, `test_step`, `predict_step` of `GlimpseClouds` on TensorFlow.

    The steps follow the Keras guide "customizing what happens in fit() with
    TensorFlow": one forward pass under a `GradientTape`, the model's loss
    terms (`compute_loss_terms`) and metric trackers (`_update_metrics`).
    Under `tf.distribute` the optimizer sums the replicas' gradients, so each
    replica's mean loss is divided by the number of replicas.
    """

    def train_step(self, data):
        inputs, targets = self._unpack_data(data)
        with tf.GradientTape() as tape:
            outputs = self(inputs, training=True)
            terms = self.compute_loss_terms(targets, outputs)
            loss = self._loss_to_minimise(terms, self.losses)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(loss / replicas)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply(gradients, variables)
        return self._update_metrics(terms, targets, outputs)

    def test_step(self, data):
        inputs, targets = self._unpack_data(data)
        outputs = self(inputs, training=False)
        terms = self.compute_loss_terms(targets, outputs)
        return self._update_metrics(terms, targets, outputs)

    def predict_step(self, data):
        inputs = self._unpack_data(data, with_targets=False)
        return self(inputs, training=False)


def bias_add(x, bias):
    # BiasAdd rather than an AddV2: Grappler's remapper fuses Conv3D +
    # BiasAdd (+ ReLU) into one oneDNN call (folded ResNet-50 backbone
    # measured 0.389 -> 0.360 s per clip).
    return tf.nn.bias_add(x, bias)


def compile_forward(function, model):
    # reduce_retracing: the last batch of a dataset is smaller; one trace
    # serves both.
    return tf.function(function, reduce_retracing=True)
