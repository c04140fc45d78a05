"""Exceptions that cross a process boundary intact.

A `multiprocessing` pool sends a worker's exception to the parent pickled.
An exception class that pickles but cannot be unpickled (its `__init__`
takes other arguments than its `args`) kills the pool's result thread in the
parent, and the parent then waits for ever. `portable(error)` checks the
round trip in the worker and, when it fails, replaces the exception by a
`WorkerError` that keeps its type name, message and traceback;
`PortableErrors(function)` applies it to everything `function` raises.
"""

import pickle
import traceback

from glimpse_keras.errors import GlimpseError


class WorkerError(GlimpseError, RuntimeError):
    """An exception of a worker process that could not be sent back as itself.

    The message holds the original type, message and the worker's traceback.
    """


def portable(error):
    """`error` when it survives a pickle round trip, else a `WorkerError`
    describing it (type, message, traceback)."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception as failure:  # noqa: BLE001 - any failure means it cannot travel
        details = "".join(traceback.format_exception(error)).rstrip()
        return WorkerError(
            f"{type(error).__name__}: {error} (raised in a worker process; it could not be sent "
            f"back as itself: {type(failure).__name__}: {failure})\n{details}"
        )


class PortableErrors:
    """Wraps a picklable `function` for a process pool: whatever it raises
    reaches the parent (`portable`), so the pool cannot hang on it.

    Args:
        function: a module-level function (pools pickle it by name).
    """

    def __init__(self, function):
        self.function = function

    def __call__(self, *args, **kwargs):
        try:
            return self.function(*args, **kwargs)
        except Exception as error:
            replacement = portable(error)
            if replacement is error:
                raise
            raise replacement from None
