"""Weights files of a run: written atomically with their sha256 beside them,
verified before they are loaded.

`save_weights` writes `<path>` (weights and, for a compiled model, optimizer
state) through a temporary file and a rename, recording `<path>.sha256` just
before the rename; HDF5 writes into memory, never onto a disk that may fill.
`load_weights` refuses a file whose content differs from the recorded sha256
(flipped bytes load without error in h5py and silently change predictions);
files written before checksums existed load unchecked.
"""

import contextlib
import hashlib
import io
import os

import keras

from glimpse_keras.errors import GlimpseError
from glimpse_keras.io_utils import (
    ChecksumError,
    atomic_path,
    sha256_of,
    storage_errors,
    verify_checksum,
    write_checksum,
)


class CheckpointError(GlimpseError, RuntimeError):
    """A weights file is missing, damaged or unreadable; the message names it."""


class _WeightsBuffer(io.BytesIO):
    """An in-memory `.weights.h5` file for `model.save_weights`.

    Keras writes HDF5 into an `io.BytesIO` as it does into a path (its
    `.keras` archives do); `str()` gives the name, whose ending
    `save_weights` checks.
    """

    def __init__(self, name):
        super().__init__()
        self.name = name

    def __str__(self):
        return self.name


def save_weights(model, path):
    """`model.save_weights(path)` atomically, with its sha256 recorded.

    HDF5 writes the file into memory, and only this function writes it to
    disk: a write the file system refuses (a full disk) is a plain `OSError`
    here. HDF5 itself must never meet one: a file whose write failed stays
    open inside HDF5 and crashes the interpreter when it is closed or
    collected ("Exception ignored" tracebacks, then a segmentation fault).
    The cost is one copy of the file in memory while it is written.

    The sha256 is recorded (`<path>.sha256`) before the file is renamed
    into place, so a record never describes a file older than itself
    unless the rename did not happen; `resume` relies on that order.

    Writes from one process only: a Keras distribution in force is set
    aside meanwhile (Keras' saver builds a throwaway optimizer, whose
    variables it would place on the devices of every process, which waits
    for processes that do not save).

    Returns:
        the sha256 (hex) of the written file.

    Raises:
        StorageError: the file system refused the write (full disk, ...);
            the previous file at `path`, if any, is left as it was.
    """
    buffer = _WeightsBuffer(os.path.basename(path))
    with storage_errors(path):
        with _without_distribution():
            model.save_weights(buffer)
        content = buffer.getbuffer()
        digest = hashlib.sha256(content).hexdigest()
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(content)
            write_checksum(path, digest)
    return digest


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


def load_weights(model, path, what="weights", sha256=None):
    """Verifies `path` against its recorded sha256, then loads it into `model`.

    Args:
        model: a built Keras model.
        path: a `.weights.h5` file.
        what: how the message calls the file ("checkpoint", ...).
        sha256: the digest the file must have (as a run's state.json
            records it); default: the one in `<path>.sha256`, if any.

    Raises:
        CheckpointError: missing, damaged (sha256 mismatch) or unreadable,
            naming the file.
    """
    if not os.path.exists(path):
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        actual = sha256_of(path) if sha256 is not None else None
        if sha256 is None:
            verify_checksum(path)
        elif actual != sha256:
            raise ChecksumError(f"{path} is damaged: its sha256 is {actual} but {sha256} is recorded")
    except ChecksumError as error:
        raise CheckpointError(f"{what} {error}") from error
    try:
        model.load_weights(path)
    except Exception as error:  # h5py and keras raise many kinds here
        raise CheckpointError(f"{what} {path} is unreadable ({error})") from error
