import keras
import numpy as np
import pytest

from glimpse_keras.layers import WorkerGRUCell
from tests.layers.layer_checks import assert_config_round_trip
from tests.layers.layer_checks import assert_save_load_same


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_gru_step(x, h, kernel, recurrent_kernel, input_bias, recurrent_bias):
    """PyTorch nn.GRU maths, gates (r, z, n), written out gate by gate."""
    units = h.shape[-1]
    gates_x = x @ kernel + input_bias
    gates_h = h @ recurrent_kernel + recurrent_bias
    r = sigmoid(gates_x[:, :units] + gates_h[:, :units])
    z = sigmoid(gates_x[:, units : 2 * units] + gates_h[:, units : 2 * units])
    n = np.tanh(gates_x[:, 2 * units :] + r * gates_h[:, 2 * units :])
    return (1 - z) * n + z * h


def known_weights(input_dim, units, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.uniform(-0.5, 0.5, size=(input_dim, 3 * units)).astype("float32"),
        rng.uniform(-0.5, 0.5, size=(units, 3 * units)).astype("float32"),
        rng.uniform(-0.5, 0.5, size=(3 * units,)).astype("float32"),
        rng.uniform(-0.5, 0.5, size=(3 * units,)).astype("float32"),
    ]


def test_golden_single_step_with_constant_weights():
    cell = WorkerGRUCell(2)
    x = np.array([[1.0, -1.0, 0.5]], "float32")
    h = np.array([[0.5, -0.5]], "float32")
    cell(x, [h])
    cell.set_weights(
        [np.full((3, 6), 0.1, "float32"), np.full((2, 6), 0.2, "float32"),
         np.zeros(6, "float32"), np.zeros(6, "float32")]
    )
    # x W = 0.05 per gate, h U = 0 per gate: r = z = sigmoid(0.05), n = tanh(0.05).
    r = z = sigmoid(0.05)
    n = np.tanh(0.05)
    expected = (1 - z) * n + z * h
    output, [state] = cell(x, [h])
    np.testing.assert_allclose(output, expected, atol=1e-6)
    np.testing.assert_allclose(state, expected, atol=1e-6)
    assert r == z


def test_matches_numpy_reference_over_several_steps():
    cell = WorkerGRUCell(4)
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(5, 2, 3)).astype("float32")
    cell(inputs[0], cell.get_initial_state(2))
    weights = known_weights(3, 4)
    cell.set_weights(weights)
    state = cell.get_initial_state(2)
    expected = np.zeros((2, 4))
    for x in inputs:
        _, state = cell(x, state)
        expected = numpy_gru_step(x, expected, *weights)
    np.testing.assert_allclose(state[0], expected, atol=1e-5)


def test_equals_keras_gru_cell_reset_after_with_reordered_gates():
    units = 3
    ours = WorkerGRUCell(units)
    theirs = keras.layers.GRUCell(units, reset_after=True)
    x = np.random.default_rng(2).normal(size=(2, 4)).astype("float32")
    h = np.random.default_rng(3).normal(size=(2, units)).astype("float32")
    ours(x, [h])
    theirs(x, [h])
    kernel, recurrent, input_bias, recurrent_bias = known_weights(4, units, seed=4)

    def to_keras(matrix):
        r, z, n = np.split(matrix, 3, axis=-1)
        return np.concatenate([z, r, n], axis=-1)

    ours.set_weights([kernel, recurrent, input_bias, recurrent_bias])
    theirs.set_weights(
        [to_keras(kernel), to_keras(recurrent),
         np.stack([to_keras(input_bias), to_keras(recurrent_bias)])]
    )
    np.testing.assert_allclose(ours(x, [h])[0], theirs(x, [h])[0], atol=1e-6)


def test_runs_inside_keras_rnn_and_torch_init_bounds():
    cell = WorkerGRUCell(5)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    sequence = np.random.default_rng(5).normal(size=(2, 3, 4)).astype("float32")
    outputs = np.asarray(rnn(sequence))
    expected = np.zeros((2, 5))
    for t in range(3):
        expected = numpy_gru_step(sequence[:, t], expected, *cell.get_weights())
        np.testing.assert_allclose(outputs[:, t], expected, atol=1e-5)
    bound = 1 / np.sqrt(5)
    for weight in cell.get_weights():
        assert np.abs(weight).max() <= bound
    keras_style = WorkerGRUCell(5, initialization="keras")
    keras_style(sequence[:, 0], keras_style.get_initial_state(2))
    assert np.all(keras_style.get_weights()[2] == 0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="units"):
        WorkerGRUCell(0)
    with pytest.raises(ValueError, match="initialization"):
        WorkerGRUCell(3, initialization="glorot")


def test_config_round_trip_and_saving(tmp_path):
    cell = WorkerGRUCell(3, initialization="keras")
    assert_config_round_trip(cell)
    sequence = keras.Input((4, 2))
    model = keras.Model(sequence, keras.layers.RNN(cell)(sequence))
    assert_save_load_same(
        model, np.random.default_rng(6).normal(size=(2, 4, 2)).astype("float32"), tmp_path
    )


def test_step_from_split_projections_equals_the_call():
    # [a ; b] W = a W[:3] + b W[3:]: the zoomer projects b (the worker state)
    # once per frame and adds it at every glimpse.
    rng = np.random.default_rng(0)
    cell = WorkerGRUCell(4)
    a, b = rng.normal(size=(2, 3)).astype("float32"), rng.normal(size=(2, 5)).astype("float32")
    state = rng.normal(size=(2, 4)).astype("float32")
    expected, _ = cell(np.concatenate([a, b], axis=-1), [state])
    projection = cell.project_inputs(a) + cell.project_inputs(b, start=3)
    np.testing.assert_allclose(cell.step(projection, state), expected, atol=1e-6)
    np.testing.assert_allclose(
        cell.project_inputs(b, start=3), b @ np.asarray(cell.kernel)[3:], atol=1e-6
    )
    with pytest.raises(ValueError, match=r"\[4, 9\) are outside the kernel's 8 rows"):
        cell.project_inputs(b, start=4)
