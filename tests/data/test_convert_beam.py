"""Conversion on Apache Beam (DirectRunner) against the local engine, record by record."""

import dataclasses
import os
import sys

import pytest

from glimpse_keras.data import convert
from tests.data.conversion_checks import (STRAY_FILE, TINY_SETTINGS, assert_same_conversion, files_under,
                                          read_json, records)

@pytest.fixture
def beam():
    return pytest.importorskip("apache_beam")


def _convert_on_beam(raw, out, *pipeline_args):
    return convert.main([*TINY_SETTINGS, "--data-dir", raw, "--output", str(out),
                         "--engine", "beam", *pipeline_args])


def test_beam_writes_what_the_local_engine_writes(beam, raw_tiny, local_output, tmp_path, capsys):
    assert _convert_on_beam(raw_tiny, tmp_path, "--runner", "DirectRunner") == 0
    console = capsys.readouterr().out
    assert_same_conversion(local_output, str(tmp_path))
    errors = read_json(tmp_path / "conversion_errors.json")
    reasons = {os.path.basename(e["file"]): e["reason"] for e in errors["errors"]}
    assert len(reasons) == 2 and "unparseable name" in reasons.pop(STRAY_FILE)
    [(truncated, reason)] = reasons.items()
    assert truncated.endswith("_rgb.avi") and reason.startswith("truncated")
    assert f"SKIPPED {os.path.join(raw_tiny, 'nturgb+d_rgb', truncated)}: {reason}" in console
    manifest = read_json(tmp_path / "manifest.json")
    assert (manifest["found"], manifest["converted"], manifest["skipped"]) == (37, 35, 2)
    assert "found 37 = converted 35 + skipped 2" in console
    assert "Beam runner DirectRunner" in console
    again = convert.convert_dataset("ntu", raw_tiny, str(tmp_path), workers=1, shard_size=4,
                                    stored_size=32, protocols=("xsub", "xview"), progress=False,
                                    log=lambda _: None)
    assert again.loaded_this_run == 0  # the local engine takes Beam's shards as its own


def test_a_failed_beam_run_shows_no_half_written_output_and_resumes(
        beam, raw_tiny, local_output, tmp_path, monkeypatch):
    shards = sorted(n for n in files_under(local_output) if n.endswith(".tfrecord"))
    real_finish = convert.ShardWriter.finish
    finishing = []  # the runner picks the order of the shards

    def finish_or_fail(writer):
        finishing.append(os.path.relpath(writer.final_path, tmp_path))
        if len(finishing) == 2:
            raise OSError(28, "No space left on device")
        real_finish(writer)

    monkeypatch.setattr(convert.ShardWriter, "finish", finish_or_fail)
    with pytest.raises(convert.ConversionError, match="rerun the same command to resume"):
        convert.convert_dataset("ntu", raw_tiny, str(tmp_path), shard_size=4, stored_size=32,
                                protocols=("xsub", "xview"), engine="beam", log=lambda _: None)
    broken = finishing[1]
    left = files_under(tmp_path)
    assert broken not in left and broken + ".json" not in left
    assert not [n for n in left if n.endswith(convert.PARTIAL_SUFFIX)]
    assert not [n for n in left if n.startswith("splits") or n in (
        convert.MANIFEST_FILE, convert.ERRORS_FILE)]
    finished = {n: os.stat(tmp_path / n).st_mtime_ns for n in left if n.endswith(".tfrecord")}
    assert 0 < len(finished) < len(shards)  # the DirectRunner wrote some before the failure
    for name in finished:  # every shard that exists is complete and described
        assert records(tmp_path / name) == records(os.path.join(local_output, name))
        assert read_json(tmp_path / (name + ".json")) == read_json(
            os.path.join(local_output, name + ".json"))

    monkeypatch.setattr(convert.ShardWriter, "finish", real_finish)
    summary = convert.convert_dataset("ntu", raw_tiny, str(tmp_path), shard_size=4,
                                      stored_size=32, protocols=("xsub", "xview"),
                                      engine="beam", log=lambda _: None)
    sidecars = [read_json(tmp_path / (name + ".json")) for name in finished]
    assert summary.loaded_this_run == 36 - sum(len(s["videos"]) + len(s["errors"]) for s in sidecars)
    for name, mtime in finished.items():
        assert os.stat(tmp_path / name).st_mtime_ns == mtime  # kept, not rewritten
    assert_same_conversion(local_output, str(tmp_path))


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
        convert.main([*TINY_SETTINGS, "--data-dir", raw_tiny, "--output", str(tmp_path / "a"),
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


def test_the_pipeline_description_does_not_grow_with_the_samples(beam, raw_tiny, tmp_path):
    """The samples travel in the plan file, not in the pipeline (Dataflow caps
    the size of a job description); 10x the samples, the same description."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from glimpse_keras.data import convert_beam, sharding, sources

    samples, _ = sources.list_raw_samples("ntu", raw_tiny, ("xsub",))
    tenfold = [dataclasses.replace(s, video_id=f"{s.video_id}-{copy}") for s in samples for copy in range(10)]
    sizes = []
    for planned in (samples, tenfold):
        plans = sharding.plan_shards(planned, 4)
        plan_path = convert_beam.write_plan(str(tmp_path), plans)
        assert list(convert_beam.read_plan(plan_path)) == plans
        pipeline = beam.Pipeline(options=PipelineOptions([]))
        convert_beam.build_pipeline(pipeline, str(tmp_path), raw_tiny, plan_path, stored_size=32,
                                    jpeg_quality=90)
        description = pipeline.to_runner_api().SerializeToString()
        assert samples[0].video_id.encode() not in description
        sizes.append(len(description))
    assert abs(sizes[1] - sizes[0]) < 100 and max(sizes) < 30_000  # pickling varies by a few bytes
