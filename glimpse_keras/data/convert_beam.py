"""The Apache Beam engine of `convert`: the same shards, written by a Beam pipeline.

    python -m glimpse_keras.data.convert --dataset ntu --data-dir RAW --output OUT \
        --engine beam [--runner DirectRunner] [any Beam pipeline option]

The launcher (the process running `convert.convert_dataset`) lists the samples,
plans the shards (`sharding.plan_shards`), skips the finished ones and writes
the reports afterwards, exactly as with the local engine. In between, this
pipeline writes the pending shards:

    Create        one element per sample: (shard path, position in the shard, RawSample)
    DecodeSample  `convert.convert_sample`, the local engine's per-sample function
    GroupByShard  GroupByKey on the shard path
    WriteShard    `convert.ShardWriter`: records in plan order (by position), so a
                  shard holds the same records in the same order as the local engine's

Shard names and members come from the plan, not from the runner's bundles, so
a Beam run and a local run of the same raw directory write identical shards and
either engine resumes the other's output. A shard is collected under a name
unique to its attempt ('<shard>.<hex>.partial'; a runner may retry or duplicate
a bundle) and renamed into place after its sidecar; the split indexes and the
manifest are written by the launcher only after the whole pipeline succeeded.
So a failed or interrupted run leaves finished shards (kept and skipped by the
next run) and perhaps '.partial' files (deleted by the next run), never an
index that names an unfinished shard.

Paths are read and written with the local file API (os, OpenCV, PyAV; not
`tf.io.gfile`): on a cluster the raw data and the output must be on a file
system that the launcher and every worker mount at the same path. Workers check
this in `setup` and fail with a message naming the path they cannot see.
"""

import contextlib
import difflib
import io
import json
import logging
import os
import uuid

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
from apache_beam.runners.runner import PipelineState, create_runner

from glimpse_keras.data import convert

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
        convert.ConversionError: an unknown runner, a runner that cannot be
            loaded, a badly typed value, a flag no Beam option knows, or
            options the runner refuses (e.g. DataflowRunner without
            --project); the message names it.
    """
    with _unknown_options_not_logged():
        return _checked_options(PipelineOptions(list(pipeline_args)))


def _checked_options(options):
    problem = _parse_error(options)
    if problem:
        raise convert.ConversionError(f"Beam pipeline option: {problem}")
    name = runner_name(options)
    try:
        runner = create_runner(name)  # also registers the runner's own options
    except ValueError as error:
        raise convert.ConversionError(f"--runner {name!r}: {error}") from error
    except ImportError as error:
        raise convert.ConversionError(
            f"--runner {name!r} cannot be loaded ({error}); it needs more of Apache "
            "Beam than the DirectRunner, e.g. apache-beam[gcp] for DataflowRunner") from error
    known = options.get_all_options()
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
    if unknown:
        described = []
        for option in unknown:
            close = difflib.get_close_matches(option, list(known), n=1)
            described.append(f"--{option}" + (f" (did you mean --{close[0]}?)" if close else ""))
        raise convert.ConversionError(
            f"unknown Beam pipeline option(s): {', '.join(described)}")
    refused = PipelineOptionsValidator(options, runner).validate()  # what Pipeline() checks
    if refused:
        raise convert.ConversionError(
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


class DecodeSample(beam.DoFn):
    """(shard path, position, RawSample) -> (shard path, (position, result)).

    `result` is `convert.convert_sample`'s (video_id, record, warnings, error).
    """

    def __init__(self, data_dir, stored_size, jpeg_quality):
        self.data_dir = data_dir
        self.stored_size = stored_size
        self.jpeg_quality = jpeg_quality
        self.skipped = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "videos_skipped")

    def setup(self):
        if not os.path.isdir(self.data_dir):
            raise RuntimeError(
                f"this Beam worker does not see the raw data directory {self.data_dir}: "
                "on a cluster it must be on a file system every worker mounts at that path")
        convert.init_decoding_process()

    def process(self, element):
        path, position, sample = element
        result = convert.convert_sample(sample, self.stored_size, self.jpeg_quality)
        if result[3] is not None:
            self.skipped.inc()
        yield path, (position, result)


class WriteShard(beam.DoFn):
    """(shard path, [(position, result), ...]) -> the shard path, once written.

    Args:
        output: the conversion's output directory.
        shards: {shard path: (splits, video ids in plan order)}.
    """

    def __init__(self, output, shards):
        self.output = output
        self.shards = shards
        self.written = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "shards_written")

    def setup(self):
        settings = os.path.join(self.output, convert.SETTINGS_FILE)
        if not os.path.isfile(settings):
            raise RuntimeError(
                f"this Beam worker does not see {settings}, written by the launcher: the "
                "output must be on a file system every worker mounts at that path")

    def process(self, element):
        path, items = element
        splits, expected = self.shards[path]
        items = sorted(items, key=lambda item: item[0])
        received = [result[0] for _, result in items]
        if received != list(expected):
            raise RuntimeError(f"shard {path}: received samples {received}, planned {list(expected)}")
        final = os.path.join(self.output, path)
        writer = convert.ShardWriter(
            self.output, path, splits,
            partial_path=f"{final}.{uuid.uuid4().hex}{convert.PARTIAL_SUFFIX}")
        try:
            for _, result in items:
                writer.add(*result)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        self.written.inc()
        yield path


# === Running ===


def build_pipeline(pipeline, output, data_dir, plans, *, stored_size, jpeg_quality):
    """Adds the transforms that write `plans` to `pipeline`; see the module doc."""
    elements = [(plan.path, position, sample)
                for plan in plans for position, sample in enumerate(plan.samples)]
    shards = {plan.path: (plan.splits, tuple(s.video_id for s in plan.samples))
              for plan in plans}
    return (pipeline
            | "ListSamples" >> beam.Create(elements)
            | "DecodeSample" >> beam.ParDo(DecodeSample(data_dir, stored_size, jpeg_quality))
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(WriteShard(output, shards)))


def write_shards(output, data_dir, plans, *, stored_size, jpeg_quality, options, log=print):
    """Writes the shards of `plans` with a Beam pipeline and waits for it.

    Args:
        output, data_dir: absolute paths every worker sees.
        plans: the pending `sharding.ShardPlan`s.
        stored_size, jpeg_quality: as `convert.convert_sample`.
        options: from `pipeline_options`.
        log: callable for console lines (a SKIPPED line per bad sample).

    Raises:
        convert.ConversionError: the pipeline failed or did not finish; the
            shards finished so far are kept and a rerun resumes from them.
    """
    if not plans:
        return
    pipeline = beam.Pipeline(runner=_runner_instance(options), options=options)
    build_pipeline(pipeline, output, data_dir, plans, stored_size=stored_size,
                   jpeg_quality=jpeg_quality)
    try:
        state = pipeline.run().wait_until_finish()
    except Exception as error:
        raise convert.ConversionError(
            f"the Beam pipeline ({runner_name(options)}) failed: {error}\nThe shards "
            f"finished so far are kept in {output}; rerun the same command to resume") from error
    if state != PipelineState.DONE:
        raise convert.ConversionError(
            f"the Beam pipeline ({runner_name(options)}) ended in state {state}, not DONE; "
            "rerun the same command to resume")
    for plan in plans:
        with open(os.path.join(output, plan.sidecar_path)) as handle:
            for error in json.load(handle)["errors"]:
                log(f"SKIPPED {error['file']}: {error['reason']}")
