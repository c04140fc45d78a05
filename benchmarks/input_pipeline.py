"""Throughput of the conversion step and of the training input pipeline.

    python benchmarks/input_pipeline.py [--data-dir RAW --dataset ntu]
        [--preset demo] [--workers 1,2] [--batches 30] [--skip-training]

Without --data-dir a synthetic NTU-format set is generated first (`python -m
glimpse_keras.data.synthetic --preset demo`, ~30 s). The raw set is converted once per
worker count (videos/s each, and the speed-up), then the training pipeline
(T=8 frames, 224 crop of 256 stored, batch 4 by default) is timed in clips/s.
Finally the fastest video-consuming training step on this machine (stage 2:
frozen backbone, mixed_bfloat16, batch 4, of --train-preset) is timed in the
same run and the ratio pipeline clips/s / training clips/s is printed (the
target is >= 5). Timings drift on a shared machine: compare figures within one
run.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from glimpse_keras.data import convert  # noqa: E402


def _generate(output, preset, seed, dataset, size):
    command = [sys.executable, "-m", "glimpse_keras.data.synthetic", "--format", dataset,
               "--output", output, "--preset", preset, "--seed", str(seed), "--quiet"]
    if size:
        command += ["--size", size]
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"generated in {time.perf_counter() - start:.1f} s")


def _time_conversion(dataset, raw, output, workers, stored_size):
    start = time.perf_counter()
    summary = convert.convert_dataset(dataset, raw, output, workers=workers,
                                      stored_size=stored_size, progress=False,
                                      log=lambda _: None)
    seconds = time.perf_counter() - start
    return summary, seconds


def _time_pipeline(converted, protocol, args):
    from glimpse_keras.data import pipeline

    files = pipeline.list_split_files(converted, protocol, "train")
    dataset = pipeline.build_dataset(
        files, "train", num_frames=args.num_frames, image_size=args.image_size,
        batch_size=args.batch_size, seed=0, repeat=True, flip=args.flip)
    iterator = iter(dataset)
    for _ in range(args.warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(args.batches):
        next(iterator)
    seconds = time.perf_counter() - start
    return args.batches * args.batch_size / seconds


def _training_clips_per_second(args, repeats=3):
    """Clips/s of the stage-2 train step (the fastest step that reads video)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from glimpse_keras.models.presets import build_model_from_preset
    from glimpse_keras.models.presets import preset_video_shape

    keras.mixed_precision.set_global_policy(args.train_policy)
    try:
        model = build_model_from_preset(args.train_preset, freeze_backbone=True)
        shape = preset_video_shape(args.train_preset)
        batch, frames = args.batch_size, shape[0]
        rng = np.random.default_rng(0)
        inputs = {"video": tf.constant(rng.integers(0, 256, (batch,) + shape, dtype=np.uint8))}
        targets = {
            "label": tf.constant(rng.integers(0, model.num_classes, batch), tf.int32),
            "pose": tf.constant(rng.uniform(-1, 1, (batch, frames, 2, 25, 2)), tf.float32),
            "pose_mask": tf.ones((batch, frames, 2, 25), tf.float32),
        }
        model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
        model.train_on_batch(inputs, targets)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            model.train_on_batch(inputs, targets)
            best = min(best, time.perf_counter() - start)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return batch / best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="raw dataset (default: generate synthetic)")
    parser.add_argument("--dataset", default="ntu", choices=("ntu", "nucla"))
    parser.add_argument("--preset", default="demo", help="synthetic preset (demo: 1020 videos, enough to show --workers scaling)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", help="synthetic video size WxH (default: preset's)")
    parser.add_argument("--workers", default="1,2", help="worker counts to time")
    parser.add_argument("--stored-size", type=int, default=256)
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--work-dir", help="keep outputs here (default: a temp dir, deleted at the end)")
    parser.add_argument("--train-preset", default="resnet50",
                        help="model preset whose stage-2 step is the consumer")
    parser.add_argument("--train-policy", default="mixed_bfloat16")
    parser.add_argument("--skip-training", action="store_true",
                        help="do not time the training consumer")
    args = parser.parse_args(argv)

    if args.work_dir:
        return _run(args, args.work_dir)
    work = tempfile.mkdtemp(prefix="gk_bench_")
    try:
        return _run(args, work)
    finally:
        # The generated set and its conversions take ~1 GB.
        shutil.rmtree(work, ignore_errors=True)


def _run(args, work):
    raw = args.data_dir
    if raw is None:
        raw = os.path.join(work, "raw")
        if not os.path.isdir(raw):
            _generate(raw, args.preset, args.seed, args.dataset, args.size)
    import tensorflow  # noqa: F401  (imported before timing: the converter needs it)

    protocol = "xsub" if args.dataset == "ntu" else "xview"
    speeds = {}
    converted = None
    for workers in [int(w) for w in args.workers.split(",")]:
        output = os.path.join(work, f"converted_w{workers}")
        if os.path.exists(output):
            subprocess.run(["rm", "-rf", output], check=True)
        summary, seconds = _time_conversion(args.dataset, raw, output, workers,
                                            args.stored_size)
        speeds[workers] = summary.converted / seconds
        print(f"convert --workers {workers}: {summary.converted} videos "
              f"({summary.skipped} skipped of {summary.found}) in {seconds:.2f} s "
              f"= {speeds[workers]:.2f} videos/s")
        converted = output
    if len(speeds) > 1:
        base = min(speeds)
        for workers, speed in sorted(speeds.items()):
            if workers != base:
                print(f"speed-up {workers} vs {base} worker(s): "
                      f"{speed / speeds[base]:.2f}x")
    clips = _time_pipeline(converted, protocol, args)
    print(f"train pipeline (T={args.num_frames}, {args.image_size} crop of "
          f"{args.stored_size}, batch {args.batch_size}): {clips:.1f} clips/s "
          f"over {args.batches} batches")
    if not args.skip_training:
        consumed = _training_clips_per_second(args)
        print(f"training consumes (stage 2, {args.train_preset}, {args.train_policy}, "
              f"batch {args.batch_size}): {consumed:.2f} clips/s")
        print(f"pipeline / training: {clips / consumed:.1f}x (target >= 5x)")
    print(f"load average {os.getloadavg()[0]:.2f}")
    if args.work_dir:
        print(f"outputs in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
