"""C independent worker GRUs computed together with batched einsums."""

import keras
from keras import ops

from glimpse_keras.layers.initialization import check_initialization
from glimpse_keras.layers.initialization import gru_initializers
from glimpse_keras.layers.worker_gru_cell import gru_update
from glimpse_keras.arguments import check_int


@keras.saving.register_keras_serializable(package="glimpse_keras")
class MultiWorkerGRUCell(keras.layers.Layer):
    """`num_workers` separate GRUs (one set of weights each) in one layer.

    Worker c computes exactly `WorkerGRUCell` maths with its own weights on its
    own input `inputs[:, c]` and its own previous state `states[0][:, c]`. The
    C workers are evaluated together by einsums over a leading worker axis of
    the weights, so there is no Python loop over workers.

    `share_first_worker_state=True` reproduces a bug of the authors' code
    (MODEL_SPEC section 5): worker 0 is updated first from its own state, then
    every other worker is updated from worker 0's *new* state instead of its
    own, so workers 1..C-1 have no recurrence of their own. Keep it False
    (the paper's independent workers) except for ablations.

    Args:
        num_workers: int >= 1, the number C of workers.
        units: int >= 1, hidden size of every worker.
        share_first_worker_state: bool, see above.
        initialization: "torch" or "keras" (see `WorkerGRUCell`).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: float tensor (batch, num_workers, input_dim): ṽ_{t,c}.
        states: list with one float tensor (batch, num_workers, units), or
            that tensor: r_{t-1,c}.
        training: unused; accepted for the cell contract.

    Returns:
        `(output, [new_state])`, both (batch, num_workers, units).

    Raises:
        ValueError: for bad arguments; at call time if the worker axis of the
            inputs differs from `num_workers`.

    Example:
        >>> cell = MultiWorkerGRUCell(3, 4)
        >>> r, [r] = cell(ops.ones((2, 3, 5)), cell.get_initial_state(2))

    Reference:
        MODEL_SPEC.md section 5 ("Workers").
    """

    def __init__(
        self,
        num_workers,
        units,
        share_first_worker_state=False,
        initialization="torch",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_workers = check_int("num_workers", num_workers)
        self.units = check_int("units", units)
        self.share_first_worker_state = bool(share_first_worker_state)
        self.initialization = check_initialization(initialization)
        self.state_size = (self.num_workers, self.units)
        self.output_size = (self.num_workers, self.units)

    def build(self, input_shape):
        if input_shape[-2] is not None and input_shape[-2] != self.num_workers:
            raise ValueError(
                f"{self.name}: inputs must be (batch, {self.num_workers}, "
                f"input_dim), received shape {tuple(input_shape)}."
            )
        input_dim = int(input_shape[-1])
        kernel_init, recurrent_init, bias_init = gru_initializers(
            self.initialization, self.units
        )
        gates = 3 * self.units
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.num_workers, input_dim, gates),
            initializer=kernel_init,
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.num_workers, self.units, gates),
            initializer=recurrent_init,
        )
        self.input_bias = self.add_weight(
            name="input_bias", shape=(self.num_workers, gates), initializer=bias_init
        )
        self.recurrent_bias = self.add_weight(
            name="recurrent_bias",
            shape=(self.num_workers, gates),
            initializer=bias_init,
        )

    @staticmethod
    def _per_worker_matmul(values, kernel):
        # (batch, C, d) x (C, d, g) as a worker-batched matmul: measured ~4x
        # faster to differentiate than the equivalent einsum on TF CPU.
        product = ops.matmul(ops.transpose(values, (1, 0, 2)), kernel)
        return ops.transpose(product, (1, 0, 2))

    def _recurrent_part(self, state):
        return (
            self._per_worker_matmul(state, self.recurrent_kernel)
            + self.recurrent_bias
        )

    def call(self, inputs, states, training=False):
        state = states[0] if isinstance(states, (list, tuple)) else states
        input_part = self._per_worker_matmul(inputs, self.kernel) + self.input_bias
        new_state = gru_update(input_part, self._recurrent_part(state), state)
        if self.share_first_worker_state and self.num_workers > 1:
            first = new_state[:, :1]
            shared = ops.broadcast_to(first, ops.shape(state))
            from_first = gru_update(input_part, self._recurrent_part(shared), shared)
            new_state = ops.concatenate([first, from_first[:, 1:]], axis=1)
        return new_state, [new_state]

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros(
                (batch_size, self.num_workers, self.units), dtype=self.compute_dtype
            )
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_workers": self.num_workers,
                "units": self.units,
                "share_first_worker_state": self.share_first_worker_state,
                "initialization": self.initialization,
            }
        )
        return config
