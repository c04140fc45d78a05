"""No traceback, no hang, nothing silent (issue 21): full disks, unwritable
places, exceptions crossing process boundaries, kills at every point of an
epoch's commit, and resumes that must change nothing when they fail.

A real full disk is a small tmpfs, mounted when the tests run as root (they
skip with the reason otherwise); every such test has a variant that runs
anywhere, with the write refused by an injected ENOSPC or by a file-size
limit (RLIMIT_FSIZE: the kernel refuses the write with EFBIG). Child
processes run with a timeout, so a hang fails the test instead of CI.
"""

import contextlib
import errno
import importlib
import inspect
import json
import os
import pickle
import pkgutil
import shutil
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import glimpse_keras
from glimpse_keras import config as config_lib
from glimpse_keras import io_utils, resume, runs, training
from glimpse_keras.experiment import Experiment
from glimpse_keras.worker_errors import PortableErrors, WorkerError, portable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG = os.path.join(REPO, "configs", "tiny.yaml")
CHILD_TIMEOUT = 300  # seconds; a child that hangs fails its test


# === Helpers: a full disk, a refused write ===


@contextlib.contextmanager
def small_tmpfs(path, size="2m"):
    """Mounts a tmpfs of `size` at `path` (root only); skips the test otherwise."""
    if os.geteuid() != 0:
        pytest.skip("a small tmpfs (a real full disk) needs root; the injected variant of this test runs instead")
    os.makedirs(path, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs was refused ({mounted.stderr.strip()}); the injected variant runs instead")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_disk(folder, leave=0):
    """Fills the file system of `folder` up to `leave` free bytes."""
    usage = os.statvfs(folder)
    free = usage.f_bavail * usage.f_frsize - leave
    with open(os.path.join(folder, "filler"), "wb") as handle:
        with contextlib.suppress(OSError):
            while free > 0:
                free -= handle.write(b"\0" * min(free, 1 << 16))


def limit_file_size(max_bytes):
    """A `preexec_fn`: files of the child (and its children) cannot grow past
    `max_bytes`; the write is refused with EFBIG instead of SIGXFSZ."""
    import resource

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def run_child(arguments, preexec_fn=None, timeout=CHILD_TIMEOUT):
    """Runs `python arguments...` in the repository with this tree first on
    the path; a child still running after `timeout` fails the test."""
    environment = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                       TF_CPP_MIN_LOG_LEVEL="3", GLIMPSE_QUIET="1")
    try:
        return subprocess.run([sys.executable, *arguments], cwd=REPO, env=environment, capture_output=True,
                              text=True, timeout=timeout, preexec_fn=preexec_fn)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"hung: still running after {timeout} s: {' '.join(arguments)}\n{error.stderr}")


def assert_clean_failure(result, *phrases):
    """Exit code 1, the phrases in stderr, no traceback and no crash."""
    assert result.returncode == 1, (result.returncode, result.stdout[-2000:], result.stderr[-4000:])
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr[-4000:]
    for noise in ("Traceback", "Exception ignored", "Segmentation fault"):
        assert noise not in result.stderr, result.stderr[-4000:]


# === Row 1: exceptions cross process boundaries; a pool never hangs ===


def _project_exception_classes():
    """Every exception class defined in glimpse_keras (all modules imported)
    and in examples/serving_client.py."""
    for module in pkgutil.walk_packages(glimpse_keras.__path__, "glimpse_keras."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    spec = importlib.util.spec_from_file_location(
        "serving_client", os.path.join(REPO, "examples", "serving_client.py"))
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    sys.modules.setdefault(spec.name, client)  # pickle finds a class by its module's name
    found = {client.ServingClientError}
    pending = [BaseException]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith("glimpse_keras"):
                found.add(subclass)
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))


# Constructor arguments of the classes that do not take one message.
EXCEPTION_ARGUMENTS = {
    "StorageError": (errno.ENOSPC, "cannot write /x/y: No space left on device", "/x/y"),
    "DataReadError": ("/data/video.avi", "truncated"),
    "InvalidSampleIdError": ("S001X", "not an NTU sample id"),
    "SkeletonFormatError": ("/data/a.skeleton", "expected 25 joints", 7),
    "VideoDecodeError": ("/data/video.avi", "no frame decoded"),
    "UserVideosError": ("/data/videos", "holds no video"),
}


def test_every_project_exception_survives_a_process_boundary():
    classes = _project_exception_classes()
    assert len(classes) >= 30, [cls.__name__ for cls in classes]  # the discovery found the modules
    for cls in classes:
        error = cls(*EXCEPTION_ARGUMENTS.get(cls.__name__, (f"{cls.__name__}: something named went wrong",)))
        if cls.__name__ == "StorageError":
            error = io_utils.storage_error("/x/y", OSError(errno.ENOSPC, "No space left on device"))
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is cls
        assert (str(copy), copy.args, vars(copy)) == (str(error), error.args, vars(error)), cls


def test_a_storage_error_keeps_its_path_and_code_through_pickling():
    error = io_utils.storage_error("/full/disk/x.h5", OSError(errno.ENOSPC, "No space left on device"))
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.errno, copy.filename) == (errno.ENOSPC, "/full/disk/x.h5")
    assert str(copy) == ("cannot write /full/disk/x.h5: No space left on device; free some space (earlier "
                         "files are kept as they were) and rerun")


class _Unpicklable(Exception):
    """Pickles, but its __init__ cannot take its own args back."""

    def __init__(self, first, second):
        super().__init__(f"{first} and {second}")


def _raise_unpicklable(_):
    raise _Unpicklable("one", "two")


def test_a_worker_exception_that_cannot_be_unpickled_reaches_the_parent():
    import multiprocessing

    replacement = portable(_Unpicklable("one", "two"))
    assert isinstance(replacement, WorkerError)
    assert "_Unpicklable: one and two" in str(replacement)
    same = ValueError("fine")
    assert portable(same) is same
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pending = pool.apply_async(PortableErrors(_raise_unpicklable), (0,))
        with pytest.raises(WorkerError, match="_Unpicklable: one and two"):
            pending.get(timeout=CHILD_TIMEOUT)  # without PortableErrors: no answer, ever


def _generate(output, preexec_fn=None):
    return run_child(["-m", "glimpse_keras.data.synthetic", "--format", "ntu", "--output", output, "--quiet",
                      "--workers", "2"], preexec_fn=preexec_fn)


def test_synthetic_generation_onto_a_full_disk_ends_with_one_error(tmp_path):
    with small_tmpfs(tmp_path / "disk") as disk:
        result = _generate(os.path.join(disk, "synthetic"))
    assert_clean_failure(result, "No space left on device", "free some space")


def test_synthetic_generation_with_refused_writes_ends_with_one_error(tmp_path):
    # Anywhere (no root): the kernel refuses to grow a file past 64 KB.
    result = _generate(str(tmp_path / "synthetic"), preexec_fn=limit_file_size(64 * 1024))
    assert_clean_failure(result, "cannot write", "File too large")


# === Row 2: a weights file refused by the disk: exit 1, no crash ===

SAVE_TWICE = textwrap.dedent("""
    import os, sys
    import keras
    from glimpse_keras import checkpoints
    from glimpse_keras.io_utils import StorageError

    def model(width):
        net = keras.Sequential([keras.Input((width,)), keras.layers.Dense(width)])
        net.compile(optimizer="adam", loss="mse")
        net.optimizer.build(net.trainable_variables)
        return net

    path = os.path.join(sys.argv[1], "checkpoint.weights.h5")
    small = model(64)
    checkpoints.save_weights(small, path)                  # about 50 KB: fits
    try:
        checkpoints.save_weights(model(int(sys.argv[2])), path)  # megabytes: refused
    except StorageError as error:
        checkpoints.load_weights(small, path)             # the earlier file is whole
        print("kept", os.path.getsize(path))
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
""")


def test_a_weights_file_that_fills_the_disk_ends_cleanly(tmp_path):
    with small_tmpfs(tmp_path / "disk", size="2m") as disk:
        result = run_child(["-c", SAVE_TWICE, disk, "700"])
    assert_clean_failure(result, "checkpoint.weights.h5: No space left on device")
    assert "kept" in result.stdout


def test_a_weights_file_refused_by_the_file_size_limit_ends_cleanly(tmp_path):
    # Before the fix HDF5 met the refused write itself: "Exception ignored"
    # tracebacks, then a segmentation fault when the file was collected.
    result = run_child(["-c", SAVE_TWICE, str(tmp_path), "700"], preexec_fn=limit_file_size(1 << 20))
    assert_clean_failure(result, "checkpoint.weights.h5: File too large")
    assert "kept" in result.stdout


@pytest.mark.slow  # about a minute: the whole train.py job on a 6 MB disk
def test_train_py_on_a_disk_that_fills_at_a_checkpoint(tmp_path):
    with small_tmpfs(tmp_path / "disk", size="6m") as disk:
        data = str(tmp_path / "data_cache")
        preparation_config = config_lib.load_config(TINY_CONFIG)
        from glimpse_keras.data import preparation

        converted = preparation.prepare_data(preparation_config.data, data)
        result = run_child(["train.py", "--config", TINY_CONFIG, "--dataset", "ntu", "--data-dir", converted,
                            "--output-dir", os.path.join(disk, "run"), "--no-export"])
        assert_clean_failure(result, "No space left on device")
        checkpoint = os.path.join(disk, "run", "stage1", runs.CHECKPOINT)
        assert io_utils.verify_checksum(checkpoint) is True


# === Row 3: TensorFlow's full-disk error is a StorageError naming the shard ===


@pytest.fixture(scope="module")
def raw_ntu(tmp_path_factory):
    from tests.data.raw_ntu_fixture import write_ntu_sample

    root = str(tmp_path_factory.mktemp("raw_ntu"))
    for index, name in enumerate(["S001C001P001R001A001", "S001C002P003R001A002", "S001C003P002R001A001"]):
        write_ntu_sample(root, name, 12 + index, width=160, height=120)
    return root


def _shard_names(folder):
    return [name for _, _, names in os.walk(folder) for name in names if ".tfrecord" in name]


def test_converter_names_the_shard_a_full_disk_refused(raw_ntu, tmp_path, capsys):
    from glimpse_keras.data import convert

    with small_tmpfs(tmp_path / "disk", size="2m") as disk:
        fill_disk(disk, leave=16 * 1024)  # room for the small JSON files, not for the shards
        code = convert.main(["--dataset", "ntu", "--data-dir", raw_ntu, "--output", os.path.join(disk, "out"),
                             "--workers", "1", "--stored-size", "256", "--jpeg-quality", "100",
                             "--no-progress"])
        assert code == 1
        err = capsys.readouterr().err
        assert ".tfrecord: No space left on device" in err
        assert not [name for name in _shard_names(disk) if name.endswith(".partial")]


def test_converter_maps_tensorflows_resource_exhausted_error(raw_ntu, tmp_path, monkeypatch):
    import tensorflow as tf

    from glimpse_keras.data import convert

    class FullDiskWriter:
        def __init__(self, path):
            self.path = path
            open(path, "wb").close()

        def write(self, record):
            raise tf.errors.ResourceExhaustedError(None, None, f"{self.path}; No space left on device")

        def close(self):
            pass

    monkeypatch.setattr(tf.io, "TFRecordWriter", FullDiskWriter)
    output = tmp_path / "out"
    with pytest.raises(io_utils.StorageError, match=r"cannot write .*\.tfrecord: No space left on device") as caught:
        convert.convert_dataset("ntu", raw_ntu, str(output), stored_size=32, progress=False, log=lambda _: None)
    assert caught.value.filename.endswith(".tfrecord") and caught.value.errno == errno.ENOSPC
    assert not [name for name in _shard_names(output) if name.endswith(".partial")]


def test_converter_names_a_damaged_settings_file_and_an_empty_missing_list(raw_ntu, tmp_path):
    from glimpse_keras.data import convert

    output = tmp_path / "out"
    output.mkdir()
    (output / convert.SETTINGS_FILE).write_bytes(b"\xff\x00")
    with pytest.raises(convert.ConversionError, match=r"cannot read .*conversion_settings.json .*new --output"):
        convert.convert_dataset("ntu", raw_ntu, str(output), stored_size=32, progress=False, log=lambda _: None)
    garbage = tmp_path / "missing.txt"
    garbage.write_bytes(bytes(range(256)))
    lines = []
    convert.convert_dataset("ntu", raw_ntu, str(tmp_path / "other"), stored_size=32, progress=False,
                            missing_list=str(garbage), log=lines.append)
    assert any(line.startswith(f"warning: --missing-skeletons {garbage} names no NTU sample id") for line in lines)


# === Row 4: output locations are checked before any work ===


@pytest.mark.parametrize("where", ["file_in_the_way", "under_a_file", "proc", "read_only"])
def test_generator_refuses_an_impossible_output_before_work(where, tmp_path, capsys):
    from glimpse_keras.data.synthetic.__main__ import main

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with contextlib.ExitStack() as stack:
        if where == "file_in_the_way":
            output, named = str(blocker), "it is a file, not a folder"
        elif where == "under_a_file":
            output, named = str(blocker / "synthetic"), "afile is a file, not a folder"
        elif where == "proc":
            output, named = "/proc/glimpse_synthetic", "/proc does not accept new files"
        else:
            output, named = str(tmp_path / "ro" / "synthetic"), "is not writable"
            if os.geteuid() == 0:
                disk = stack.enter_context(small_tmpfs(tmp_path / "ro", size="1m"))
                subprocess.run(["mount", "-o", "remount,ro", disk], check=True)
            else:
                (tmp_path / "ro").mkdir()
                (tmp_path / "ro").chmod(0o555)
                stack.callback((tmp_path / "ro").chmod, 0o755)
        code = main(["--format", "ntu", "--output", output, "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot ") and named in err
    assert output in err


def test_train_refuses_an_output_under_proc_before_preparing_data(tmp_path, capsys):
    import train as train_cli

    code = train_cli.main(["--config", TINY_CONFIG, "--output-dir", "/proc/glimpse_run"])
    assert code == 1
    assert "cannot create /proc/glimpse_run: /proc does not accept new files" in capsys.readouterr().err
    assert not os.path.exists("/proc/data_cache")


def test_a_full_file_system_is_refused_before_work(tmp_path):
    with small_tmpfs(tmp_path / "disk", size="1m") as disk:
        fill_disk(disk)
        with pytest.raises(io_utils.StorageError, match=r"No space left on device"):
            io_utils.check_output_location(os.path.join(disk, "run"), directory=True)


# === Row 5: an empty class folder is named, the class count printed ===


def test_an_empty_class_folder_is_named_and_the_class_count_printed(tmp_path):
    from tests.data.test_user_videos import make_folder_dataset

    root = make_folder_dataset(str(tmp_path / "videos"), per_class=2)
    os.makedirs(os.path.join(root, "empty_class"))
    config = config_lib.load_config(TINY_CONFIG, ["data.dataset=videos", f"data.data_dir={root}",
                                                  "data.classes=[]", "model.num_classes=3"])
    messages = Experiment(config).adapt_to_data()
    assert f"videos: 3 classes in {root} (clap, jump, wave)" in messages
    assert any("['empty_class']" in line and "hold no video and are left out" in line for line in messages)
    assert config.model.num_classes == 3


# === Row 6: a bad flag value names the flag ===


@pytest.mark.parametrize("flag, value", [("--frame-size", "-5"), ("--num-frames", "0"), ("--timeout", "0")])
def test_serving_client_names_the_bad_flag(flag, value, capsys):
    spec = importlib.util.spec_from_file_location(
        "serving_client_cli", os.path.join(REPO, "examples", "serving_client.py"))
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    with pytest.raises(SystemExit) as caught:
        client.main(["video.avi", flag, value])
    assert caught.value.code == 2
    assert f"argument {flag}: expected" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flag", [
    (["tune.py", "--max-trials", "0"], "--max-trials"),
    (["evaluate.py", "--run", "r", "--clips", "0"], "--clips"),
    (["export.py", "--run", "r", "--output", "o", "--version", "0"], "--version"),
    (["-m", "glimpse_keras.data.synthetic", "--format", "ntu", "--output", "o", "--workers", "0"], "--workers"),
])
def test_command_lines_refuse_out_of_range_numbers(argv, flag):
    result = run_child(argv)
    assert result.returncode == 2
    assert f"argument {flag}: expected an integer >= 1, got 0" in result.stderr


# === Rows 7 and 11: glimpse-predict names a missing file, keeps its predictions ===


from tests.test_predict import tiny  # noqa: E402,F401  (the module's run fixture)


def test_predict_names_a_missing_weights_file(tiny, capsys):
    from glimpse_keras.cli import predict

    missing = os.path.join(tiny["root"], "no_such.weights.h5")
    code = predict.main([str(tiny["videos"] / "a.avi"), "--run", tiny["run"], "--weights", missing])
    assert code == 1
    assert f"weights file {missing} does not exist" in capsys.readouterr().err


def test_predict_refuses_an_unwritable_output_video_before_loading(tiny, tmp_path, capsys):
    from glimpse_keras.cli import predict

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code = predict.main([str(tiny["videos"] / "a.avi"), "--run", tiny["run"],
                         "--output-video", str(blocker / "out.mp4")])
    assert code == 1
    assert "--output-video: cannot create" in capsys.readouterr().err


def test_predict_prints_the_prediction_when_the_video_cannot_be_written(tiny, tmp_path, monkeypatch, capsys):
    from glimpse_keras.cli import predict
    from glimpse_keras.visualize import annotated_video

    def full_disk(prediction, output, image_size, stored_size=None):
        raise annotated_video.AnnotatedVideoError(f"{output}: cannot write the annotated video: "
                                                  f"No space left on device")

    monkeypatch.setattr(annotated_video, "write_annotated_video", full_disk)
    output = str(tmp_path / "out.mp4")
    code = predict.main([str(tiny["videos"] / "a.avi"), "--run", tiny["run"], "--output-video", output])
    captured = capsys.readouterr()
    assert code == 1
    assert "a.avi (12 frames, 2 clips)" in captured.out and "  1. " in captured.out
    assert f"annotated video not written: {output}: cannot write the annotated video" in captured.err
    assert "could not be classified" not in captured.err


# === Rows 8, 9, 10, 13: a run's files stay consistent ===


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from glimpse_keras.data import preparation

    root = tmp_path_factory.mktemp("reliability")
    os.environ["GLIMPSE_QUIET"] = "1"
    preparation.prepare_data(config_lib.load_config(TINY_CONFIG).data, str(root / "data_cache"))
    return root


def _one_stage(epochs=2, **values):
    stage = {"name": "only", "variant": "global_pose", "epochs": epochs, "batch_size": 4, "steps_per_epoch": 2,
             "learning_rate": 0.001, **values}
    return config_lib.load_config(TINY_CONFIG, [f"train.stages=[{json.dumps(stage)}]", "train.validate=false"])


def _weights(run):
    model, _ = runs.load_run(run)
    return [np.asarray(w) for w in model.weights]


def _history(run, stage="only"):
    with open(os.path.join(run, stage, runs.HISTORY)) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def straight(workspace):
    """The uninterrupted 2-epoch run every killed run is compared with."""
    run = str(workspace / "straight")
    training.train(Experiment(_one_stage()), run, cache_root=str(workspace / "data_cache"))
    return run


class _Kill:
    """Raises KeyboardInterrupt (a kill) at one point of epoch 2's commit."""

    def __init__(self, monkeypatch, point):
        self.point, self.calls = point, 0
        if point == "after_history":
            target, name = runs.checkpoints, "save_weights"
        elif point == "after_checksum":
            target, name = runs.checkpoints, "atomic_path"
        else:  # "after_checkpoint": before state.json
            target, name = runs, "atomic_write_json"
        self.original = getattr(target, name)
        monkeypatch.setattr(target, name, getattr(self, point))

    def _second(self, path):
        if path.endswith((runs.CHECKPOINT, runs.STATE)) and "only" in path:
            self.calls += 1
            return self.calls == 2
        return False

    def after_history(self, model, path):
        if self._second(path):
            raise KeyboardInterrupt("killed after the history entry")
        return self.original(model, path)

    @contextlib.contextmanager
    def after_checksum(self, path):
        with self.original(path) as tmp:
            yield tmp
            if self._second(path):  # the .sha256 is written, the rename not done
                raise KeyboardInterrupt("killed before the rename")

    def after_checkpoint(self, path, data):
        if path.endswith(runs.STATE) and self._second(path):
            raise KeyboardInterrupt("killed before state.json")
        return self.original(path, data)


@pytest.mark.parametrize("point", [
    "after_history", pytest.param("after_checksum", marks=pytest.mark.slow), "after_checkpoint"])
def test_a_kill_during_an_epochs_commit_resumes_consistently(point, workspace, straight, monkeypatch):
    run = str(workspace / f"killed_{point}")
    cache = str(workspace / "data_cache")
    with monkeypatch.context() as patch:
        _Kill(patch, point)
        with pytest.raises(KeyboardInterrupt):
            training.train(Experiment(_one_stage()), run, cache_root=cache)
    state = runs.read_state(os.path.join(run, "only"))
    assert state["epoch"] == 1  # epoch 2 was not recorded
    training.train(Experiment(_one_stage()), run, resume=True, cache_root=cache)
    state = runs.read_state(os.path.join(run, "only"))
    assert (state["epoch"], state["done"]) == (2, True)
    assert state["checkpoint_sha256"] == io_utils.sha256_of(os.path.join(run, "only", runs.CHECKPOINT))
    history, expected = _history(run), _history(straight)
    assert len(history) == 2
    for got, want in zip(history, expected):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5)
    for got, want in zip(_weights(run), _weights(straight)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_batch_larger_than_the_data_writes_nothing(workspace, tmp_path):
    run = str(tmp_path / "big_batch")
    config = _one_stage(batch_size=1000, steps_per_epoch=0)  # 0: one pass over the training split
    with pytest.raises(training.TrainingError, match=r"fewer than batch_size=1000"):
        training.train(Experiment(config), run, cache_root=str(workspace / "data_cache"))
    assert not os.path.exists(run)  # so the suggested fix needs no --overwrite


def _snapshot(run):
    return {os.path.relpath(os.path.join(folder, name), run): open(os.path.join(folder, name), "rb").read()
            for folder, _, names in os.walk(run) for name in names}


@pytest.mark.parametrize("damage", ["flipped_final", "garbage_state", "garbage_environment", "garbage_history"])
def test_a_failed_resume_changes_nothing(damage, workspace, straight):
    run = str(workspace / f"damaged_{damage}")
    shutil.copytree(straight, run)
    if damage == "flipped_final":
        path = os.path.join(run, "only", runs.FINAL)
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0x10
        open(path, "wb").write(bytes(data))
        message = r"final weights .*final.weights.h5 is damaged"
    elif damage == "garbage_state":
        open(os.path.join(run, "only", runs.STATE), "w").write("{not json")
        message = r"cannot read .*state.json"
    elif damage == "garbage_environment":
        open(os.path.join(run, runs.ENVIRONMENT), "w").write("[{truncated")
        message = r"cannot read .*environment.json"
    else:
        open(os.path.join(run, "only", runs.HISTORY), "wb").write(b"\xff\x00 not json")
        message = r"cannot read .*history.json .*restore it, or delete it"
    before = _snapshot(run)
    # A new learning rate: config.yaml would change if anything were
    # written. One more epoch, so the history is read, except for the final
    # weights, which only a finished stage (nothing to add) loads.
    epochs = 2 if damage == "flipped_final" else 3
    with pytest.raises(training.TrainingError, match=message):
        training.train(Experiment(_one_stage(epochs=epochs, learning_rate=0.0005)), run, resume=True,
                       cache_root=str(workspace / "data_cache"))
    assert _snapshot(run) == before


def test_resume_rewrites_a_damaged_checksum_record_of_intact_weights(workspace, straight, capsys):
    run = str(workspace / "damaged_record")
    shutil.copytree(straight, run)
    final = os.path.join(run, "only", runs.FINAL)
    open(final + ".sha256", "w").write("garbage\n")
    training.train(Experiment(_one_stage()), run, resume=True, cache_root=str(workspace / "data_cache"))
    assert f"rewrote {final}.sha256" in capsys.readouterr().out
    assert io_utils.verify_checksum(final) is True


def test_a_history_missing_an_epoch_gets_a_null_entry(tmp_path):
    stage_dir = str(tmp_path)
    runs.append_history(stage_dir, 0, {"loss": 2.0})
    runs.append_history(stage_dir, 2, {"loss": 1.0})  # epoch 1's entry was never written
    assert _history(stage_dir, "") == [{"loss": 2.0}, None, {"loss": 1.0}]
    runs.append_history(stage_dir, 1, {"loss": 1.5})  # a resumed epoch 1 drops what came after it
    assert _history(stage_dir, "") == [{"loss": 2.0}, {"loss": 1.5}]


def _two_stages(first_epochs):
    return config_lib.load_config(TINY_CONFIG, [
        f"train.stages.0.epochs={first_epochs}", "train.validate=false"])


def test_extending_stage_one_on_resume_plans_stage_two_again(tmp_path):
    for name in ("stage1", "stage2"):
        os.makedirs(tmp_path / name)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        digest = training.checkpoints.save_weights(model, str(tmp_path / name / runs.CHECKPOINT))
        final = training.checkpoints.save_weights(model, str(tmp_path / name / runs.FINAL))
        (tmp_path / name / runs.STATE).write_text(json.dumps(
            {"epoch": 1, "done": True, "checkpoint_sha256": digest, "final_sha256": final}))
    plans = resume.plan_stages(_two_stages(2), str(tmp_path), resume=True)
    assert [(plan.action, plan.epoch) for plan in plans] == [("continue", 1), ("redo", 0)]
    assert "stage1 trains further in this job" in plans[1].note
    plans = resume.plan_stages(_two_stages(1), str(tmp_path), resume=True)
    assert [plan.action for plan in plans] == ["skip", "skip"]


@pytest.mark.slow  # minutes under load: two stages, then stage 1 extended and stage 2 retrained
def test_extending_stage_one_on_resume_trains_stage_two_again(workspace, capsys):
    cache = str(workspace / "data_cache")
    run = str(workspace / "extended")
    training.train(Experiment(_two_stages(1)), run, cache_root=cache)
    first_final = runs.read_state(os.path.join(run, "stage1"))["final_sha256"]
    assert runs.read_state(os.path.join(run, "stage2"))["started_from"] == first_final
    capsys.readouterr()
    training.train(Experiment(_two_stages(2)), run, resume=True, cache_root=cache)
    out = capsys.readouterr().out
    assert "[stage1] resumed after epoch 1" in out
    assert "[stage2] trained again from the start: stage1 trains further in this job" in out
    stage1, stage2 = (runs.read_state(os.path.join(run, name)) for name in ("stage1", "stage2"))
    assert (stage1["epoch"], stage1["done"], stage2["epoch"], stage2["done"]) == (2, True, 1, True)
    assert stage1["final_sha256"] != first_final and stage2["started_from"] == stage1["final_sha256"]
    assert len(_history(run, "stage1")) == 2 and len(_history(run, "stage2")) == 1
    # Nothing more to do: a further resume skips both.
    training.train(Experiment(_two_stages(2)), run, resume=True, cache_root=cache)
    assert capsys.readouterr().out.count("already finished; skipping") == 2


def test_a_stage_whose_start_changed_is_planned_again(tmp_path):
    # stage1's final weights: any weights file (its sha256 is what counts).
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    os.makedirs(tmp_path / "stage1")
    digest = training.checkpoints.save_weights(model, str(tmp_path / "stage1" / runs.FINAL))
    for name, state in (("stage1", {"epoch": 1, "done": True, "final_sha256": digest}),
                        ("stage2", {"epoch": 1, "done": True, "started_from": "0" * 64})):
        os.makedirs(tmp_path / name, exist_ok=True)
        (tmp_path / name / runs.STATE).write_text(json.dumps(state))
    plans = resume.plan_stages(_two_stages(1), str(tmp_path), resume=True)
    assert [(plan.action, plan.sha256) for plan in plans] == [("skip", digest), ("redo", None)]
    assert "started from other weights" in plans[1].note


# === Row 12: glimpse-tune refuses a bad budget before any work ===


def test_tune_refuses_zero_trials_before_any_work(tmp_path):
    from glimpse_keras import tuning

    output = str(tmp_path / "search")
    with pytest.raises(tuning.SearchSpaceError, match="max_trials: expected an integer >= 1, got 0"):
        tuning.run_search(config_lib.load_config(TINY_CONFIG), output, max_trials=0,
                          cache_root=str(tmp_path / "cache"))
    assert not os.path.exists(output) and not os.path.exists(tmp_path / "cache")


def test_tuner_trials_save_their_weights_through_the_safe_writer(tmp_path, monkeypatch):
    import keras_tuner
    from keras_tuner.src.engine import tuner_utils

    from glimpse_keras import tuning

    path = str(tmp_path / "trial" / "checkpoint.weights.h5")
    saver = tuner_utils.SaveBestEpoch(keras_tuner.Objective("val_accuracy", "max"), path)
    (callback,) = tuning.trial_callbacks([saver])
    callback.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    callback.on_epoch_end(0, {"val_accuracy": 0.5})
    assert io_utils.verify_checksum(path) is True  # written by checkpoints.save_weights
    monkeypatch.setattr(keras.Model, "save_weights", _refused_write)
    with pytest.raises(io_utils.StorageError, match=r"checkpoint.weights.h5: No space left on device"):
        callback.on_epoch_end(1, {"val_accuracy": 0.9})


def _refused_write(self, path, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


from tests.test_tuning import random_clip_data  # noqa: E402,F401  (trials on two random clips)


def test_a_refused_write_in_a_trial_stops_the_search_with_one_error(tmp_path, monkeypatch, random_clip_data):
    from glimpse_keras import training, tuning
    from tests.test_tuning import _converted_config

    full = io_utils.storage_error(str(tmp_path / "trial_0" / "checkpoint.weights.h5"),
                                  OSError(errno.ENOSPC, "No space left on device"))
    fits = []

    def refused(*args, **kwargs):
        fits.append(1)
        raise full

    monkeypatch.setattr(training, "fit_stage", refused)
    with pytest.raises(io_utils.StorageError, match=r"trial_0/checkpoint.weights.h5: No space left on device"):
        tuning.run_search(_converted_config(tmp_path), str(tmp_path / "search"), max_trials=3)
    assert len(fits) == 1  # not one failed trial after another


# === The sweep's findings: damaged inputs end with one named error ===


def test_a_damaged_shard_is_named(tmp_path):
    import tensorflow as tf

    from glimpse_keras.data import preparation

    shards = tmp_path / "converted" / "shards"
    shards.mkdir(parents=True)
    good, bad = str(shards / "a.tfrecord"), str(shards / "b.tfrecord")
    for path in (good, bad):
        with tf.io.TFRecordWriter(path) as writer:
            for index in range(3):
                writer.write(b"record %d" % index)
    data = open(bad, "rb").read()
    open(bad, "wb").write(data[: len(data) - 5])  # a truncated last record
    with pytest.raises(preparation.DataDirError) as caught:
        with preparation.shard_errors(str(tmp_path / "converted")):
            for _ in tf.data.TFRecordDataset([good, bad]):
                pass
    message = str(caught.value)
    assert f"{bad} (" in message and good not in message
    assert "Delete the damaged shard(s) and their .json sidecar" in message


@pytest.mark.parametrize("content", [b"\xff\xfe not text", b'{"files": "not a list", "num_videos": 3}', b"[1, 2"])
def test_an_unreadable_split_index_is_named(content, tmp_path):
    from glimpse_keras.data import pipeline

    os.makedirs(tmp_path / "splits" / "xsub")
    (tmp_path / "splits" / "xsub" / "test.json").write_bytes(content)
    with pytest.raises(pipeline.SplitNotFoundError, match=r"cannot read .*test.json \(.*\); convert the data again"):
        pipeline.list_split_files(str(tmp_path), "xsub", "test")


def test_a_binary_config_file_is_a_config_error(tmp_path, capsys):
    import train as train_cli

    path = tmp_path / "c.yaml"
    path.write_bytes(bytes(range(256)))
    assert train_cli.main(["--config", str(path), "--output-dir", str(tmp_path / "run")]) == 2
    assert "is not a text file (not UTF-8" in capsys.readouterr().err


def test_damaged_reports_and_records_name_their_file(tmp_path):
    from glimpse_keras import evaluation, tuning
    from glimpse_keras.data import user_videos
    from glimpse_keras.data.synthetic.manifest import ManifestMismatchError, load_manifest

    (tmp_path / "conversion_errors.json").write_bytes(b"\xff")
    with pytest.raises(evaluation.EvaluationError, match=r"conversion_errors.json .*convert the data again"):
        evaluation.skipped_samples(str(tmp_path))
    (tmp_path / "synth_manifest.json").write_bytes(b"\xff\x00")
    with pytest.raises(ManifestMismatchError, match="synth_manifest.json: not valid JSON"):
        load_manifest(str(tmp_path), "ntu", 0, {})
    (tmp_path / "classes.txt").write_bytes(bytes(range(128, 256)))
    with pytest.raises(user_videos.UserVideosError, match=r"classes.txt: not a UTF-8 text file"):
        user_videos.read_class_names_file(str(tmp_path / "classes.txt"))
    os.makedirs(tmp_path / "search" / tuning.PROJECT_NAME)
    (tmp_path / "search" / tuning.PROJECT_NAME / tuning.SETTINGS_FILE).write_text("{truncated")
    with pytest.raises(tuning.SearchSpaceError, match=r"cannot read .*search_settings.json .*use a new --output-dir"):
        tuning.check_or_save_settings(str(tmp_path / "search"), {})


@pytest.mark.slow  # an export: a minute under load
def test_a_saved_model_with_damaged_variables_is_named(tiny, tmp_path, capsys):
    from glimpse_keras import export
    from glimpse_keras.cli import predict

    base = str(tmp_path / "models")
    export.export_run_model(tiny["model"], Experiment(tiny["config"]), base)
    version = os.path.join(base, "1")
    for name in os.listdir(os.path.join(version, "variables")):
        open(os.path.join(version, "variables", name), "wb").write(b"garbage")
    code = predict.main([str(tiny["videos"] / "a.avi"), "--saved-model", version])
    assert code == 1
    assert f"--saved-model {version}: cannot load its whole_video signature" in capsys.readouterr().err


# === Shared mechanism ===


def test_storage_errors_recognise_wrapped_refusals():
    class LibraryError(Exception):
        pass

    for text, code in (("/d/x; No space left on device", errno.ENOSPC), ("Read-only file system", errno.EROFS),
                       ("open failed: Permission denied", errno.EACCES)):
        with pytest.raises(io_utils.StorageError) as caught:
            with io_utils.storage_errors("/d/x"):
                raise LibraryError(text)
        assert (caught.value.errno, caught.value.filename) == (code, "/d/x")
    with pytest.raises(KeyError):  # not a refused write: unchanged
        with io_utils.storage_errors("/d/x"):
            raise KeyError("x")
    assert inspect.signature(io_utils.StorageError).parameters["filename"].default is None
