"""What the commands print: framework logs off by default, progress bars that
never mix with log lines, and no terminal control codes in redirected output.

Framework noise has three sources, each handled here:

* TensorFlow's C++ logging (oneDNN and CPU-feature notices, grappler's
  "remapper failed" at error level, "Local rendezvous ... End of sequence"):
  `TF_CPP_MIN_LOG_LEVEL=3` (and `GLOG_minloglevel`) silence what is logged
  after absl is initialised; the lines written while the TensorFlow library
  loads come before that and are only silenced by `import_tensorflow_quietly`,
  which points file descriptor 2 at /dev/null during the import. The
  remapper line comes from a training step whose backbone is partly frozen
  (`train_backbone_from` past "stem"): grappler's remapper fuses the explicit
  Pad of a strided backbone convolution into the convolution while the
  filter gradient's ShapeN still reads the Pad, so the pass gives up on that
  graph (which runs without its fusions, with the same results) and says so.
* Python loggers: `tf.get_logger()` is the "tensorflow" logger, JAX logs to
  "jax", absl has its own verbosity; all are set to ERROR.
* Python warnings of Keras that are not the user's business, e.g. "Your input
  ran out of data; interrupting training" (raised when `fit` reads exactly
  the steps of an epoch from a finite dataset, which is how `training` runs).

`configure_logging(verbose=True)` leaves every one of them alone. Environment
variables set here are inherited by child processes (the conversion command),
so they are quiet too; `GLIMPSE_VERBOSE=1` tells a child that the parent asked
for logs.

Progress bars (`progress`, `StageProgress` in `glimpse_keras.stage_progress`)
are tqdm bars on stderr when stderr is a terminal; otherwise there is no bar,
only whole lines, so a redirected log holds no carriage returns and no escape
codes. `write` prints a line above an active bar instead of through it.
"""

import contextlib
import logging
import os
import sys
import warnings

VERBOSE_ENV = "GLIMPSE_VERBOSE"
QUIET_ENV = "GLIMPSE_QUIET"

# Keras warnings that describe how `training` deliberately drives `fit`, and
# the missing gradient of the pose head when the pose loss is off (w_P = 0,
# e.g. user videos without keypoints).
SILENCED_WARNINGS = (
    r"Your input ran out of data",
    r"`shuffle=True` was passed, but will be ignored",
    r"Gradients do not exist for variables \['[^']*pose_head",
)

_verbose = None


def is_verbose():
    """Whether framework logs were asked for (`configure_logging(verbose=True)` or GLIMPSE_VERBOSE=1)."""
    if _verbose is not None:
        return _verbose
    return os.environ.get(VERBOSE_ENV) == "1"


def configure_logging(verbose=False):
    """Silences framework logs for this process and its children (unless `verbose`).

    Call it before TensorFlow is imported: the C++ log level is read when the
    library loads. Calling it later still quiets the Python loggers and
    warnings. Environment variables the user set already are kept.

    Args:
        verbose: bool; True leaves the framework's logging as it is and
            records the choice in GLIMPSE_VERBOSE=1 for child processes.

    Returns:
        `verbose`.
    """
    global _verbose
    _verbose = bool(verbose) or os.environ.get(VERBOSE_ENV) == "1"
    if _verbose:
        os.environ[VERBOSE_ENV] = "1"
        return True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "3")
    for pattern in SILENCED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # what tf.get_logger() returns
    logging.getLogger("jax").setLevel(logging.ERROR)  # e.g. "no GPU/TPU found, falling back to CPU"
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow and JAX; nothing to quiet without it
        pass
    return False


@contextlib.contextmanager
def quiet_stderr(enabled=True):
    """Points file descriptor 2 at /dev/null inside the block (C libraries included).

    Python's `sys.stderr` is flushed first and keeps working afterwards; an
    exception raised inside the block propagates normally (its traceback is
    printed after the descriptor is restored).
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (e.g. some embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly():
    """Imports TensorFlow (and with it Keras) without its load-time log lines.

    Call it after the Keras backend is chosen (`backend_selection`), since
    importing TensorFlow imports Keras. With verbose logging it is a plain
    import.

    Returns:
        the tensorflow module.
    """
    with quiet_stderr(enabled=not is_verbose() and "tensorflow" not in sys.modules):
        import tensorflow as tf
    if not is_verbose():
        tf.get_logger().setLevel(logging.ERROR)
    return tf


def add_verbose_argument(parser):
    """Adds `--verbose` (show TensorFlow / JAX / absl log messages) to an argparse parser."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow, JAX and absl log messages (silenced by default)",
    )


def is_terminal(stream=None):
    """Whether `stream` (default stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def bars_enabled(stream=None):
    """Progress bars are drawn only on a terminal and when GLIMPSE_QUIET is not 1."""
    return os.environ.get(QUIET_ENV) != "1" and is_terminal(stream)


def progress(iterable=None, *, disable=False, file=None, **kwargs):
    """A tqdm bar on stderr, disabled off a terminal (see the module docstring).

    Args:
        iterable, **kwargs: as for `tqdm.tqdm`.
        disable: bool, no bar even on a terminal.
        file: the stream (default stderr).

    Returns:
        a `tqdm.tqdm`; iterating it yields `iterable`'s items either way.
    """
    import tqdm

    file = sys.stderr if file is None else file
    return tqdm.tqdm(iterable, file=file, disable=disable or not bars_enabled(file), dynamic_ncols=True,
                     **kwargs)


def write(text, file=None):
    """Prints a line (or several) without breaking an active tqdm bar."""
    import tqdm

    tqdm.tqdm.write(str(text), file=sys.stdout if file is None else file)


def format_duration(seconds):
    """'42s', '3m07s' or '1h02m' for a duration in seconds (None -> '?')."""
    if seconds is None:
        return "?"
    seconds = int(round(max(0.0, float(seconds))))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
