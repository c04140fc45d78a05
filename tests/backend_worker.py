"""Model jobs run on one Keras backend, for the cross-backend tests.

A pytest process cannot switch backends once Keras is imported, so
`tests/test_backends.py` runs the other backend's half in a child process:

    KERAS_BACKEND=jax python tests/backend_worker.py JOBS.json

JOBS.json is a list of jobs, each a dict with "job" and its file paths:

- {"job": "run", "weights": W, "outputs": O}: builds `tiny_model()`, loads
  the weights file W and writes its outputs on `fixed_batch()` to O (.npz).
- {"job": "save_random", "seed": S, "weights": W, "outputs": O}: builds
  `tiny_model()` with weights and BatchNorm statistics drawn from seed S,
  writes them to W and its outputs to O.
- {"job": "train_step", "weights": W, "trained": T, "logs": L}: loads W,
  runs one `train_on_batch` (SGD) on `fixed_batch()` and writes the updated
  weights to T (.npz, in `model.weights` order) and the logs to L (.json).
- {"job": "export", "directory": D, "message": M}: calls
  `export.export_model` into D and writes the `ExportError` message it
  raises (or "" when it exports) to M.

The functions below are what both halves use, so the two backends build the
same model and see the same batch.
"""

import json
import os
import sys

import keras
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from glimpse_keras.models.presets import build_model_from_preset  # noqa: E402
from tests.models.model_checks import randomise_batch_norm  # noqa: E402

FRAMES, SIZE, CLASSES, BATCH = 2, 64, 5, 2


def tiny_model():
    """The tiny Glimpse Clouds model (5 classes), built on a 2-frame clip."""
    model = build_model_from_preset("tiny", num_classes=CLASSES)
    model(np.zeros((1, FRAMES, SIZE, SIZE, 3), "uint8"))
    return model


def fixed_batch():
    """A fixed (inputs, targets) batch of BATCH clips."""
    rng = np.random.default_rng(11)
    inputs = {"video": rng.integers(0, 256, (BATCH, FRAMES, SIZE, SIZE, 3), dtype=np.uint8)}
    targets = {
        "label": np.array([1, 3], "int32"),
        "pose": rng.uniform(-0.8, 0.8, (BATCH, FRAMES, 2, 25, 2)).astype("float32"),
        "pose_mask": np.ones((BATCH, FRAMES, 2, 25), "float32"),
    }
    return inputs, targets


def randomise(model, seed):
    """Redraws the kernels and BatchNorm statistics of `model` from `seed`.

    Every kernel is multiplied elementwise by factors in [0.5, 1.5] (its scale
    is kept), the worker classifier's by 10 more so that the class
    probabilities differ between clips, and the backbone's BatchNorms get
    trained-like statistics: fresh ones would leave BatchNorm close to the
    identity and hide a weight that loads into the wrong place.
    """
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if weight.path.endswith("kernel"):
            factors = rng.uniform(0.5, 1.5, weight.shape).astype("float32")
            weight.assign(weight.numpy() * factors)
    model.worker_classifier.kernel.assign(model.worker_classifier.kernel.numpy() * 10.0)
    randomise_batch_norm(model.backbone, rng)


def outputs_of(model):
    """The model's outputs on `fixed_batch()` in inference mode, as arrays."""
    inputs, _ = fixed_batch()
    outputs = model(inputs, training=False)
    return {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}


def train_step(model):
    """One SGD step on `fixed_batch()`; returns the logs (dict of floats).

    Jitted on JAX; eager on TensorFlow (tracing the step would take longer
    than running it once).
    """
    on_jax = keras.backend.backend() == "jax"
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=on_jax, run_eagerly=not on_jax)
    inputs, targets = fixed_batch()
    logs = model.train_on_batch(inputs, targets, return_dict=True)
    return {key: float(value) for key, value in logs.items()}


def weight_arrays(model):
    """`model.weights` as NumPy arrays, keyed by order and path below the
    model (model names differ between processes)."""
    return {
        f"{index:03d} {weight.path.split('/', 1)[-1]}": weight.numpy()
        for index, weight in enumerate(model.weights)
    }


def run_job(job):
    model = tiny_model()
    kind = job["job"]
    if kind == "run":
        model.load_weights(job["weights"])
        np.savez(job["outputs"], **outputs_of(model))
    elif kind == "save_random":
        randomise(model, job["seed"])
        model.save_weights(job["weights"])
        np.savez(job["outputs"], **outputs_of(model))
    elif kind == "train_step":
        model.load_weights(job["weights"])
        logs = train_step(model)
        np.savez(job["trained"], **weight_arrays(model))
        with open(job["logs"], "w") as handle:
            json.dump(logs, handle)
    elif kind == "export":
        from glimpse_keras import export

        message = ""
        try:
            export.export_model(
                model, job["directory"], num_frames=FRAMES, image_size=SIZE,
                class_names=[f"class_{index}" for index in range(CLASSES)],
            )
        except export.ExportError as error:
            message = str(error)
        with open(job["message"], "w") as handle:
            handle.write(message)
    else:
        raise ValueError(f"unknown job {kind!r}")


def main(argv):
    with open(argv[0]) as handle:
        jobs = json.load(handle)
    keras.utils.set_random_seed(0)
    for job in jobs:
        run_job(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
