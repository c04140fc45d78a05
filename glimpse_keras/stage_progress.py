"""One progress display per training stage (a Keras callback).

`training.run_stage` calls `fit` once per epoch, so Keras' own progress bar
restarts every epoch and shows "Epoch k/k". `StageProgress` instead follows
the whole stage:

* on a terminal (`console.bars_enabled`): one tqdm bar over all the stage's
  steps, `[stage1] epoch 3/10` plus the running loss, with tqdm's elapsed and
  remaining time; each finished epoch prints one line above the bar.
* elsewhere (a log file, a pipe, GLIMPSE_QUIET=1): no bar, only the epoch
  lines, with no carriage returns or escape codes.

Epoch line: `[stage1] epoch 3/10  loss 1.2345  accuracy 0.4120  val_accuracy
0.3900  elapsed 1m02s  remaining 2m25s`. The remaining time is the mean
duration of the epochs run in this process times the epochs left (a resumed
stage starts counting from its first resumed epoch).

Keras' own progress output must be off (`fit(verbose=0)`; see
`keras_verbosity`).
"""

import sys
import time

import keras

from glimpse_keras import console

# Metrics shown in the epoch line, in this order, when present.
SHOWN_METRICS = ("loss", "accuracy", "top5_accuracy", "val_loss", "val_accuracy")


def keras_verbosity():
    """The `verbose` argument for `fit` when a `StageProgress` is attached: 0 (silent)."""
    return 0


def format_metrics(logs):
    """'loss 1.2345  accuracy 0.4120 ...' for the metrics of `SHOWN_METRICS` found in `logs`."""
    logs = logs or {}
    return "  ".join(f"{name} {float(logs[name]):.4f}" for name in SHOWN_METRICS if name in logs)


class StageProgress(keras.callbacks.Callback):
    """Progress of one training stage across its per-epoch `fit` calls.

    Args:
        stage_name: shown as "[name]".
        epochs: the stage's total epochs.
        steps_per_epoch: batches per epoch (the bar's total is epochs * steps).
        initial_epoch: epochs already done (resume).
        stream: where the bar and lines go (default: stdout).
        terminal: force the bar on (True) or off (False); default
            `console.bars_enabled(stream)`.
        clock: a function returning seconds (tests pass a fake clock).
    """

    def __init__(self, stage_name, epochs, steps_per_epoch, initial_epoch=0, stream=None, terminal=None,
                 clock=time.monotonic):
        super().__init__()
        if epochs < 1 or steps_per_epoch < 1:
            raise ValueError(
                f"StageProgress needs epochs >= 1 and steps_per_epoch >= 1, got {epochs} and {steps_per_epoch}"
            )
        self.stage_name = stage_name
        self.epochs = int(epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.initial_epoch = int(initial_epoch)
        self.stream = sys.stdout if stream is None else stream
        self.terminal = console.bars_enabled(self.stream) if terminal is None else bool(terminal)
        self.clock = clock
        self.lines = []
        self._bar = None
        self._started = None
        self._epoch = self.initial_epoch

    # --- timing ---

    def elapsed(self):
        """Seconds since the first epoch run in this process began (0 before)."""
        return 0.0 if self._started is None else self.clock() - self._started

    def remaining(self, epochs_done):
        """Estimated seconds left after `epochs_done` epochs of the stage, or None before one finished here."""
        run_here = epochs_done - self.initial_epoch
        if run_here <= 0:
            return None
        return self.elapsed() / run_here * (self.epochs - epochs_done)

    # --- Keras hooks ---

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)
        if self._started is None:
            self._started = self.clock()
        if self.terminal and self._bar is None:
            import tqdm

            self._bar = tqdm.tqdm(
                total=self.epochs * self.steps_per_epoch,
                initial=self.initial_epoch * self.steps_per_epoch,
                desc=f"[{self.stage_name}]",
                unit="step",
                file=self.stream,
                dynamic_ncols=True,
                leave=False,
            )
        if self._bar is not None:
            self._bar.set_description_str(f"[{self.stage_name}] epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is None:
            return
        self._bar.update(1)
        if logs and "loss" in logs:
            self._bar.set_postfix_str(f"loss {float(logs['loss']):.4f}", refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        done = int(epoch) + 1
        line = (
            f"[{self.stage_name}] epoch {done}/{self.epochs}  {format_metrics(logs)}  "
            f"elapsed {console.format_duration(self.elapsed())}  "
            f"remaining {console.format_duration(self.remaining(done))}"
        ).replace("    ", "  ")
        self.lines.append(line)
        if self._bar is not None:
            # A finished epoch's steps all count, even when fit stopped early.
            self._bar.n = done * self.steps_per_epoch
            self._bar.write(line, file=self.stream)
            self._bar.refresh()
        else:
            print(line, file=self.stream, flush=True)
        if done >= self.epochs:
            self.close()

    def close(self):
        """Removes the bar (also done after the stage's last epoch)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
