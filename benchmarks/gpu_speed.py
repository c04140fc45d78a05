"""Clips per second of Glimpse Clouds on Keras' JAX backend, without TensorFlow.

Runs where only jax, keras and numpy are installed (the project's GPU
machine has no TensorFlow): the model is fed device arrays, not tf.data, and
the steps timed are the model's own `predict_step` / `train_step` (the JAX
ones of `glimpse_keras.backends`), jitted as `fit` jits them (state buffers
donated).

Measured, most important first, each written as one JSON line as soon as it
is done (to `--output` or `$OUT`, file `gpu_speed.jsonl`) and printed:

1. the bf16 (and float32) matrix-product peak of the device, same run;
2. mixed_bfloat16, batch 32: inference, stage-2 training step (glimpse
   model on the frozen backbone), stage-1 training step (global model +
   pose head, backbone trained);
3. the backbone alone and the glimpse part alone (everything after the
   backbone: glimpses, memory, workers, heads) at batch 8, float32 then
   mixed_bfloat16;
4. the same steps in float32 at batch 32, then both policies at batch 8;
5. inference at batch 1, and inference of the BatchNorm-folded model
   (what evaluation and export run).

With `--data-parallel`, right after item 2: data-parallel scaling of the
stage-2 and stage-1 training steps, mixed_bfloat16, under a
`keras.distribution.DataParallel` (what `train.py --strategy data_parallel`
uses): the step on 1 device, then on all N local devices with N times the
global batch (the same batch per device, `--per-device-batch`, default the
first batch size), the batch split over the devices; each record gives
clips/s on 1 and N devices and the scaling efficiency (clips/s on N divided
by N x clips/s on 1), with the 1-minute load average before and after (on a
shared machine, figures measured under load are only ratios within the run).
The FLOPs of a data-parallel step are those of one device's program.

Every figure has its compile time apart (`lower` + `compile`, first call
excluded from the timing), milliseconds per step (median and best of the
timed calls), clips/s (batch / median), the XLA cost-analysis FLOPs of the
compiled step and the achieved fraction of the bf16 peak. Each measurement
is bounded by `--limit` seconds (a data-parallel record, two measurements,
by twice that) and the run by `--budget` seconds (what is left is reported
as skipped).

Levers: `--scan-core` runs the glimpse core's frame loop as one scanned loop
(`benchmarks/core_scan.py`, same outputs) instead of the model's unrolled
loop (XLA's cost analysis counts a loop body once, so the FLOPs and peak
fractions of scanned runs are underestimates: take them from an unrolled
run); XLA flags through the `XLA_FLAGS` environment variable (recorded in
the setup line).

Usage:
    KERAS_BACKEND=jax python benchmarks/gpu_speed.py [--output DIR] [--scan-core] [--data-parallel]
    KERAS_BACKEND=jax python benchmarks/gpu_speed.py --tiny    # CPU smoke run
    XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax \
        python benchmarks/gpu_speed.py --tiny --data-parallel --only data_parallel    # 2 CPU devices
"""

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (ROOT, os.path.join(ROOT, "benchmarks")):
    if path not in sys.path:
        sys.path.insert(0, path)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from core_scan import scanned_core_call  # noqa: E402
from glimpse_keras.models.folding import fold_model_batch_norm  # noqa: E402
from glimpse_keras.models.presets import build_model_from_preset  # noqa: E402

FULL = {"preset": "resnet50", "frames": 8, "size": 224, "classes": 60, "batches": (32, 8), "parts_batch": 8,
        "matmul": 8192, "repeats": 10, "limit": 240, "budget": 540}
TINY = {"preset": "tiny", "frames": 4, "size": 64, "classes": 10, "batches": (4, 2), "parts_batch": 2,
        "matmul": 1024, "repeats": 3, "limit": 120, "budget": 540}
POLICIES = ("mixed_bfloat16", "float32")


class MeasurementTimeout(Exception):
    """A measurement ran past `--limit` seconds."""


def _alarm(signum, frame):
    raise MeasurementTimeout()


# === Timing ===


def block(tree):
    jax.tree_util.tree_map(lambda value: value.block_until_ready() if hasattr(value, "block_until_ready") else value,
                           tree)
    return tree


def compile_function(function, *arguments, donate=False):
    """Compiles `function` for `arguments`; returns (executable, seconds, flops)."""
    start = time.perf_counter()
    jitted = jax.jit(function, donate_argnums=0 if donate else ())
    compiled = jitted.lower(*arguments).compile()
    seconds = time.perf_counter() - start
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    flops = float((analysis or {}).get("flops", 0.0)) or None
    return compiled, seconds, flops


def time_calls(call, repeats):
    """Milliseconds of `repeats` calls of `call()` after one warm-up call."""
    block(call())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(call())
        times.append(1000.0 * (time.perf_counter() - start))
    return times


def summary(times_ms, batch, compile_s, flops, peak):
    median = statistics.median(times_ms)
    result = {
        "batch": batch,
        "step_ms_median": round(median, 3),
        "step_ms_best": round(min(times_ms), 3),
        "clips_per_s": round(batch / (median / 1000.0), 2),
        "compile_s": round(compile_s, 2),
        "gflop_per_step": None if flops is None else round(flops / 1e9, 2),
    }
    if flops and peak:
        achieved = flops / (median / 1000.0)
        result["tflop_per_s"] = round(achieved / 1e12, 3)
        result["fraction_of_bf16_peak"] = round(achieved / peak, 4)
    return result


# === What is measured ===


def matmul_peak(size, dtype, repeats):
    """FLOP/s of a square `size` x `size` matrix product in `dtype`."""
    keys = jax.random.split(jax.random.key(0), 2)
    a = jax.random.normal(keys[0], (size, size), dtype)
    b = jax.random.normal(keys[1], (size, size), dtype)
    compiled, compile_s, _ = compile_function(lambda x, y: x @ y, a, b)
    times = time_calls(lambda: compiled(a, b), max(repeats, 10))
    flops = 2.0 * size ** 3
    return {"dtype": dtype, "size": size, "tflop_per_s": round(flops / (min(times) / 1000.0) / 1e12, 3),
            "compile_s": round(compile_s, 2)}, flops / (min(times) / 1000.0)


def make_batch(settings, batch, seed=0):
    rng = np.random.default_rng(seed)
    frames, size = settings["frames"], settings["size"]
    inputs = {"video": jnp.asarray(rng.integers(0, 256, (batch, frames, size, size, 3), dtype=np.uint8))}
    targets = {
        "label": jnp.asarray(rng.integers(0, settings["classes"], batch).astype("int32")),
        "pose": jnp.asarray(rng.uniform(-0.8, 0.8, (batch, frames, 2, 25, 2)).astype("float32")),
        "pose_mask": jnp.asarray(np.ones((batch, frames, 2, 25), "float32")),
    }
    return inputs, targets


def scan_core(model):
    """Makes `model`'s glimpse core run its frames as one scanned loop."""
    core = getattr(model, "core", None)
    if core is not None:
        core.call = lambda features, context, training=None: scanned_core_call(core, features, context)
    return model


def build(settings, policy, variant, freeze_backbone, distribution=None):
    """A built (and compiled, with Adam) model under `policy`, random weights,
    its variables placed by `distribution` (a Keras `DataParallel`) when given.

    (Not `keras.utils.set_random_seed`: it imports TensorFlow when present.)
    """
    keras.mixed_precision.set_global_policy(policy)
    scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
    try:
        with scope:
            model = build_model_from_preset(
                settings["preset"], num_classes=settings["classes"], variant=variant, freeze_backbone=freeze_backbone
            )
            model(np.zeros((1, settings["frames"], settings["size"], settings["size"], 3), "uint8"))
            model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=True)
            model.optimizer.build(model.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def values(variables):
    return [variable.value for variable in variables]


def measure_inference(model, settings, batch, peak):
    inputs, _ = make_batch(settings, batch)
    state = (values(model.trainable_variables), values(model.non_trainable_variables))
    compiled, compile_s, flops = compile_function(model.predict_step, state, inputs)
    times = time_calls(lambda: compiled(state, inputs), settings["repeats"])
    return summary(times, batch, compile_s, flops, peak)


def compile_train_step(model, settings, batch, data_sharding=None):
    """The model's jitted `train_step` on a fixed batch, as `step()` (which
    returns the logs), with its compile seconds and FLOPs; the batch is
    placed with `data_sharding` when given."""
    data = make_batch(settings, batch)
    if data_sharding is not None:
        data = jax.device_put(data, data_sharding)
    state = (
        values(model.trainable_variables),
        values(model.non_trainable_variables),
        values(model.optimizer.variables),
        values(model.metrics_variables),
    )
    # Donated like `fit` does: the old state's buffers hold the new state.
    state = jax.tree_util.tree_map(jnp.copy, state)
    compiled, compile_s, flops = compile_function(model.train_step, state, data, donate=True)
    holder = {"state": state}

    def step():
        logs, holder["state"] = compiled(holder["state"], data)
        return logs

    return step, compile_s, flops


def measure_train_step(model, settings, batch, peak):
    step, compile_s, flops = compile_train_step(model, settings, batch)
    times = time_calls(step, settings["repeats"])
    result = summary(times, batch, compile_s, flops, peak)
    result["loss_after"] = float(step()["loss"])
    return result


def stateless(model, method):
    """`method(*arguments)` as a function of the values of `model.variables`."""

    def function(variable_values, *arguments):
        with keras.StatelessScope(state_mapping=list(zip(model.variables, variable_values))):
            return method(*arguments)

    return function


def measure_parts(model, settings, peak):
    """Backbone alone and everything after it, in inference mode."""
    batch = settings["parts_batch"]
    inputs, _ = make_batch(settings, batch)
    variable_values = values(model.variables)
    backbone = stateless(model, lambda video: model.backbone_features(video, training=False))
    compiled, backbone_compile, backbone_flops = compile_function(backbone, variable_values, inputs["video"])
    backbone_times = time_calls(lambda: compiled(variable_values, inputs["video"]), settings["repeats"])
    features = compiled(variable_values, inputs["video"])
    glimpse = stateless(model, lambda res4, res5: model.call_on_features(res4, res5, training=False))
    compiled, glimpse_compile, glimpse_flops = compile_function(
        glimpse, variable_values, features["res4"], features["res5"]
    )
    glimpse_times = time_calls(
        lambda: compiled(variable_values, features["res4"], features["res5"]), settings["repeats"]
    )
    return {
        "backbone": summary(backbone_times, batch, backbone_compile, backbone_flops, peak),
        "glimpse_part": summary(glimpse_times, batch, glimpse_compile, glimpse_flops, peak),
        "glimpse_over_backbone": round(statistics.median(glimpse_times) / statistics.median(backbone_times), 4),
    }


def measure_data_parallel(settings, kind, per_device_batch, peak, policy="mixed_bfloat16"):
    """The training step `kind` on 1 device and on every local device, with
    `per_device_batch` clips per device, under a Keras `DataParallel`.

    Both steps are compiled first, then timed in turn within every round, so
    that drift and load on a shared machine touch both alike.

    Returns:
        dict with "one_device" and "all_devices" (`summary` records with
        "devices"; "all_devices" only with several devices),
        "per_device_batch", "scaling_efficiency" (None with a single device)
        and the load average before and after.
    """
    from jax.sharding import NamedSharding, PartitionSpec

    variant, freeze = ("global_pose", False) if kind == "stage1_step" else ("glimpse_clouds", True)
    devices = jax.local_devices()
    result = {"per_device_batch": per_device_batch, "devices": len(devices), "device_kind": devices[0].device_kind,
              "load_before": round(os.getloadavg()[0], 2)}
    candidates = {"one_device": devices[:1], "all_devices": devices} if len(devices) > 1 else {"one_device": devices}
    steps = {}
    for label, chosen in candidates.items():
        distribution = keras.distribution.DataParallel(devices=[f"{d.platform}:{d.id}" for d in chosen])
        model = build(settings, policy, variant, freeze, distribution)
        sharding = NamedSharding(distribution.device_mesh.backend_mesh, PartitionSpec(distribution.batch_dim_name))
        steps[label] = compile_train_step(model, settings, per_device_batch * len(chosen), sharding)
    for step, _, _ in steps.values():
        block(step())
    times = {label: [] for label in steps}
    for _ in range(settings["repeats"]):
        for label, (step, _, _) in steps.items():
            start = time.perf_counter()
            block(step())
            times[label].append(1000.0 * (time.perf_counter() - start))
    for label, (step, compile_s, flops) in steps.items():
        batch = per_device_batch * len(candidates[label])
        result[label] = dict(summary(times[label], batch, compile_s, flops, peak), devices=len(candidates[label]),
                             loss_after=float(step()["loss"]))
    result["load_after"] = round(os.getloadavg()[0], 2)
    one, every = result["one_device"], result.get("all_devices")
    result["scaling_efficiency"] = (
        round(every["clips_per_s"] / (every["devices"] * one["clips_per_s"]), 3) if every else None
    )
    return result


def plan(settings, data_parallel=False):
    """(name, policy, kind, batch) in order of importance."""
    big, small = settings["batches"]
    order = [("matmul_peak", None, "peak", None)]
    order += [(f"{kind}", "mixed_bfloat16", kind, big) for kind in ("inference", "stage2_step", "stage1_step")]
    if data_parallel:
        order += [("data_parallel", "mixed_bfloat16", f"data_parallel_{kind}", None)
                  for kind in ("stage2_step", "stage1_step")]
    order += [("parts", "float32", "parts", None), ("parts", "mixed_bfloat16", "parts", None)]
    order += [(f"{kind}", "float32", kind, big) for kind in ("inference", "stage2_step", "stage1_step")]
    for policy in POLICIES:
        order += [(f"{kind}", policy, kind, small) for kind in ("inference", "stage2_step", "stage1_step")]
    order += [("inference", policy, "inference", 1) for policy in POLICIES]
    order += [("inference_bn_folded", policy, "inference_folded", big) for policy in POLICIES]
    return order


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model and sizes: a CPU smoke run")
    parser.add_argument("--output", default=os.environ.get("OUT"), help="directory of gpu_speed.jsonl (default $OUT)")
    parser.add_argument("--limit", type=float, help="seconds per measurement (default 240; tiny 120)")
    parser.add_argument("--budget", type=float, help="seconds for the whole run (default 540)")
    parser.add_argument("--only", help="comma-separated measurement names to run (default: all)")
    parser.add_argument("--scan-core", action="store_true",
                        help="run the glimpse core's frames as one scanned loop (benchmarks/core_scan.py)")
    parser.add_argument("--data-parallel", action="store_true",
                        help="also time the stage-1 and stage-2 steps on 1 device and on every local device "
                             "(keras.distribution.DataParallel, the same batch per device)")
    parser.add_argument("--per-device-batch", type=int,
                        help="clips per device of --data-parallel (default: the first batch size, 32; tiny 4)")
    args = parser.parse_args(argv)
    if keras.backend.backend() != "jax":
        print(f"error: this benchmark runs on JAX; Keras runs on {keras.backend.backend()!r} "
              "(set KERAS_BACKEND=jax)", file=sys.stderr)
        return 2
    settings = dict(TINY if args.tiny else FULL)
    limit = args.limit or settings["limit"]
    budget = args.budget or settings["budget"]
    only = set(args.only.split(",")) if args.only else None
    path = None
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        path = os.path.join(args.output, "gpu_speed.jsonl")
        open(path, "w").close()

    def emit(record):
        line = json.dumps(record)
        print(line, flush=True)
        if path:
            with open(path, "a") as handle:
                handle.write(line + "\n")

    started = time.perf_counter()
    device = jax.devices()[0]
    emit({"name": "setup", "device": str(device), "platform": device.platform, "jax": jax.__version__,
          "devices": jax.local_device_count(),
          "keras": keras.__version__, "tensorflow_imported": "tensorflow" in sys.modules,
          "xla_flags": os.environ.get("XLA_FLAGS", ""), "scan_core": args.scan_core,
          **{key: settings[key] for key in ("preset", "frames", "size", "classes")}})
    signal.signal(signal.SIGALRM, _alarm)
    models = {}
    peak = None

    def model_for(policy, kind):
        variant, freeze = ("global_pose", False) if kind == "stage1_step" else ("glimpse_clouds", kind == "stage2_step")
        if kind in ("inference", "parts", "inference_folded"):
            freeze = True  # the same weights and graph in inference mode; shares the stage-2 model
        key = (policy, variant, freeze)
        if key not in models:
            models[key] = build(settings, policy, variant, freeze)
            if args.scan_core:
                scan_core(models[key])
        return models[key]

    per_device_batch = args.per_device_batch or settings["batches"][0]
    for name, policy, kind, batch in plan(settings, args.data_parallel):
        if only and name not in only and kind not in only:
            continue
        record = {"name": name, "policy": policy}
        left = budget - (time.perf_counter() - started)
        if left < 5:
            emit(dict(record, batch=batch, skipped=f"run budget of {budget:.0f} s spent"))
            continue
        # A data-parallel record is two measurements (1 device, all devices).
        allowed = max(1, int(min(limit * (2 if kind.startswith("data_parallel_") else 1), left)))
        signal.alarm(allowed)
        try:
            if kind == "peak":
                for dtype in ("bfloat16", "float32"):
                    result, flops_per_s = matmul_peak(settings["matmul"], dtype, settings["repeats"])
                    if dtype == "bfloat16":
                        peak = flops_per_s
                    emit(dict(record, **result))
                continue
            if kind.startswith("data_parallel_"):
                step = kind[len("data_parallel_"):]
                record.update(step=step, **measure_data_parallel(settings, step, per_device_batch, peak, policy))
                emit(record)
                continue
            model = model_for(policy, kind)
            if kind == "inference":
                record.update(measure_inference(model, settings, batch, peak))
            elif kind == "inference_folded":
                folded = fold_model_batch_norm(model)
                record.update(measure_inference(scan_core(folded) if args.scan_core else folded, settings, batch, peak))
            elif kind == "parts":
                record.update(measure_parts(model, settings, peak))
            else:
                record.update(measure_train_step(model, settings, batch, peak))
        except MeasurementTimeout:
            record.update(batch=batch, error=f"timed out after {allowed} s (model build included)")
        except Exception as error:  # a failed measurement must not end the run
            record.update(batch=batch, error=f"{type(error).__name__}: {str(error)[:500]}")
        finally:
            signal.alarm(0)
        emit(record)
    emit({"name": "done", "seconds": round(time.perf_counter() - started, 1),
          "tensorflow_imported": "tensorflow" in sys.modules})
    return 0


if __name__ == "__main__":
    sys.exit(main())
