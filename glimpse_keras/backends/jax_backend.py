"""JAX pieces: the stateless training steps and a jitted inference forward.

Imported by `glimpse_keras.backends` only when Keras runs on JAX. The steps
follow the Keras guide "customizing what happens in fit() with JAX": every
step receives the model's state as arrays (trainable, non-trainable,
optimizer and metric variables), computes the loss with `stateless_call`,
differentiates it with `jax.value_and_grad`, updates with the optimizer's
`stateless_apply` and returns the new state; `fit` jits the step and writes
the state back into the Keras variables at the end of every epoch.
"""

import jax
import keras
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec


class TrainingSteps:
    """`train_step`, `test_step`, `predict_step` of `GlimpseClouds` on JAX.

    The same loss terms (`compute_loss_terms`), weighted total and metric
    trackers (`_update_metrics`) as on TensorFlow. Loss scaling (a
    `LossScaleOptimizer`, which `compile` adds under "mixed_float16") reads
    its scale from the optimizer state passed in.
    """

    def _stateless_loss(self, trainable, non_trainable, optimizer_state, inputs, targets, training):
        """Scaled loss and `(terms, outputs, non_trainable)`, for `jax.grad`."""
        outputs, non_trainable, extra_losses = self.stateless_call(
            trainable, non_trainable, inputs, training=training, return_losses=True
        )
        terms = self.compute_loss_terms(targets, outputs)
        loss = self._loss_to_minimise(terms, extra_losses)
        if training:
            mapping = list(zip(self.optimizer.variables, optimizer_state))
            with keras.StatelessScope(state_mapping=mapping):
                loss = self.optimizer.scale_loss(loss)
        return loss, (terms, outputs, non_trainable)

    def _stateless_metrics(self, metrics_state, terms, targets, outputs):
        """Updates the trackers on `metrics_state`; returns (logs, new state)."""
        mapping = list(zip(self.metrics_variables, metrics_state))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self._update_metrics(terms, targets, outputs)
        new_state = []
        for variable, value in zip(self.metrics_variables, metrics_state):
            current = scope.get_current_value(variable)
            new_state.append(value if current is None else current)
        return logs, new_state

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_state, metrics_state = state
        inputs, targets = self._unpack_data(data)
        gradient_function = jax.value_and_grad(self._stateless_loss, has_aux=True)
        (_, (terms, outputs, non_trainable)), gradients = gradient_function(
            trainable, non_trainable, optimizer_state, inputs, targets, True
        )
        trainable, optimizer_state = self.optimizer.stateless_apply(
            optimizer_state, gradients, trainable
        )
        logs, metrics_state = self._stateless_metrics(metrics_state, terms, targets, outputs)
        return logs, (trainable, non_trainable, optimizer_state, metrics_state)

    def test_step(self, state, data):
        trainable, non_trainable, metrics_state = state
        inputs, targets = self._unpack_data(data)
        _, (terms, outputs, non_trainable) = self._stateless_loss(
            trainable, non_trainable, None, inputs, targets, False
        )
        logs, metrics_state = self._stateless_metrics(metrics_state, terms, targets, outputs)
        return logs, (trainable, non_trainable, metrics_state)

    def predict_step(self, state, data):
        trainable, non_trainable = state
        inputs = self._unpack_data(data, with_targets=False)
        return self.stateless_call(trainable, non_trainable, inputs, training=False)


def bias_add(x, bias):
    return x + bias


def compile_forward(function, model):
    variables = list(model.variables)
    # Inference assigns no weight, but random glimpses advance their seed
    # generators: those states are returned and written back, so successive
    # batches draw anew (as the TensorFlow path does).
    seeds = [index for index, variable in enumerate(variables)
             if variable.path.endswith("seed_generator_state")]

    def stateless(variable_values, inputs):
        with keras.StatelessScope(state_mapping=list(zip(variables, variable_values))) as scope:
            outputs = function(*inputs)
        advanced = []
        for index in seeds:
            value = scope.get_current_value(variables[index])
            advanced.append(variable_values[index] if value is None else value)
        return outputs, advanced

    distribution = keras.distribution.distribution()
    if distribution is None:
        jitted, devices = jax.jit(stateless), 1
    else:
        # Data parallel: the batch is split over the devices and the outputs
        # gathered on every device, so each process can read all of them.
        mesh = distribution.device_mesh.backend_mesh
        batch_sharding = NamedSharding(mesh, PartitionSpec(distribution.batch_dim_name))
        jitted = jax.jit(stateless, out_shardings=NamedSharding(mesh, PartitionSpec()))
        devices = mesh.devices.size
    largest = [0]

    # The batch is padded on the host when it is then placed row by row.
    numpy = np if distribution is not None else jax.numpy

    def call(*inputs):
        inputs = [numpy.asarray(value) for value in inputs]
        size = inputs[0].shape[0]
        largest[0] = max(largest[0], -(-size // devices) * devices)
        if size < largest[0]:
            inputs = [numpy.pad(value, [(0, largest[0] - size)] + [(0, 0)] * (value.ndim - 1))
                      for value in inputs]
        if distribution is not None:
            # Every process holds the whole batch; each places its devices' rows.
            inputs = [jax.make_array_from_callback(value.shape, batch_sharding,
                                                   lambda index, value=value: value[index])
                      for value in inputs]
        outputs, advanced = jitted([variable.value for variable in variables], inputs)
        for index, value in zip(seeds, advanced):
            variables[index].assign(value)
        return jax.tree_util.tree_map(lambda value: value[:size], outputs)

    return call
