"""Data-parallel jobs on JAX, run in a child process by tests/test_data_parallel.py.

JAX fixes its device count when it starts, so the test runs this script with
two virtual CPU devices:

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python tests/data_parallel_worker.py OUTPUT_DIR

It writes, to OUTPUT_DIR:

- one.npz / two.npz: the weights after one SGD step on `fixed_batch()` from
  the same weights, on one device and under `parallel.data_parallel()` on
  both devices; logs.json: both steps' logs, how JAX placed the video batch
  inside the two-device step (the mesh axis of its first axis, the devices)
  and where the two-device model's variables live;
- forward_one.npz / forward_two.npz: the evaluation forward
  (`backends.compile_forward`) on a batch of 3 clips, which does not split
  over 2 devices, and on a batch of 2, on one and on two devices;
- refused.json: `train.py --strategy data_parallel` with a batch of 3: its
  exit code, error message and whether its output folder was created; and
  the message of `parallel.join_cluster` called after JAX has computed.
"""

import contextlib
import io
import json
import os
import sys

import jax
import keras
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from glimpse_keras import parallel  # noqa: E402
from glimpse_keras.backends import compile_forward  # noqa: E402
from tests import backend_worker  # noqa: E402


def step_with_recorded_sharding(model, record):
    """`backend_worker.train_step`, recording how the video batch is placed
    on the devices inside the jitted step."""
    unpack = model._unpack_data

    def recording_unpack(data, with_targets=True):
        unpacked = unpack(data, with_targets)
        video = (unpacked[0] if with_targets else unpacked)["video"]
        jax.debug.inspect_array_sharding(video, callback=lambda sharding: record.append(
            {"first_axis": sharding.spec[0] if len(sharding.spec) else None, "devices": len(sharding.device_set)}
        ))
        return unpacked

    model._unpack_data = recording_unpack
    return backend_worker.train_step(model)


def forward_outputs(model):
    """Logits of the compiled evaluation forward on 3 clips, then on 2."""
    inputs, _ = backend_worker.fixed_batch()
    video = inputs["video"]
    three = np.concatenate([video, video[:1, ::-1]])
    forward = compile_forward(lambda clips: model(clips, training=False)["logits"], model)
    return {"three": np.asarray(forward(three)), "two": np.asarray(forward(video))}


def main(argv):
    output = argv[0]
    keras.utils.set_random_seed(0)
    model = backend_worker.tiny_model()
    backend_worker.randomise(model, 5)
    weights = os.path.join(output, "start.weights.h5")
    model.save_weights(weights)
    np.savez(os.path.join(output, "forward_one.npz"), **forward_outputs(model))
    logs_one = backend_worker.train_step(model)
    np.savez(os.path.join(output, "one.npz"), **backend_worker.weight_arrays(model))

    distribution = parallel.data_parallel()
    model = backend_worker.tiny_model()
    model.load_weights(weights)
    np.savez(os.path.join(output, "forward_two.npz"), **forward_outputs(model))
    placement = []
    logs_two = step_with_recorded_sharding(model, placement)
    np.savez(os.path.join(output, "two.npz"), **backend_worker.weight_arrays(model))
    kernel = model.worker_classifier.kernel.value
    with open(os.path.join(output, "logs.json"), "w") as handle:
        json.dump({
            "one": logs_one,
            "two": logs_two,
            "devices": parallel.device_count(distribution),
            "video_placement": placement,
            "kernel_devices": len(kernel.sharding.device_set),
            "kernel_replicated": kernel.sharding.is_fully_replicated,
        }, handle)

    from glimpse_keras.cli import train as train_cli

    run = os.path.join(output, "refused_run")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = train_cli.main([
            "--backend", "jax", "--strategy", "data_parallel", "--config", os.path.join(REPO, "configs", "tiny.yaml"),
            "--set", "train.stages.0.batch_size=3", "--output-dir", run,
        ])
    try:
        parallel.join_cluster("localhost:1", 2, 1)
        late_join = ""
    except parallel.ClusterError as error:
        late_join = str(error)
    with open(os.path.join(output, "refused.json"), "w") as handle:
        json.dump({"code": code, "stderr": stderr.getvalue(), "created": os.path.exists(run), "late_join": late_join},
                  handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
