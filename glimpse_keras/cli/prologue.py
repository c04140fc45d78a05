"""What every command does before its own work, in one place.

    parser = argparse.ArgumentParser(parents=[prologue.parent_parser()], ...)
    args = parser.parse_args(argv)
    prologue.start(args)            # logging, Keras backend, TensorFlow imported quietly
    ...
    except GlimpseError as error:
        return prologue.fail(error)  # exit code 1

`parent_parser` gives every command `--backend` and `--verbose`. `start`
must run before anything imports Keras: Keras reads its backend once, when
it is first imported (`backend_selection`), and TensorFlow's load-time log
lines are silenced only around that import (`console`).

Exit codes (docs/reliability.md): 0 success, 1 the job failed (`fail`, one
`error: ...` line), 2 a bad argument or config value (`bad_argument`;
argparse itself also exits 2).
"""

import argparse
import sys

from glimpse_keras import console
from glimpse_keras.backend_selection import BACKENDS, select_backend

FAILED = 1
BAD_ARGUMENT = 2


def parent_parser():
    """The arguments every command takes: `--backend` and `--verbose`."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow); the input pipeline and "
        "the SavedModel export use TensorFlow either way",
    )
    console.add_verbose_argument(parser)
    return parser


def start(args, backend=None):
    """Quiets the framework logs (unless `--verbose`), selects the Keras
    backend (`backend`, else `--backend`, else $KERAS_BACKEND) and imports
    TensorFlow without its load-time lines.

    Returns:
        the backend's name.

    Raises:
        BackendSelectionError: the backend cannot be used in this process
            (a bad argument: exit code 2).
    """
    console.configure_logging(args.verbose)
    name = select_backend(backend or args.backend)
    console.import_tensorflow_quietly()
    return name


def fail(error, code=FAILED):
    """Prints `error: <message>` on stderr; returns the exit code."""
    print(f"error: {error}", file=sys.stderr)
    return code


def bad_argument(error):
    """`fail` with exit code 2: a bad argument or config value."""
    return fail(error, BAD_ARGUMENT)
