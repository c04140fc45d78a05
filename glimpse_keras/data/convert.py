"""Converts a raw NTU RGB+D or N-UCLA directory into sharded TFRecords.

    python -m glimpse_keras.data.convert --dataset {ntu,nucla} --data-dir RAW \
        --output OUT [--workers N] [--stored-size 256] [--shard-size 64] \
        [--protocol xsub --protocol xview ...] [--jpeg-quality 90] \
        [--missing-skeletons LIST] [--engine {local,beam}] [Beam options]

Two engines write the same output: 'local' (a process pool in this
process, the default) and 'beam' (an Apache Beam pipeline, `convert_beam`;
`--runner DirectRunner` and any other Beam pipeline option follow it). Both
decode each sample with `convert_sample` and write each shard with
`ShardWriter`, so their shards are identical record for record.

Each video becomes one SequenceExample (`schema`): its frames resized
(squashed, as the authors) to stored-size x stored-size and JPEG-encoded, and
its 2-D pose normalised to the original image with a mask. Every video is
written ONCE; shards are grouped by split membership under all chosen
protocols (`sharding`), and a small JSON index per split lists its shards, so
'xsub train' and 'xview test' are read from the same conversion.

Output layout:

    OUT/conversion_settings.json        settings; a resume must use the same
    OUT/shards/<group>/<group>-00000-of-00002.tfrecord   (+ .json sidecar)
    OUT/splits/<protocol>/<split>.json  {num_videos, class_counts, files, video_ids}
    OUT/manifest.json                   found / converted / skipped, split counts
    OUT/conversion_errors.json          every skipped sample: file and reason

Resumable: a shard is finished when its final .tfrecord exists (its sidecar
with the per-video counts is written just before). Shards are written to a
'.partial' name and renamed; leftover '.partial' files are deleted when a run
starts. Bad samples are reported (console + conversion_errors.json) and
skipped; converted + skipped = found always holds. The exit status is 0
unless nothing could be converted (1) or the input/settings are wrong (1).

RAW and OUT may be local paths or URLs of any file system `tf.io.gfile` knows
(e.g. gs://bucket/ntu): every file is read and written through
`glimpse_keras.filesystem`. A storage failure that may pass when retried
(`filesystem.TransientStorageError`) stops the run rather than marking a
sample bad; rerunning resumes it.
"""

import argparse
import collections
import concurrent.futures
import dataclasses
import functools
import itertools
import logging
import multiprocessing
import os
import sys


from glimpse_keras import console, filesystem
from glimpse_keras.data import ntu, sharding, sources, user_videos
from glimpse_keras.data.shard_writer import (
    PARTIAL_SUFFIX,
    SETTINGS_FILE,
    ConversionError,
    ShardWriter,
    convert_sample,
    init_decoding_process,
)
from glimpse_keras.filesystem import atomic_write_json

MANIFEST_FILE = "manifest.json"
ERRORS_FILE = "conversion_errors.json"
ENGINES = ("local", "beam")
BEAM_INSTALL_COMMAND = (
    'pip install -e ".[beam]" && pip install --no-deps apache-beam==2.78.0')


@dataclasses.dataclass
class ConversionSummary:
    """What one run did.

    Attributes:
        found: samples (and unusable files) found in the raw directory.
        converted: videos stored in the shards (this and earlier runs).
        skipped: found samples that could not be converted.
        loaded_this_run: samples decoded by this run (0 when all was done).
        split_counts: {protocol: {split: num_videos}}.
        output: the output directory.
    """

    found: int
    converted: int
    skipped: int
    loaded_this_run: int
    split_counts: dict
    output: str


# === Small file helpers ===


def _remove_partial_files(output):
    removed = []
    for directory, _, names in filesystem.walk(output):
        for name in names:
            if name.endswith(PARTIAL_SUFFIX):
                filesystem.remove(os.path.join(directory, name))
                removed.append(name)
    return removed


def _check_settings(output, settings):
    path = os.path.join(output, SETTINGS_FILE)
    if filesystem.isfile(path):
        fix = "delete the output folder, or use a new --output directory"
        previous = filesystem.read_json(path, dict, ConversionError, fix=fix)
        if previous != settings:
            changed = sorted(k for k in set(previous) | set(settings)
                             if previous.get(k) != settings.get(k))
            raise ConversionError(
                f"{output!r} holds a conversion made with other settings "
                f"({', '.join(f'{k}: {previous.get(k)!r} -> {settings.get(k)!r}' for k in changed)}); "
                "use a new --output directory or delete the old one")
    else:
        atomic_write_json(path, settings)


# === The local engine ===


def _ordered_map(function, items, workers):
    """Yields function(item) in input order, `workers` processes at a time."""
    if workers <= 1:
        init_decoding_process()
        for item in items:
            yield function(item)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=init_decoding_process) as pool:
        iterator = iter(items)
        window = collections.deque(
            pool.submit(function, item) for item in itertools.islice(iterator, 4 * workers))
        try:
            while window:
                result = window.popleft().result()
                for item in itertools.islice(iterator, 1):
                    window.append(pool.submit(function, item))
                yield result
        except BaseException:
            for future in window:
                future.cancel()
            raise


def _is_finished(output, plan):
    """True when the shard exists and its sidecar lists exactly plan's samples.

    Shard names depend only on the group and the shard count, so a sample added
    to (or removed from) the raw directory can change a shard's members while
    its name stays; such a shard is rewritten rather than trusted.
    """
    final = os.path.join(output, plan.path)
    if not (filesystem.isfile(final) and filesystem.isfile(final + ".json")):
        return False
    try:
        sidecar = filesystem.read_json(final + ".json")
        written = [v["id"] for v in sidecar["videos"]]
        written += [e["video_id"] for e in sidecar["errors"]]
    except (ValueError, KeyError, TypeError):
        return False  # an unreadable sidecar: the shard is redone
    return sorted(written) == sorted(s.video_id for s in plan.samples)


# === Reports ===


def _write_reports(output, dataset, settings, plans, problems):
    """Split indexes, manifest and error log from the shard sidecars.

    Split indexes are written only when at least one video was converted, so
    a directory with 'splits/' always holds usable data.
    """
    sidecars = {plan.path: filesystem.read_json(os.path.join(output, plan.sidecar_path))
                for plan in plans}
    errors = [problem.to_json() for problem in problems]
    warnings = []
    converted = 0
    for plan in plans:
        sidecar = sidecars[plan.path]
        errors.extend(sidecar["errors"])
        warnings.extend(sidecar["warnings"])
        converted += len(sidecar["videos"])
    found = sum(len(plan.samples) for plan in plans) + len(problems)
    split_counts = {}
    for protocol in settings["protocols"] if converted else ():
        for split in ("train", "test"):
            members = [p for p in sharding.shards_of_split(plans, protocol, split)
                       if sidecars[p.path]["videos"]]
            videos = [v for p in members for v in sidecars[p.path]["videos"]]
            if not sharding.shards_of_split(plans, protocol, split):
                continue
            class_counts = collections.Counter(v["label"] for v in videos)
            atomic_write_json(os.path.join(output, "splits", protocol, f"{split}.json"), {
                "dataset": dataset, "protocol": protocol, "split": split,
                "num_videos": len(videos),
                "class_counts": {str(k): class_counts[k] for k in sorted(class_counts)},
                "files": [p.path for p in members],
                "video_ids": sorted(v["id"] for v in videos),
            })
            split_counts.setdefault(protocol, {})[split] = len(videos)
    all_videos = [v for s in sidecars.values() for v in s["videos"]]
    mismatched = sorted(v["id"] for v in all_videos
                        if v["num_skeleton_frames"]
                        and v["num_skeleton_frames"] != v["num_video_frames"])
    atomic_write_json(os.path.join(output, ERRORS_FILE), {
        "dataset": dataset, "found": found, "converted": converted,
        "skipped": len(errors), "errors": errors, "warnings": warnings,
    })
    atomic_write_json(os.path.join(output, MANIFEST_FILE), {
        "dataset": dataset, "settings": settings, "found": found,
        "converted": converted, "skipped": len(errors), "splits": split_counts,
        "num_shards": len(plans),
        "frame_count_mismatches": mismatched,
        "videos_without_pose": sorted(v["id"] for v in all_videos
                                      if not v["pose_present"]),
        "total_frames": sum(v["num_frames"] for v in all_videos),
    })
    return found, converted, errors, split_counts


# === Engines ===


def _write_shards_locally(output, plans, *, workers, stored_size, jpeg_quality,
                          total, progress):
    """Writes `plans` with a pool of `workers` decoding processes (in order)."""
    work = [sample for plan in plans for sample in plan.samples]
    function = functools.partial(convert_sample, stored_size=stored_size,
                                 jpeg_quality=jpeg_quality)
    results = _ordered_map(function, work, workers)
    bar = console.progress(total=total, initial=total - len(work), unit="video",
                           disable=not progress, desc="converting")
    try:
        for plan in plans:
            writer = ShardWriter(output, plan.path, plan.splits)
            try:
                for _ in plan.samples:
                    video_id, record, warnings, error = next(results)
                    writer.add(video_id, record, warnings, error)
                    if error is not None:
                        bar.write(f"SKIPPED {error['file']}: {error['reason']}")
                    bar.update(1)
                writer.finish()
            except BaseException:
                writer.abort()
                raise
    finally:
        bar.close()
        results.close()


def _load_beam_engine():
    """The `convert_beam` module; a ConversionError saying how to install Beam
    when it cannot be imported."""
    try:
        # Beam's import warns (on the root logger) about BigQuery clients
        # that conversion never uses; shown with --verbose only.
        logging.disable(logging.NOTSET if console.is_verbose() else logging.WARNING)
        try:
            import apache_beam  # noqa: F401
        finally:
            logging.disable(logging.NOTSET)
    except ImportError as error:
        raise ConversionError(
            f"--engine beam needs Apache Beam, which cannot be imported ({error}); "
            f"install it with: {BEAM_INSTALL_COMMAND}") from error
    if not console.is_verbose():  # e.g. the DirectRunner's forwarded worker warnings
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
    from glimpse_keras.data import convert_beam

    return convert_beam


# === Entry point ===


def convert_dataset(dataset, data_dir, output, *, workers=1, stored_size=256,
                    shard_size=64, protocols=None, jpeg_quality=90,
                    missing_list=None, progress=True, log=print, engine="local",
                    pipeline_args=()):
    """Converts a raw dataset directory; see the module doc for the layout.

    Args:
        dataset: 'ntu' or 'nucla'.
        data_dir: raw dataset root.
        output: output directory (created; resumed when it exists).
        workers: decoding processes of the local engine (1 = in this
            process); a Beam runner sets its own parallelism.
        stored_size: side of the stored square frames, pixels.
        shard_size: videos per shard.
        protocols: protocols whose splits are indexed; default all of the
            dataset's (NTU: xsub, xview, xsub120, xset120; N-UCLA: xview).
        jpeg_quality: 1..100.
        missing_list: NTU missing-skeleton list; default the list in data_dir
            if present, else the shipped official NTU-120 list.
        progress: show a tqdm bar (local engine).
        log: callable for console lines.
        engine: 'local' (process pool) or 'beam' (Apache Beam pipeline; the
            paths are made absolute, as workers may run elsewhere).
        pipeline_args: Beam pipeline options, e.g. ['--runner',
            'DirectRunner']; only with engine='beam'.

    Returns:
        ConversionSummary.

    Raises:
        sources.EmptyDatasetError: nothing that looks like the dataset.
        ConversionError: settings differ from an earlier run in `output`, not
            a single video could be converted, Beam is missing, or a Beam
            runner or pipeline option is wrong (checked before any write).
    """
    protocols = tuple(protocols or sources.DATASET_PROTOCOLS.get(dataset, ()))
    if not 1 <= int(jpeg_quality) <= 100:
        raise ValueError(f"jpeg_quality: expected 1..100, got {jpeg_quality!r}")
    if int(stored_size) < 1 or int(workers) < 1:
        raise ValueError(f"stored_size and workers must be >= 1, got "
                         f"{stored_size!r}, {workers!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "beam":
        beam_engine = _load_beam_engine()
        options = beam_engine.pipeline_options(pipeline_args)
        data_dir, output = filesystem.absolute(data_dir), filesystem.absolute(output)
    elif pipeline_args:
        raise ConversionError(
            f"unrecognized arguments: {' '.join(pipeline_args)} (Beam pipeline "
            "options are accepted with --engine beam only)")
    samples, problems = sources.list_raw_samples(dataset, data_dir, protocols,
                                                 missing_list)
    plans = sharding.plan_shards(samples, shard_size)
    settings = {"dataset": dataset, "stored_size": int(stored_size),
                "shard_size": int(shard_size), "protocols": list(protocols),
                "jpeg_quality": int(jpeg_quality)}
    filesystem.prepare_output_folder(output)
    _check_settings(output, settings)
    leftovers = _remove_partial_files(output)
    if leftovers:
        log(f"removed {len(leftovers)} unfinished file(s) of an interrupted run")
    for problem in problems:
        log(f"SKIPPED {problem.file}: {problem.reason}")
    if missing_list and dataset == "ntu" and not ntu.load_missing_skeleton_ids(missing_list):
        log(f"warning: --missing-skeletons {missing_list} names no NTU sample id (lines like "
            f"S001C002P005R002A008): no sample is taken as one with a listed missing skeleton")
    if dataset == user_videos.DATASET:  # a class folder without videos is named, not dropped silently
        for message in user_videos.describe_classes(data_dir, user_videos.list_entries(data_dir)[0])[1:]:
            log(message)
    pending = [plan for plan in plans if not _is_finished(output, plan)]
    how = (f"Beam runner {beam_engine.runner_name(options)}" if engine == "beam"
           else f"{workers} worker(s)")
    log(f"{dataset}: {len(samples) + len(problems)} samples found in {data_dir}, "
        f"{len(plans)} shards ({len(plans) - len(pending)} already finished), {how}")

    if engine == "beam":
        beam_engine.write_shards(output, data_dir, pending, stored_size=int(stored_size),
                                 jpeg_quality=int(jpeg_quality), options=options, log=log)
    else:
        _write_shards_locally(output, pending, workers=int(workers),
                              stored_size=int(stored_size), jpeg_quality=int(jpeg_quality),
                              total=len(samples), progress=progress)

    found, converted, errors, split_counts = _write_reports(
        output, dataset, settings, plans, problems)
    if dataset == user_videos.DATASET:
        user_videos.write_dataset_info(output, data_dir, samples)
    log(f"found {found} = converted {converted} + skipped {len(errors)}; "
        f"errors: {os.path.join(output, ERRORS_FILE)}")
    for protocol, counts in split_counts.items():
        log(f"  {protocol}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if converted == 0:
        raise ConversionError(
            f"not a single video of {data_dir!r} could be converted ({found} found, "
            f"all skipped); see {os.path.join(output, ERRORS_FILE)} for the reasons")
    loaded = sum(len(plan.samples) for plan in pending)
    return ConversionSummary(found, converted, len(errors), loaded, split_counts, output)


def _parse_protocols(values):
    if not values:
        return None
    return tuple(p for value in values for p in value.split(",") if p)


def _default_workers():
    return min(2, os.cpu_count() or 1)


def build_argument_parser():
    parser = argparse.ArgumentParser(
        prog="python -m glimpse_keras.data.convert",
        description="Convert raw NTU RGB+D / N-UCLA data into sharded TFRecords.",
        epilog="With --engine beam, every argument not listed here is a Beam pipeline "
               "option (e.g. --runner DirectRunner --direct_num_workers 2).")
    parser.add_argument("--dataset", required=True, choices=sources.DATASETS)
    parser.add_argument("--data-dir", required=True, help="raw dataset root")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding processes of the local engine (default: "
                             f"{_default_workers()})")
    parser.add_argument("--stored-size", type=int, default=256,
                        help="side of the stored square frames (default 256)")
    parser.add_argument("--shard-size", type=int, default=64,
                        help="videos per TFRecord shard (default 64)")
    parser.add_argument("--protocol", action="append",
                        help="protocol(s) to index, repeatable or comma-separated "
                             "(default: all of the dataset's)")
    parser.add_argument("--jpeg-quality", type=int, default=90)
    parser.add_argument("--missing-skeletons", default=None,
                        help="NTU missing-skeleton list (default: the one in "
                             "--data-dir, else the shipped official list)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: a process pool here (default); beam: an Apache "
                             "Beam pipeline, on the runner its options name")
    console.add_verbose_argument(parser)
    return parser


def main(argv=None):
    parser = build_argument_parser()
    args, pipeline_args = parser.parse_known_args(argv)
    if args.engine == "local" and pipeline_args:
        parser.error(f"unrecognized arguments: {' '.join(pipeline_args)} (Beam "
                     "pipeline options are accepted with --engine beam only)")
    if args.engine == "beam" and args.workers is not None:
        parser.error("--workers belongs to the local engine; on Beam the runner sets the "
                     "parallelism (e.g. --direct_num_workers N --direct_running_mode "
                     "multi_processing here, --parallelism N on Flink)")
    console.configure_logging(args.verbose)  # GLIMPSE_VERBOSE=1 from a verbose parent counts too
    console.import_tensorflow_quietly()  # before the bar: its load-time lines would break it
    try:
        convert_dataset(
            args.dataset, args.data_dir, args.output,
            workers=_default_workers() if args.workers is None else args.workers,
            stored_size=args.stored_size, shard_size=args.shard_size,
            protocols=_parse_protocols(args.protocol),
            jpeg_quality=args.jpeg_quality, missing_list=args.missing_skeletons,
            progress=not args.no_progress, engine=args.engine,
            pipeline_args=pipeline_args)
    except (ValueError, OSError) as error:  # OSError: StorageError and other refused writes
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
