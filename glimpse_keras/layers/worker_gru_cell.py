"""A GRU cell with PyTorch `nn.GRU` maths, for the zoomer and the workers."""

import keras
from keras import ops

from glimpse_keras.layers.initialization import check_initialization
from glimpse_keras.layers.initialization import gru_initializers
from glimpse_keras.arguments import check_int


@keras.saving.register_keras_serializable(package="glimpse_keras")
class WorkerGRUCell(keras.layers.Layer):
    """One GRU step, computed as PyTorch's `nn.GRU` does ("reset after").

    With gates stacked in PyTorch order (r, z, n) along the last kernel axis:

        r  = sigmoid(x W_r + b_ir + h U_r + b_hr)
        u  = sigmoid(x W_z + b_iz + h U_z + b_hz)
        n  = tanh(x W_n + b_in + r * (h U_n + b_hn))
        h' = (1 - u) * n + u * h

    This equals `keras.layers.GRUCell(reset_after=True)` up to the gate order
    (Keras stacks z, r, h), so torch weights port by transposing only.

    Follows the Keras RNN cell contract, so `keras.layers.RNN(WorkerGRUCell(n))`
    runs it over time and a test can drive it one step at a time.

    Args:
        units: int >= 1, size of the hidden state.
        initialization: "torch" (every weight and bias U(+-1/sqrt(units)),
            PyTorch's default, MODEL_SPEC section 11 item 21) or "keras"
            (Glorot input kernel, orthogonal recurrent kernel, zero biases).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: float tensor (batch, input_dim).
        states: list with one float tensor (batch, units), or that tensor.
        training: unused; accepted for the cell contract.

    Returns:
        `(output, [new_state])`, both (batch, units); output is the new state.

    Raises:
        ValueError: for a bad `units` or `initialization`.

    Example:
        >>> cell = WorkerGRUCell(4)
        >>> h, [h] = cell(ops.ones((2, 3)), cell.get_initial_state(2))

    Reference:
        MODEL_SPEC.md sections 2 (zoomer GRU) and 5 (workers).
    """

    def __init__(self, units, initialization="torch", **kwargs):
        super().__init__(**kwargs)
        self.units = check_int("units", units)
        self.initialization = check_initialization(initialization)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        input_dim = int(input_shape[-1])
        kernel_init, recurrent_init, bias_init = gru_initializers(
            self.initialization, self.units
        )
        self.kernel = self.add_weight(
            name="kernel", shape=(input_dim, 3 * self.units), initializer=kernel_init
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.units, 3 * self.units),
            initializer=recurrent_init,
        )
        self.input_bias = self.add_weight(
            name="input_bias", shape=(3 * self.units,), initializer=bias_init
        )
        self.recurrent_bias = self.add_weight(
            name="recurrent_bias", shape=(3 * self.units,), initializer=bias_init
        )

    def call(self, inputs, states, training=False):
        state = states[0] if isinstance(states, (list, tuple)) else states
        new_state = self.step(self.project_inputs(inputs), state)
        return new_state, [new_state]

    def project_inputs(self, inputs, start=0):
        """`inputs @ kernel[start : start + input_dim]`, without the bias.

        The projection of one slice of the input features. A caller whose
        input is `[a ; b]` with `b` fixed over several steps projects `b`
        once and steps with `project_inputs(a) + project_inputs(b, len(a))`,
        reading the kernel rows of `b` once instead of at every step (the
        zoomer's worker-state input, fixed over the G glimpses of a frame).

        Args:
            inputs: float tensor (batch, d) with start + d <= input_dim.
            start: int, the first kernel row (input feature) of the slice.

        Returns:
            (batch, 3 * units).

        Raises:
            ValueError: if the slice is not inside the kernel's rows.
        """
        kernel = ops.cast(self.kernel, inputs.dtype)
        size = inputs.shape[-1]
        if start < 0 or start + size > kernel.shape[0]:
            raise ValueError(
                f"{self.name}: input features [{start}, {start + size}) are outside "
                f"the kernel's {kernel.shape[0]} rows."
            )
        if start or size != kernel.shape[0]:
            kernel = kernel[start : start + size]
        return ops.matmul(inputs, kernel)

    def step(self, input_projection, state):
        """One GRU step from a pre-computed `x W` (see `project_inputs`).

        Args:
            input_projection: (batch, 3 * units), `x W` without the bias.
            state: (batch, units), the previous state h.

        Returns:
            The new state h', (batch, units).
        """
        dtype = state.dtype
        input_part = input_projection + ops.cast(self.input_bias, dtype)
        recurrent_part = ops.matmul(
            state, ops.cast(self.recurrent_kernel, dtype)
        ) + ops.cast(self.recurrent_bias, dtype)
        return gru_update(input_part, recurrent_part, state)

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {"units": self.units, "initialization": self.initialization}
        )
        return config


def gru_update(input_part, recurrent_part, state):
    """Applies the GRU gates to pre-computed projections.

    Args:
        input_part: (..., 3 * units), x W + b_i with gates stacked (r, z, n).
        recurrent_part: (..., 3 * units), h U + b_h, same stacking.
        state: (..., units), the previous state h.

    Returns:
        The new state h', shape (..., units).
    """
    x_r, x_z, x_n = ops.split(input_part, 3, axis=-1)
    h_r, h_z, h_n = ops.split(recurrent_part, 3, axis=-1)
    reset = ops.sigmoid(x_r + h_r)
    update = ops.sigmoid(x_z + h_z)
    candidate = ops.tanh(x_n + reset * h_n)
    return (1.0 - update) * candidate + update * state
