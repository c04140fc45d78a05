"""The Apache Beam engine of `convert`: the same shards, written by a Beam pipeline.

    python -m glimpse_keras.data.convert --dataset ntu --data-dir RAW --output OUT \
        --engine beam [--runner DirectRunner] [any Beam pipeline option]

The launcher (the process running `convert.convert_dataset`) lists the samples,
plans the shards (`sharding.plan_shards`), skips the finished ones and writes
the reports afterwards, exactly as with the local engine. In between, it writes
the pending plans to a file in the output (`write_plan`) and runs this pipeline:

    PlanFile      one element: the plan file's path (so the pipeline description
                  stays a few KB, whatever the number of samples)
    ReadPlan      reads the file on a worker: one element per pending shard
                  (its path, splits and RawSamples: file names, no video)
    SpreadShards  Reshuffle: the shard descriptors spread over the workers
    WriteShard    per shard, on one worker: `shard_writer.convert_sample` (the local
                  engine's per-sample function) for each sample in plan order,
                  written by `shard_writer.ShardWriter` (the local engine's writer)

Encoded videos never cross a shuffle: each goes from the decoder to its
shard's file on the worker that decoded it. The work is balanced by shards
(`--shard-size` videos each) rather than by videos.

Shard names and members come from the plan, not from the runner's bundles, so
a Beam run and a local run of the same raw directory write identical shards and
either engine resumes the other's output. A shard is collected under a name
unique to its attempt ('<shard>.<hex>.partial'; a runner may retry or duplicate
a bundle) and renamed into place after its sidecar; the split indexes and the
manifest are written by the launcher only after the whole pipeline succeeded.
So a failed or interrupted run leaves finished shards (kept and skipped by the
next run) and perhaps '.partial' files (deleted by the next run), never an
index that names an unfinished shard.

Every file is read and written through `glimpse_keras.filesystem`: the raw
data and the output may be in a bucket (gs://...) or on a file system every
worker mounts at the same path. Workers check in `setup` that they can read
both and fail with a message naming the path they cannot see.
"""

import contextlib
import difflib
import io
import logging
import os
import pickle
import uuid

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
from apache_beam.runners.runner import PipelineState, create_runner

from glimpse_keras import filesystem
from glimpse_keras.data import shard_writer

DEFAULT_RUNNER = "DirectRunner"
DIRECT_RUNNERS = ("DirectRunner", "SwitchingDirectRunner")
METRICS_NAMESPACE = "glimpse_keras.convert"


# === Pipeline options ===


@contextlib.contextmanager
def _unknown_options_not_logged():
    """Beam logs 'Discarding unparseable args' at each look; we raise instead."""
    logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _parse_error(options):
    """argparse's message for a badly typed option (Beam's parser exits), or None."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            options.get_all_options()
    except SystemExit:
        lines = captured.getvalue().strip().splitlines() or ["invalid option"]
        return lines[-1].split("error: ", 1)[-1]
    return None


def pipeline_options(pipeline_args):
    """Beam `PipelineOptions` from command-line flags, checked before any work.

    Args:
        pipeline_args: flags such as ['--runner', 'DirectRunner',
            '--direct_num_workers', '2'].

    Returns:
        PipelineOptions (runner DirectRunner when none is named).

    Raises:
        shard_writer.ConversionError: an unknown runner, a runner that cannot be
            loaded, a badly typed value, a flag no Beam option knows, or
            options the runner refuses (e.g. DataflowRunner without
            --project); the message names it.
    """
    with _unknown_options_not_logged():
        return _checked_options(PipelineOptions(list(pipeline_args)))


def _checked_options(options):
    problem = _parse_error(options)
    if problem:
        raise shard_writer.ConversionError(f"Beam pipeline option: {problem}")
    name = runner_name(options)
    try:
        runner = create_runner(name)  # also registers the runner's own options
    except ValueError as error:
        raise shard_writer.ConversionError(f"--runner {name!r}: {error}") from error
    except ImportError as error:
        raise shard_writer.ConversionError(
            f"--runner {name!r} cannot be loaded ({error}); it needs more of Apache "
            "Beam than the DirectRunner, e.g. apache-beam[gcp] for DataflowRunner") from error
    known = options.get_all_options()
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
    if unknown:
        described = []
        for option in unknown:
            close = difflib.get_close_matches(option, list(known), n=1)
            described.append(f"--{option}" + (f" (did you mean --{close[0]}?)" if close else ""))
        raise shard_writer.ConversionError(
            f"unknown Beam pipeline option(s): {', '.join(described)}")
    refused = PipelineOptionsValidator(options, runner).validate()  # what Pipeline() checks
    if refused:
        raise shard_writer.ConversionError(
            f"--runner {name!r} refuses these pipeline options: " + " ".join(refused))
    return options


def runner_name(options):
    """The runner the options name, DirectRunner by default."""
    return options.view_as(StandardOptions).runner or DEFAULT_RUNNER


def _runner_instance(options):
    """The runner to run on; None lets `beam.Pipeline` take the one named.

    Beam's DirectRunner first tries the Prism runner, which it downloads from
    GitHub at run time, and falls back to its own batch engine, the
    FnApiRunner, when that fails. The converter asks for the FnApiRunner
    directly: no download, the same engine on every machine (and the one the
    tests check); it honours --direct_num_workers and --direct_running_mode.
    """
    if runner_name(options) in DIRECT_RUNNERS:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    return None


# === Transforms ===


def read_plan(path):
    """Yields the `sharding.ShardPlan`s that the launcher wrote to `path`."""
    with filesystem.open(path, "rb") as handle:
        yield from pickle.load(handle)


class WriteShard(beam.DoFn):
    """ShardPlan -> its path, once the shard and its sidecar are written.

    Decodes the shard's samples one after the other with
    `shard_writer.convert_sample` (the local engine's per-sample function) and
    writes them in plan order with `shard_writer.ShardWriter`, on one worker: the
    encoded videos go straight from the decoder to the shard file.

    Args:
        output, data_dir: the conversion's output and raw data directories.
        stored_size, jpeg_quality: as `shard_writer.convert_sample`.
    """

    def __init__(self, output, data_dir, stored_size, jpeg_quality):
        self.output = output
        self.data_dir = data_dir
        self.stored_size = stored_size
        self.jpeg_quality = jpeg_quality
        self.skipped = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "videos_skipped")
        self.written = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "shards_written")

    def setup(self):
        settings = os.path.join(self.output, shard_writer.SETTINGS_FILE)
        for path, present, written in ((self.data_dir, filesystem.isdir, "the raw data directory"),
                                       (settings, filesystem.isfile, "written by the launcher")):
            if not present(path):
                raise RuntimeError(
                    f"this Beam worker does not see {path} ({written}): on a cluster the raw "
                    "data and the output must be where every worker can read them, a bucket "
                    "(gs://...) or a file system every worker mounts at that path")
        shard_writer.init_decoding_process()

    def process(self, plan):
        final = os.path.join(self.output, plan.path)
        writer = shard_writer.ShardWriter(
            self.output, plan.path, plan.splits,
            partial_path=f"{final}.{uuid.uuid4().hex}{shard_writer.PARTIAL_SUFFIX}")
        try:
            for sample in plan.samples:
                result = shard_writer.convert_sample(sample, self.stored_size, self.jpeg_quality)
                if result[3] is not None:
                    self.skipped.inc()
                writer.add(*result)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        self.written.inc()
        yield plan.path


# === Running ===


def build_pipeline(pipeline, output, data_dir, plan_path, *, stored_size, jpeg_quality):
    """Adds the transforms that write the shards planned in `plan_path` (a file
    written by `write_plan`) to `pipeline`; see the module doc."""
    return (pipeline
            | "PlanFile" >> beam.Create([plan_path])
            | "ReadPlan" >> beam.FlatMap(read_plan)
            | "SpreadShards" >> beam.Reshuffle()
            | "WriteShard" >> beam.ParDo(WriteShard(output, data_dir, stored_size, jpeg_quality)))


def write_plan(output, plans):
    """Writes `plans` to a new file in `output` for the pipeline to read; returns
    its path. Its name ends with '.partial', so a run that dies before removing
    it leaves it to the next run's clean-up."""
    path = os.path.join(output, f"beam_plan.{uuid.uuid4().hex}.pickle{shard_writer.PARTIAL_SUFFIX}")
    filesystem.atomic_write_bytes(path, pickle.dumps(list(plans), protocol=pickle.HIGHEST_PROTOCOL))
    return path


def _remove_plan(path):
    with contextlib.suppress(OSError):
        filesystem.remove(path)


def write_shards(output, data_dir, plans, *, stored_size, jpeg_quality, options, log=print):
    """Writes the shards of `plans` with a Beam pipeline and waits for it.

    Args:
        output, data_dir: absolute paths every worker sees.
        plans: the pending `sharding.ShardPlan`s.
        stored_size, jpeg_quality: as `shard_writer.convert_sample`.
        options: from `pipeline_options`.
        log: callable for console lines (a SKIPPED line per bad sample).

    Raises:
        shard_writer.ConversionError: the pipeline failed or did not finish; the
            shards finished so far are kept and a rerun resumes from them.
    """
    if not plans:
        return
    pipeline = beam.Pipeline(runner=_runner_instance(options), options=options)
    plan_path = write_plan(output, plans)
    build_pipeline(pipeline, output, data_dir, plan_path, stored_size=stored_size,
                   jpeg_quality=jpeg_quality)
    try:
        state = pipeline.run().wait_until_finish()
    except KeyboardInterrupt:
        if runner_name(options) in DIRECT_RUNNERS:
            _remove_plan(plan_path)
        else:  # the job runs on outside this process and reads the plan
            log(f"interrupted: the job handed to {runner_name(options)} may still be running (it reads "
                f"{plan_path}); cancel it there before rerunning, or let it finish and rerun the same "
                "command to write the reports")
        raise
    except Exception as error:
        _remove_plan(plan_path)
        raise shard_writer.ConversionError(
            f"the Beam pipeline ({runner_name(options)}) failed: {error}\nThe shards "
            f"finished so far are kept in {output}; rerun the same command to resume") from error
    _remove_plan(plan_path)
    if state != PipelineState.DONE:
        raise shard_writer.ConversionError(
            f"the Beam pipeline ({runner_name(options)}) ended in state {state}, not DONE; "
            "rerun the same command to resume")
    for plan in plans:
        for error in filesystem.read_json(os.path.join(output, plan.sidecar_path))["errors"]:
            log(f"SKIPPED {error['file']}: {error['reason']}")
