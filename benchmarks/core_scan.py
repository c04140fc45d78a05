"""Lever for the glimpse core on JAX: the frame recurrence as one scanned loop.

`GlimpseCloudsCore.call` unrolls its T x G recurrence in Python, so XLA
compiles T copies of the per-frame work (G glimpse steps, the memory, the
workers). `scanned_core_call` runs the same layers with the frame loop as
`keras.ops.scan` (one compiled copy of a frame, the G glimpses still unrolled
inside it) and is checked against the core's own outputs before anything is
timed. Printed per variant (unrolled, scanned), for the forward pass and for
the stage-2 gradient (a loss on the worker states, differentiated with respect
to every core weight): compile seconds and milliseconds per call (median of
the timed calls), as JSON lines.

This is a measurement, not the model: the scanned call covers the default
configuration (glimpse_type "attention", aggregation "workers"), and the core
is unchanged until a GPU run shows the lever pays (benchmarks/README.md).

Usage:
    KERAS_BACKEND=jax python benchmarks/core_scan.py [--frames 8] [--batch 8] [--tiny]
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from glimpse_keras.layers import GlimpseCloudsCore  # noqa: E402


def scanned_core_call(core, features, context):
    """`core(features, context, training=False)` with the frames scanned.

    Args:
        core: a built `GlimpseCloudsCore` with glimpse_type "attention" and
            aggregation "workers".
        features: `(batch, T, h, w, channels)` res5 maps.
        context: `(batch, T, context_channels)`.

    Returns:
        the dict of `GlimpseCloudsCore.call`.
    """
    if core.glimpse_type != "attention" or core.aggregation != "workers":
        raise ValueError("the scanned prototype covers glimpse_type='attention', aggregation='workers' only")
    batch_size = ops.shape(features)[0]
    num_frames, channels = features.shape[1], features.shape[-1]
    context = ops.cast(context, features.dtype)
    worker_state = core.workers.get_initial_state(batch_size)[0]
    memory_state = core.memory.get_initial_state(batch_size, num_frames, channels)
    zoomer_state = ops.zeros((batch_size, core.zoomer_units), features.dtype)

    def frame(carry, inputs):
        zoomer_state, worker_state, memory_state = carry
        frame_features, frame_context, step = inputs
        projection = core.zoomer.project_inputs(ops.sum(worker_state, axis=1), start=channels)
        locations, raws, glimpses = [], [], []
        for _ in range(core.num_glimpses):
            zoomer_state, location, raw, fused, _ = core._glimpse_step(
                frame_features, frame_context, zoomer_state, projection
            )
            locations.append(location)
            raws.append(raw)
            glimpses.append(fused)
        glimpses = ops.stack(glimpses, axis=1)
        worker_state, states, assignments, memory_state = core._aggregate(
            glimpses, worker_state, list(memory_state), step
        )
        outputs = (states, ops.stack(locations, axis=1), ops.stack(raws, axis=1), assignments, glimpses)
        return (zoomer_state, worker_state, memory_state), outputs

    steps = ops.arange(num_frames, dtype="int32")
    sequence = (ops.moveaxis(features, 1, 0), ops.moveaxis(context, 1, 0), steps)
    _, outputs = ops.scan(frame, (zoomer_state, worker_state, memory_state), sequence)
    names = ("worker_states", "locations", "raw_locations", "assignments", "glimpse_features")
    return {name: ops.moveaxis(value, 0, 1) for name, value in zip(names, outputs)}


def stateless(core, call):
    def function(values, features, context):
        with keras.StatelessScope(state_mapping=list(zip(core.variables, values))):
            return call(features, context)

    return function


def loss_function(core, call):
    """Sum of the worker states against fixed weights: a stage-2-like loss."""
    forward = stateless(core, call)

    def loss(values, features, context):
        states = forward(values, features, context)["worker_states"]
        weights = ops.sin(ops.arange(states.shape[-1], dtype=states.dtype))
        return ops.sum(states * weights)

    return loss


def measure(function, arguments, repeats):
    start = time.perf_counter()
    compiled = jax.jit(function).lower(*arguments).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*arguments))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*arguments))
        times.append(1000.0 * (time.perf_counter() - start))
    return {"compile_s": round(compile_s, 2), "ms_median": round(statistics.median(times), 3),
            "ms_best": round(min(times), 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tiny", action="store_true", help="the tiny preset's core sizes (default: ResNet-50's)")
    args = parser.parse_args(argv)
    if keras.backend.backend() != "jax":
        print("error: set KERAS_BACKEND=jax", file=sys.stderr)
        return 2
    if args.tiny:
        side, channels, context_channels, units, hidden = 2, 256, 128, 32, 16
    else:
        side, channels, context_channels, units, hidden = 7, 2048, 1024, 512, 256
    rng = np.random.default_rng(0)
    features = rng.normal(size=(args.batch, args.frames, side, side, channels)).astype("float32")
    context = rng.normal(size=(args.batch, args.frames, context_channels)).astype("float32")
    core = GlimpseCloudsCore(
        num_glimpses=3, num_workers=3, zoomer_units=units, worker_units=units, fusion_hidden_units=hidden
    )
    unrolled_outputs = core(features, context, training=False)
    values = [variable.value for variable in core.variables]
    scanned_outputs = jax.jit(stateless(core, lambda f, c: scanned_core_call(core, f, c)))(values, features, context)
    for key, value in unrolled_outputs.items():
        np.testing.assert_allclose(np.asarray(scanned_outputs[key]), np.asarray(value), rtol=1e-4, atol=1e-5,
                                   err_msg=key)
    calls = {
        "unrolled": lambda f, c: core(f, c, training=False),
        "scanned": lambda f, c: scanned_core_call(core, f, c),
    }
    setting = {"frames": args.frames, "batch": args.batch, "channels": channels, "units": units,
               "device": str(jax.devices()[0]), "xla_flags": os.environ.get("XLA_FLAGS", "")}
    print(json.dumps(dict(setting, outputs_equal=True)), flush=True)
    for pass_name in ("forward", "gradient"):
        for name, call in calls.items():
            if pass_name == "forward":
                function = stateless(core, call)
            else:
                function = jax.grad(loss_function(core, call))
            result = measure(function, (values, features, context), args.repeats)
            print(json.dumps({"pass": pass_name, "core": name, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
