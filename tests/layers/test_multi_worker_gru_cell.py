import keras
import numpy as np
import pytest

from glimpse_keras.layers import MultiWorkerGRUCell
from glimpse_keras.layers import WorkerGRUCell
from tests.layers.layer_checks import assert_config_round_trip
from tests.layers.layer_checks import assert_save_load_same


def built_cell(share=False, workers=3, input_dim=4, units=5, batch=2):
    cell = MultiWorkerGRUCell(workers, units, share_first_worker_state=share)
    cell(np.zeros((batch, workers, input_dim), "float32"), cell.get_initial_state(batch))
    return cell


def single_worker(cell, worker):
    """A WorkerGRUCell holding worker `worker`'s slice of the weights."""
    kernel, recurrent, input_bias, recurrent_bias = cell.get_weights()
    single = WorkerGRUCell(cell.units)
    single(np.zeros((1, kernel.shape[1]), "float32"), single.get_initial_state(1))
    single.set_weights(
        [kernel[worker], recurrent[worker], input_bias[worker], recurrent_bias[worker]]
    )
    return single


def random_inputs(seed, batch=2, workers=3, input_dim=4, units=5):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(batch, workers, input_dim)).astype("float32"),
        rng.normal(size=(batch, workers, units)).astype("float32"),
    )


def test_each_worker_equals_its_own_gru():
    cell = built_cell()
    x, h = random_inputs(0)
    output, [state] = cell(x, [h])
    assert output.shape == (2, 3, 5)
    for worker in range(3):
        expected, _ = single_worker(cell, worker)(x[:, worker], [h[:, worker]])
        np.testing.assert_allclose(output[:, worker], expected, atol=1e-5)
    np.testing.assert_allclose(state, output)


def test_workers_are_independent_without_the_bug():
    cell = built_cell()
    x, h = random_inputs(1)
    changed = h.copy()
    changed[:, 1] += 1.0
    before = np.asarray(cell(x, [h])[0])
    after = np.asarray(cell(x, [changed])[0])
    np.testing.assert_allclose(after[:, [0, 2]], before[:, [0, 2]], atol=1e-6)
    assert np.abs(after[:, 1] - before[:, 1]).max() > 1e-3


def test_share_first_worker_state_reproduces_the_authors_bug():
    cell = built_cell(share=True)
    x, h = random_inputs(2)
    output = np.asarray(cell(x, [h])[0])
    first, _ = single_worker(cell, 0)(x[:, 0], [h[:, 0]])
    np.testing.assert_allclose(output[:, 0], first, atol=1e-5)
    for worker in (1, 2):
        expected, _ = single_worker(cell, worker)(x[:, worker], [first])
        np.testing.assert_allclose(output[:, worker], expected, atol=1e-5)
    # Worker 1's own state is ignored; worker 0's state drives every worker.
    own_changed = h.copy()
    own_changed[:, 1] += 1.0
    np.testing.assert_allclose(cell(x, [own_changed])[0], output, atol=1e-6)
    first_changed = h.copy()
    first_changed[:, 0] += 1.0
    after = np.asarray(cell(x, [first_changed])[0])
    assert np.abs(after[:, 1:] - output[:, 1:]).max() > 1e-3


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_workers"):
        MultiWorkerGRUCell(0, 3)
    with pytest.raises(ValueError, match="units"):
        MultiWorkerGRUCell(2, -1)
    cell = MultiWorkerGRUCell(3, 2)
    with pytest.raises(ValueError, match="inputs must be"):
        cell(np.zeros((1, 2, 4), "float32"), [np.zeros((1, 3, 2), "float32")])


def test_config_round_trip_and_saving(tmp_path):
    cell = MultiWorkerGRUCell(2, 3, share_first_worker_state=True, initialization="keras")
    assert_config_round_trip(cell)
    x, h = keras.Input((2, 4)), keras.Input((2, 3))
    model = keras.Model([x, h], cell(x, [h])[0])
    rng = np.random.default_rng(3)
    inputs = [
        rng.normal(size=(2, 2, 4)).astype("float32"),
        rng.normal(size=(2, 2, 3)).astype("float32"),
    ]
    assert_save_load_same(model, inputs, tmp_path)


def test_runs_inside_keras_rnn_over_time():
    cell = MultiWorkerGRUCell(3, 4)
    sequence = np.random.default_rng(4).normal(size=(2, 5, 3, 6)).astype("float32")
    outputs = np.asarray(keras.layers.RNN(cell, return_sequences=True)(sequence))
    assert outputs.shape == (2, 5, 3, 4)
    state = cell.get_initial_state(2)
    for t in range(5):
        output, state = cell(sequence[:, t], state)
        np.testing.assert_allclose(outputs[:, t], output, atol=1e-6)
