import keras
import numpy as np
import pytest

from glimpse_keras.layers import GlimpseCloudsCore
from tests.backend_testing import compiled
from tests.backend_testing import float64_enabled
from tests.backend_testing import gradients
from tests.backend_testing import to_numpy
from tests.layers.layer_checks import assert_config_round_trip
from tests.layers.layer_checks import assert_save_load_same

BATCH, TIME, HEIGHT, WIDTH, CHANNELS, CONTEXT = 2, 3, 4, 5, 6, 7


def tiny_core(**kwargs):
    options = dict(
        num_glimpses=2, num_workers=3, zoomer_units=4, worker_units=5,
        fusion_hidden_units=3,
    )
    options.update(kwargs)
    return GlimpseCloudsCore(**options)


def tiny_inputs(seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(BATCH, TIME, HEIGHT, WIDTH, CHANNELS)).astype("float32")
    context = rng.normal(size=(BATCH, TIME, CONTEXT)).astype("float32")
    return features, context


@pytest.mark.parametrize("aggregation", ["workers", "gru"])
@pytest.mark.parametrize("glimpse_type", ["attention", "tube", "random", "saliency"])
def test_every_variant_runs_eagerly_and_compiled(glimpse_type, aggregation):
    core = tiny_core(glimpse_type=glimpse_type, aggregation=aggregation)
    features, context = tiny_inputs()
    eager = core(features, context, training=False)
    if glimpse_type == "random":
        # Random places are drawn anew at every call: the compiled call gets the eager draw.
        graph = compiled(lambda f, c, l: core(f, c, training=False, locations=l))(
            features, context, eager["locations"])
    else:
        graph = compiled(lambda f, c: core(f, c, training=False))(features, context)
    workers = 3 if aggregation == "workers" else 1
    assert core.num_worker_outputs == workers
    expected_shapes = {
        "worker_states": (BATCH, TIME, workers, 5),
        "locations": (BATCH, TIME, 2, 4),
        "raw_locations": (BATCH, TIME, 2, 4),
        "assignments": (BATCH, TIME, workers, 2),
        "glimpse_features": (BATCH, TIME, 2, CHANNELS),
    }
    assert {key: tuple(value.shape) for key, value in eager.items()} == expected_shapes
    for key in expected_shapes:
        assert np.all(np.isfinite(eager[key]))
        np.testing.assert_allclose(graph[key], eager[key], atol=1e-5)
    locations = np.asarray(eager["locations"])
    assert np.all(np.abs(locations[..., :2]) <= 1) and np.all(locations[..., 2:] > 0)
    if aggregation == "workers":
        np.testing.assert_allclose(np.sum(eager["assignments"], axis=-1), 1.0, atol=1e-5)
    else:
        np.testing.assert_array_equal(eager["assignments"], 1.0)
    core(features, context, training=True)


def test_attention_wiring_matches_a_manual_unrolled_loop():
    core = tiny_core(zoomer_input="z")
    features, context = tiny_inputs(1)
    out = core(features, context)
    h = np.zeros((BATCH, 4), "float32")
    r = np.zeros((BATCH, 3, 5), "float32")
    memory = core.memory.get_initial_state(BATCH, TIME, CHANNELS)
    for t in range(TIME):
        r_sum = r.sum(axis=1)
        for g in range(2):
            location, raw = core.locator(context[:, t], h)
            z = core.crop(features[:, t], location[:, None])[:, 0]
            v = core.fusion(z, location, raw)
            h = np.asarray(core.zoomer(np.concatenate([z, r_sum], -1), [h])[0])
            np.testing.assert_allclose(out["locations"][:, t, g], location, atol=1e-5)
            np.testing.assert_allclose(out["glimpse_features"][:, t, g], v, atol=1e-5)
        p, worker_inputs, memory = core.memory(out["glimpse_features"][:, t], memory, step=t)
        r = np.asarray(core.workers(worker_inputs, [r])[0])
        np.testing.assert_allclose(out["assignments"][:, t], p, atol=1e-5)
        np.testing.assert_allclose(out["worker_states"][:, t], r, atol=1e-5)


def test_zoomer_state_is_carried_across_frames():
    core = tiny_core()
    features, context = tiny_inputs(2)
    changed = features.copy()
    changed[:, 0] += 1.0
    before = np.asarray(core(features, context)["locations"])
    after = np.asarray(core(changed, context)["locations"])
    np.testing.assert_allclose(after[:, 0, 0], before[:, 0, 0], atol=1e-6)
    assert np.abs(after[:, 1, 0] - before[:, 1, 0]).max() > 1e-6


def test_zoomer_reset_each_frame_places_every_first_glimpse_from_its_own_frame():
    core = tiny_core(zoomer_reset_each_frame=True)
    features, context = tiny_inputs(2)
    out = core(features, context)
    zero_state = np.zeros((BATCH, 4), "float32")
    for t in range(TIME):
        expected, _ = core.locator(context[:, t], zero_state)
        np.testing.assert_allclose(out["locations"][:, t, 0], expected, atol=1e-6)
    # Within a frame the state still moves on: the second glimpse differs from a fresh one.
    fresh, _ = core.locator(context[:, 1], zero_state)
    assert np.abs(out["locations"][:, 1, 1] - fresh).max() > 1e-6
    changed = features.copy()
    changed[:, 0] += 1.0
    after = np.asarray(core(changed, context)["locations"])
    np.testing.assert_allclose(after[:, 1, 0], out["locations"][:, 1, 0], atol=1e-6)


@pytest.mark.parametrize("scale_bias,max_scale", [(3.0, 1.0), (0.0, 1.0), (-1.0, 1.0), (0.0, 0.4)])
def test_scale_bias_and_max_scale_set_the_initial_glimpse_scale(scale_bias, max_scale):
    core = tiny_core(scale_bias=scale_bias, max_scale=max_scale)
    features, context = tiny_inputs(4)
    core(features, context)
    core.locator.kernel.assign(np.zeros(core.locator.kernel.shape, "float32"))
    core.locator.bias.assign(np.zeros((4,), "float32"))
    scales = np.asarray(core(features, context)["locations"])[..., 2:]
    np.testing.assert_allclose(scales, max_scale / (1.0 + np.exp(-scale_bias)), rtol=1e-6)


def test_max_scale_bounds_every_glimpse():
    core = tiny_core(max_scale=0.3)
    features, context = tiny_inputs(5)
    core(features, context)
    core.locator.bias.assign(np.array([0.0, 0.0, 20.0, 20.0], "float32"))  # saturate the sigmoid
    scales = np.asarray(core(features, context)["locations"])[..., 2:]
    assert scales.max() <= 0.3 + 1e-6 and scales.min() > 0.29
    with pytest.raises(ValueError, match="max_scale=1.5"):
        tiny_core(max_scale=1.5)


def _locator_gradient(core, features, context):
    core(features, context)

    def loss(kernel):
        out = core(features, context)
        return keras.ops.sum(out["worker_states"] * np.sin(np.arange(5, dtype="float32")))

    (grad,) = gradients(loss, [core.locator.kernel])
    return 0.0 if grad is None else float(np.abs(grad).sum())


@pytest.mark.parametrize("detach", [False, True])
def test_gradients_reach_the_locator_through_the_crop_unless_detached(detach):
    features, context = tiny_inputs(3)
    # Seeded, and 8 hidden units in Lambda: with 3 ReLU units all of them
    # were inactive for about 1 draw of the weights in 10, which cut the
    # location embedding's path to the locator.
    keras.utils.set_random_seed(3)
    core = tiny_core(detach_location=detach, fusion_hidden_units=8)
    assert _locator_gradient(core, features, context) > 0
    # With Lambda's first layer zeroed the embedding no longer depends on the
    # location, so the crop is the only remaining path to the locator.
    core.fusion.hidden_kernel.assign(np.zeros(core.fusion.hidden_kernel.shape, "float32"))
    through_crop = _locator_gradient(core, features, context)
    assert (through_crop == 0.0) if detach else (through_crop > 0)


def test_saliency_picks_the_strongest_cells_with_suppression():
    features = np.zeros((1, 1, HEIGHT, WIDTH, CHANNELS), "float32")
    features[0, 0, 1, 3] = 3.0
    features[0, 0, 1, 2] = 2.0
    features[0, 0, 3, 0] = 1.0
    core = tiny_core(glimpse_type="saliency", fixed_glimpse_scale=0.4)
    locations = np.asarray(core(features, np.zeros((1, 1, CONTEXT), "float32"))["locations"])
    # Cell (row 1, col 3) -> (x, y) = (3/4 * 2 - 1, 1/3 * 2 - 1); the neighbour
    # (1, 2) is suppressed, so the next glimpse is cell (3, 0) -> (-1, 1).
    np.testing.assert_allclose(
        locations[0, 0], [[0.5, -1.0 / 3.0, 0.4, 0.4], [-1.0, 1.0, 0.4, 0.4]], atol=1e-6
    )


def test_raw_locations_at_the_map_border_stay_finite_in_bfloat16():
    # A uniform map puts the saliency glimpse on the first corner cell
    # (centre (-1, -1)) and fixed_glimpse_scale=1 gives scales of 1: their
    # inverse activations must be the clipped finite values, not +-inf (which
    # made v NaN in bfloat16).
    features = np.ones((1, 1, HEIGHT, WIDTH, CHANNELS), "float32")
    core = tiny_core(
        num_glimpses=1, glimpse_type="saliency", fixed_glimpse_scale=1.0,
        raw_location_embedding=True, dtype="mixed_bfloat16",
    )
    out = core(features, np.zeros((1, 1, CONTEXT), "float32"))
    raw = to_numpy(keras.ops.cast(out["raw_locations"], "float32"))
    border = 0.5 * np.log((2.0 - 1e-6) / 1e-6)  # atanh(1 - 1e-6), about 7.25
    np.testing.assert_allclose(raw[0, 0, :, :2], -border, rtol=1e-2)
    np.testing.assert_allclose(raw[0, 0, :, 2:], np.log(1e6 - 1.0) - 3.0, rtol=1e-2)
    assert np.all(np.isfinite(to_numpy(keras.ops.cast(out["glimpse_features"], "float32"))))


def test_random_glimpses_are_random_at_inference_too_at_the_fixed_scale():
    core = tiny_core(num_glimpses=3, glimpse_type="random", seed=7, fixed_glimpse_scale=0.25)
    features, context = tiny_inputs(4)
    first = to_numpy(core(features, context, training=False)["locations"])
    second = to_numpy(core(features, context, training=False)["locations"])
    for drawn in (first, second):
        np.testing.assert_array_equal(drawn[..., 2:], 0.25)
        assert np.all(np.abs(drawn[..., :2]) <= 0.75 + 1e-6)
    # Every call, glimpse and frame draws anew, in inference as in training.
    assert np.abs(first - second).max() > 1e-3
    assert np.abs(first[:, 0] - first[:, 1]).max() > 1e-3
    trained = to_numpy(core(features, context, training=True)["locations"])
    assert np.abs(trained - second).max() > 1e-3
    # The draws are seeded: a fresh core with the same seed draws the same places.
    again = tiny_core(num_glimpses=3, glimpse_type="random", seed=7, fixed_glimpse_scale=0.25)
    np.testing.assert_allclose(to_numpy(again(features, context, training=False)["locations"]), first)


def test_random_glimpse_scales_are_drawn_from_the_samples_and_stay_on_the_map():
    samples = [[0.05, 0.2], [0.5, 0.1], [0.9, 0.9]]
    core = tiny_core(num_glimpses=3, glimpse_type="random", seed=3, glimpse_scale_samples=samples)
    features = np.zeros((40, TIME, HEIGHT, WIDTH, CHANNELS), "float32")
    context = np.zeros((40, TIME, CONTEXT), "float32")
    locations = to_numpy(core(features, context, training=False)["locations"]).reshape(-1, 4)
    assert np.all(np.abs(locations[:, :2]) <= 1.0 - locations[:, 2:] + 1e-6)
    # Every glimpse has one of the sample pairs, each drawn about equally often (360 glimpses).
    counts = [np.sum(np.all(np.isclose(locations[:, 2:], pair), axis=1)) for pair in samples]
    assert sum(counts) == len(locations) and min(counts) > 80
    with pytest.raises(ValueError, match="glimpse_scale_samples"):
        tiny_core(glimpse_type="random", glimpse_scale_samples=[[0.1, 1.5]])
    with pytest.raises(ValueError, match="glimpse_scale_samples"):
        tiny_core(glimpse_type="random", glimpse_scale_samples=[])


CONTEXT_MAP_SHAPE = (BATCH, TIME, 3, 3, CONTEXT)


@pytest.mark.parametrize("options", [
    {},
    {"locator": "spatial"},
    {"locator_keypoints": 2},
    {"locator": "spatial", "locator_keypoints": 2, "raw_location_embedding": True},
    {"glimpse_type": "tube", "locator": "spatial"},
    {"glimpse_type": "random", "seed": 5},
    {"glimpse_type": "saliency"},
    {"aggregation": "gru", "raw_location_embedding": True},
])
def test_the_own_locations_supplied_reproduce_every_output_exactly(options):
    core = tiny_core(**options)
    features, context = tiny_inputs(9)
    context_map = np.random.default_rng(9).normal(size=CONTEXT_MAP_SHAPE).astype("float32")
    own = core(features, context, context_map=context_map)
    again = core(features, context, context_map=context_map, locations=own["locations"],
                 raw_locations=own["raw_locations"])
    for key in ("worker_states", "locations", "assignments", "glimpse_features"):
        np.testing.assert_array_equal(to_numpy(again[key]), to_numpy(own[key]))


def test_supplied_locations_replace_the_glimpse_places():
    core = tiny_core(num_glimpses=2)
    features, context = tiny_inputs(10)
    supplied = np.zeros((BATCH, TIME, 2, 4), "float32")
    supplied[..., 0] = [-0.5, 0.5]
    supplied[..., 2:] = 0.3
    out = core(features, context, locations=supplied)
    np.testing.assert_allclose(to_numpy(out["locations"]), supplied, atol=1e-6)
    np.testing.assert_allclose(to_numpy(out["raw_locations"]), to_numpy(core.raw_from_locations(supplied)),
                               atol=1e-6)
    expected = to_numpy(core.crop(features[:, 1], supplied[:, 1]))
    fused = to_numpy(core.fusion(expected[:, 0], supplied[:, 1, 0], to_numpy(out["raw_locations"])[:, 1, 0]))
    np.testing.assert_allclose(to_numpy(out["glimpse_features"])[:, 1, 0], fused, atol=1e-5)
    assert np.abs(to_numpy(out["worker_states"]) - to_numpy(core(features, context)["worker_states"])).max() > 1e-4


def test_the_spatial_locator_and_keypoints_read_the_context_map():
    features, context = tiny_inputs(11)
    context_map = np.random.default_rng(11).normal(size=CONTEXT_MAP_SHAPE).astype("float32")
    for options in ({"locator": "spatial"}, {"locator_keypoints": 3}):
        core = tiny_core(zoomer_reset_each_frame=True, **options)
        assert core.needs_context_map
        out = to_numpy(core(features, context, context_map=context_map)["locations"])
        moved = context_map.copy()
        moved[:, 1] = np.roll(moved[:, 1], 1, axis=2)  # frame 1's map content shifts right
        after = to_numpy(core(features, context, context_map=moved)["locations"])
        np.testing.assert_allclose(after[:, 0], out[:, 0], atol=1e-6)
        assert np.abs(after[:, 1, 0, :2] - out[:, 1, 0, :2]).max() > 1e-4
        with pytest.raises(ValueError, match="context_map"):
            tiny_core(**options)(features, context)
    assert not tiny_core().needs_context_map
    assert not tiny_core(glimpse_type="random", locator="spatial").needs_context_map
    spatial = tiny_core(locator="spatial", zoomer_reset_each_frame=True)
    out = spatial(features, context, context_map=context_map)
    zero_state = np.zeros((BATCH, 4), "float32")
    expected, _ = spatial.locator(context[:, 2], zero_state, context_map[:, 2])
    np.testing.assert_allclose(to_numpy(out["locations"])[:, 2, 0], to_numpy(expected), atol=1e-6)


def test_tube_locations_are_held_over_time_and_come_from_the_mean_context():
    core = tiny_core(glimpse_type="tube")
    features, context = tiny_inputs(5)
    locations = np.asarray(core(features, context)["locations"])
    for t in range(1, TIME):
        np.testing.assert_allclose(locations[:, t], locations[:, 0], atol=1e-6)
    first, _ = core.locator(context.mean(axis=1), np.zeros((BATCH, 4), "float32"))
    np.testing.assert_allclose(locations[:, 0, 0], first, atol=1e-5)


def test_gru_aggregation_feeds_the_sum_of_glimpses_to_one_gru():
    core = tiny_core(aggregation="gru")
    features, context = tiny_inputs(6)
    out = core(features, context)
    state = np.zeros((BATCH, 5), "float32")
    for t in range(TIME):
        summed = np.asarray(out["glimpse_features"][:, t]).sum(axis=1)
        state = np.asarray(core.workers(summed, [state])[0])
        np.testing.assert_allclose(out["worker_states"][:, t, 0], state, atol=1e-5)


def test_options_reach_the_sublayers():
    core = tiny_core(
        share_first_worker_state=True, raw_location_embedding=True, detach_location=True,
        assign_axis="workers", distance="code", time_decay="code", memory_capacity=1,
        glimpse_size=3, align_corners=False, initialization="keras",
    )
    assert core.workers.share_first_worker_state and core.fusion.raw_location_embedding
    assert core.crop.detach_location and core.crop.output_size == 3
    assert not core.crop.align_corners and core.crop.pooled
    assert core.memory.assign_axis == "workers" and core.memory.distance == "code"
    assert core.memory.time_decay == "code" and core.memory.memory_capacity == 1
    out = core(*tiny_inputs(7))
    np.testing.assert_allclose(np.sum(out["assignments"], axis=2), 1.0, atol=1e-5)


def test_bad_arguments_and_inputs_raise():
    with pytest.raises(ValueError, match="locator='grid'"):
        tiny_core(locator="grid")
    with pytest.raises(ValueError, match="locator_keypoints=-1"):
        tiny_core(locator_keypoints=-1)
    with pytest.raises(ValueError, match="glimpse_type"):
        tiny_core(glimpse_type="foveal")
    with pytest.raises(ValueError, match="aggregation"):
        tiny_core(aggregation="mean")
    with pytest.raises(ValueError, match="fixed_glimpse_scale"):
        tiny_core(fixed_glimpse_scale=0.0)
    features, context = tiny_inputs()
    with pytest.raises(ValueError, match="features"):
        tiny_core()(features[:, 0], context)
    with pytest.raises(ValueError, match="context"):
        tiny_core()(features, context[:, :2])


def test_config_round_trip_and_saving(tmp_path):
    core = tiny_core(glimpse_type="attention", projection_dim=2, zoomer_input="z")
    assert_config_round_trip(core)
    assert_config_round_trip(tiny_core(locator="spatial", locator_keypoints=2))
    assert_config_round_trip(tiny_core(glimpse_type="random", glimpse_scale_samples=[[0.1, 0.2]]))
    features = keras.Input((TIME, HEIGHT, WIDTH, CHANNELS))
    context = keras.Input((TIME, CONTEXT))
    model = keras.Model([features, context], core(features, context))
    assert_save_load_same(model, list(tiny_inputs(8)), tmp_path, atol=1e-5)


def test_sublayers_follow_the_dtype_policy_and_memory_stays_float32():
    features, context = tiny_inputs(9)
    with float64_enabled():
        double = tiny_core(dtype="float64")
        out = double(features.astype("float64"), context.astype("float64"))
        assert out["worker_states"].dtype == "float64"
        assert double.locator.kernel.dtype == "float64" and double.memory.prior.dtype == "float64"
    mixed = tiny_core(dtype="mixed_bfloat16")
    out = mixed(features, context)
    assert out["worker_states"].dtype == "bfloat16"
    assert out["assignments"].dtype == "float32"
    np.testing.assert_allclose(np.sum(out["assignments"], axis=-1), 1.0, atol=1e-5)


def test_weights_can_be_created_during_a_symbolic_trace():
    # Keras builds subclassed models by tracing `call` with symbolic tensors;
    # every initialiser must work there (no global seed generator).
    core = tiny_core()
    out = core.compute_output_spec(
        keras.KerasTensor((1, TIME, HEIGHT, WIDTH, CHANNELS)),
        keras.KerasTensor((1, TIME, CONTEXT)),
    )
    assert tuple(out["assignments"].shape) == (1, TIME, 3, 2)
    assert np.all(np.asarray(core.memory.prior) >= 0)


def test_config_names_reach_the_core_and_old_names_still_load():
    # The config keys model.time_decay / model.raw_location_embedding are the
    # core's argument names, with the same values, down to the sublayers.
    core = tiny_core(time_decay="code", raw_location_embedding=True)
    assert (core.time_decay, core.memory.time_decay) == ("code", "code")
    assert core.raw_location_embedding and core.fusion.raw_location_embedding
    config = core.get_config()
    assert config["time_decay"] == "code" and config["raw_location_embedding"] is True
    assert "decay" not in config and "use_raw_location" not in config
    with pytest.raises(ValueError, match="time_decay"):
        tiny_core(time_decay="recency")
    # Old keywords, and a core config saved before the rename, still work.
    with pytest.warns(DeprecationWarning, match="time_decay"):
        old = tiny_core(decay="recency")
    assert (old.time_decay, old.memory.time_decay, old.decay) == ("recent", "recent", "recency")
    with pytest.warns(DeprecationWarning, match="raw_location_embedding"):
        assert tiny_core(use_raw_location=True).fusion.raw_location_embedding
    old_config = {
        "name": "glimpse_clouds_core", "trainable": True, "dtype": "float32",
        "num_glimpses": 2, "num_workers": 3, "zoomer_units": 4, "worker_units": 5,
        "fusion_hidden_units": 3, "glimpse_size": None, "glimpse_type": "attention",
        "aggregation": "workers", "zoomer_input": "v", "zoomer_reset_each_frame": False,
        "use_raw_location": True, "detach_location": False, "align_corners": True,
        "share_first_worker_state": False, "assign_axis": "glimpses", "temperature": 0.5,
        "distance": "learned", "projection_dim": None, "metric_trainable": True,
        "decay_tau": 4.0, "decay": "code", "memory_capacity": 0, "scale_bias": 3.0,
        "max_scale": 1.0, "fixed_glimpse_scale": 0.5, "saliency_nms_radius": 1,
        "seed": None, "initialization": "torch",
    }
    with pytest.warns(DeprecationWarning):
        loaded = GlimpseCloudsCore.from_config(old_config)
    assert loaded.time_decay == "code" and loaded.memory.time_decay == "code"
    assert loaded.raw_location_embedding and loaded.fusion.raw_location_embedding
    out = loaded(*tiny_inputs(8))
    assert out["worker_states"].shape == (BATCH, TIME, 3, 5)
