"""Peak resident memory of inference and training, one subprocess per scenario.

Each scenario runs in a fresh Python process (so peaks do not mix) that
imports TensorFlow, builds the model, runs the warm-up (tracing) call and two
more calls, and reports its peak resident set size (`resource.getrusage`,
ru_maxrss) next to the resident size right after the imports (TensorFlow's
own share).

Scenarios are NAME-POLICY-bBATCH with NAME one of
  infer   forward pass, `training=False`
  stage1  train step of the "global_pose" variant (trainable backbone)
  stage2  train step of "glimpse_clouds" with the frozen backbone
  e2e     train step of "glimpse_clouds", backbone trained too
and POLICY f32 or bf16 (mixed_bfloat16).

Usage:
    python benchmarks/memory.py                       # default scenarios, ~4 min
    python benchmarks/memory.py --scenarios e2e-f32-b4 --preset resnet50
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

DEFAULT_SCENARIOS = "infer-f32-b1,infer-bf16-b1,stage2-f32-b4,stage2-bf16-b4,stage1-f32-b1,e2e-f32-b1"
POLICIES = {"f32": "float32", "bf16": "mixed_bfloat16"}
VARIANTS = {
    "infer": {},
    "stage1": {"variant": "global_pose"},
    "stage2": {"variant": "glimpse_clouds", "freeze_backbone": True},
    "e2e": {"variant": "glimpse_clouds"},
}


def parse_scenario(text):
    """`"stage2-f32-b4"` -> ("stage2", "float32", 4).

    Raises:
        ValueError: naming the scenario when it does not follow the pattern.
    """
    parts = text.split("-")
    if len(parts) != 3 or parts[0] not in VARIANTS or parts[1] not in POLICIES or not parts[2].startswith("b"):
        raise ValueError(
            f"scenario {text!r} must be NAME-POLICY-bBATCH with NAME in {sorted(VARIANTS)} "
            f"and POLICY in {sorted(POLICIES)}, e.g. stage2-f32-b4."
        )
    try:
        batch = int(parts[2][1:])
    except ValueError:
        raise ValueError(f"scenario {text!r}: batch {parts[2]!r} is not bINTEGER.") from None
    return parts[0], POLICIES[parts[1]], batch


def _resident_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def run_scenario(scenario, preset):
    """Runs one scenario in this process; returns a dict of figures."""
    name, policy, batch = parse_scenario(scenario)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    from glimpse_keras.models.presets import build_model_from_preset
    from glimpse_keras.models.presets import preset_video_shape

    after_imports = _resident_mb()
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = build_model_from_preset(preset, **VARIANTS[name])
    shape = preset_video_shape(preset)
    rng = np.random.default_rng(0)
    video = tf.constant(rng.integers(0, 256, (batch,) + shape, dtype=np.uint8))
    frames = shape[0]
    targets = {
        "label": tf.constant(rng.integers(0, model.num_classes, batch), tf.int32),
        "pose": tf.constant(rng.uniform(-1, 1, (batch, frames, 2, 25, 2)), tf.float32),
        "pose_mask": tf.ones((batch, frames, 2, 25), tf.float32),
    }
    if name == "infer":
        forward = tf.function(lambda x: model(x, training=False))
        run = lambda: forward(video)["logits"].numpy()  # noqa: E731
    else:
        model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
        run = lambda: model.train_on_batch({"video": video}, targets)  # noqa: E731
    start = time.perf_counter()
    for _ in range(3):
        run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return {
        "scenario": scenario,
        "peak_mb": peak,
        "after_imports_mb": after_imports,
        "seconds": time.perf_counter() - start,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS)
    parser.add_argument("--preset", default="resnet50")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(run_scenario(args.child, args.preset)), flush=True)
        return 0

    scenarios = args.scenarios.split(",")
    for scenario in scenarios:
        parse_scenario(scenario)  # fail before starting any child
    print(f"preset {args.preset}; peak resident memory per scenario (fresh process each)")
    print(f"  {'scenario':18s} {'peak RSS':>10s} {'after imports':>14s} {'model share':>12s}")
    for scenario in scenarios:
        child = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", scenario, "--preset", args.preset],
            capture_output=True,
            text=True,
        )
        lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
        if child.returncode != 0 or not lines:
            tail = (child.stderr or child.stdout).strip().splitlines()[-3:]
            print(f"  {scenario:18s} FAILED (exit {child.returncode}): {' | '.join(tail)}", flush=True)
            continue
        result = json.loads(lines[-1][len("RESULT "):])
        print(
            f"  {scenario:18s} {result['peak_mb'] / 1024:8.2f} GB {result['after_imports_mb'] / 1024:12.2f} GB "
            f"{(result['peak_mb'] - result['after_imports_mb']) / 1024:10.2f} GB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
