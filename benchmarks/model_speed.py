"""Speed of the Glimpse Clouds model on this machine, against its matmul peak.

Prints, in one run (timings drift on shared machines, so only ratios within one
run are meaningful):

* the 4096 x 4096 matmul peak in float32 and bfloat16 (GFLOP/s);
* the backbone's analytic convolution FLOPs per clip (counted from the traced
  graph: 2 * output elements * kernel size * input channels for every
  convolution and matmul);
* per policy (float32, mixed_bfloat16): seconds per clip of the full model's
  forward pass, of the backbone alone and of the glimpse/memory/worker core
  alone (their ratio), of a stage-1 train step ("global_pose" variant,
  trainable backbone) and of a stage-2 train step ("glimpse_clouds" variant,
  frozen backbone), with achieved GFLOP/s and the fraction of the peak.

Usage:
    python benchmarks/model_speed.py                 # authors' configuration
    python benchmarks/model_speed.py --preset tiny   # seconds, for a smoke run
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from glimpse_keras.models.glimpse_clouds import normalise_video  # noqa: E402
from glimpse_keras.models.presets import MODEL_PRESETS  # noqa: E402
from glimpse_keras.models.presets import build_model_from_preset  # noqa: E402
from glimpse_keras.models.presets import preset_video_shape  # noqa: E402

_FLOP_OPS = ("Conv2D", "Conv3D", "MatMul", "BatchMatMulV2", "BatchMatMulV3")


def time_call(fn, iterations, warmup=1):
    """Fastest wall seconds of `iterations` calls of `fn()` after `warmup` calls.

    The minimum is the least noisy estimate on a machine shared with other jobs.
    """
    for _ in range(warmup):
        _block(fn())
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - start)
    return float(np.min(times))


def _block(result):
    """Forces the computation to finish (fetches one value of the result)."""
    leaves = tf.nest.flatten(result)
    if leaves:
        np.asarray(leaves[0])


def matmul_peak(dtype, size=4096, iterations=5):
    """GFLOP/s of a size x size matmul in `dtype`."""
    a = tf.random.normal((size, size), dtype="float32")
    a = tf.cast(a, dtype)
    b = tf.cast(tf.random.normal((size, size), dtype="float32"), dtype)
    matmul = tf.function(lambda: tf.matmul(a, b))
    seconds = time_call(matmul, iterations)
    return 2.0 * size**3 / seconds / 1e9


def graph_gflops(concrete_function):
    """Analytic GFLOP of the convolutions and matmuls of a traced function."""
    total = 0
    for op in concrete_function.graph.get_operations():
        if op.type not in _FLOP_OPS:
            continue
        output_elements = np.prod(op.outputs[0].shape.as_list())
        if op.type.startswith("Conv"):
            kernel = op.inputs[1].shape.as_list()
            total += 2 * output_elements * np.prod(kernel[:-1])
        else:
            a_shape = op.inputs[0].shape.as_list()
            transpose_a = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
            inner = a_shape[-2] if transpose_a else a_shape[-1]
            total += 2 * output_elements * inner
    return total / 1e9


def random_batch(batch_size, video_shape, num_classes, seed=0):
    """A uint8 clip batch with labels and a full-mask pose target."""
    rng = np.random.default_rng(seed)
    frames = video_shape[0]
    video = tf.constant(rng.integers(0, 256, (batch_size,) + video_shape, dtype=np.uint8))
    targets = {
        "label": tf.constant(rng.integers(0, num_classes, batch_size), tf.int32),
        "pose": tf.constant(rng.uniform(-1, 1, (batch_size, frames, 2, 25, 2)), tf.float32),
        "pose_mask": tf.ones((batch_size, frames, 2, 25), tf.float32),
    }
    return {"video": video}, targets


def train_step_seconds(model, inputs, targets, iterations):
    """Median seconds of one optimiser step of `model` on one batch."""
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
    return time_call(lambda: model.train_on_batch(inputs, targets), iterations)


def benchmark_policy(policy, preset, args, backbone_gflop):
    """Measures one dtype policy; returns dict name -> seconds per clip."""
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    video_shape = preset_video_shape(preset)
    batch = args.batch_size
    inputs, targets = random_batch(batch, video_shape, MODEL_PRESETS[preset]["kwargs"]["num_classes"])
    results = {}

    model = build_model_from_preset(preset, variant="glimpse_clouds")
    forward = tf.function(lambda x: model(x, training=False))
    results["forward"] = time_call(lambda: forward(inputs), args.iterations) / batch

    normalised = tf.cast(normalise_video(inputs["video"]), model.backbone.compute_dtype)
    backbone_forward = tf.function(lambda x: model.backbone(x, training=False))
    results["backbone forward"] = time_call(lambda: backbone_forward(normalised), args.iterations) / batch
    features = backbone_forward(normalised)
    context = tf.reduce_mean(features["res4"], axis=(2, 3))
    core_forward = tf.function(lambda z, c: model.core(z, c, training=False))
    results["core forward"] = (
        time_call(lambda: core_forward(features["res5"], context), args.iterations) / batch
    )

    stage1 = build_model_from_preset(preset, variant="global_pose")
    results["stage-1 train step"] = train_step_seconds(stage1, inputs, targets, args.iterations) / batch

    stage2_batch = args.stage2_batch_size
    inputs2, targets2 = random_batch(stage2_batch, video_shape, 60, seed=1)
    stage2 = build_model_from_preset(preset, variant="glimpse_clouds", freeze_backbone=True)
    results["stage-2 train step"] = (
        train_step_seconds(stage2, inputs2, targets2, args.iterations) / stage2_batch
    )
    full = build_model_from_preset(preset, variant="glimpse_clouds")
    results["end-to-end train step"] = train_step_seconds(full, inputs, targets, args.iterations) / batch
    keras.mixed_precision.set_global_policy("float32")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(MODEL_PRESETS), default="resnet50")
    parser.add_argument("--batch-size", type=int, default=2, help="clips per forward/stage-1 step")
    parser.add_argument("--stage2-batch-size", type=int, default=4, help="clips per stage-2 step")
    parser.add_argument("--iterations", type=int, default=3, help="timed calls per figure (fastest)")
    parser.add_argument("--policies", default="float32,mixed_bfloat16")
    args = parser.parse_args(argv)

    video_shape = preset_video_shape(args.preset)
    kwargs = MODEL_PRESETS[args.preset]["kwargs"]
    print(
        f"preset {args.preset}: clip {video_shape}, backbone {kwargs['backbone']}, "
        f"G={kwargs['num_glimpses']} C={kwargs['num_workers']}, units zoomer {kwargs['zoomer_units']} "
        f"worker {kwargs['worker_units']} where {kwargs['where_units']}; TF {tf.__version__}, "
        f"Keras {keras.__version__}, {os.cpu_count()} CPUs"
    )
    peaks = {"float32": matmul_peak("float32"), "mixed_bfloat16": matmul_peak("bfloat16")}
    print(f"4096^2 matmul peak: float32 {peaks['float32']:.0f} GFLOP/s, bfloat16 {peaks['mixed_bfloat16']:.0f} GFLOP/s")

    probe = build_model_from_preset(args.preset)
    spec = tf.TensorSpec((1,) + video_shape, tf.float32)
    concrete = tf.function(lambda x: probe.backbone(x, training=False)).get_concrete_function(spec)
    backbone_gflop = graph_gflops(concrete)
    print(f"backbone conv FLOPs: {backbone_gflop:.2f} GFLOP per clip forward (~{3 * backbone_gflop:.0f} per train step)")

    for policy in args.policies.split(","):
        results = benchmark_policy(policy, args.preset, args, backbone_gflop)
        peak = peaks.get(policy, peaks["float32"])
        print(f"\n[{policy}] seconds per clip (batch {args.batch_size}; stage 2 batch {args.stage2_batch_size})")
        for name, seconds in results.items():
            line = f"  {name:24s} {seconds:8.3f} s"
            if name == "backbone forward":
                rate = backbone_gflop / seconds
                line += f"   {rate:7.1f} GFLOP/s = {rate / peak:.2f} of peak"
            if name in ("stage-1 train step", "end-to-end train step"):
                rate = 3 * backbone_gflop / seconds
                line += f"   {rate:7.1f} GFLOP/s (3x forward) = {rate / peak:.2f} of peak"
            print(line)
        print(
            f"  core / backbone forward time: {results['core forward'] / results['backbone forward']:.3f}; "
            f"stage-2 step / forward: {results['stage-2 train step'] / results['forward']:.2f}; "
            f"stage-1 step / forward: {results['stage-1 train step'] / results['forward']:.2f}"
        )


if __name__ == "__main__":
    main()
