"""Running a whole generation: planning, skipping finished samples, worker processes, manifest."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections import Counter

from glimpse_keras import console
from glimpse_keras.io_utils import StorageError, check_output_location, makedirs
from glimpse_keras.worker_errors import PortableErrors

from glimpse_keras.data.synthetic import ntu_writer, nucla_writer
from glimpse_keras.data.synthetic.fileio import write_text_atomically
from glimpse_keras.data.synthetic.manifest import load_manifest, save_manifest
from glimpse_keras.data.synthetic.presets import resolve_config

_SAVE_EVERY_S = 5.0


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def plan(dataset: str, seed: int, config: dict) -> list:
    """The tasks (samples) of a configuration: NtuTask or NuclaTask objects."""
    return ntu_writer.plan_ntu(seed, config) if dataset == "ntu" else nucla_writer.plan_nucla(seed, config)


def _write_one(job: tuple) -> dict:
    dataset, seed, config, task, root = job
    if dataset == "ntu":
        return ntu_writer.write_ntu_sample(seed, config, task, root)
    return nucla_writer.write_nucla_sample(seed, config, task, root)


def _complete(dataset: str, root: str, record: dict) -> bool:
    if dataset == "ntu":
        return ntu_writer.ntu_sample_complete(root, record)
    return nucla_writer.nucla_sample_complete(root, record)


def generate(dataset: str, output: str, *, preset: str = "tiny", seed: int = 0, workers: int | None = None,
             overrides: dict | None = None, progress: bool = True) -> dict:
    """Writes a synthetic dataset in the raw layout of `dataset` ('ntu' | 'nucla') under `output`.

    Samples already recorded in an existing manifest (same seed and configuration) whose files exist
    are skipped. Every file is written atomically.

    Returns:
      A summary dict: samples planned / generated / skipped, seconds, defect counts.

    Raises:
      SyntheticConfigError: invalid preset or overrides.
      ManifestMismatchError: `output` holds a manifest of another configuration.
      StorageError: `output` cannot be written (checked before any work; or a
        write refused later, e.g. a full disk: the samples finished so far are
        kept and recorded, and a re-run skips them).
    """
    started = time.time()
    config = resolve_config(dataset, preset, overrides)
    check_output_location(output, directory=True)
    makedirs(output)
    tasks = plan(dataset, seed, config)
    previous = load_manifest(output, dataset, seed, config)
    records = {name: rec for name, rec in previous.items() if _complete(dataset, output, rec)}
    todo = [task for task in tasks if task.name not in records]
    jobs = [(dataset, seed, config, task, output) for task in todo]
    workers = default_workers() if workers is None else max(1, int(workers))
    bar = console.progress(total=len(tasks), initial=len(tasks) - len(todo), desc=f"synthetic {dataset}",
                           unit="sample", disable=not progress)
    last_save = time.time()

    def collect(record: dict) -> None:
        nonlocal last_save
        records[record["id"]] = record
        bar.update(1)
        if time.time() - last_save > _SAVE_EVERY_S:
            save_manifest(output, dataset, seed, preset, config, records, complete=False)
            last_save = time.time()

    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                collect(_write_one(job))
        else:
            # spawn: safe even when the parent process has TensorFlow threads running.
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for record in pool.imap_unordered(PortableErrors(_write_one), jobs, chunksize=1):
                    collect(record)
    except BaseException:
        bar.close()
        if records:
            # The error in flight says what went wrong (on a full disk the
            # manifest cannot be written either).
            with contextlib.suppress(StorageError):
                save_manifest(output, dataset, seed, preset, config, records, complete=False)
        raise
    bar.close()
    defect_counts = Counter(name for rec in records.values() for name in rec["defects"])
    summary = {"format": dataset, "preset": preset, "seed": seed, "planned": len(tasks), "generated": len(jobs),
               "skipped": len(tasks) - len(jobs), "seconds": round(time.time() - started, 2),
               "defect_counts": dict(sorted(defect_counts.items()))}
    if dataset == "ntu":
        write_text_atomically(os.path.join(output, ntu_writer.MISSING_LIST),
                              ntu_writer.missing_list_text(list(records.values())))
    save_manifest(output, dataset, seed, preset, config, records, complete=True,
                  extra={"defect_counts": summary["defect_counts"]})
    return summary
