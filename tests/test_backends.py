"""TensorFlow and JAX give the same model: weights files, outputs, training
steps, and a JAX-trained run exported to the same SavedModel.

A process cannot switch Keras backends, so the other backend's half runs in a
child process (`tests/backend_worker.py`, or `train.py --backend jax`) and the
results are compared here as arrays.
"""

import json
import os
import shutil
import subprocess
import sys
import types

import keras
import numpy as np
import pytest

from tests import backend_worker
from tests.conftest import FAST_XLA_COMPILE_FLAGS
from tests.backend_worker import outputs_of, randomise, tiny_model

BACKEND = keras.backend.backend()
OTHER = "jax" if BACKEND == "tensorflow" else "tensorflow"
REPO = backend_worker.REPO
WORKER = os.path.join(REPO, "tests", "backend_worker.py")
# Convolutions and matrix products are summed in different orders by oneDNN
# and XLA; float32 outputs agree to about 1e-6 relative.
TOLERANCE = {"rtol": 1e-4, "atol": 2e-5}


def child_environment(backend):
    environment = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", GLIMPSE_QUIET="1")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))
    if backend == "jax":
        environment.setdefault("XLA_FLAGS", FAST_XLA_COMPILE_FLAGS)
    else:
        environment.pop("XLA_FLAGS", None)
    return environment


def run_child(command, backend, timeout=900):
    result = subprocess.run(
        command, cwd=REPO, env=child_environment(backend), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command} failed on {backend}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def assert_same_outputs(actual, expected, message):
    assert sorted(actual) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], **TOLERANCE, err_msg=f"{message}: {key}")


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """Weights, outputs and a training step from both backends.

    Here: a model with weights drawn from seed 5 (`mine.weights.h5`) and its
    outputs. Other backend: the outputs of `mine.weights.h5`, a model drawn
    from seed 6 with its outputs, and one SGD step from `mine.weights.h5`.
    """
    root = tmp_path_factory.mktemp("backends")
    keras.utils.set_random_seed(0)
    model = tiny_model()
    randomise(model, 5)
    mine = str(root / "mine.weights.h5")
    model.save_weights(mine)
    files = types.SimpleNamespace(
        mine=mine,
        mine_outputs=outputs_of(model),
        mine_there=str(root / "mine_there.npz"),
        theirs=str(root / "theirs.weights.h5"),
        theirs_outputs=str(root / "theirs.npz"),
        trained=str(root / "trained_there.npz"),
        logs=str(root / "logs_there.json"),
        export_dir=str(root / "export_there"),
        export_message=str(root / "export_there.txt"),
    )
    jobs = [
        {"job": "run", "weights": mine, "outputs": files.mine_there},
        {"job": "save_random", "seed": 6, "weights": files.theirs, "outputs": files.theirs_outputs},
        {"job": "train_step", "weights": mine, "trained": files.trained, "logs": files.logs},
        {"job": "export", "directory": files.export_dir, "message": files.export_message},
    ]
    spec = root / "jobs.json"
    spec.write_text(json.dumps(jobs))
    run_child([sys.executable, WORKER, str(spec)], OTHER)
    return files


def test_weights_written_here_give_the_same_outputs_on_the_other_backend(exchange):
    there = dict(np.load(exchange.mine_there))
    assert_same_outputs(there, exchange.mine_outputs, f"{BACKEND} weights run on {OTHER}")
    # The drawn weights make the comparison meaningful: clips get different,
    # far from uniform class probabilities.
    logits = exchange.mine_outputs["logits"]
    assert np.ptp(logits, axis=-1).min() > 1.0 and np.abs(logits[0] - logits[1]).max() > 0.1


def test_weights_written_on_the_other_backend_give_the_same_outputs_here(exchange):
    model = tiny_model()
    fresh = outputs_of(model)
    model.load_weights(exchange.theirs)
    expected = dict(np.load(exchange.theirs_outputs))
    assert_same_outputs(outputs_of(model), expected, f"{OTHER} weights run on {BACKEND}")
    assert not np.allclose(fresh["logits"], expected["logits"], atol=1e-2)


def test_one_training_step_is_the_same_on_both_backends(exchange):
    model = tiny_model()
    model.load_weights(exchange.mine)
    logs = backend_worker.train_step(model)
    with open(exchange.logs) as handle:
        their_logs = json.load(handle)
    assert sorted(their_logs) == sorted(logs)
    for name, value in logs.items():
        np.testing.assert_allclose(their_logs[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    # Every weight, BatchNorm moving statistics included, takes the same step.
    theirs = np.load(exchange.trained)
    mine = backend_worker.weight_arrays(model)
    assert sorted(theirs.files) == sorted(mine)
    moved = 0
    before = backend_worker.weight_arrays(tiny_model_with(exchange.mine))
    for key, value in mine.items():
        np.testing.assert_allclose(theirs[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
        moved += not np.allclose(before[key], value, atol=1e-6)
    assert moved > len(mine) // 2


def test_export_refuses_a_backend_other_than_tensorflow_and_names_the_command(exchange):
    with open(exchange.export_message) as handle:
        message = handle.read()
    if OTHER == "tensorflow":
        assert message == "" and os.path.exists(os.path.join(exchange.export_dir, "saved_model.pb"))
    else:
        assert f"Keras runs on '{OTHER}'" in message and "python export.py --run RUN" in message
        assert not os.path.exists(exchange.export_dir)


def tiny_model_with(weights):
    model = tiny_model()
    model.load_weights(weights)
    return model


# === A whole run on JAX, exported by TensorFlow ===

TINY_CONFIG = os.path.join(REPO, "configs", "tiny.yaml")


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """`python train.py --backend jax` on configs/tiny.yaml (data, both
    stages with validation, evaluation, export), then the same run resumed
    with one more epoch of stage 2 (without validation, to save a compile)."""
    if BACKEND != "tensorflow":
        pytest.skip("runs in the TensorFlow half of the suite, which loads the SavedModel")
    run = str(tmp_path_factory.mktemp("jax_run") / "run")
    train = [sys.executable, "train.py", "--backend", "jax", "--config", TINY_CONFIG, "--output-dir", run]
    first = run_child(train, "jax")
    stage2 = os.path.join(run, "stage2")
    with open(os.path.join(stage2, "history.json")) as handle:
        history_before = json.load(handle)
    # The weights the export read; the resume below replaces the stage's file.
    exported_weights = os.path.join(os.path.dirname(run), "exported.weights.h5")
    shutil.copyfile(os.path.join(stage2, "final.weights.h5"), exported_weights)
    resumed = run_child(
        train + ["--resume", "--set", "train.stages.1.epochs=2", "--set", "train.validate=false",
                 "--no-evaluate", "--no-export"],
        "jax",
    )
    return types.SimpleNamespace(
        run=run,
        stdout=first.stdout,
        resumed_stdout=resumed.stdout,
        history_before=history_before,
        exported_weights=exported_weights,
    )


@pytest.mark.slow  # minutes: the whole train.py job on JAX (see the fixture)
def test_train_py_runs_every_stage_and_the_evaluation_on_jax(jax_run):
    with open(os.path.join(jax_run.run, "environment.json")) as handle:
        sessions = json.load(handle)
    assert [(session["backend"], session["resumed"]) for session in sessions] == [("jax", False), ("jax", True)]
    assert sessions[0]["jax"] and sessions[0]["keras"] == keras.__version__
    history = jax_run.history_before
    assert len(history) == 1 and all(np.isfinite(value) for value in history[0].values())
    assert {"loss", "class_loss", "pose_loss", "diversity_loss", "attraction_loss", "accuracy"} <= set(history[0])
    reports = []
    for directory, _, names in os.walk(os.path.join(jax_run.run, "evaluation")):
        reports += [os.path.join(directory, name) for name in names if name.endswith("_report.json")]
    assert reports
    for path in reports:
        with open(path) as handle:
            report = json.load(handle)
        assert report["videos"] == report["split_size"] > 0
        assert sum(sum(row) for row in report["confusion"]) == report["videos"]


@pytest.mark.slow  # minutes: the whole train.py job on JAX (see the fixture)
def test_a_jax_run_resumes_from_its_checkpoint(jax_run):
    with open(os.path.join(jax_run.run, "stage2", "state.json")) as handle:
        state = json.load(handle)
        assert (state["epoch"], state["done"]) == (2, True)
    with open(os.path.join(jax_run.run, "stage2", "history.json")) as handle:
        history = json.load(handle)
    assert history[0] == jax_run.history_before[0] and len(history) == 2
    assert "[stage1] already finished" in jax_run.resumed_stdout
    assert "[stage2] resumed after epoch 1" in jax_run.resumed_stdout


@pytest.mark.slow  # minutes: the whole train.py job on JAX (see the fixture)
def test_a_jax_trained_run_exports_what_tensorflow_computes_with_its_weights(jax_run):
    import tensorflow as tf

    from glimpse_keras import runs

    version_dir = os.path.join(jax_run.run, "export", "glimpse_clouds", "1")
    assert version_dir in jax_run.stdout
    loaded = tf.saved_model.load(version_dir)
    model, experiment = runs.load_run(jax_run.run, weights=jax_run.exported_weights)
    config = experiment.config
    data = config.data
    # Frames at the stored size: the serving graph's area resize keeps them
    # and takes the centred crop the model sees.
    video = np.random.default_rng(4).integers(
        0, 256, (3, data.num_frames, data.stored_size, data.stored_size, 3), dtype=np.uint8
    )
    start = (data.stored_size - data.image_size) // 2
    crop = slice(start, start + data.image_size)
    logits = keras.ops.convert_to_numpy(model(video[:, :, crop, crop, :], training=False)["logits"])
    served = loaded.signatures["serving_default"](video=tf.constant(video))
    probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    np.testing.assert_array_less(np.abs(served["probabilities"].numpy() - probabilities), 1e-5)
    np.testing.assert_allclose(served["logits"].numpy(), logits, atol=1e-4)
    np.testing.assert_array_equal(served["class_id"].numpy(), logits.argmax(axis=-1))


# === Choosing the backend ===


def test_a_process_cannot_switch_backends_once_keras_is_imported(capsys):
    import train as train_cli
    from glimpse_keras.backend_selection import BackendSelectionError, select_backend

    assert select_backend(None) == BACKEND
    assert select_backend(BACKEND) == BACKEND
    with pytest.raises(BackendSelectionError, match=f"already running on '{BACKEND}'.*'{OTHER}'"):
        select_backend(OTHER)
    with pytest.raises(BackendSelectionError, match="received 'torch'"):
        select_backend("torch")
    assert train_cli.main(["--backend", OTHER, "--config", TINY_CONFIG]) == 2
    assert f"KERAS_BACKEND={OTHER}" in capsys.readouterr().err
