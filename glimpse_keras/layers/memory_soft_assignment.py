"""External memory and soft assignment of glimpses to workers."""

import keras
import numpy as np
from keras import ops

from glimpse_keras.layers.initialization import AbsRandomNormal
from glimpse_keras.arguments import check_choice, check_int, check_number
from glimpse_keras.layers.saved_configs import with_current_names

ASSIGN_AXES = ("glimpses", "workers")
DISTANCE_MODES = ("learned", "code")
TIME_DECAYS = ("recent", "code")


@keras.saving.register_keras_serializable(package="glimpse_keras")
class MemorySoftAssignment(keras.layers.Layer):
    """Softly assigns the G glimpses of a frame to C workers through a memory.

    The memory holds, for each of the last `memory_capacity` frames t' < t,
    the glimpse features of that frame (stored as their projections A v, see
    below) together with the assignment p_{t',c,g'} the workers gave them. For
    the current frame t the score of glimpse g for worker c is

        score[c, g] = sum_{t'} decay(t, t') mean_{g'} p_{t',c,g'} s(v_{t',g'}, v_{t,g})

    with the similarity s = 1 - d / d_max of the learned distance
    d = phi(x, y) = sqrt((x - y)^T A^T A (x - y) + epsilon). At t = 0 (empty
    memory) the score is a learned prior a in R^{C x G}, initialised |N(0,1)|.
    The assignment is p = softmax(score / temperature) over `assign_axis`, and
    worker c's input is v~_{t,c} = sum_g p_{t,c,g} v_{t,g}. The new frame is
    then written into the memory with its assignment.

    The memory is a fixed-size ring buffer of tensors that the caller threads
    through the steps (like an RNN state), so a whole clip runs in one graph;
    when it is full, writing a frame overwrites the oldest one.

    Defaults follow the paper's intent (MODEL_SPEC section 11 items 1-3, 12),
    with flags for the authors' code: `assign_axis="glimpses"` is the code's
    softmax axis (the paper's figure normalises over workers);
    `distance="code"` uses the squared distance, clipped to [0, 1e5] and
    divided by its maximum over the whole batch instead of per sample;
    `time_decay="code"` weights frame t' by exp(-t'/tau) (frame 0 counts 1, older
    counts more) instead of exp(-(t - t')/tau) (recent counts more; the most
    recent frame t' = t - 1 counts exp(-1/tau)).

    Args:
        num_workers: int >= 1, the number C of workers.
        num_glimpses: int >= 1, the number G of glimpses per frame (G != C is
            supported).
        temperature: float > 0, alpha in softmax(score / alpha) (0.5).
        assign_axis: "glimpses" (each worker's weights over the G glimpses sum
            to 1) or "workers" (each glimpse's weights over the C workers sum
            to 1).
        distance: "learned" (sqrt, per-sample max normalisation) or "code"
            (squared, clipped, per-batch max normalisation).
        projection_dim: int or None. A maps features (D) to this size; None
            keeps D (A is D x D). A smaller value keeps phi cheap.
        metric_initializer: initializer of the (D, projection_dim) kernel
            A^T: "identity" (default; a rectangular identity when
            projection_dim < D) or any Keras initializer identifier.
        metric_trainable: bool, whether A is trained (True, the paper) or a
            fixed saved weight (the code's fixed matrix).
        decay_tau: float > 0, the time constant tau of the decay (4 frames).
        time_decay: "recent" or "code", see above; the same name and values
            as the config key `model.time_decay`.
        memory_capacity: int >= 0, the number of past frames kept, oldest
            evicted first; 0 (or None) keeps all of them (`get_initial_state`
            sizes the buffer to the clip). The same name and meaning as the
            config key `model.memory_capacity`.
        epsilon: float > 0, added under the square root and used to guard the
            normalisation against a zero d_max.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        glimpses: float tensor (batch, num_glimpses, D): v_{t,g}.
        memory_state: list `[keys, weights, times, valid]` from
            `get_initial_state` or the previous call: keys
            (batch, M, num_glimpses, P) projected features, weights
            (batch, M, num_workers, num_glimpses) stored assignments, times
            (batch, M) frame index of each slot, valid (batch, M) 1 where the
            slot holds a frame.
        step: keyword, int or scalar int tensor, the frame index t (0 for the
            first frame). A Python int lets the t = 0 branch be chosen
            statically.

    Returns:
        `(assignments, worker_inputs, new_memory_state)`: assignments
        (batch, num_workers, num_glimpses), worker_inputs
        (batch, num_workers, D), and the updated state list.

    Raises:
        ValueError: for bad arguments, or glimpses whose G differs from
            `num_glimpses`.

    Example:
        >>> memory = MemorySoftAssignment(num_workers=3, num_glimpses=2)
        >>> state = memory.get_initial_state(batch_size=4, num_frames=8, feature_dim=16)
        >>> p, v_tilde, state = memory(ops.ones((4, 2, 16)), state, step=0)

    Reference:
        MODEL_SPEC.md section 4 and section 11 items 1-3, 12.
    """

    def __init__(
        self,
        num_workers,
        num_glimpses,
        temperature=0.5,
        assign_axis="glimpses",
        distance="learned",
        projection_dim=None,
        metric_initializer="identity",
        metric_trainable=True,
        decay_tau=4.0,
        time_decay="recent",
        memory_capacity=0,
        epsilon=1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_workers = check_int("num_workers", num_workers)
        self.num_glimpses = check_int("num_glimpses", num_glimpses)
        self.temperature = check_number("temperature", temperature, minimum=0, above_minimum=True)
        self.assign_axis = check_choice("assign_axis", assign_axis, ASSIGN_AXES)
        self.distance = check_choice("distance", distance, DISTANCE_MODES)
        self.projection_dim = check_int("projection_dim", projection_dim, allow_none=True)
        if isinstance(metric_initializer, str) and metric_initializer == "identity":
            self._metric_initializer = keras.initializers.Identity()
        else:
            try:
                self._metric_initializer = keras.initializers.get(metric_initializer)
            except ValueError as error:
                raise ValueError(
                    "`metric_initializer` must be 'identity' or a Keras "
                    f"initializer, received {metric_initializer!r}."
                ) from error
        if isinstance(metric_initializer, keras.initializers.Initializer):
            metric_initializer = keras.initializers.serialize(metric_initializer)
        self.metric_initializer = metric_initializer
        self.metric_trainable = bool(metric_trainable)
        self.decay_tau = check_number("decay_tau", decay_tau, minimum=0, above_minimum=True)
        self.time_decay = check_choice("time_decay", time_decay, TIME_DECAYS)
        self.memory_capacity = check_int(
            "memory_capacity", 0 if memory_capacity is None else memory_capacity, minimum=0
        )
        self.epsilon = check_number("epsilon", epsilon, minimum=0, above_minimum=True)

    def build(self, glimpses_shape):
        self._check_glimpses_shape(glimpses_shape)
        feature_dim = int(glimpses_shape[-1])
        projection_dim = self.projection_dim or feature_dim
        self.metric_kernel = self.add_weight(
            name="metric_kernel",
            shape=(feature_dim, projection_dim),
            initializer=self._metric_initializer,
            trainable=self.metric_trainable,
        )
        self.prior = self.add_weight(
            name="prior",
            shape=(self.num_workers, self.num_glimpses),
            initializer=AbsRandomNormal(mean=0.0, stddev=1.0),
        )

    def adapt_metric(self, glimpse_features, method="diagonal", shrinkage=0.1):
        """Sets A from feature statistics: a regularised inverse covariance.

        Runs outside the graph (like `Normalization.adapt`), e.g. once on
        stage-2 glimpse features before training. With the covariance
        estimate S, A^T A approximates (S + shrinkage * mean(eig S) I)^-1:
        "diagonal" uses the per-feature variances (A = diag(1 / std));
        "pca" keeps the top `projection_dim` principal directions
        (A = Lambda^-1/2 U^T), i.e. a whitened projection.

        Args:
            glimpse_features: array-like (..., D) of samples, e.g. v_{t,g}.
            method: "diagonal" or "pca".
            shrinkage: float >= 0, added to the variances/eigenvalues as a
                fraction of their mean, so few samples cannot make A blow up.

        Raises:
            ValueError: for an unknown method, a negative shrinkage, fewer
                than 2 samples, a feature size that differs from the built
                layer, or "diagonal" with a projection_dim < D.
        """
        check_choice("method", method, ("diagonal", "pca"))
        check_number("shrinkage", shrinkage, minimum=0)
        samples = np.asarray(glimpse_features, dtype="float64")
        samples = samples.reshape(-1, samples.shape[-1])
        feature_dim = samples.shape[-1]
        if not self.built:
            self.build((None, self.num_glimpses, feature_dim))
        kernel_shape = tuple(self.metric_kernel.shape)
        if samples.shape[0] < 2 or kernel_shape[0] != feature_dim:
            raise ValueError(
                f"{self.name}: adapt_metric needs >= 2 samples of size "
                f"{kernel_shape[0]}, received shape {samples.shape}."
            )
        if method == "diagonal":
            if kernel_shape[1] != feature_dim:
                raise ValueError(
                    f"{self.name}: method='diagonal' needs projection_dim None or "
                    f"{feature_dim}, the layer has projection_dim={self.projection_dim}; "
                    "use method='pca'."
                )
            variance = samples.var(axis=0)
            variance = variance + shrinkage * variance.mean() + self.epsilon
            kernel = np.diag(1.0 / np.sqrt(variance))
        else:
            eigenvalues, eigenvectors = np.linalg.eigh(np.cov(samples, rowvar=False))
            order = np.argsort(eigenvalues)[::-1][: kernel_shape[1]]
            eigenvalues = np.maximum(eigenvalues, 0.0)
            scaled = eigenvalues[order] + shrinkage * eigenvalues.mean() + self.epsilon
            kernel = np.zeros(kernel_shape)
            kernel[:, : len(order)] = eigenvectors[:, order] / np.sqrt(scaled)
        self.metric_kernel.assign(kernel.astype(self.metric_kernel.dtype))

    def _check_glimpses_shape(self, glimpses_shape):
        if len(glimpses_shape) != 3 or glimpses_shape[1] != self.num_glimpses:
            raise ValueError(
                f"{self.name}: glimpses must be (batch, {self.num_glimpses}, "
                f"features), received shape {tuple(glimpses_shape)}."
            )

    def memory_size(self, num_frames):
        """Number M of frame slots for a clip of `num_frames` frames."""
        if self.memory_capacity:
            return self.memory_capacity
        return max(int(num_frames) - 1, 1)

    def get_initial_state(self, batch_size, num_frames, feature_dim):
        """An empty memory for a clip.

        Args:
            batch_size: int or scalar tensor.
            num_frames: int, the clip length T (sizes the buffer when
                `memory_capacity` is 0).
            feature_dim: int, D (used when `projection_dim` is None).

        Returns:
            `[keys, weights, times, valid]`, all zeros (see `call`).
        """
        slots = self.memory_size(num_frames)
        projection_dim = self.projection_dim or int(feature_dim)
        dtype = self.compute_dtype
        return [
            ops.zeros((batch_size, slots, self.num_glimpses, projection_dim), dtype),
            ops.zeros((batch_size, slots, self.num_workers, self.num_glimpses), dtype),
            ops.zeros((batch_size, slots), dtype),
            ops.zeros((batch_size, slots), dtype),
        ]

    def _normalise(self, score):
        axis = -1 if self.assign_axis == "glimpses" else 1
        return ops.softmax(score / self.temperature, axis=axis)

    def _memory_score(self, queries, keys, weights, times, valid, step):
        squared = (
            ops.sum(ops.square(keys), axis=-1)[..., None]
            + ops.sum(ops.square(queries), axis=-1)[:, None, None, :]
            - 2.0 * ops.einsum("bmhp,bgp->bmhg", keys, queries)
        )
        squared = ops.relu(squared)
        mask = valid[:, :, None, None]
        if self.distance == "learned":
            dist = ops.sqrt(squared + self.epsilon) * mask
            d_max = ops.max(dist, axis=(1, 2, 3), keepdims=True)
        else:
            dist = ops.clip(squared, 0.0, 1e5) * mask
            d_max = ops.max(dist)
        similarity = 1.0 - dist / ops.maximum(d_max, self.epsilon)
        if self.time_decay == "recent":
            decay = ops.exp(-(step - times) / self.decay_tau)
        else:
            decay = ops.exp(-times / self.decay_tau)
        decay = decay * valid
        return ops.einsum("bm,bmch,bmhg->bcg", decay, weights, similarity) / float(
            self.num_glimpses
        )

    def call(self, glimpses, memory_state, step=None):
        self._check_glimpses_shape(glimpses.shape)
        if step is None:
            raise ValueError(f"{self.name}: the frame index `step` is required.")
        keys, weights, times, valid = memory_state
        dtype = glimpses.dtype
        batch_size = ops.shape(glimpses)[0]
        queries = ops.matmul(glimpses, ops.cast(self.metric_kernel, dtype))
        prior = ops.broadcast_to(
            ops.cast(self.prior, dtype)[None],
            (batch_size, self.num_workers, self.num_glimpses),
        )
        time = ops.cast(step, dtype)
        if isinstance(step, int) and step == 0:
            score = prior
        else:
            memory_score = self._memory_score(queries, keys, weights, times, valid, time)
            if isinstance(step, int):
                score = memory_score
            else:
                has_memory = ops.any(valid > 0, axis=1)[:, None, None]
                score = ops.where(has_memory, memory_score, prior)
        assignments = self._normalise(score)
        worker_inputs = ops.einsum("bcg,bgd->bcd", assignments, glimpses)

        slots = times.shape[1]
        slot = ops.mod(ops.cast(step, "int32"), slots)
        write = ops.one_hot(slot, slots, dtype=dtype)[None]
        new_state = [
            ops.where(write[..., None, None] > 0, queries[:, None], keys),
            ops.where(write[..., None, None] > 0, assignments[:, None], weights),
            ops.where(write > 0, time, times),
            ops.maximum(valid, write),
        ]
        return assignments, worker_inputs, new_state

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_workers": self.num_workers,
                "num_glimpses": self.num_glimpses,
                "temperature": self.temperature,
                "assign_axis": self.assign_axis,
                "distance": self.distance,
                "projection_dim": self.projection_dim,
                "metric_initializer": self.metric_initializer,
                "metric_trainable": self.metric_trainable,
                "decay_tau": self.decay_tau,
                "time_decay": self.time_decay,
                "memory_capacity": self.memory_capacity,
                "epsilon": self.epsilon,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # A config saved with the old names `decay` or `memory_frames` loads.
        return super().from_config(with_current_names(config))
