"""Weights files of a run: written atomically with their sha256 beside them,
verified before they are loaded.

`save_weights` writes `<path>` (weights and, for a compiled model, optimizer
state) through a temporary file and a rename, then `<path>.sha256`.
`load_weights` refuses a file whose content differs from the recorded sha256
(flipped bytes load without error in h5py and silently change predictions);
files written before checksums existed load unchecked.
"""

import contextlib
import os

import keras

from glimpse_keras.io_utils import (
    ChecksumError,
    StorageError,
    atomic_path,
    is_storage_failure,
    storage_error,
    verify_checksum,
    write_checksum,
)


class CheckpointError(RuntimeError):
    """A weights file is missing, damaged or unreadable; the message names it."""


def save_weights(model, path):
    """`model.save_weights(path)` atomically, then records its sha256.

    Writes from one process only: a Keras distribution in force is set
    aside meanwhile (Keras' saver builds a throwaway optimizer, whose
    variables it would place on the devices of every process, which waits
    for processes that do not save).

    Raises:
        StorageError: the file system refused the write (full disk, ...);
            the previous file at `path`, if any, is left as it was.
    """
    try:
        with atomic_path(path) as tmp, _without_distribution():
            model.save_weights(tmp)
    except StorageError:
        raise
    except Exception as error:  # h5py wraps the OS error in its own types
        if is_storage_failure(error):
            raise storage_error(path, _os_error_of(error)) from error
        raise
    write_checksum(path)


@contextlib.contextmanager
def _without_distribution():
    distribution = keras.distribution.distribution()
    if distribution is None:
        yield
        return
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)


def _os_error_of(error):
    while error is not None:
        if isinstance(error, OSError):
            return error
        error = error.__cause__ or error.__context__
    return OSError(None, "the file system refused the write")


def load_weights(model, path, what="weights"):
    """Verifies `path` against its recorded sha256, then loads it into `model`.

    Args:
        model: a built Keras model.
        path: a `.weights.h5` file.
        what: how the message calls the file ("checkpoint", ...).

    Raises:
        CheckpointError: missing, damaged (sha256 mismatch) or unreadable,
            naming the file.
    """
    if not os.path.exists(path):
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        verify_checksum(path)
    except ChecksumError as error:
        raise CheckpointError(f"{what} {error}") from error
    try:
        model.load_weights(path)
    except Exception as error:  # h5py and keras raise many kinds here
        raise CheckpointError(f"{what} {path} is unreadable ({error})") from error
