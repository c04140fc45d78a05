"""Forward speed of the inflated ResNet backbone against the machine's matmul peak.

Prints, for every (convolution implementation, dtype policy) pair: seconds per
clip (best and median of the timed repeats), analytic GFLOP per clip (2 x
multiply-adds of every convolution, counted from the layer shapes), achieved
GFLOP/s and its ratio to a square tf.matmul peak measured in the same run
(timings drift over minutes on shared machines, so only same-run ratios are
meaningful).

Usage:
    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/backbone_speed.py \
        [--preset resnet50] [--frames 8] [--size 224] [--batch 1] \
        [--implementations conv3d,frames] [--policies float32,mixed_bfloat16] \
        [--repeats 5] [--jit] [--fold-bn]
"""

import argparse
import os
import statistics

import common  # noqa: F401  (sets sys.path and TF_CPP_MIN_LOG_LEVEL)
from common import load_average  # noqa: E402
from common import matmul_peaks  # noqa: E402
from common import peak_for_policy  # noqa: E402
from common import timed  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from glimpse_keras.models.backbone import InflatedConv3D, build_backbone  # noqa: E402
from glimpse_keras.models.folding import fold_backbone_batch_norm  # noqa: E402


def conv_gflop_per_clip(backbone):
    """Analytic GFLOP of all convolutions for one clip (batch element).

    Args:
        backbone: InflatedResNet3D built with a fully known ``input_shape``.

    Returns:
        float, 2 * multiply-adds / 1e9 (BN, ReLU, pooling and adds excluded).
    """
    total = 0
    for layer in backbone.layers:
        if not isinstance(layer, InflatedConv3D):
            continue
        _, time_, height, width, out_channels = layer.output.shape
        kt, kh, kw = layer.kernel_size
        in_channels = layer.input.shape[-1]
        total += 2 * time_ * height * width * out_channels * kt * kh * kw * in_channels
    return total / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="resnet50")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--implementations", default="conv3d,frames")
    parser.add_argument("--policies", default="float32,mixed_bfloat16")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jit", action="store_true", help="XLA-compile the forward")
    parser.add_argument("--fold-bn", action="store_true",
                        help="also time the BN-folded copy (models.folding.fold_backbone_batch_norm)")
    args = parser.parse_args(argv)

    def peaks():
        return matmul_peaks(repeats=args.repeats)

    shape = (args.frames, args.size, args.size, 3)
    video = tf.constant(
        np.random.default_rng(0).normal(size=(args.batch,) + shape), tf.float32
    )
    print(
        f"preset={args.preset} clip={shape} batch={args.batch} jit={args.jit} "
        f"threads={os.cpu_count()} {load_average()}"
    )
    for implementation in args.implementations.split(","):
        for policy in args.policies.split(","):
            backbone = build_backbone(
                args.preset,
                input_shape=shape,
                conv_implementation=implementation,
                dtype=policy,
                output_endpoints=("res4", "res5"),
            )
            gflop = conv_gflop_per_clip(backbone)
            forward = tf.function(
                lambda x, model=backbone: model(x, training=False),
                jit_compile=args.jit,
            )
            candidates = {"": forward}
            if args.fold_bn:
                candidates[" BN folded"] = tf.function(
                    lambda x, model=fold_backbone_batch_norm(backbone): model(x, training=False),
                    jit_compile=args.jit,
                )
            # Peaks measured right before and after each model (best of the
            # two) so that load from other processes affects both alike.
            before = peaks()
            figures = {
                label: [s / args.batch for s in timed(lambda f=function: f(video), args.repeats, warmup=2)]
                for label, function in candidates.items()
            }
            after = peaks()
            peak = {key: max(before[key], after[key]) for key in before}
            peak_policy = peak_for_policy(peak, policy)
            for label, seconds in figures.items():
                best, median = min(seconds), statistics.median(seconds)
                rate = gflop / best
                print(
                    f"{implementation:7s} {policy + label:25s} {best:.3f} s/clip "
                    f"(median {median:.3f})  {gflop:.1f} GFLOP/clip  "
                    f"{rate:.0f} GFLOP/s = {rate / peak['float32']:.2f} x f32 matmul "
                    f"peak ({peak['float32']:.0f}), {rate / peak_policy:.2f} x "
                    f"{policy} peak ({peak_policy:.0f})  {load_average()}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
