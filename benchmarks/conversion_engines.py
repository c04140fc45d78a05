"""Conversion throughput of the local engine and of Apache Beam's DirectRunner.

    python benchmarks/conversion_engines.py [--data-dir RAW] [--workers 2]
        [--stored-size 256] [--full-size-videos 4] [--keep DIR]

Without --data-dir the demo set is generated first (`python -m
glimpse_keras.data.synthetic --format ntu --preset demo`: 600 videos of 320x180).
The set is then converted once by each engine, one after the other, each into
a fresh folder:

    local, 1 worker             the process pool with one process
    local, W workers            --workers W
    beam DirectRunner           --engine beam (in_memory: one worker thread)
    beam DirectRunner, W procs  --direct_running_mode multi_processing --direct_num_workers W

and the videos/s of each run (whole command: listing, pipeline start-up,
decoding, writing, reports) are printed with the load average before and after
it, the ratio to the local engine with the same parallelism, and whether every
output is byte-identical to the first.

For a projection to NTU-120 (114,480 videos of 1920x1080, ~70 frames on
average: DATASETS.md), --full-size-videos videos of that size are generated and
converted with one local worker; the per-worker rate gives the hours on N
workers under the assumptions printed with it. The machine is shared: compare
figures within one run only.
"""

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from glimpse_keras import console  # noqa: E402
from glimpse_keras.data import convert  # noqa: E402

NTU120_VIDEOS = 114_480
NTU_FRAMES = "60-80"  # ~70 frames per NTU sample on average (DATASETS.md, "Frame count")
PROJECTED_WORKERS = (1, 8, 32, 128)


def _load():
    return f"{os.getloadavg()[0]:.2f}"


def _generate(output, extra):
    command = [sys.executable, "-m", "glimpse_keras.data.synthetic", "--format", "ntu",
               "--output", output, "--quiet", *extra]
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    print(f"  generated in {time.perf_counter() - start:.1f} s", flush=True)


def _convert(raw, output, stored_size, workers=1, engine="local", pipeline_args=()):
    """One timed conversion; returns (videos decoded, seconds, load before, load after)."""
    before = _load()
    start = time.perf_counter()
    summary = convert.convert_dataset(
        "ntu", raw, output, workers=workers, stored_size=stored_size, progress=False,
        log=lambda _: None, engine=engine, pipeline_args=list(pipeline_args))
    return summary.loaded_this_run, time.perf_counter() - start, before, _load()


def _same_tree(first, second):
    comparison = filecmp.dircmp(first, second)
    pending = [comparison]
    while pending:
        node = pending.pop()
        if node.left_only or node.right_only or node.funny_files:
            return False
        _, mismatch, errors = filecmp.cmpfiles(node.left, node.right, node.common_files,
                                               shallow=False)
        if mismatch or errors:
            return False
        pending.extend(node.subdirs.values())
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="raw NTU-format set (default: generate the demo set)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stored-size", type=int, default=256)
    parser.add_argument("--full-size-videos", type=int, default=4,
                        help="1920x1080 videos for the NTU-120 projection (0: skip it)")
    parser.add_argument("--keep", help="keep the data and outputs in this folder")
    args = parser.parse_args()
    console.configure_logging(False)
    console.import_tensorflow_quietly()
    root = args.keep or tempfile.mkdtemp(prefix="conversion_engines_")
    os.makedirs(root, exist_ok=True)
    try:
        raw = args.data_dir or os.path.join(root, "demo")
        if not args.data_dir:
            _generate(raw, ["--preset", "demo", "--seed", "0"])
        workers = args.workers
        runs = [
            ("local, 1 worker", dict(workers=1)),
            (f"local, {workers} workers", dict(workers=workers)),
            ("beam DirectRunner (in_memory)", dict(engine="beam")),
            (f"beam DirectRunner, {workers} processes", dict(engine="beam", pipeline_args=[
                "--direct_running_mode", "multi_processing", "--direct_num_workers", str(workers)])),
        ]
        print(f"\nconversion of {raw} at stored size {args.stored_size}, one run each "
              f"(machine: {os.cpu_count()} cores, shared)")
        print(f"| engine | videos | seconds | videos/s | vs local, same parallelism | load before -> after |")
        print("| --- | --- | --- | --- | --- | --- |")
        outputs, rates = [], {}
        for index, (name, kwargs) in enumerate(runs):
            output = os.path.join(root, f"out{index}")
            shutil.rmtree(output, ignore_errors=True)
            videos, seconds, before, after = _convert(raw, output, args.stored_size, **kwargs)
            rate = videos / seconds
            parallel = kwargs.get("workers", 1) if "pipeline_args" not in kwargs else workers
            baseline = rates.get(parallel)
            rates.setdefault(parallel, rate)
            ratio = f"{rate / baseline:.2f}x" if baseline else "(baseline)"
            print(f"| {name} | {videos} | {seconds:.1f} | {rate:.1f} | {ratio} | {before} -> {after} |",
                  flush=True)
            outputs.append(output)
        identical = all(_same_tree(outputs[0], other) for other in outputs[1:])
        print(f"every output byte-identical to the first: {'yes' if identical else 'NO'}")

        if args.full_size_videos:
            full = os.path.join(root, "full_size")
            _generate(full, ["--preset", "tiny", "--seed", "0", "--classes", "1",
                             "--num-subjects", str(args.full_size_videos), "--size", "1920x1080",
                             "--frames", NTU_FRAMES, "--set", "cameras=[1]",
                             "--set", "replications=[1]", "--set", "setups=[1]",
                             "--set", "defects={truncated_avi: [0, 0], short_clip: [0, 0]}"])
            output = os.path.join(root, "full_size_out")
            shutil.rmtree(output, ignore_errors=True)
            videos, seconds, before, after = _convert(full, output, args.stored_size)
            per_worker = videos / seconds
            print(f"\n1920x1080 videos ({NTU_FRAMES} frames), local engine, 1 worker: {videos} videos "
                  f"in {seconds:.1f} s = {per_worker:.2f} videos/s (load {before} -> {after})")
            print(f"projection for NTU-120 ({NTU120_VIDEOS:,} videos):")
            for count in PROJECTED_WORKERS:
                hours = NTU120_VIDEOS / (per_worker * count) / 3600
                print(f"  {count:4d} workers: {hours:7.1f} h")
            print("assumptions: each worker decodes as fast as one core here; workers scale "
                  "linearly (samples are independent; measured 1 -> "
                  f"{workers} above); real NTU clips decode like these synthetic MPEG-4 ones; "
                  "storage serves every worker's reads and writes; runner start-up ignored")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
