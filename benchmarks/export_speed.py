"""Latency of the exported SavedModel against the in-memory Keras model.

Builds a model from a preset, exports it with `glimpse_keras.export`, reloads
it with `tf.saved_model.load` (what the model server runs) and prints, for
one clip (batch 1), the median seconds of:

* the in-memory model called eagerly (`model(x, training=False)`);
* the in-memory model inside a `tf.function` (the graph Keras' `predict` runs),
  as built and as its BN-folded copy (`models.folding.fold_model_batch_norm`,
  what `export_model` writes by default);
* the reloaded `serving_default` signature fed a clip at the stored size
  (includes the area resize and the centre crop done in the graph), and fed
  full-HD 1080 x 1920 frames;
* the reloaded `whole_video` signature on a 60-frame stored-size video
  (K clips, so about K times the one-clip cost);

and the ratios reloaded / tf.function (folded: the same computation, and as
built) and reloaded / eager. Timings drift on
shared machines: only ratios within one run are meaningful.

The 4096^2 matmul peak is measured in the same run and the in-memory and
reloaded one-clip rates are printed as fractions of it.

Usage:
    python benchmarks/export_speed.py                    # the authors' size, ~2 min
    python benchmarks/export_speed.py --preset tiny      # seconds
"""

import argparse
import os
import shutil
import tempfile
import time

import common  # noqa: F401,E402  (sets sys.path and TF_CPP_MIN_LOG_LEVEL)
from common import graph_gflops  # noqa: E402
from common import load_average  # noqa: E402
from common import matmul_peaks  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from glimpse_keras import export  # noqa: E402
from glimpse_keras.models.folding import fold_model_batch_norm  # noqa: E402
from glimpse_keras.models.presets import MODEL_PRESETS  # noqa: E402
from glimpse_keras.models.presets import build_model_from_preset  # noqa: E402


def interleaved_median_seconds(functions, iterations, warmup=2):
    """Median wall seconds of each function, timed round-robin.

    The machine's speed drifts (other jobs share it), so the candidates are
    timed in turn within every round rather than one after the other.

    Args:
        functions: dict name -> zero-argument callable; results are fetched
            to host memory inside the timing.
        iterations: timed rounds.

    Returns:
        dict name -> median seconds.
    """
    for function in functions.values():
        for _ in range(warmup):
            tf.nest.map_structure(np.asarray, function())
    times = {name: [] for name in functions}
    for _ in range(iterations):
        for name, function in functions.items():
            start = time.perf_counter()
            tf.nest.map_structure(np.asarray, function())
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(MODEL_PRESETS), default="resnet50")
    parser.add_argument("--iterations", type=int, default=10, help="timed calls per figure (median)")
    parser.add_argument("--clips", type=int, default=5, help="K of the whole_video signature")
    args = parser.parse_args(argv)

    preset = MODEL_PRESETS[args.preset]
    frames, size = preset["num_frames"], preset["image_size"]
    stored = round(size * 256 / 224)  # the authors' 256 -> 224 crop ratio
    num_classes = preset["num_classes"]
    keras.utils.set_random_seed(0)
    model = build_model_from_preset(args.preset)
    rng = np.random.default_rng(0)
    stored_clip = rng.integers(0, 256, (1, frames, stored, stored, 3), dtype=np.uint8)
    offset = (stored - size) // 2
    crop = tf.constant(stored_clip[:, :, offset : offset + size, offset : offset + size])
    model(crop, training=False)
    gflop = graph_gflops(
        tf.function(lambda x: model(x, training=False)).get_concrete_function(
            tf.TensorSpec(crop.shape, tf.uint8)
        )
    )
    peak = matmul_peaks()["float32"]
    print(f"preset {args.preset}: T={frames}, input {size}x{size} cropped from {stored}x{stored}, "
          f"{num_classes} classes; TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs")

    directory = tempfile.mkdtemp(prefix="export_speed_")
    try:
        start = time.perf_counter()
        path = export.export_model(
            model,
            os.path.join(directory, "1"),
            num_frames=frames,
            image_size=size,
            stored_size=stored,
            clips_per_video=args.clips,
            class_names=[f"class_{index}" for index in range(num_classes)],
        )
        export_seconds = time.perf_counter() - start
        start = time.perf_counter()
        loaded = tf.saved_model.load(path)
        load_seconds = time.perf_counter() - start
        serve = loaded.signatures["serving_default"]
        whole_video = loaded.signatures["whole_video"]

        forward = tf.function(lambda x: model(x, training=False))
        folded = fold_model_batch_norm(model)
        folded_forward = tf.function(lambda x: folded(x, training=False))
        stored_tensor = tf.constant(stored_clip)
        full_hd = tf.constant(rng.integers(0, 256, (1, frames, 1080, 1920, 3), dtype=np.uint8))
        video = tf.constant(rng.integers(0, 256, (60, stored, stored, 3), dtype=np.uint8))
        figures = interleaved_median_seconds(
            {
                "in-memory, eager": lambda: model(crop, training=False),
                "in-memory, tf.function": lambda: forward(crop),
                "in-memory BN-folded, tf.function": lambda: folded_forward(crop),
                f"SavedModel serving_default ({stored}x{stored})": lambda: serve(video=stored_tensor),
                "SavedModel serving_default (1080x1920)": lambda: serve(video=full_hd),
                f"SavedModel whole_video (60 frames, K={args.clips})": lambda: whole_video(video=video),
            },
            args.iterations,
        )
        difference = np.abs(
            serve(video=stored_tensor)["probabilities"].numpy()
            - tf.nn.softmax(model(crop, training=False)["logits"]).numpy()
        ).max()
        size_mb = sum(
            os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names
        ) / 1e6
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    print(f"export {export_seconds:.1f} s, reload {load_seconds:.1f} s, SavedModel {size_mb:.1f} MB; "
          f"max |probability difference| reloaded vs in-memory: {difference:.1e}")
    print("seconds per call (batch 1):")
    for name, seconds in figures.items():
        print(f"  {name:48s} {seconds * 1000:9.1f} ms")
    reloaded = figures[f"SavedModel serving_default ({stored}x{stored})"]
    for name in (
        "in-memory, tf.function",
        "in-memory BN-folded, tf.function",
        f"SavedModel serving_default ({stored}x{stored})",
    ):
        rate = gflop / figures[name]
        print(f"  {name}: {rate:.0f} GFLOP/s = {rate / peak:.2f} of the float32 matmul peak ({peak:.0f})")
    print(f"{load_average()}")
    print(
        "ratio reloaded / in-memory BN-folded tf.function (same computation): "
        f"{reloaded / figures['in-memory BN-folded, tf.function']:.2f}"
    )
    print(f"ratio reloaded / in-memory tf.function: {reloaded / figures['in-memory, tf.function']:.2f}")
    print(f"ratio reloaded / in-memory eager:       {reloaded / figures['in-memory, eager']:.2f}")


if __name__ == "__main__":
    main()
