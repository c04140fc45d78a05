"""Live recognition speed: the frame rate `glimpse-predict --stream` sustains and its latency.

For each model (the demo model: configs/demo.yaml, the tiny preset at 8 x
128 x 128, K = 3; the ResNet-50 preset: configs/ntu_xsub.yaml, 8 x 224 x 224,
K = 5) and each dtype policy (float32, mixed_bfloat16), a run folder with
seeded random weights is written and loaded with `Classifier.from_run`
(BatchNorm folded, as evaluation and export run it; speed does not depend
on the weights). A synthetic 640 x 360, 30 fps MPEG-4 file of `--seconds`
seconds is then streamed with the model's default window (the training
videos' typical length) and stride (half a window), three times:

1. `rate=0`: the file as fast as the model consumes it, every stride
   classified; frames read / wall seconds is the **sustained frame rate**
   (decoding, resizing and one classification per stride, on this CPU);
2. in real time at 0.5 x that rate (the file's clock sped up or slowed down
   to it; `--factors`): whether it keeps up, frames dropped, and the
   **latency** from the arrival of a window's last frame to its label (mean,
   median, max);
3. in real time at 2 x that rate: the frames dropped, the windows skipped
   and the reader's lag that the stream reports when it cannot keep up.

With `rate=0` the reader waits while the buffer holds a window the model has
not taken yet, so decoding and classification overlap only partly: the
sustained rate is a lower bound of what a live source could deliver.

The machine is shared with other jobs and its speed drifts, so the load
average is printed with every figure and the 4096^2 matmul peak is measured
in the same run; compare figures within one run.

Usage:
    python benchmarks/streaming_speed.py                       # both models, both policies, ~20 min under load
    python benchmarks/streaming_speed.py --models demo --seconds 10
"""

import argparse
import os
import shutil
import tempfile

import common  # noqa: F401,E402  (sets sys.path and TF_CPP_MIN_LOG_LEVEL)
from common import load_average  # noqa: E402
from common import matmul_peaks  # noqa: E402
from common import print_peaks  # noqa: E402

import av  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from glimpse_keras import Classifier  # noqa: E402
from glimpse_keras import config as config_lib  # noqa: E402
from glimpse_keras import runs  # noqa: E402
from glimpse_keras.experiment import Experiment  # noqa: E402

MODELS = {"demo": "demo.yaml", "resnet50": "ntu_xsub.yaml"}
POLICIES = ("float32", "mixed_bfloat16")
SOURCE_FPS = 30
SOURCE_SIZE = (640, 360)


def write_source(path, seconds):
    """A 640 x 360, 30 fps MPEG-4 AVI of a moving gradient and bar (decodes like a real video)."""
    width, height = SOURCE_SIZE
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 120, height, dtype=np.float32)[:, None, None]
    with av.open(path, "w") as container:
        stream = container.add_stream("mpeg4", rate=SOURCE_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"qscale": "3"}
        for index in range(int(seconds * SOURCE_FPS)):
            image = (x + y + 3 * index) % 256 * np.ones((1, 1, 3), np.float32)
            column = (11 * index) % (width - 40)
            image[:, column: column + 40] = (20, 200, 60)
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_run(folder, config_name, policy):
    """A run folder (config.yaml + final weights of the last stage) with seeded random weights."""
    config = config_lib.load_config(os.path.join(common.ROOT, "configs", config_name))
    stage = config.train.stages[-1]
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    try:
        model = Experiment(config).build_stage_model(stage, tf.distribute.get_strategy(), compile_model=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    os.makedirs(os.path.join(folder, stage.name))
    model.save_weights(os.path.join(folder, stage.name, runs.FINAL))
    config_lib.save_config(config, os.path.join(folder, "config.yaml"))
    return folder


def run_stream(classifier, source, rate):
    """Streams `source` at `rate` (0: lockstep); returns its `StreamStats`."""
    stream = classifier.stream(source, rate=rate)
    for _ in stream:
        pass
    return stream.stats


def describe(stats):
    latencies = np.asarray(stats.latencies)
    return (f"{stats.frames_per_second:6.1f} frames/s read, {stats.windows} windows, "
            f"dropped {stats.frames_dropped}, skipped {stats.windows_skipped}, reader lag {stats.reader_lag:.2f} s, "
            f"latency mean {latencies.mean():.3f} / median {np.median(latencies):.3f} / max {latencies.max():.3f} s; "
            f"{'kept up' if stats.kept_up else 'could NOT keep up'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="demo,resnet50", help=f"comma-separated, of {sorted(MODELS)}")
    parser.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated, of {POLICIES}")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the streamed file")
    parser.add_argument("--factors", default="0.5,2", help="real-time runs, as multiples of the sustained rate")
    args = parser.parse_args(argv)

    print(f"{os.cpu_count()} CPUs, TF {tf.__version__}, Keras {keras.__version__}; shared machine, {load_average()}")
    print_peaks(matmul_peaks())
    directory = tempfile.mkdtemp(prefix="streaming_speed_")
    try:
        source = os.path.join(directory, "source.avi")
        write_source(source, args.seconds)
        print(f"source: {args.seconds:g} s of {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} MPEG-4 at {SOURCE_FPS} fps")
        for name in args.models.split(","):
            for policy in args.policies.split(","):
                run = write_run(os.path.join(directory, f"{name}_{policy}"), MODELS[name], policy)
                classifier = Classifier.from_run(run, precision=policy)
                stream = classifier.stream(source, rate=0)  # only to read the window the model uses
                stream.close()
                print(f"\n{name} ({MODELS[name]}), {policy}, BN folded: T={classifier.num_frames}, "
                      f"{classifier.image_size}x{classifier.image_size} from {classifier.frame_side}, "
                      f"K={classifier.clips_per_video}; window {stream.window_seconds:g} s "
                      f"({stream.window_frames} frames), stride {stream.stride_seconds:g} s "
                      f"({stream.stride_frames} frames); {load_average()}")
                sustained = run_stream(classifier, source, 0)
                fps = sustained.frames_per_second
                print(f"  sustained (rate 0, every stride classified): {fps:.1f} frames/s "
                      f"= {fps / SOURCE_FPS:.2f} x a {SOURCE_FPS} fps source; {load_average()}")
                for factor in (float(value) for value in args.factors.split(",")):
                    rate = factor * fps / SOURCE_FPS
                    stats = run_stream(classifier, source, rate)
                    print(f"  real time at {factor:g} x sustained ({factor * fps:.1f} frames/s): {describe(stats)}; "
                          f"{load_average()}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
