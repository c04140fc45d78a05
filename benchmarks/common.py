"""Shared helpers of the benchmark scripts: timing, matmul peak, FLOPs, load.

The machine is shared and its speed drifts over minutes, so every script
measures the matmul peak in the same run as its figures, times candidates
round-robin (`interleaved_best`) and reports the best of N repeats together
with the load average at the start and the end of the measurement.
"""

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

FLOP_OPS = ("Conv2D", "Conv3D", "MatMul", "BatchMatMulV2", "BatchMatMulV3")


def load_average():
    """The 1-minute load average as a string, e.g. "load 1.52"."""
    return f"load {os.getloadavg()[0]:.2f}"


def block(result):
    """Fetches every tensor of `result` to host memory (ends the computation)."""
    for tensor in tf.nest.flatten(result):
        np.asarray(tensor)


def timed(function, repeats, warmup=1):
    """Wall seconds of `repeats` calls of `function()` after `warmup` calls.

    Returns:
        list of float seconds, one per timed call.
    """
    for _ in range(warmup):
        block(function())
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(function())
        seconds.append(time.perf_counter() - start)
    return seconds


def interleaved_best(functions, repeats, warmup=1):
    """Best wall seconds of each function, timed round-robin.

    Timing the candidates in turn within every round (rather than one after
    the other) exposes them to the same drift and load, so their ratios are
    meaningful even when the absolute figures move.

    Args:
        functions: dict name -> zero-argument callable.
        repeats: int, timed rounds.
        warmup: int, untimed calls of each function first (tracing).

    Returns:
        dict name -> minimum seconds over the rounds.
    """
    for function in functions.values():
        for _ in range(warmup):
            block(function())
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            block(function())
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


_PEAK_FUNCTIONS = {}


def matmul_peak_function(dtype, size=4096):
    """A zero-argument callable running one `size x size` matmul in `dtype`.

    Returns:
        (callable, flop) where flop = 2 * size**3.
    """
    key = (dtype, size)
    if key not in _PEAK_FUNCTIONS:
        # One traced function per dtype and size for the whole run: tracing
        # a new one per measurement makes TensorFlow warn about retracing.
        a = tf.cast(tf.random.normal((size, size), seed=1), dtype)
        b = tf.cast(tf.random.normal((size, size), seed=2), dtype)
        _PEAK_FUNCTIONS[key] = tf.function(lambda: tf.matmul(a, b))
    return _PEAK_FUNCTIONS[key], 2.0 * size**3


def matmul_peaks(repeats=5, size=4096):
    """Best GFLOP/s of a square tf.matmul in float32 and bfloat16.

    Returns:
        dict {"float32": GFLOP/s, "bfloat16": GFLOP/s}.
    """
    functions, flop = {}, 0.0
    for dtype in ("float32", "bfloat16"):
        functions[dtype], flop = matmul_peak_function(dtype, size)
    best = interleaved_best(functions, repeats)
    return {dtype: flop / seconds / 1e9 for dtype, seconds in best.items()}


def peak_for_policy(peaks, policy):
    """The peak matching a Keras dtype policy name (bfloat16 for mixed_bfloat16)."""
    return peaks["bfloat16"] if "bfloat16" in policy else peaks["float32"]


def graph_gflops(concrete_function):
    """Analytic GFLOP of the convolutions and matmuls of a traced function.

    2 x output elements x (kernel volume x input channels) for convolutions,
    2 x output elements x inner size for matmuls; elementwise ops, BatchNorm,
    pooling and adds are not counted. Shapes must be static.
    """
    total = 0.0
    for op in concrete_function.graph.get_operations():
        if op.type not in FLOP_OPS:
            continue
        output_elements = float(np.prod(op.outputs[0].shape.as_list()))
        if op.type.startswith("Conv"):
            kernel = op.inputs[1].shape.as_list()
            total += 2 * output_elements * float(np.prod(kernel[:-1]))
        else:
            a_shape = op.inputs[0].shape.as_list()
            if op.type == "MatMul":
                transpose_a = op.get_attr("transpose_a")
            else:
                transpose_a = op.get_attr("adj_x")
            inner = a_shape[-2] if transpose_a else a_shape[-1]
            total += 2 * output_elements * inner
    return total / 1e9


def print_peaks(peaks):
    """Prints the measured matmul peaks on one line."""
    print(
        f"4096^2 tf.matmul peak: float32 {peaks['float32']:.0f} GFLOP/s, "
        f"bfloat16 {peaks['bfloat16']:.0f} GFLOP/s",
        flush=True,
    )
