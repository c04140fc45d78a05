"""`train.strategy: data_parallel`: JAX data parallelism through `keras.distribution`.

JAX fixes its devices when it starts, so the JAX halves run in child
processes with two virtual CPU devices (`--xla_force_host_platform_device_count=2`):
`tests/data_parallel_worker.py` for one step and the evaluation forward,
`train.py` for whole jobs, two `train.py` processes on localhost for a
multi-process job (gloo CPU collectives). Here, in the TensorFlow run: the
settings, the errors, and the comparisons.
"""

import json
import os
import socket
import subprocess
import sys
import types

import keras
import numpy as np
import pytest

from glimpse_keras import config as config_lib
from glimpse_keras import parallel, runs, training
from tests.test_backends import REPO, TINY_CONFIG, child_environment, run_child

TWO_DEVICES = "--xla_force_host_platform_device_count=2"
# Float32 sums split over two devices are added in another order.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def two_device_environment(devices=2):
    environment = child_environment("jax")
    flags = environment.get("XLA_FLAGS", "")
    environment["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    return environment


def run_jax(command, devices=2, timeout=1800):
    result = subprocess.run(command, cwd=REPO, env=two_device_environment(devices), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


# === Settings and errors (this process) ===


def test_each_backend_refuses_the_other_backends_strategy_and_names_its_own():
    with pytest.raises(config_lib.ConfigError, match="on JAX use train.strategy=data_parallel"):
        parallel.check_strategy("mirrored", "jax")
    with pytest.raises(config_lib.ConfigError, match="Keras runs on 'tensorflow'.*mirrored.*multi_worker"):
        parallel.check_strategy("data_parallel", "tensorflow")
    parallel.check_strategy("data_parallel", "jax")
    parallel.check_strategy("multi_worker", "tensorflow")
    if keras.backend.backend() == "tensorflow":
        with pytest.raises(config_lib.ConfigError, match="--backend jax"):
            training.make_strategy("data_parallel")


def test_the_config_and_train_py_take_data_parallel(capsys):
    config = config_lib.load_config(TINY_CONFIG, ["train.strategy=data_parallel"])
    assert config.train.strategy == "data_parallel"
    with pytest.raises(config_lib.ConfigError, match="train.strategy"):
        config_lib.load_config(TINY_CONFIG, ["train.strategy=pmap"])
    import train as train_cli

    assert train_cli.main(["--config", TINY_CONFIG, "--num-processes", "2", "--process-id", "0"]) == 2
    assert "need --strategy data_parallel" in capsys.readouterr().err
    if keras.backend.backend() == "tensorflow":
        assert train_cli.main(["--config", TINY_CONFIG, "--strategy", "data_parallel"]) == 2
        assert "data_parallel is keras.distribution's data parallelism on JAX" in capsys.readouterr().err


def test_a_global_batch_that_does_not_split_is_refused_naming_both_numbers():
    stages = config_lib.load_config(TINY_CONFIG).train.stages
    parallel.check_batch_sizes(stages, 4)  # batch 4 on 1, 2 or 4 devices
    parallel.check_batch_sizes(stages, 1)
    with pytest.raises(config_lib.ConfigError,
                       match=r"train.stages.0.batch_size: the global batch of 4 clips does not split over the 3 "
                             r"devices.*multiple of 3"):
        parallel.check_batch_sizes(stages, 3)


def test_cluster_settings_come_from_flags_or_the_keras_environment_variables():
    environ = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234,10.0.0.2:1234",
               "KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "1"}
    assert parallel.cluster_settings(environ={}) is None
    assert parallel.cluster_settings(num_processes=1, environ={}) is None
    assert parallel.cluster_settings(environ=environ) == ("10.0.0.1:1234,10.0.0.2:1234", 2, 1)
    # A flag wins over its variable.
    assert parallel.cluster_settings("host0:99", process_id=0, environ=environ) == ("host0:99", 2, 0)
    with pytest.raises(config_lib.ConfigError, match=r"missing: --coordinator-address \(or "
                                                     r"KERAS_DISTRIBUTION_JOB_ADDRESSES\), --process-id"):
        parallel.cluster_settings(num_processes=2, environ={})
    with pytest.raises(config_lib.ConfigError, match="--process-id: 2 is not a process of a job of 2 processes"):
        parallel.cluster_settings("host0:99", 2, 2, environ={})
    with pytest.raises(config_lib.ConfigError, match="KERAS_DISTRIBUTION_PROCESS_ID: expected an integer, got 'one'"):
        parallel.cluster_settings(environ=dict(environ, KERAS_DISTRIBUTION_PROCESS_ID="one"))
    with pytest.raises(config_lib.ConfigError, match="--num-processes: expected a number of processes >= 1, got 0"):
        parallel.cluster_settings("host0:99", 0, 0, environ={})


def test_one_process_is_the_chief_and_needs_no_barrier():
    assert parallel.is_chief() and parallel.process_count() == 1
    parallel.barrier("nothing to wait for")
    assert parallel.chief_first(lambda: 7, "seven") == 7
    record = parallel.describe("default", training.make_strategy("default"))
    assert record["strategy"] == "default" and record["devices"] == 1


# === One step and the evaluation forward on two devices (a JAX child) ===


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    output = tmp_path_factory.mktemp("data_parallel")
    run_jax([sys.executable, os.path.join(REPO, "tests", "data_parallel_worker.py"), str(output)], timeout=900)
    with open(output / "logs.json") as handle:
        logs = json.load(handle)
    with open(output / "refused.json") as handle:
        refused = json.load(handle)
    return types.SimpleNamespace(output=output, logs=logs, refused=refused)


def test_one_step_on_two_devices_equals_one_step_on_one_device(two_devices):
    logs = two_devices.logs
    # The batch really was split (one clip per device) and the weights replicated.
    assert logs["devices"] == 2
    assert logs["video_placement"] and all(placement == {"first_axis": "batch", "devices": 2}
                                           for placement in logs["video_placement"])
    assert logs["kernel_devices"] == 2 and logs["kernel_replicated"]
    assert sorted(logs["one"]) == sorted(logs["two"])
    for name, value in logs["one"].items():
        np.testing.assert_allclose(logs["two"][name], value, **TOLERANCE, err_msg=name)
    one, two = np.load(two_devices.output / "one.npz"), np.load(two_devices.output / "two.npz")
    assert sorted(one.files) == sorted(two.files)
    for key in one.files:
        np.testing.assert_allclose(two[key], one[key], **TOLERANCE, err_msg=key)
    # BatchNorm's moving statistics moved (global-batch statistics on both).
    moving = [key for key in one.files if "moving_mean" in key]
    assert moving and any(np.abs(one[key]).max() > 0 for key in moving)


def test_the_evaluation_forward_on_two_devices_gives_the_one_device_logits(two_devices):
    one = np.load(two_devices.output / "forward_one.npz")
    two = np.load(two_devices.output / "forward_two.npz")
    # 3 clips (padded to 4, split 2 + 2), then 2 clips (padded to the 4 compiled).
    assert two["three"].shape == (3, 5) and two["two"].shape == (2, 5)
    for key in ("three", "two"):
        np.testing.assert_allclose(two[key], one[key], **TOLERANCE, err_msg=key)
    assert np.abs(one["three"][0] - one["three"][2]).max() > 1e-3  # the third clip is another clip


def test_train_py_refuses_a_batch_that_does_not_split_before_writing(two_devices):
    refused = two_devices.refused
    assert refused["code"] == 1
    assert "batch_size: the global batch of 3 clips does not split over the 2 devices" in refused["stderr"]
    assert not refused["created"]


def test_joining_a_job_after_jax_has_computed_is_refused_clearly(two_devices):
    message = two_devices.refused["late_join"]
    assert message.startswith("process 1 of 2 could not join the job coordinated by localhost:1: ")
    assert "must be called before any JAX calls that might initialise the XLA backend" in message


# === Whole jobs: train.py on two devices, and two processes ===


def free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def read_json(*parts):
    with open(os.path.join(*parts)) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def data_parallel_run(tmp_path_factory):
    """`train.py --backend jax --strategy data_parallel` on configs/tiny.yaml
    with two devices (no export), resumed with one more epoch of stage 2;
    then `evaluate.py` on one device scores the run's stage 1."""
    root = tmp_path_factory.mktemp("dp_run")
    run = str(root / "run")
    train = [sys.executable, "train.py", "--backend", "jax", "--strategy", "data_parallel", "--config",
             TINY_CONFIG, "--output-dir", run, "--no-export"]
    first = run_jax(train)
    history_before = read_json(run, "stage2", "history.json")
    resumed = run_jax(train + ["--resume", "--set", "train.stages.1.epochs=2", "--set", "train.validate=false",
                               "--no-evaluate"])
    one_device_report = str(root / "stage1_one_device.json")
    run_child([sys.executable, "evaluate.py", "--backend", "jax", "--run", run, "--stage", "stage1",
               "--output", one_device_report], "jax")
    return types.SimpleNamespace(root=root, run=run, stdout=first.stdout, resumed_stdout=resumed.stdout,
                                 history_before=history_before, one_device_report=one_device_report)


@pytest.mark.slow  # minutes: two train.py jobs and an evaluation on JAX
def test_train_py_data_parallel_records_two_devices_and_resumes(data_parallel_run):
    sessions = read_json(data_parallel_run.run, "environment.json")
    assert [session["resumed"] for session in sessions] == [False, True]
    for session in sessions:
        assert session["backend"] == "jax"
        distribution = session["distribution"]
        assert distribution["strategy"] == "data_parallel" and distribution["class"] == "DataParallel"
        assert distribution["devices"] == 2 and distribution["processes"] == 1
    assert read_json(data_parallel_run.run, "stage2", "state.json") == {"epoch": 2, "done": True}
    history = read_json(data_parallel_run.run, "stage2", "history.json")
    assert len(history) == 2 and history[0] == data_parallel_run.history_before[0]
    assert all(np.isfinite(value) for value in history[1].values())
    assert "[stage2] resumed after epoch 1" in data_parallel_run.resumed_stdout


@pytest.mark.slow  # minutes: see the fixture
def test_the_two_device_evaluation_report_equals_the_one_device_report(data_parallel_run):
    two = read_json(data_parallel_run.run, "evaluation", "stage1", "test_report.json")
    one = read_json(data_parallel_run.one_device_report)
    assert two["videos"] == one["videos"] == two["split_size"] > 0
    for key in ("top1", "top5", "per_class", "confusion", "video_ids"):
        assert two[key] == one[key], key


@pytest.fixture(scope="module")
def two_process_run(data_parallel_run):
    """Two `train.py` processes on localhost (one CPU device each) forming
    one job through `keras.distribution.initialize`, on the same config as
    `data_parallel_run` (stage 1 compared), without evaluation and export."""
    run = str(data_parallel_run.root / "two_processes")
    port = free_port()
    command = [sys.executable, "train.py", "--backend", "jax", "--strategy", "data_parallel", "--config",
               TINY_CONFIG, "--output-dir", run, "--no-evaluate", "--no-export",
               "--coordinator-address", f"localhost:{port}", "--num-processes", "2"]
    environment = child_environment("jax")
    processes = [
        subprocess.Popen(command + ["--process-id", str(index)], cwd=REPO, env=environment, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for index in range(2)
    ]
    outputs = [process.communicate(timeout=1800) for process in processes]
    for index, (process, (stdout, stderr)) in enumerate(zip(processes, outputs)):
        assert process.returncode == 0, f"process {index} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}"
    return types.SimpleNamespace(run=run, stdouts=[stdout for stdout, _ in outputs])


@pytest.mark.slow  # minutes: two train.py processes
def test_two_processes_on_localhost_train_as_one_job(two_process_run, data_parallel_run):
    sessions = read_json(two_process_run.run, "environment.json")
    assert len(sessions) == 1  # written by process 0 only
    distribution = sessions[0]["distribution"]
    assert distribution["processes"] == 2 and distribution["devices"] == 2 and distribution["local_devices"] == 1
    assert distribution["process_id"] == 0
    assert "process 0 wrote the results" in two_process_run.stdouts[1]
    # The same global batches as two devices of one process: the same stage 1.
    models = []
    for run in (two_process_run.run, data_parallel_run.run):
        model, _ = runs.load_run(run, "stage1")
        models.append(model)
    for mine, theirs in zip(*(model.weights for model in models)):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), **TOLERANCE, err_msg=mine.path)


@pytest.mark.slow  # two JAX processes start and join (~30 s)
def test_processes_launched_with_different_configs_stop_before_training(tmp_path):
    port = free_port()
    command = [sys.executable, "train.py", "--backend", "jax", "--strategy", "data_parallel", "--config",
               TINY_CONFIG, "--output-dir", str(tmp_path / "run"), "--coordinator-address", f"localhost:{port}",
               "--num-processes", "2"]
    processes = [
        subprocess.Popen(command + ["--process-id", str(index), "--set", f"train.seed={index}"], cwd=REPO,
                         env=child_environment("jax"), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for index in range(2)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 1, stderr[-3000:]
        assert "the processes of this job differ in their config" in stderr
    assert not (tmp_path / "run").exists()
