"""The console: framework logs silenced unless --verbose, one progress display
per stage with epochs, elapsed and remaining time, no control codes off a terminal."""

import io
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from glimpse_keras import console
from glimpse_keras.stage_progress import StageProgress, format_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize(
    "seconds, text", [(None, "?"), (0.4, "0s"), (42, "42s"), (187, "3m07s"), (3720, "1h02m"), (-5, "0s")]
)
def test_format_duration(seconds, text):
    assert console.format_duration(seconds) == text


def test_epoch_lines_off_a_terminal_count_the_stage_and_time_left():
    stream, clock = io.StringIO(), FakeClock()
    # A resumed stage: 4 epochs, 1 done before, 3 steps each.
    progress = StageProgress("stage2", epochs=4, steps_per_epoch=3, initial_epoch=1, stream=stream,
                             terminal=False, clock=clock)
    for epoch, seconds in ((1, 10.0), (2, 14.0), (3, 12.0)):
        progress.on_epoch_begin(epoch)
        for step in range(3):
            progress.on_train_batch_end(step, {"loss": 2.0})
        clock.now += seconds
        progress.on_epoch_end(epoch, {"loss": 1.5, "accuracy": 0.25, "val_accuracy": 0.125, "ignored": 3.0})
    assert stream.getvalue().splitlines() == [
        # 10 s for 1 epoch run here, 2 left -> 20 s
        "[stage2] epoch 2/4  loss 1.5000  accuracy 0.2500  val_accuracy 0.1250  elapsed 10s  remaining 20s",
        # 24 s for 2 epochs, 1 left -> 12 s
        "[stage2] epoch 3/4  loss 1.5000  accuracy 0.2500  val_accuracy 0.1250  elapsed 24s  remaining 12s",
        "[stage2] epoch 4/4  loss 1.5000  accuracy 0.2500  val_accuracy 0.1250  elapsed 36s  remaining 0s",
    ]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_terminal_bar_spans_the_stage_and_prints_epoch_lines_above_it():
    stream, clock = io.StringIO(), FakeClock()
    progress = StageProgress("stage1", epochs=2, steps_per_epoch=5, stream=stream, terminal=True, clock=clock)
    progress.on_epoch_begin(0)
    for step in range(5):
        progress.on_train_batch_end(step, {"loss": 1.0})
    assert progress._bar.total == 10 and progress._bar.n == 5
    assert "[stage1] epoch 1/2" in stream.getvalue()
    clock.now += 30
    progress.on_epoch_end(0, {"loss": 1.0})
    assert "[stage1] epoch 1/2  loss 1.0000  elapsed 30s  remaining 30s\n" in stream.getvalue()
    progress.on_epoch_begin(1)
    progress.on_epoch_end(1, {"loss": 0.5})  # stopped early: the epoch's steps still count
    assert progress._bar is None  # closed after the last epoch
    assert progress.lines[-1].startswith("[stage1] epoch 2/2  loss 0.5000")


def test_stage_progress_follows_per_epoch_fit_calls():
    """As `training.run_stage` drives it: one fit per epoch, verbose=0."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x, y = np.ones((8, 3), np.float32), np.zeros((8,), np.int64)
    stream = io.StringIO()
    progress = StageProgress("toy", epochs=3, steps_per_epoch=2, stream=stream, terminal=False)
    for epoch in range(3):
        model.fit(x, y, batch_size=4, epochs=epoch + 1, initial_epoch=epoch, steps_per_epoch=2,
                  callbacks=[progress], verbose=0)
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == ["[toy] epoch 1/3", "[toy] epoch 2/3", "[toy] epoch 3/3"]
    assert all("loss " in line and "accuracy " in line and "remaining" in line for line in lines)


def test_format_metrics_keeps_a_fixed_order():
    assert format_metrics({"val_loss": 2, "loss": 1}) == "loss 1.0000  val_loss 2.0000"
    assert format_metrics(None) == ""


def test_progress_has_no_bar_off_a_terminal():
    stream = io.StringIO()
    items = list(console.progress(range(3), file=stream, desc="x"))
    assert items == [0, 1, 2] and stream.getvalue() == ""


NOISY = """
import warnings
from glimpse_keras import console
console.configure_logging(verbose={verbose})
tf = console.import_tensorflow_quietly()
warnings.warn("Your input ran out of data; interrupting training.")
tf.get_logger().warning("a TensorFlow Python log line")
from absl import logging
logging.warning("an absl log line")
print("done")
"""


def run_noisy(verbose):
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel", console.VERBOSE_ENV)}
    return subprocess.run([sys.executable, "-c", NOISY.format(verbose=verbose)], capture_output=True, text=True,
                          cwd=REPO, env=environment, timeout=300)


def test_framework_logs_are_silent_by_default_and_back_with_verbose():
    quiet = run_noisy(False)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "done\n" and quiet.stderr == ""
    loud = run_noisy(True)
    assert loud.returncode == 0, loud.stderr
    for line in ("ran out of data", "a TensorFlow Python log line", "an absl log line"):
        assert line in loud.stderr
