"""Conversion on Apache Beam (DirectRunner) against the local engine, record by record."""

import json
import os
import sys

import pytest
import tensorflow as tf

from glimpse_keras.data import convert
from glimpse_keras.data.synthetic.runner import generate

SETTINGS = ["--dataset", "ntu", "--shard-size", "4", "--stored-size", "32",
            "--protocol", "xsub,xview", "--no-progress"]
STRAY_FILE = "notes_rgb.avi"  # found, but no sample id: a listing problem


@pytest.fixture(scope="module")
def raw_tiny(tmp_path_factory):
    """The tiny synthetic NTU set (one truncated AVI among 36) plus a stray file."""
    root = str(tmp_path_factory.mktemp("raw_tiny"))
    generate("ntu", root, preset="tiny", seed=0, workers=1, progress=False)
    with open(os.path.join(root, "nturgb+d_rgb", STRAY_FILE), "w") as handle:
        handle.write("not a sample")
    return root


@pytest.fixture(scope="module")
def local_output(raw_tiny, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("local"))
    assert convert.main([*SETTINGS, "--data-dir", raw_tiny, "--output", out,
                         "--workers", "1"]) == 0
    return out


@pytest.fixture
def beam():
    return pytest.importorskip("apache_beam")


def _convert_on_beam(raw, out, *pipeline_args):
    return convert.main([*SETTINGS, "--data-dir", raw, "--output", str(out),
                         "--engine", "beam", *pipeline_args])


def _files(root):
    found = set()
    for directory, _, names in os.walk(root):
        found.update(os.path.relpath(os.path.join(directory, name), root) for name in names)
    return found


def _records(path):
    return [tf.train.SequenceExample.FromString(serialized.numpy())
            for serialized in tf.data.TFRecordDataset(path)]


def _read_json(path):
    with open(path) as handle:
        return json.load(handle)


def _assert_same_conversion(expected, actual):
    """Same files; shards with equal records in the same order; equal JSON."""
    names = _files(expected)
    assert _files(actual) == names
    shards = sorted(name for name in names if name.endswith(".tfrecord"))
    assert len(shards) > 4
    for name in shards:
        records = _records(os.path.join(expected, name))
        assert records and _records(os.path.join(actual, name)) == records, name
        with open(os.path.join(expected, name), "rb") as a, open(os.path.join(actual, name), "rb") as b:
            assert a.read() == b.read(), name  # serialisation is deterministic
    for name in names - set(shards):  # sidecars, splits, manifest, errors, settings
        assert _read_json(os.path.join(actual, name)) == _read_json(os.path.join(expected, name)), name


def test_beam_writes_what_the_local_engine_writes(beam, raw_tiny, local_output, tmp_path, capsys):
    assert _convert_on_beam(raw_tiny, tmp_path, "--runner", "DirectRunner") == 0
    console = capsys.readouterr().out
    _assert_same_conversion(local_output, str(tmp_path))
    errors = _read_json(tmp_path / "conversion_errors.json")
    reasons = {os.path.basename(e["file"]): e["reason"] for e in errors["errors"]}
    assert len(reasons) == 2 and "unparseable name" in reasons.pop(STRAY_FILE)
    [(truncated, reason)] = reasons.items()
    assert truncated.endswith("_rgb.avi") and reason.startswith("truncated")
    assert f"SKIPPED {os.path.join(raw_tiny, 'nturgb+d_rgb', truncated)}: {reason}" in console
    manifest = _read_json(tmp_path / "manifest.json")
    assert (manifest["found"], manifest["converted"], manifest["skipped"]) == (37, 35, 2)
    assert "found 37 = converted 35 + skipped 2" in console
    assert "Beam runner DirectRunner" in console
    again = convert.convert_dataset("ntu", raw_tiny, str(tmp_path), workers=1, shard_size=4,
                                    stored_size=32, protocols=("xsub", "xview"), progress=False,
                                    log=lambda _: None)
    assert again.loaded_this_run == 0  # the local engine takes Beam's shards as its own


def test_a_failed_beam_run_shows_no_half_written_output_and_resumes(
        beam, raw_tiny, local_output, tmp_path, monkeypatch):
    shards = sorted(n for n in _files(local_output) if n.endswith(".tfrecord"))
    broken = shards[len(shards) // 2]
    real_finish = convert.ShardWriter.finish

    def finish_or_fail(writer):
        if writer.final_path.endswith(broken):
            raise OSError(28, "No space left on device")
        real_finish(writer)

    monkeypatch.setattr(convert.ShardWriter, "finish", finish_or_fail)
    with pytest.raises(convert.ConversionError, match="rerun the same command to resume"):
        convert.convert_dataset("ntu", raw_tiny, str(tmp_path), shard_size=4, stored_size=32,
                                protocols=("xsub", "xview"), engine="beam", log=lambda _: None)
    left = _files(tmp_path)
    assert broken not in left and broken + ".json" not in left
    assert not [n for n in left if n.endswith(convert.PARTIAL_SUFFIX)]
    assert not [n for n in left if n.startswith("splits") or n in (
        convert.MANIFEST_FILE, convert.ERRORS_FILE)]
    finished = {n: os.stat(tmp_path / n).st_mtime_ns for n in left if n.endswith(".tfrecord")}
    assert 0 < len(finished) < len(shards)  # the DirectRunner wrote some before the failure
    for name in finished:  # every shard that exists is complete and described
        assert _records(tmp_path / name) == _records(os.path.join(local_output, name))
        assert _read_json(tmp_path / (name + ".json")) == _read_json(
            os.path.join(local_output, name + ".json"))

    monkeypatch.setattr(convert.ShardWriter, "finish", real_finish)
    summary = convert.convert_dataset("ntu", raw_tiny, str(tmp_path), shard_size=4,
                                      stored_size=32, protocols=("xsub", "xview"),
                                      engine="beam", log=lambda _: None)
    sidecars = [_read_json(tmp_path / (name + ".json")) for name in finished]
    assert summary.loaded_this_run == 36 - sum(len(s["videos"]) + len(s["errors"]) for s in sidecars)
    for name, mtime in finished.items():
        assert os.stat(tmp_path / name).st_mtime_ns == mtime  # kept, not rewritten
    _assert_same_conversion(local_output, str(tmp_path))


@pytest.mark.parametrize("pipeline_args, named", [
    (["--runner", "NoSuchRunner"], "--runner 'NoSuchRunner'"),
    (["--runer", "DirectRunner"], "--runer (did you mean --runner?)"),
    (["--direct_num_workers", "two"], "--direct_num_workers: invalid int value: 'two'"),
    (["--runner", "DataflowRunner"], "Missing required option: project"),
])
def test_a_bad_runner_or_option_is_named_before_anything_is_written(
        beam, raw_tiny, tmp_path, capsys, pipeline_args, named):
    out = tmp_path / "out"
    assert _convert_on_beam(raw_tiny, out, *pipeline_args) == 1
    assert named in capsys.readouterr().err
    assert not out.exists()


def test_beam_options_need_the_beam_engine_and_workers_the_local_one(raw_tiny, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        convert.main([*SETTINGS, "--data-dir", raw_tiny, "--output", str(tmp_path / "a"),
                      "--runner", "DirectRunner"])
    assert exit_info.value.code == 2
    assert "--runner DirectRunner (Beam pipeline options are accepted with --engine beam only)" in (
        capsys.readouterr().err)
    with pytest.raises(SystemExit):
        _convert_on_beam(raw_tiny, tmp_path / "b", "--workers", "2")
    assert "--workers belongs to the local engine" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_without_apache_beam_the_error_says_how_to_install_it(raw_tiny, tmp_path, capsys,
                                                              monkeypatch):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam fails
    assert _convert_on_beam(raw_tiny, tmp_path / "out") == 1
    message = capsys.readouterr().err
    assert "--engine beam needs Apache Beam" in message
    assert convert.BEAM_INSTALL_COMMAND in message
    assert not (tmp_path / "out").exists()


def test_the_beam_extra_is_apache_beams_own_requirements_less_protobuf(beam):
    """pyproject's [beam] extra must follow the installed apache-beam's metadata, so that
    `pip install --no-deps apache-beam` leaves nothing it needs uninstalled."""
    import importlib.metadata
    import tomllib

    from packaging.requirements import Requirement

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(repo, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)["project"]
    extra = {r.name: r.specifier for r in map(Requirement, project["optional-dependencies"]["beam"])}
    needed = {}
    for text in importlib.metadata.requires("apache-beam"):
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            needed[requirement.name] = requirement.specifier
    assert "<7" in str(needed.pop("protobuf"))  # why Beam goes in with --no-deps
    numpy = needed.pop("numpy")  # a core dependency; its pin must suit Beam
    core_numpy = next(Requirement(r) for r in project["dependencies"] if r.startswith("numpy"))
    assert all(numpy.contains(v) for v in ("2.0.0", "2.4.6")) and "<2.5" in str(core_numpy.specifier)
    assert extra == needed
    version = importlib.metadata.version("apache-beam")
    assert f"apache-beam=={version}" in convert.BEAM_INSTALL_COMMAND
    for name in ("README.md", os.path.join(".ci", "run")):  # the test command installs it
        with open(os.path.join(repo, name)) as handle:
            text = handle.read()
        assert 'pip install -e ".[test,beam]"' in text and f" apache-beam=={version} " in text, name
