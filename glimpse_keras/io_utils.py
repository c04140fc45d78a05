"""Safe file writes: atomic, readable by others, checked, and verifiable.

- `atomic_path` / `atomic_write_text` / `atomic_write_json`: a reader never
  sees a half-written file, and the written file gets the permissions the
  process umask allows (like `open()`), not `mkstemp`'s 0600.
- `StorageError`: every write failure (full disk, read-only or impossible
  path) raised as one error type whose message names the path and the cause,
  so command-line jobs can print it and exit non-zero; `storage_errors(path)`
  turns the refusals that libraries word in their own types (h5py,
  TensorFlow's `ResourceExhaustedError`) into one.
- `check_output_location`: checks before a job starts that a file or folder
  can be created at a path.
- `clean_stale_temporaries`: removes the `.tmp-*` files a killed write left.
- `write_checksum` / `verify_checksum`: a `<file>.sha256` beside a file
  (`sha256sum` format), verified before the file is used.
"""

import contextlib
import errno
import hashlib
import json
import os
import tempfile

from glimpse_keras.errors import GlimpseError

TEMPORARY_PREFIX = ".tmp-"
CHECKSUM_SUFFIX = ".sha256"


class StorageError(GlimpseError, OSError):
    """A file or folder cannot be written (full disk, no permission, a file
    where a folder is needed, ...). The message names the path.

    It survives pickling (a worker process raises it, the parent re-raises
    it), with its message and path.

    Args:
        code: the `errno` value (or None).
        message: the full message, shown as is by `str()`.
        filename: the path that could not be written, or None.
    """

    def __init__(self, code, message, filename=None):
        super().__init__(code, message)
        self.message = message
        if filename is not None:
            self.filename = os.fspath(filename)

    def __reduce__(self):
        return (type(self), (self.errno, self.message, self.filename))

    def __str__(self):
        return self.message


class ChecksumError(GlimpseError, RuntimeError):
    """A file's content differs from the sha256 recorded beside it."""


def current_umask():
    """The process umask (read without changing it for longer than a call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path, directory=False):
    """Gives `path` the mode a plain `open()` / `os.mkdir` would have given
    it under the current umask (0666 or 0777 minus the umask)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


# How libraries that wrap the OS error in their own types (h5py, TensorFlow's
# `ResourceExhaustedError`, ...) word a refused write, and its errno.
REFUSAL_TEXTS = (
    ("no space left", errno.ENOSPC),
    ("disk quota", errno.EDQUOT),
    ("read-only file system", errno.EROFS),
    ("permission denied", errno.EACCES),
)


def refusal_errno(error):
    """The errno of the file-system refusal behind `error`, or None.

    Looks through `error` and its causes for an `OSError` with an errno, or
    for a message that words one (`REFUSAL_TEXTS`).
    """
    while error is not None:
        if isinstance(error, OSError) and error.errno is not None:
            return error.errno
        text = str(error).lower()
        for words, code in REFUSAL_TEXTS:
            if words in text:
                return code
        error = error.__cause__ or error.__context__
    return None


def describe_os_error(error):
    """A short cause for an error, e.g. 'No space left on device'."""
    code = refusal_errno(error)
    if code is not None:
        return os.strerror(code)
    return str(error) or type(error).__name__


def storage_error(path, error, action="write"):
    """A `StorageError` naming `path` and what went wrong (`error`: an
    `OSError`, or a library's error wrapping one)."""
    cause = describe_os_error(error)
    hint = ""
    code = refusal_errno(error)
    if code in (errno.ENOSPC, errno.EDQUOT):
        hint = "; free some space (earlier files are kept as they were) and rerun"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "; choose a writable location"
    return StorageError(code, f"cannot {action} {path}: {cause}{hint}", filename=path)


def is_storage_failure(error):
    """True when `error` (possibly raised by a library such as h5py or
    TensorFlow that wraps the OS error) comes from the file system rather
    than the data."""
    return refusal_errno(error) is not None


@contextlib.contextmanager
def storage_errors(path, action="write"):
    """Raises a refused write inside the block as a `StorageError` naming
    `path` (`is_storage_failure`); other exceptions pass through unchanged."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        if is_storage_failure(error):
            raise storage_error(path, error, action) from error
        raise


def check_output_location(path, directory=False):
    """Checks, before any work, that `path` can be created or overwritten.

    Walks up to the nearest existing ancestor: every existing component must
    be a folder, and that ancestor must be writable. An existing `path` must
    be a folder when `directory` else a writable file. The folder where the
    first new entry would go must accept one (an empty folder is created and
    removed: permissions alone do not tell a read-only mount or /proc) and
    have free space.

    Raises:
        StorageError: naming `path` and the component that is in the way.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        if directory and not os.path.isdir(path):
            raise StorageError(errno.ENOTDIR, f"cannot write into {path}: it is a file, not a folder", path)
        if not directory and os.path.isdir(path):
            raise StorageError(errno.EISDIR, f"cannot write {path}: it is a folder, not a file", path)
        target = path if directory else os.path.dirname(path)
        if not os.access(target, os.W_OK | os.X_OK) or (not directory and not os.access(path, os.W_OK)):
            raise StorageError(
                errno.EACCES, f"cannot write {path}: permission denied; choose a writable location", path
            )
        _probe_folder(path, target)
        return
    ancestor = os.path.dirname(path)
    while not os.path.exists(ancestor):
        parent = os.path.dirname(ancestor)
        if parent == ancestor:
            break
        ancestor = parent
    if not os.path.isdir(ancestor):
        raise StorageError(
            errno.ENOTDIR, f"cannot create {path}: {ancestor} is a file, not a folder", path
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise StorageError(
            errno.EACCES,
            f"cannot create {path}: {ancestor} is not writable (permission denied or a "
            f"read-only file system); choose a writable location",
            path,
        )
    _probe_folder(path, ancestor)


def _probe_folder(path, folder):
    """Creates and removes an empty folder in `folder`, and checks that its
    file system has a free block; raises `StorageError` naming `path`."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}probe-", dir=folder))
    except OSError as error:
        raise StorageError(
            error.errno,
            f"cannot create {path}: {folder} does not accept new files "
            f"({describe_os_error(error)}); choose a writable location",
            path,
        ) from error
    try:
        usage = os.statvfs(folder)
    except OSError:  # no statistics for this file system: the writes will tell
        return
    # root may use the blocks reserved for it; others only the available ones.
    free = usage.f_bfree if getattr(os, "geteuid", lambda: -1)() == 0 else usage.f_bavail
    if usage.f_blocks and free == 0:
        raise StorageError(
            errno.ENOSPC,
            f"cannot write {path}: {os.strerror(errno.ENOSPC)} ({folder} is full); free some space and rerun",
            path,
        )


def makedirs(path):
    """`os.makedirs(path, exist_ok=True)`, raising `StorageError` on failure."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise storage_error(path, error, "create the folder") from error


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it onto `path` on success.

    The temporary file lives in the same directory, so the final `os.replace`
    is atomic, and its name ends with the whole final name, so writers that
    look at the extension (video muxers, `.weights.h5`) see the right one. On
    an exception the temporary file is removed and `path` is left as it was.
    The final file gets the umask's permissions (`apply_umask`).

    Raises:
        StorageError: the temporary file cannot be created, or an `OSError`
            (full disk, ...) was raised while writing or renaming it; any
            other exception of the writer passes through unchanged.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    makedirs(directory)
    try:
        handle, tmp = tempfile.mkstemp(
            prefix=TEMPORARY_PREFIX, suffix=f"-{os.path.basename(path)}", dir=directory
        )
    except OSError as error:
        raise storage_error(path, error) from error
    os.close(handle)
    try:
        try:
            yield tmp
            apply_umask(tmp)
            os.replace(tmp, path)
        except StorageError:
            raise
        except OSError as error:
            raise storage_error(path, error) from error
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            handle.write(text)


def atomic_write_json(path, data):
    """Writes `data` as indented JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def clean_stale_temporaries(root):
    """Removes the `.tmp-*` files and folders under `root` that a killed
    atomic write left behind. Call it when a job starts, before it writes.

    Returns:
        sorted list of the paths removed.
    """
    import shutil

    removed = []
    if not os.path.isdir(root):
        return removed
    for folder, subfolders, files in os.walk(root):
        for name in list(subfolders):
            if name.startswith(TEMPORARY_PREFIX) or (name.startswith(".") and ".tmp-" in name):
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
                subfolders.remove(name)
                removed.append(os.path.join(folder, name))
        for name in files:
            if name.startswith(TEMPORARY_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, name))
                removed.append(os.path.join(folder, name))
    return sorted(removed)


def sha256_of(path, chunk=1 << 20):
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path):
    """Where the sha256 of `path` is recorded: `<path>.sha256`."""
    return os.fspath(path) + CHECKSUM_SUFFIX


def write_checksum(path, digest=None):
    """Records the sha256 of `path` in `<path>.sha256` (atomically, in
    `sha256sum` format, so `sha256sum -c` checks it too). Returns the digest.

    Args:
        path: the file.
        digest: its sha256 when already known (e.g. the file is about to
            be renamed into place); computed from `path` otherwise.
    """
    digest = digest or sha256_of(path)
    atomic_write_text(checksum_path(path), f"{digest}  {os.path.basename(path)}\n")
    return digest


def verify_checksum(path, required=False):
    """Checks `path` against the sha256 recorded beside it.

    Args:
        path: the file.
        required: when False a file with no recorded checksum (written before
            checksums existed) passes.

    Returns:
        True when a recorded checksum matched, False when none was recorded.

    Raises:
        ChecksumError: the content differs from the recorded sha256, or
            `required` and none is recorded; the message names the file.
    """
    record = checksum_path(path)
    if not os.path.exists(record):
        if required:
            raise ChecksumError(f"{path} has no recorded checksum ({record} is missing)")
        return False
    with open(record) as handle:
        expected = handle.read().split()[:1]
    actual = sha256_of(path)
    if expected != [actual]:
        raise ChecksumError(
            f"{path} is damaged: its sha256 is {actual} but {record} records "
            f"{expected[0] if expected else 'nothing'}; restore the file or delete it "
            f"(and its .sha256) to retrain from an earlier point"
        )
    return True
