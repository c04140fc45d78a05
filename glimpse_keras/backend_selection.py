"""Choosing the Keras backend of a command before Keras is imported.

Keras reads `KERAS_BACKEND` once, when it is first imported; a process cannot
switch afterwards. The command-line scripts therefore call `select_backend`
with their `--backend` flag before importing anything that imports Keras.
This module imports neither Keras nor a backend.
"""

import os
import sys

from glimpse_keras.errors import GlimpseError

BACKENDS = ("tensorflow", "jax")


class BackendSelectionError(GlimpseError, RuntimeError):
    """The requested backend cannot be used in this process."""


def select_backend(name=None):
    """Makes `name` the Keras backend of this process.

    Args:
        name: "tensorflow", "jax" or None (keep `KERAS_BACKEND`, or Keras'
            default, TensorFlow).

    Returns:
        the backend's name.

    Raises:
        BackendSelectionError: an unknown name, or Keras already imported
            with another backend.
    """
    if name is not None and name not in BACKENDS:
        raise BackendSelectionError(f"backend must be one of {BACKENDS}, received {name!r}")
    keras = sys.modules.get("keras")
    if keras is not None:
        active = keras.backend.backend()
        if name is not None and name != active:
            raise BackendSelectionError(
                f"Keras is already running on {active!r} in this process; {name!r} must be chosen "
                f"before Keras is imported (set KERAS_BACKEND={name} or pass --backend {name} "
                "to a fresh process)"
            )
        return active
    if name is not None:
        os.environ["KERAS_BACKEND"] = name
    return os.environ.get("KERAS_BACKEND", "tensorflow")

