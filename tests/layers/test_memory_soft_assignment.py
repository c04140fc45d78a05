import keras
import numpy as np
import pytest

from glimpse_keras.layers import MemorySoftAssignment
from tests.backend_testing import compiled
from tests.backend_testing import gradients
from tests.layers.layer_checks import assert_config_round_trip
from tests.layers.layer_checks import assert_save_load_same


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def two_by_two_memory(**kwargs):
    """C = G = 2, D = 1, A = [[1]], prior a = identity."""
    memory = MemorySoftAssignment(num_workers=2, num_glimpses=2, epsilon=1e-12, **kwargs)
    memory.build((None, 2, 1))
    memory.set_weights([np.ones((1, 1), "float32"), np.eye(2, dtype="float32")])
    return memory


def run_two_frames(memory):
    state = memory.get_initial_state(batch_size=1, num_frames=2, feature_dim=1)
    frame0 = np.array([[[0.0], [1.0]]], "float32")
    frame1 = np.array([[[0.0], [2.0]]], "float32")
    p0, v0, state = memory(frame0, state, step=0)
    p1, v1, state = memory(frame1, state, step=1)
    return [np.asarray(x) for x in (p0, v0, p1, v1)], state


def test_hand_computed_two_glimpses_two_workers():
    (p0, v0, p1, v1), _ = run_two_frames(two_by_two_memory())
    # t = 0: p = softmax(a_c / 0.5) over glimpses.
    a = np.exp(2.0) / (np.exp(2.0) + 1.0)
    b = 1.0 - a
    np.testing.assert_allclose(p0[0], [[a, b], [b, a]], atol=1e-6)
    np.testing.assert_allclose(v0[0, :, 0], [b, a], atol=1e-6)
    # t = 1: distances |v_0g' - v_1g| = [[0, 2], [1, 1]], d_max = 2, so
    # s = [[1, 0], [0.5, 0.5]]; score[c, g] = e^{-1/4} mean_g' w[c, g'] s[g', g]
    # and p[c, 0] = sigmoid((score[c,0] - score[c,1]) / 0.5) = sigmoid(e^{-1/4} w[c, 0]).
    decay = np.exp(-0.25)
    expected = np.array([sigmoid(decay * a), sigmoid(decay * b)])
    np.testing.assert_allclose(p1[0, :, 0], expected, atol=1e-5)
    np.testing.assert_allclose(p1[0, :, 1], 1.0 - expected, atol=1e-5)
    np.testing.assert_allclose(v1[0, :, 0], 2.0 * (1.0 - expected), atol=1e-5)


def test_hand_computed_assignment_over_workers():
    (p0, _, p1, v1), _ = run_two_frames(two_by_two_memory(assign_axis="workers"))
    a = np.exp(2.0) / (np.exp(2.0) + 1.0)
    b = 1.0 - a
    np.testing.assert_allclose(p0[0], [[a, b], [b, a]], atol=1e-6)
    # score[:, 0] = e^{-1/4}/2 (a + b/2, b + a/2); score[:, 1] = e^{-1/4}/2 (b/2, a/2).
    decay = np.exp(-0.25)
    first = sigmoid(decay * (a - b) / 2.0)
    np.testing.assert_allclose(p1[0], [[first, 1 - first], [1 - first, first]], atol=1e-5)
    np.testing.assert_allclose(p1.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(v1[0, :, 0], 2.0 * p1[0, :, 1], atol=1e-5)


@pytest.mark.parametrize("axis", ["glimpses", "workers"])
def test_assignments_normalise_over_the_chosen_axis_with_more_workers_than_glimpses(axis):
    memory = MemorySoftAssignment(num_workers=3, num_glimpses=2, assign_axis=axis)
    rng = np.random.default_rng(0)
    state = memory.get_initial_state(batch_size=2, num_frames=3, feature_dim=4)
    for step in range(3):
        glimpses = rng.normal(size=(2, 2, 4)).astype("float32")
        p, v, state = memory(glimpses, state, step=step)
        assert p.shape == (2, 3, 2) and v.shape == (2, 3, 4)
        sums = np.asarray(p).sum(axis=-1 if axis == "glimpses" else 1)
        np.testing.assert_allclose(sums, 1.0, atol=1e-6)
        np.testing.assert_allclose(v, np.einsum("bcg,bgd->bcd", p, glimpses), atol=1e-5)
    assert memory.prior.shape == (3, 2)
    assert np.all(np.asarray(memory.prior) >= 0)


def test_ring_buffer_keeps_the_newest_frames():
    memory = MemorySoftAssignment(num_workers=1, num_glimpses=2, memory_capacity=2)
    state = memory.get_initial_state(batch_size=1, num_frames=10, feature_dim=1)
    memory.build((None, 2, 1))
    memory.set_weights([np.ones((1, 1), "float32"), np.ones((1, 2), "float32")])
    for step in range(4):
        frame = np.array([[[step + 1.0], [step + 1.5]]], "float32")
        _, _, state = memory(frame, state, step=step)
    keys, _, times, valid = (np.asarray(s) for s in state)
    assert keys.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(valid, [[1.0, 1.0]])
    assert sorted(times[0].tolist()) == [2.0, 3.0]
    assert sorted(keys[0, :, 0, 0].tolist()) == [3.0, 4.0]


def _log_odds_with_memory_frame_at(time_decay, stored_time):
    """One stored frame (weights 0.7/0.3), current frame identical, t = 3."""
    memory = MemorySoftAssignment(
        num_workers=1, num_glimpses=2, time_decay=time_decay, memory_capacity=1, epsilon=1e-12
    )
    memory.build((None, 2, 1))
    memory.set_weights([np.ones((1, 1), "float32"), np.zeros((1, 2), "float32")])
    glimpses = np.array([[[0.0], [1.0]]], "float32")
    state = [
        glimpses[:, None],
        np.array([[[[0.7, 0.3]]]], "float32"),
        np.array([[stored_time]], "float32"),
        np.ones((1, 1), "float32"),
    ]
    p, _, _ = memory(glimpses, state, step=3)
    p = np.asarray(p)[0, 0]
    return np.log(p[0] / p[1])


def test_time_decay_direction():
    # s = identity, so log(p0 / p1) = decay * (0.7 - 0.3) / (0.5 * 2 glimpses).
    recent = _log_odds_with_memory_frame_at("recent", 2.0)
    old = _log_odds_with_memory_frame_at("recent", 0.0)
    np.testing.assert_allclose(recent, 0.4 * np.exp(-0.25), rtol=1e-4)
    np.testing.assert_allclose(recent / old, np.exp(0.5), rtol=1e-4)
    code_recent = _log_odds_with_memory_frame_at("code", 2.0)
    code_old = _log_odds_with_memory_frame_at("code", 0.0)
    np.testing.assert_allclose(code_recent / code_old, np.exp(-0.5), rtol=1e-4)


@pytest.mark.parametrize("distance, isolated", [("learned", True), ("code", False)])
def test_distance_normalisation_is_per_sample_or_per_batch(distance, isolated):
    memory = MemorySoftAssignment(num_workers=2, num_glimpses=2, distance=distance)
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(2, 2, 2, 3)).astype("float32")
    scaled = frames.copy()
    scaled[1] *= 10.0

    def second_assignment(clip):
        state = memory.get_initial_state(batch_size=2, num_frames=2, feature_dim=3)
        _, _, state = memory(clip[:, 0], state, step=0)
        return np.asarray(memory(clip[:, 1], state, step=1)[0])[0]

    same = np.allclose(second_assignment(frames), second_assignment(scaled), atol=1e-6)
    assert same == isolated


def test_tensor_step_in_a_compiled_function_matches_python_steps():
    memory = MemorySoftAssignment(num_workers=2, num_glimpses=3)
    clip = np.random.default_rng(2).normal(size=(3, 2, 3, 4)).astype("float32")
    graph_call = compiled(lambda g, s, t: memory(g, s, step=t))
    eager_state = memory.get_initial_state(batch_size=2, num_frames=3, feature_dim=4)
    graph_state = list(eager_state)
    for step in range(3):
        eager_p, eager_v, eager_state = memory(clip[step], eager_state, step=step)
        graph_p, graph_v, graph_state = graph_call(clip[step], graph_state, np.int32(step))
        np.testing.assert_allclose(graph_p, eager_p, atol=1e-6)
        np.testing.assert_allclose(graph_v, eager_v, atol=1e-5)


def test_gradients_reach_the_metric_the_prior_and_the_glimpses():
    memory = MemorySoftAssignment(num_workers=2, num_glimpses=2, projection_dim=3)
    clip = np.random.default_rng(3).normal(size=(2, 2, 2, 5)).astype("float32")
    memory.build((None, 2, 5))
    assert memory.metric_kernel.shape == (5, 3)

    def loss(metric_kernel, prior, clip):
        state = memory.get_initial_state(batch_size=2, num_frames=2, feature_dim=5)
        _, _, state = memory(clip[:, 0], state, step=0)
        _, worker_inputs, _ = memory(clip[:, 1], state, step=1)
        return keras.ops.sum(worker_inputs * np.arange(5, dtype="float32"))

    grads = gradients(loss, [memory.metric_kernel, memory.prior, clip])
    for grad in grads:
        assert np.abs(grad).sum() > 0
    fixed = MemorySoftAssignment(num_workers=2, num_glimpses=2, metric_trainable=False)
    fixed.build((None, 2, 5))
    assert len(fixed.trainable_weights) == 1 and len(fixed.non_trainable_weights) == 1


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="assign_axis"):
        MemorySoftAssignment(2, 2, assign_axis="frames")
    with pytest.raises(ValueError, match="temperature"):
        MemorySoftAssignment(2, 2, temperature=0)
    with pytest.raises(ValueError, match="memory_capacity"):
        MemorySoftAssignment(2, 2, memory_capacity=-1)
    memory = MemorySoftAssignment(2, 3)
    with pytest.raises(ValueError, match="glimpses must be"):
        memory.build((None, 2, 4))
    memory.build((None, 3, 4))
    state = memory.get_initial_state(batch_size=1, num_frames=2, feature_dim=4)
    with pytest.raises(ValueError, match="step"):
        memory(np.zeros((1, 3, 4), "float32"), state)


def test_config_round_trip_and_saving(tmp_path):
    memory = MemorySoftAssignment(
        num_workers=2, num_glimpses=3, temperature=0.7, assign_axis="workers",
        distance="code", projection_dim=2, metric_initializer="glorot_uniform",
        time_decay="code", memory_capacity=2,
    )
    assert_config_round_trip(memory)
    glimpses = keras.Input((3, 4))
    state_inputs = [
        keras.Input((2, 3, 2)), keras.Input((2, 2, 3)), keras.Input((2,)), keras.Input((2,))
    ]
    p, v, _ = memory(glimpses, state_inputs, step=1)
    model = keras.Model([glimpses] + state_inputs, [p, v])
    rng = np.random.default_rng(4)
    inputs = [
        rng.normal(size=(2, 3, 4)).astype("float32"),
        rng.normal(size=(2, 2, 3, 2)).astype("float32"),
        rng.uniform(size=(2, 2, 2, 3)).astype("float32"),
        np.zeros((2, 2), "float32"),
        np.ones((2, 2), "float32"),
    ]
    assert_save_load_same(model, inputs, tmp_path, atol=1e-5)


def test_adapt_metric_whitens_the_features():
    rng = np.random.default_rng(5)
    scales = np.array([1.0, 4.0, 0.5])
    samples = rng.normal(size=(4000, 3)) * scales
    diagonal = MemorySoftAssignment(num_workers=2, num_glimpses=2)
    diagonal.adapt_metric(samples, method="diagonal", shrinkage=0.0)
    np.testing.assert_allclose(
        np.diag(np.asarray(diagonal.metric_kernel)), 1.0 / scales, rtol=0.05
    )
    mixing = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.2, 0.0, 1.0]])
    correlated = rng.normal(size=(4000, 3)) @ mixing
    pca = MemorySoftAssignment(num_workers=2, num_glimpses=2, projection_dim=3)
    pca.adapt_metric(correlated, method="pca", shrinkage=0.0)
    projected = correlated @ np.asarray(pca.metric_kernel)
    np.testing.assert_allclose(np.cov(projected, rowvar=False), np.eye(3), atol=0.05)
    small = MemorySoftAssignment(num_workers=2, num_glimpses=2, projection_dim=2)
    with pytest.raises(ValueError, match="pca"):
        small.adapt_metric(samples, method="diagonal")
    small.adapt_metric(correlated, method="pca")
    assert small.metric_kernel.shape == (3, 2)


def test_memory_capacity_is_the_config_name_and_memory_frames_loads_from_old_configs():
    # model.memory_capacity in the config is memory_capacity here, 0 = all frames.
    assert MemorySoftAssignment(2, 2, memory_capacity=0).memory_size(8) == 7
    assert MemorySoftAssignment(2, 2, memory_capacity=3).memory_size(8) == 3
    with pytest.raises(ValueError, match="memory_frames"):
        MemorySoftAssignment(2, 2, memory_frames=3)
    # A layer saved with the old name (None = every frame) loads.
    config = MemorySoftAssignment(2, 2, memory_capacity=2).get_config()
    assert config["memory_capacity"] == 2 and "memory_frames" not in config
    config["memory_frames"] = config.pop("memory_capacity")
    assert MemorySoftAssignment.from_config(config).memory_capacity == 2
    config["memory_frames"] = None
    assert MemorySoftAssignment.from_config(config).memory_capacity == 0


def test_time_decay_is_the_config_name_and_decay_loads_from_old_configs():
    # model.time_decay ("recent" | "code") in the config is time_decay here.
    assert MemorySoftAssignment(2, 2).time_decay == "recent"
    assert MemorySoftAssignment(2, 2, time_decay="code").time_decay == "code"
    with pytest.raises(ValueError, match="time_decay='recency'"):
        MemorySoftAssignment(2, 2, time_decay="recency")
    with pytest.raises(ValueError, match="Unrecognized keyword arguments.*decay"):
        MemorySoftAssignment(2, 2, decay="code")
    # A layer saved with the old name and values ("recency" | "code") loads.
    config = MemorySoftAssignment(2, 2, time_decay="code").get_config()
    assert config["time_decay"] == "code" and "decay" not in config
    del config["time_decay"]
    for old, new in (("recency", "recent"), ("code", "code")):
        config["decay"] = old
        assert MemorySoftAssignment.from_config(config).time_decay == new
    config["time_decay"] = "code"
    with pytest.raises(ValueError, match="both `decay`"):
        MemorySoftAssignment.from_config(config)
