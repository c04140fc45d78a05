"""The recurrent Glimpse Clouds process: glimpses per frame, memory, workers."""

import keras
from keras import ops

from glimpse_keras.arguments import check_int, check_number
from glimpse_keras.layers.glimpse_crop import GlimpseCrop
from glimpse_keras.layers.glimpse_locator import GlimpseLocator
from glimpse_keras.layers.memory_soft_assignment import MemorySoftAssignment
from glimpse_keras.layers.memory_soft_assignment import TIME_DECAYS
from glimpse_keras.layers.memory_soft_assignment import _check_choice
from glimpse_keras.layers.memory_soft_assignment import _check_positive_int
from glimpse_keras.layers.memory_soft_assignment import deprecated_decay
from glimpse_keras.layers.memory_soft_assignment import deprecated_memory_frames
from glimpse_keras.layers.multi_worker_gru_cell import MultiWorkerGRUCell
from glimpse_keras.layers.spatial_glimpse_locator import SpatialGlimpseLocator
from glimpse_keras.layers.spatial_glimpse_locator import SpatialKeypoints
from glimpse_keras.layers.spatial_glimpse_locator import cell_centres
from glimpse_keras.layers.what_where_fusion import WhatWhereFusion
from glimpse_keras.layers.what_where_fusion import deprecated_use_raw_location
from glimpse_keras.layers.worker_gru_cell import WorkerGRUCell

GLIMPSE_TYPES = ("attention", "tube", "random", "saliency")
AGGREGATIONS = ("workers", "gru")
ZOOMER_INPUTS = ("v", "z")
LOCATORS = ("linear", "spatial")


@keras.saving.register_keras_serializable(package="glimpse_keras")
class GlimpseCloudsCore(keras.layers.Layer):
    """Runs the glimpse attention, external memory and workers over a clip.

    For each frame t = 0..T-1 and glimpse g = 0..G-1 (glimpse_type
    "attention", the default):

    1. `l, l_raw = GlimpseLocator(c_t, h)`;
    2. `z = mean(GlimpseCrop(Z_t, l))`, a bilinear crop of the res5 map;
    3. `v = WhatWhereFusion(z, l)`;
    4. `h = zoomer GRU(h, [v ; r_{t-1}])`, with r_{t-1} = sum_c r_{t-1,c}.

    h is zero-initialised once per clip and carried across glimpses and
    frames (the authors' code), or, with `zoomer_reset_each_frame`, set to
    zero at the start of every frame, so that each frame's first glimpse is
    placed from that frame's content c_t alone (the workers' state r_{t-1}
    still brings the past in through the zoomer's input). Then the G glimpses of frame t are assigned to the C workers by
    `MemorySoftAssignment` and each worker GRU c updates its state
    r_{t,c} from v~_{t,c} (`MultiWorkerGRUCell`).

    Ablations (paper section 4.2):
    - glimpse_type "tube": one set of G locations per clip, found by running
      the locator/zoomer once on the time-averaged maps (mean_t Z_t, mean_t
      c_t), then held for every frame.
    - glimpse_type "random": every glimpse, in training and at inference,
      gets scales drawn uniformly from `glimpse_scale_samples` (e.g. the
      scales an attention model used: a like-for-like control) or the fixed
      scale `fixed_glimpse_scale`, and a centre uniform in
      [-(1 - s), 1 - s] per axis (so the glimpse stays on the map). The
      draws come from a `SeedGenerator` seeded with `seed` (its state is a
      weight, so an evaluation of saved weights is reproducible); the K
      clips of a multi-clip evaluation average K independent draws.
    - glimpse_type "saliency": per frame, the G cells with the largest
      channel norm ||Z_t[y, x]||, greedily with non-maximum suppression of the
      cells within `saliency_nms_radius` (Chebyshev distance), fixed scale.
    - aggregation "gru": the G glimpses of a frame are summed and fed to one
      GRU (no memory, no soft workers); the worker axis of the outputs then
      has size 1 and the assignments are all ones.
    Non-attention glimpse types have no zoomer; their crops for all frames
    are computed in one batched op.

    Where the locator looks from (beyond the paper, for "attention" and
    "tube"): `locator="linear"` is the paper's head on [c_t ; h]
    (`GlimpseLocator`); `locator="spatial"` places each glimpse at a
    soft-argmax over the cells of the frame's res4 map
    (`SpatialGlimpseLocator`), so the placement can follow what is where in
    this frame; `locator_keypoints=K > 0` appends the coordinates of K
    spatial-softmax keypoints of the res4 map to c_t (`SpatialKeypoints`).
    Both need the `context_map` call argument.

    Placement swaps: with the `locations` call argument the glimpses are
    taken at the supplied places instead (the locator is not run); crop,
    fusion, memory and workers run as usual, so the model's own locations
    (and raw locations) reproduce its outputs exactly. This is how a trained
    model is scored with other placements (`evaluation.placement_controls`).

    Args:
        num_glimpses: int >= 1, G (3).
        num_workers: int >= 1, C (3); ignored for aggregation "gru".
        zoomer_units: int, size of the zoomer GRU state h (512).
        worker_units: int, size of each worker state r_c (512).
        fusion_hidden_units: int, hidden width of Lambda (256).
        glimpse_size: int or None, the side k of the crop grid (None: the
            size of the map, 7 x 7 as in the paper).
        glimpse_type: "attention", "tube", "random" or "saliency".
        aggregation: "workers" or "gru".
        zoomer_input: "v" (the fused glimpse, as the code does) or "z" (the
            raw glimpse, as the poster writes).
        zoomer_reset_each_frame: bool, restart the zoomer state h from zero
            at every frame instead of carrying it across frames (the code).
        raw_location_embedding: bool, Lambda embeds the raw location (code)
            instead of the activated one (default, paper).
        detach_location: bool, stop the gradient from the crop into the
            locations (code) instead of a differentiable crop (paper).
        align_corners: bool, see `GlimpseCrop`.
        share_first_worker_state: bool, reproduce the authors' worker-state
            bug (see `MultiWorkerGRUCell`).
        assign_axis, temperature, distance, projection_dim, metric_trainable,
        decay_tau, time_decay, memory_capacity: forwarded to
            `MemorySoftAssignment`.
        Arguments that are config keys (`model.<key>`: detach_location,
        assign_axis, time_decay, distance, memory_capacity,
        share_first_worker_state, raw_location_embedding, max_scale,
        zoomer_reset_each_frame, scale_bias) have the key's name and values.
        The old names `decay` ("recency" | "code"), `use_raw_location` and
        `memory_frames` (None = all) are accepted for one release with a
        DeprecationWarning.
        scale_bias, max_scale: floats, forwarded to the locator.
        locator: "linear" (the paper's location head) or "spatial" (a
            soft-argmax over the res4 map's cells).
        locator_keypoints: int >= 0, spatial-softmax keypoints of the res4
            map appended to the locator's context (0: none, the paper).
        locator_key_units: int, key/query size of the "spatial" locator.
        fixed_glimpse_scale: float in (0, 1], the scale of "random" and
            "saliency" glimpses.
        glimpse_scale_samples: None, or a list of [s_x, s_y] pairs in
            (0, 1] from which each "random" glimpse's scales are drawn
            (instead of `fixed_glimpse_scale`).
        saliency_nms_radius: int >= 0, suppression radius in cells.
        seed: int or None, seed of the "random" glimpse sampler.
        initialization: "torch" or "keras", for every sublayer.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        features: float tensor (batch, time, height, width, channels5): Z, the
            res5 map per frame (static time, height and width).
        context: float tensor (batch, time, channels4): c_t, the spatial mean
            of the res4 map per frame.
        training: bool.
        context_map: float tensor (batch, time, height4, width4, channels4),
            the res4 map itself; required by `locator="spatial"` and
            `locator_keypoints > 0`, ignored otherwise.
        locations: None, or float tensor (batch, time, G, 4): glimpse places
            to use instead of the glimpse type's own.
        raw_locations: None, or the matching pre-activation locations
            (default: the inverse activations of `locations`).

    Returns:
        A dict of tensors:
        - "worker_states": (batch, time, C', worker_units), r_{t,c}; C' =
          num_workers, or 1 for aggregation "gru".
        - "locations": (batch, time, G, 4), activated [x, y, s_x, s_y].
        - "raw_locations": (batch, time, G, 4), pre-activation locations (for
          non-attention types, the inverse activations of "locations").
        - "assignments": (batch, time, C', G), p_{t,c,g}.
        - "glimpse_features": (batch, time, G, channels5), v_{t,g}.

    Raises:
        ValueError: for bad arguments, or inputs of the wrong rank or with
            dynamic time/space dimensions.

    Example:
        >>> core = GlimpseCloudsCore(num_glimpses=2, num_workers=2,
        ...     zoomer_units=8, worker_units=8, fusion_hidden_units=4)
        >>> out = core(ops.ones((1, 3, 4, 4, 16)), ops.ones((1, 3, 12)))
        >>> out["worker_states"].shape  # (1, 3, 2, 8)

    Reference:
        Baradel et al., "Glimpse Clouds", CVPR 2018, section 3; MODEL_SPEC.md
        sections 2-5 and 11.
    """

    def __init__(
        self,
        num_glimpses=3,
        num_workers=3,
        zoomer_units=512,
        worker_units=512,
        fusion_hidden_units=256,
        glimpse_size=None,
        glimpse_type="attention",
        aggregation="workers",
        zoomer_input="v",
        zoomer_reset_each_frame=False,
        raw_location_embedding=False,
        detach_location=False,
        align_corners=True,
        share_first_worker_state=False,
        assign_axis="glimpses",
        temperature=0.5,
        distance="learned",
        projection_dim=None,
        metric_trainable=True,
        decay_tau=4.0,
        time_decay="recent",
        memory_capacity=0,
        scale_bias=3.0,
        max_scale=1.0,
        locator="linear",
        locator_keypoints=0,
        locator_key_units=64,
        fixed_glimpse_scale=0.5,
        glimpse_scale_samples=None,
        saliency_nms_radius=1,
        seed=None,
        initialization="torch",
        **kwargs,
    ):
        memory_capacity = deprecated_memory_frames(kwargs, memory_capacity)
        time_decay = deprecated_decay(kwargs, time_decay, "GlimpseCloudsCore")
        raw_location_embedding = deprecated_use_raw_location(
            kwargs, raw_location_embedding, "GlimpseCloudsCore"
        )
        super().__init__(**kwargs)
        self.num_glimpses = _check_positive_int("num_glimpses", num_glimpses)
        self.num_workers = _check_positive_int("num_workers", num_workers)
        self.zoomer_units = _check_positive_int("zoomer_units", zoomer_units)
        self.worker_units = _check_positive_int("worker_units", worker_units)
        self.fusion_hidden_units = _check_positive_int(
            "fusion_hidden_units", fusion_hidden_units
        )
        self.glimpse_size = glimpse_size
        self.glimpse_type = _check_choice("glimpse_type", glimpse_type, GLIMPSE_TYPES)
        self.aggregation = _check_choice("aggregation", aggregation, AGGREGATIONS)
        self.zoomer_input = _check_choice("zoomer_input", zoomer_input, ZOOMER_INPUTS)
        self.zoomer_reset_each_frame = bool(zoomer_reset_each_frame)
        self.raw_location_embedding = bool(raw_location_embedding)
        self.detach_location = bool(detach_location)
        self.align_corners = bool(align_corners)
        self.share_first_worker_state = bool(share_first_worker_state)
        self.assign_axis = assign_axis
        self.temperature = temperature
        self.distance = distance
        self.projection_dim = projection_dim
        self.metric_trainable = bool(metric_trainable)
        self.decay_tau = decay_tau
        self.time_decay = _check_choice("time_decay", time_decay, TIME_DECAYS)
        self.memory_capacity = memory_capacity
        self.scale_bias = scale_bias
        self.max_scale = max_scale
        self.locator_type = _check_choice("locator", locator, LOCATORS)
        self.locator_keypoints = check_int("locator_keypoints", locator_keypoints, minimum=0)
        self.locator_key_units = _check_positive_int("locator_key_units", locator_key_units)
        self.fixed_glimpse_scale = check_number(
            "fixed_glimpse_scale", fixed_glimpse_scale, minimum=0.0, maximum=1.0, above_minimum=True
        )
        self.glimpse_scale_samples = _check_scale_samples(glimpse_scale_samples)
        self.saliency_nms_radius = check_int("saliency_nms_radius", saliency_nms_radius, minimum=0)
        self.seed = seed
        self.initialization = initialization

        # === Layers ===
        policy = self.dtype_policy
        # Distances and softmaxes of the memory lose too much in 16-bit floats.
        memory_policy = (
            "float32" if self.compute_dtype in ("float16", "bfloat16") else policy
        )
        self.crop = GlimpseCrop(
            output_size=glimpse_size,
            align_corners=align_corners,
            detach_location=detach_location,
            pooled=True,
            name="glimpse_crop",
            dtype=policy,
        )
        self.fusion = WhatWhereFusion(
            hidden_units=fusion_hidden_units,
            raw_location_embedding=raw_location_embedding,
            initialization=initialization,
            name="what_where_fusion",
            dtype=policy,
        )
        self.locator = None
        self.zoomer = None
        self.keypoints = None
        if self.glimpse_type in ("attention", "tube"):
            if self.locator_type == "spatial":
                self.locator = SpatialGlimpseLocator(
                    key_units=self.locator_key_units,
                    scale_bias=scale_bias,
                    max_scale=max_scale,
                    align_corners=align_corners,
                    initialization=initialization,
                    name="glimpse_locator",
                    dtype=policy,
                )
            else:
                self.locator = GlimpseLocator(
                    scale_bias=scale_bias,
                    max_scale=max_scale,
                    initialization=initialization,
                    name="glimpse_locator",
                    dtype=policy,
                )
            if self.locator_keypoints:
                self.keypoints = SpatialKeypoints(
                    self.locator_keypoints,
                    align_corners=align_corners,
                    initialization=initialization,
                    name="locator_keypoints",
                    dtype=policy,
                )
            self.zoomer = WorkerGRUCell(
                zoomer_units, initialization=initialization, name="zoomer", dtype=policy
            )
        self.memory = None
        if self.aggregation == "workers":
            self.memory = MemorySoftAssignment(
                num_workers=num_workers,
                num_glimpses=num_glimpses,
                temperature=temperature,
                assign_axis=assign_axis,
                distance=distance,
                projection_dim=projection_dim,
                metric_trainable=metric_trainable,
                decay_tau=decay_tau,
                time_decay=time_decay,
                memory_capacity=memory_capacity,
                name="memory",
                dtype=memory_policy,
            )
            self.workers = MultiWorkerGRUCell(
                num_workers,
                worker_units,
                share_first_worker_state=share_first_worker_state,
                initialization=initialization,
                name="workers",
                dtype=policy,
            )
        else:
            self.workers = WorkerGRUCell(
                worker_units, initialization=initialization, name="aggregator",
                dtype=policy,
            )
        self.seed_generator = (
            keras.random.SeedGenerator(seed) if self.glimpse_type == "random" else None
        )

    @property
    def decay(self):
        """Deprecated: `time_decay` in the old vocabulary ("recency" | "code")."""
        return "recency" if self.time_decay == "recent" else self.time_decay

    @property
    def use_raw_location(self):
        """Deprecated: `raw_location_embedding`."""
        return self.raw_location_embedding

    @property
    def needs_context_map(self):
        """True when the locator reads the res4 map (`context_map`)."""
        return self.locator is not None and (
            self.locator_type == "spatial" or self.locator_keypoints > 0
        )

    @property
    def num_worker_outputs(self):
        """Size C' of the worker axis of the outputs (1 for aggregation "gru")."""
        return self.num_workers if self.aggregation == "workers" else 1

    def _check_shapes(self, features_shape, context_shape, context_map_shape=None):
        if len(features_shape) != 5 or any(d is None for d in features_shape[1:4]):
            raise ValueError(
                f"{self.name}: `features` must be (batch, time, height, width, "
                "channels) with static time/height/width, received shape "
                f"{tuple(features_shape)}."
            )
        if len(context_shape) != 3 or context_shape[1] != features_shape[1]:
            raise ValueError(
                f"{self.name}: `context` must be (batch, time, channels) with the "
                f"time of `features` ({features_shape[1]}), received shape "
                f"{tuple(context_shape)}."
            )
        if not self.needs_context_map:
            return
        if context_map_shape is None:
            raise ValueError(
                f"{self.name}: locator={self.locator_type!r} with locator_keypoints="
                f"{self.locator_keypoints} reads the res4 map: pass `context_map` "
                "(batch, time, height, width, channels)."
            )
        if (len(context_map_shape) != 5 or context_map_shape[1] != features_shape[1]
                or any(d is None for d in context_map_shape[2:4])):
            raise ValueError(
                f"{self.name}: `context_map` must be (batch, time, height, width, channels) with "
                f"the time of `features` ({features_shape[1]}) and static height/width, "
                f"received shape {tuple(context_map_shape)}."
            )

    def build(self, features_shape, context_shape, context_map_shape=None):
        self._check_shapes(features_shape, context_shape, context_map_shape)
        channels = int(features_shape[-1])
        if self.locator is not None:
            context_size = int(context_shape[-1])
            if self.keypoints is not None:
                self.keypoints.build((None,) + tuple(context_map_shape[2:]))
                context_size += 2 * self.locator_keypoints
            if self.locator_type == "spatial":
                self.locator.build((None, context_size), (None, self.zoomer_units),
                                   (None,) + tuple(context_map_shape[2:]))
            else:
                self.locator.build((None, context_size), (None, self.zoomer_units))
            self.zoomer.build((None, channels + self.worker_units))
        self.fusion.build((None, channels))
        if self.memory is not None:
            self.memory.build((None, self.num_glimpses, channels))
            self.workers.build((None, self.num_workers, channels))
        else:
            self.workers.build((None, channels))

    # === Locations of the non-attention glimpse types ===

    def raw_from_locations(self, locations):
        """Inverse of the locator activations: the raw locations (Lambda's raw
        input) of activated `locations` (..., 4), without `scale_bias`."""
        # In float32: in 16-bit floats 1 - 1e-6 rounds to 1, and a centre at
        # the map border (saliency) or a scale of 1 would give an infinite raw.
        limit = 1.0 - 1e-6
        clipped = ops.cast(locations, "float32")
        centre = ops.clip(clipped[..., :2], -limit, limit)
        scale = ops.clip(clipped[..., 2:] / float(self.max_scale), 1e-6, limit)
        raw_centre = 0.5 * ops.log((1.0 + centre) / (1.0 - centre))
        raw_scale = ops.log(scale / (1.0 - scale)) - float(self.scale_bias)
        raw = ops.concatenate([raw_centre, raw_scale], axis=-1)
        return ops.cast(raw, locations.dtype)

    def _with_fixed_scale(self, centres):
        scale = ops.full(ops.shape(centres), self.fixed_glimpse_scale, centres.dtype)
        return ops.concatenate([centres, scale], axis=-1)

    def _random_locations(self, batch_size, num_frames, dtype):
        """Random glimpses (batch, T, G, 4): scales first, then centres that
        keep each glimpse on the map."""
        shape = (batch_size, num_frames, self.num_glimpses)
        if self.glimpse_scale_samples is None:
            scales = ops.full(shape + (2,), self.fixed_glimpse_scale, dtype)
        else:
            table = ops.convert_to_tensor(self.glimpse_scale_samples, dtype)
            index = keras.random.randint(
                shape, 0, len(self.glimpse_scale_samples), seed=self.seed_generator
            )
            scales = ops.take(table, index, axis=0)
        unit = keras.random.uniform(shape + (2,), minval=-1.0, maxval=1.0, dtype=dtype,
                                    seed=self.seed_generator)
        return ops.concatenate([unit * (1.0 - scales), scales], axis=-1)

    def _saliency_centres(self, features):
        _, num_frames, height, width, _ = features.shape
        energy = ops.sqrt(ops.sum(ops.square(ops.stop_gradient(features)), axis=-1))
        energy = ops.reshape(energy, (-1, num_frames, height * width))
        cell_rows = ops.cast(ops.arange(height * width) // width, "int32")
        cell_cols = ops.cast(ops.arange(height * width) % width, "int32")
        lowest = ops.cast(float("-inf"), energy.dtype)
        centres = []
        for _ in range(self.num_glimpses):
            best = ops.cast(ops.argmax(energy, axis=-1), "int32")
            row, col = best // width, best % width
            centres.append(ops.stack([col, row], axis=-1))
            near = ops.logical_and(
                ops.abs(cell_rows - row[..., None]) <= self.saliency_nms_radius,
                ops.abs(cell_cols - col[..., None]) <= self.saliency_nms_radius,
            )
            energy = ops.where(near, lowest, energy)
        index = ops.stack(centres, axis=2)  # (batch, T, G, 2) as [column, row]
        grid = ops.cast(cell_centres(height, width, self.align_corners), features.dtype)
        return ops.take(grid, index[..., 1] * width + index[..., 0], axis=0)

    def _tube_locations(self, features, context, context_map):
        mean_map = ops.mean(features, axis=1)
        mean_context = self._locator_context(
            ops.mean(context, axis=1),
            None if context_map is None else ops.mean(context_map, axis=1),
        )
        mean_context_map = None if context_map is None else ops.mean(context_map, axis=1)
        batch_size = ops.shape(features)[0]
        state = ops.zeros((batch_size, self.zoomer_units), features.dtype)
        no_worker_projection = ops.zeros(
            (batch_size, 3 * self.zoomer_units), features.dtype
        )
        locations, raws = [], []
        for _ in range(self.num_glimpses):
            state, location, raw, _, _ = self._glimpse_step(
                mean_map, mean_context, state, no_worker_projection, mean_context_map
            )
            locations.append(location)
            raws.append(raw)
        return ops.stack(locations, axis=1), ops.stack(raws, axis=1)

    # === Recurrent process ===

    def _locator_context(self, context, context_map):
        """The locator's context of one frame: c_t, plus the keypoints of its
        res4 map when `locator_keypoints` > 0."""
        if self.keypoints is None:
            return context
        return ops.concatenate([context, ops.cast(self.keypoints(context_map), context.dtype)], axis=-1)

    def _glimpse_step(self, feature_map, context, state, worker_projection, context_map=None):
        """One glimpse; `worker_projection` is the zoomer's projection of r_{t-1}."""
        if self.locator_type == "spatial":
            location, raw = self.locator(context, state, context_map)
        else:
            location, raw = self.locator(context, state)
        fused, crop = self._glimpse_at(feature_map, location, raw)
        zoomer_in = fused if self.zoomer_input == "v" else crop
        # The zoomer input is [v ; r_{t-1}]; r_{t-1} is fixed over the G
        # glimpses of a frame, so its projection is computed once per frame
        # (at batch 1 the zoomer is bound by reading its kernel).
        state = self.zoomer.step(
            self.zoomer.project_inputs(zoomer_in) + worker_projection, state
        )
        return state, location, raw, fused, crop

    def _glimpse_at(self, feature_map, location, raw):
        """(v, z) of one glimpse per sample at `location` (batch, 4)."""
        crop = self.crop(feature_map, location[:, None])[:, 0]
        return self.fusion(crop, location, raw), crop

    def _precomputed_glimpses(self, features, context, context_map, locations=None, raws=None):
        batch_size = ops.shape(features)[0]
        num_frames = features.shape[1]
        if locations is not None:
            pass
        elif self.glimpse_type == "tube":
            locations, raws = self._tube_locations(features, context, context_map)
            locations = ops.repeat(locations[:, None], num_frames, axis=1)
            raws = ops.repeat(raws[:, None], num_frames, axis=1)
        elif self.glimpse_type == "random":
            locations = self._random_locations(batch_size, num_frames, features.dtype)
        else:
            locations = self._with_fixed_scale(self._saliency_centres(features))
        if raws is None:
            raws = self.raw_from_locations(locations)
        flat_shape = (-1,) + tuple(features.shape[2:])
        glimpse_shape = (-1, self.num_glimpses, 4)
        crops = self.crop(
            ops.reshape(features, flat_shape), ops.reshape(locations, glimpse_shape)
        )
        fused = self.fusion(
            crops,
            ops.reshape(locations, glimpse_shape),
            ops.reshape(raws, glimpse_shape),
        )
        fused = ops.reshape(fused, (batch_size, num_frames, self.num_glimpses, -1))
        return locations, raws, fused

    def _aggregate(self, glimpses, worker_state, memory_state, step):
        if self.memory is None:
            worker_state, _ = self.workers(ops.sum(glimpses, axis=1), [worker_state])
            assignments = ops.ones_like(glimpses[:, None, :, 0])
            return worker_state, worker_state[:, None], assignments, memory_state
        assignments, worker_inputs, memory_state = self.memory(
            glimpses, memory_state, step=step
        )
        worker_state, _ = self.workers(worker_inputs, [worker_state])
        return worker_state, worker_state, assignments, memory_state

    def call(self, features, context, training=None, context_map=None, locations=None,
             raw_locations=None):
        self._check_shapes(
            features.shape, context.shape, None if context_map is None else context_map.shape
        )
        batch_size = ops.shape(features)[0]
        num_frames = features.shape[1]
        channels = features.shape[-1]
        context = ops.cast(context, features.dtype)
        if context_map is not None:
            context_map = ops.cast(context_map, features.dtype)
        given, given_raws = None, None
        if locations is not None:
            given = ops.cast(locations, features.dtype)
            given_raws = self.raw_from_locations(given) if raw_locations is None else raw_locations
            given_raws = ops.cast(given_raws, features.dtype)
        if self.zoomer is not None and not self.zoomer.built:
            # The zoomer runs through `project_inputs`/`step`, which bypass
            # the automatic build of `__call__` (a symbolic trace of an
            # unbuilt core reaches here without `build`).
            self.zoomer.build((None, channels + self.worker_units))
        worker_state = self.workers.get_initial_state(batch_size)[0]
        memory_state = None
        if self.memory is not None:
            memory_state = self.memory.get_initial_state(batch_size, num_frames, channels)
        # Supplied locations replace the glimpse type's own; the attention
        # type then crops them frame by frame exactly as it crops its own.
        recurrent = self.glimpse_type == "attention"
        if recurrent and given is None:
            zoomer_state = ops.zeros((batch_size, self.zoomer_units), features.dtype)
        elif not recurrent:
            all_locations, all_raws, all_fused = self._precomputed_glimpses(
                features, context, context_map, given, given_raws
            )

        states, locations, raws, assignments, glimpses = [], [], [], [], []
        for step in range(num_frames):
            if recurrent and given is not None:
                frame_locations = given[:, step]
                frame_raws = given_raws[:, step]
                frame_glimpses = ops.stack([
                    self._glimpse_at(features[:, step], frame_locations[:, g], frame_raws[:, g])[0]
                    for g in range(self.num_glimpses)
                ], axis=1)
            elif recurrent:
                frame_context = self._locator_context(
                    context[:, step], None if context_map is None else context_map[:, step]
                )
                worker_sum = (
                    ops.sum(worker_state, axis=1)
                    if self.memory is not None
                    else worker_state
                )
                worker_projection = self.zoomer.project_inputs(
                    worker_sum, start=channels
                )
                if self.zoomer_reset_each_frame and step > 0:
                    zoomer_state = ops.zeros_like(zoomer_state)
                frame_locations, frame_raws, frame_glimpses = [], [], []
                for _ in range(self.num_glimpses):
                    zoomer_state, location, raw, fused, _ = self._glimpse_step(
                        features[:, step],
                        frame_context,
                        zoomer_state,
                        worker_projection,
                        None if context_map is None else context_map[:, step],
                    )
                    frame_locations.append(location)
                    frame_raws.append(raw)
                    frame_glimpses.append(fused)
                frame_locations = ops.stack(frame_locations, axis=1)
                frame_raws = ops.stack(frame_raws, axis=1)
                frame_glimpses = ops.stack(frame_glimpses, axis=1)
            else:
                frame_locations = all_locations[:, step]
                frame_raws = all_raws[:, step]
                frame_glimpses = all_fused[:, step]
            worker_state, frame_states, frame_assignments, memory_state = self._aggregate(
                frame_glimpses, worker_state, memory_state, step
            )
            states.append(frame_states)
            locations.append(frame_locations)
            raws.append(frame_raws)
            assignments.append(frame_assignments)
            glimpses.append(frame_glimpses)
        return {
            "worker_states": ops.stack(states, axis=1),
            "locations": ops.stack(locations, axis=1),
            "raw_locations": ops.stack(raws, axis=1),
            "assignments": ops.stack(assignments, axis=1),
            "glimpse_features": ops.stack(glimpses, axis=1),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_glimpses": self.num_glimpses,
                "num_workers": self.num_workers,
                "zoomer_units": self.zoomer_units,
                "worker_units": self.worker_units,
                "fusion_hidden_units": self.fusion_hidden_units,
                "glimpse_size": self.glimpse_size,
                "glimpse_type": self.glimpse_type,
                "aggregation": self.aggregation,
                "zoomer_input": self.zoomer_input,
                "zoomer_reset_each_frame": self.zoomer_reset_each_frame,
                "raw_location_embedding": self.raw_location_embedding,
                "detach_location": self.detach_location,
                "align_corners": self.align_corners,
                "share_first_worker_state": self.share_first_worker_state,
                "assign_axis": self.assign_axis,
                "temperature": self.temperature,
                "distance": self.distance,
                "projection_dim": self.projection_dim,
                "metric_trainable": self.metric_trainable,
                "decay_tau": self.decay_tau,
                "time_decay": self.time_decay,
                "memory_capacity": self.memory_capacity,
                "scale_bias": self.scale_bias,
                "max_scale": self.max_scale,
                "locator": self.locator_type,
                "locator_keypoints": self.locator_keypoints,
                "locator_key_units": self.locator_key_units,
                "fixed_glimpse_scale": self.fixed_glimpse_scale,
                "glimpse_scale_samples": self.glimpse_scale_samples,
                "saliency_nms_radius": self.saliency_nms_radius,
                "seed": self.seed,
                "initialization": self.initialization,
            }
        )
        return config


def _check_scale_samples(samples):
    """None, or a non-empty list of [s_x, s_y] pairs in (0, 1] (as plain floats)."""
    if samples is None:
        return None
    pairs = []
    try:
        for pair in samples:
            s_x, s_y = pair
            pairs.append([check_number("glimpse_scale_samples", float(s_x), minimum=0.0, maximum=1.0,
                                       above_minimum=True),
                          check_number("glimpse_scale_samples", float(s_y), minimum=0.0, maximum=1.0,
                                       above_minimum=True)])
    except (TypeError, ValueError):
        raise ValueError(
            "`glimpse_scale_samples` must be None or a list of [s_x, s_y] pairs in (0, 1], "
            f"received glimpse_scale_samples={samples!r}."
        ) from None
    if not pairs:
        raise ValueError("`glimpse_scale_samples` must not be empty; pass None for the fixed scale.")
    return pairs
