"""Keras callbacks of a training run: atomic checkpoints, non-finite loss
guard and glimpse statistics for TensorBoard."""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from glimpse_keras import diagnostics
from glimpse_keras.checkpoints import save_weights
from glimpse_keras.runs import commit_epoch


def save_weights_atomically(model, path):
    """`model.save_weights(path)` through a temporary file and a rename,
    with the sha256 recorded beside it (`checkpoints.save_weights`).

    The file holds the model's weights and, when compiled, its optimizer
    state; a reader never sees a partial file.

    Returns:
        the file's sha256.
    """
    return save_weights(model, path)


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite.

    `failure` then describes the batch; the epoch's checkpoint is not written
    (see `AtomicCheckpoint`), so the last good one stays on disk.
    """

    def __init__(self):
        super().__init__()
        self.failure = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        bad = {
            key: value
            for key, value in logs.items()
            if key.endswith("loss") and not math.isfinite(float(value))
        }
        if bad and self.failure is None:
            terms = ", ".join(f"{key}={value}" for key, value in sorted(bad.items()))
            self.failure = (
                f"non-finite loss at epoch {self._epoch + 1}, batch {batch + 1} ({terms})"
            )
            self.model.stop_training = True


class AtomicCheckpoint(keras.callbacks.Callback):
    """Commits every epoch: its history entry, weights + optimizer state,
    then the epoch counter (`runs.commit_epoch`).

    Args:
        directory: the stage directory.
        guard: a `StopOnNonFinite`; nothing is committed once it fired.
        started_from: sha256 of the weights the stage started from (the
            previous stage's final weights), recorded in state.json, or None.
    """

    def __init__(self, directory, guard=None, started_from=None):
        super().__init__()
        self.directory = directory
        self.guard = guard
        self.started_from = started_from

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.failure:
            return
        commit_epoch(self.model, self.directory, epoch, logs or {}, self.started_from)


def attention_scalars(figures):
    """TensorBoard scalars of `diagnostics.attention_diagnostics`' result.

    Returns:
        dict "attention/<name>" -> float, for every figure that is a finite
        number (the worker shares as "attention/worker_share_<c>").
    """
    scalars = {}
    for key, value in figures.items():
        if key == "worker_shares":
            for worker, share in enumerate(value):
                scalars[f"attention/worker_share_{worker}"] = float(share)
        elif isinstance(value, (int, float)) and math.isfinite(value) and key != "clips":
            scalars[f"attention/{key}"] = float(value)
    return scalars


class GlimpseSummary(keras.callbacks.Callback):
    """Logs the attention diagnostics (`glimpse_keras.diagnostics`) and glimpse
    overlay images to TensorBoard at the end of every epoch, on a few fixed
    validation batches.

    Args:
        log_dir: TensorBoard directory, or None to compute the figures
            (`last_figures`) without writing them: the other processes of a
            multi-process job, which take part in every computation.
        dataset: a dataset of (inputs, targets) batches, or None (no-op).
        draw_clip: fn(video, locations, assignments, pose=, pose_mask=) ->
            a uint8 image of one clip with its glimpses drawn
            (`visualize.draw_clip_strip`), or None to log no images.
        max_images: number of clips drawn as images.
        batches: validation batches the diagnostics are computed on (the
            input dependence compares videos, so more than one clip is needed).
    """

    def __init__(self, log_dir, dataset, draw_clip=None, max_images=2, batches=4):
        super().__init__()
        self.log_dir = log_dir
        self.dataset = dataset
        self.draw_clip = draw_clip
        self.max_images = max_images
        self.batches = batches
        self._batches = None
        self._writer = None
        self.last_figures = None

    def on_train_begin(self, logs=None):
        # `fit` runs once per epoch (see training.run_stage): set up once.
        if self.dataset is None or self._batches is not None:
            return
        self._batches = list(self.dataset.take(self.batches))
        if self.log_dir is not None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "glimpses"))

    def on_epoch_end(self, epoch, logs=None):
        if not self._batches or getattr(self.model, "is_global", True):
            return
        accumulator = diagnostics.AttentionDiagnostics(assign_axis=self.model.core.assign_axis)
        first_outputs = None
        for inputs, targets in self._batches:
            outputs = self.model(inputs, training=False)
            if first_outputs is None:
                first_outputs = outputs
            accumulator.update(
                outputs["locations"], outputs["assignments"], targets["pose"], targets["pose_mask"]
            )
        self.last_figures = accumulator.result()
        if self._writer is None:
            return
        with self._writer.as_default(step=epoch):
            for name, value in attention_scalars(self.last_figures).items():
                tf.summary.scalar(name, value)
            if self.draw_clip is not None:
                inputs, targets = self._batches[0]
                images = _overlay_images(self.draw_clip, inputs, targets, first_outputs, self.max_images)
                tf.summary.image("glimpses", images, max_outputs=self.max_images)
        self._writer.flush()


def _overlay_images(draw_clip, inputs, targets, outputs, count):
    """The first `count` clips of a batch drawn by `draw_clip`, as float images in [0, 1]."""
    video = np.asarray(inputs["video"] if isinstance(inputs, dict) else inputs)
    strips = []
    for index in range(min(count, video.shape[0])):
        strips.append(
            draw_clip(
                video[index],
                np.asarray(outputs["locations"][index]),
                np.asarray(outputs["assignments"][index]),
                pose=np.asarray(targets["pose"][index]),
                pose_mask=np.asarray(targets["pose_mask"][index]),
            )
        )
    return np.stack(strips).astype(np.float32) / 255.0
