"""Paths on the local disk or on any file system `tf.io.gfile` knows.

The converter, the dataset readers and the training input read and write
their files through these functions, so `--data-dir` and `--output` may be a
local path or a URL such as `gs://bucket/ntu` (built into TensorFlow), or
`ram://...` (TensorFlow's in-memory file system, used by the tests). Another
scheme works once a TensorFlow file-system plugin registers it.

- A local path (anything without '://') goes to `os` and `open()`: the same
  calls and errors as without this module, and no TensorFlow import (the
  local engine's decoding processes never load TensorFlow).
- A URL goes to `tf.io.gfile`. Its errors are raised as `OSError`s naming the
  path (`FileNotFoundError`, `PermissionError`, `FileExistsError`), so the
  callers' `except OSError` keep working; a failure that may pass if tried
  again (the service unavailable, a deadline, a quota) is a
  `TransientStorageError`, which the converter lets through so that a Beam
  runner retries the work instead of recording a bad sample.

`os.path.join`, `basename`, `dirname` and `splitext` work on URLs on POSIX;
`absolute`, `normpath`, `relpath` and `isabs` here replace the `os.path`
functions that do not.

Writes that must not be seen half-done go through `atomic_write_json` /
`atomic_write_bytes` and `replace`: a temporary file beside the target, then a
rename with overwrite. A local rename (and one on `ram://`) is atomic. On an
object store (gs://) a rename is a copy then a delete: the target object
appears whole or not at all, but the temporary one is visible until the
delete, and an interrupted rename can leave it behind.
"""

import builtins
import contextlib
import errno
import io
import json
import os
import posixpath
import shutil
import tempfile
import uuid

from glimpse_keras import io_utils
from glimpse_keras.errors import GlimpseError

COPY_CHUNK_BYTES = 16 << 20
# URL prefixes whose tf.io.gfile listings end every sub-folder's name with '/'.
_LISTINGS_MARK_FOLDERS = ("gs://",)


class TransientStorageError(GlimpseError, OSError):
    """A remote file system failed in a way that may pass if tried again
    (unavailable, deadline exceeded, aborted, resources exhausted)."""


def is_local(path):
    """True for a local path, False for a URL ('scheme://...')."""
    return "://" not in os.fspath(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


@contextlib.contextmanager
def _os_errors(path):
    """Re-raises TensorFlow's file-system errors as `OSError`s naming `path`."""
    from tensorflow import errors

    try:
        yield
    except errors.OpError as error:
        kinds = (
            (errors.NotFoundError, FileNotFoundError, errno.ENOENT),
            (errors.PermissionDeniedError, PermissionError, errno.EACCES),
            (errors.UnauthenticatedError, PermissionError, errno.EACCES),
            (errors.AlreadyExistsError, FileExistsError, errno.EEXIST),
            (errors.UnavailableError, TransientStorageError, errno.EAGAIN),
            (errors.DeadlineExceededError, TransientStorageError, errno.ETIMEDOUT),
            (errors.AbortedError, TransientStorageError, errno.EAGAIN),
            (errors.ResourceExhaustedError, TransientStorageError, errno.EAGAIN),
        )
        kind, code = next(((k, c) for t, k, c in kinds if isinstance(error, t)), (OSError, errno.EIO))
        raise kind(code, error.message, os.fspath(path)) from error


# === Paths ===


def absolute(path):
    """`os.path.abspath` for a local path; a URL unchanged."""
    return os.path.abspath(path) if is_local(path) else os.fspath(path)


def isabs(path):
    """True for an absolute local path or a URL."""
    return not is_local(path) or os.path.isabs(path)


def _split_url(url):
    scheme, rest = url.split("://", 1)
    authority, _, name = rest.partition("/")
    return f"{scheme}://{authority}", "/" + name


def normpath(path):
    """`os.path.normpath`; on a URL, of the part after 'scheme://authority'."""
    if is_local(path):
        return os.path.normpath(path)
    root, name = _split_url(os.fspath(path))
    name = posixpath.normpath(name)
    return root + ("" if name == "/" else name)


def relpath(path, start):
    """`path` relative to `start` ('..' first when it lies outside), both made
    absolute; a URL and a local path, or two URLs of different authorities,
    are always outside each other."""
    if is_local(path) and is_local(start):
        return os.path.relpath(os.path.abspath(path), os.path.abspath(start))
    forms = []
    for value in (path, start):
        root, name = ("", os.path.abspath(value)) if is_local(value) else _split_url(os.fspath(value))
        forms.append(posixpath.join("/", root.replace("://", ":/"), name.lstrip("/")))
    return posixpath.relpath(*forms)


# === Queries ===


def exists(path):
    if is_local(path):
        return os.path.exists(path)
    with _os_errors(path):
        return _gfile().exists(path)


def isdir(path):
    if is_local(path):
        return os.path.isdir(path)
    with _os_errors(path):
        return _gfile().isdir(path)


def isfile(path):
    if is_local(path):
        return os.path.isfile(path)
    try:
        with _os_errors(path):
            return not _gfile().stat(path).is_directory
    except FileNotFoundError:
        return False


def listdir(path):
    """The names in a folder (no '.' and '..'); FileNotFoundError when absent."""
    if is_local(path):
        return os.listdir(path)
    return [name.rstrip("/") for name in _listdir_marked(path)]


def _listdir_marked(url):
    """The names in a remote folder, each sub-folder's ending with '/'.

    TensorFlow's GCS file system already lists sub-folders that way (GCS
    "prefixes"), so a folder of 57,000 videos costs a few listing requests and
    no request per entry; on other file systems each entry is asked `isdir`.
    """
    with _os_errors(url):
        gfile = _gfile()
        names = gfile.listdir(url)
        if url.startswith(_LISTINGS_MARK_FOLDERS):
            return names
        return [name if name.endswith("/") or not gfile.isdir(posixpath.join(url, name)) else name + "/"
                for name in names]


def walk(top, followlinks=False):
    """`os.walk(top, followlinks=...)`: yields (folder, folder names, file
    names) top-down, and sorting or pruning the folder names in place steers
    the descent. A missing `top` yields nothing."""
    if is_local(top):
        yield from os.walk(top, followlinks=followlinks)
        return
    top = os.fspath(top).rstrip("/")
    try:
        names = _listdir_marked(top)
    except FileNotFoundError:
        return
    folders = [name[:-1] for name in names if name.endswith("/")]
    files = [name for name in names if not name.endswith("/")]
    yield top, folders, files
    for name in folders:
        yield from walk(posixpath.join(top, name))


def getmtime(path):
    """Modification time in seconds since the epoch."""
    if is_local(path):
        return os.path.getmtime(path)
    with _os_errors(path):
        return _gfile().stat(path).mtime_nsec / 1e9


# === Reading ===


def open(path, mode="r", encoding=None, errors=None):  # noqa: A001 - the builtin's twin
    """`builtins.open(path, mode, encoding=..., errors=...)` for a local path.

    A URL can only be read ('r' or 'rb'): its whole content is fetched at
    once (the files read this way, skeletons, lists and JSON indexes, are
    small) and decoded like `open()` would (universal newlines).
    """
    if is_local(path):
        return builtins.open(path, mode, encoding=encoding, errors=errors)
    if mode not in ("r", "rb"):
        raise ValueError(f"{path}: a URL is opened for reading only ('r' or 'rb'), not {mode!r}")
    with _os_errors(path), _gfile().GFile(path, "rb") as handle:
        data = handle.read()
    if mode == "rb":
        return io.BytesIO(data)
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding or "utf-8", errors=errors)


def read_json(path, kind=None, error=None, fix=None, required=None):
    """Reads a JSON file; with `kind`, one that must hold a `kind`.

    Args:
        path: the file (local or a URL).
        kind: None (anything), `dict` or `list`.
        error: the exception class raised when `kind` is given (required
            then, with `fix`).
        fix: what the user can do, appended to the message.
        required: for a dict, {key: type} its entries must have.

    Raises:
        `error`: "cannot read PATH (what is wrong); FIX" for a file that
            cannot be read, is not UTF-8 JSON, or holds something else.
        OSError, ValueError: without `kind`, as `open` and `json.load` raise.
    """
    if kind is None:
        with open(path) as handle:
            return json.load(handle)
    try:
        with open(path) as handle:
            value = json.load(handle)
        if not isinstance(value, kind):
            raise ValueError(f"expected a JSON {'object' if kind is dict else 'list'}, got {type(value).__name__}")
        for key, wanted in (required or {}).items():
            if not isinstance(value.get(key), wanted) or isinstance(value.get(key), bool):
                raise ValueError(f"expected {key!r} to be a {wanted.__name__}, got {value.get(key)!r}")
        return value
    except (OSError, ValueError) as cause:  # ValueError: not JSON, not UTF-8, not the expected content
        raise error(f"cannot read {path} ({cause}); {fix}") from cause


@contextlib.contextmanager
def local_copy(path):
    """Yields a local path holding the file's content, for libraries that need
    one (OpenCV, PyAV). A local `path` is yielded as is; a URL is copied to a
    temporary file (same extension) that is removed afterwards."""
    if is_local(path):
        yield path
        return
    handle, local = tempfile.mkstemp(prefix="glimpse-", suffix=os.path.splitext(path)[1])
    try:
        with builtins.open(handle, "wb") as target, _os_errors(path), _gfile().GFile(path, "rb") as source:
            shutil.copyfileobj(source, target, COPY_CHUNK_BYTES)
        yield local
    finally:
        with contextlib.suppress(OSError):
            os.remove(local)


# === Writing ===


def makedirs(path):
    """`os.makedirs(path, exist_ok=True)`; on a URL, `tf.io.gfile.makedirs`."""
    if is_local(path):
        os.makedirs(path, exist_ok=True)
        return
    with _os_errors(path):
        _gfile().makedirs(path)


def remove(path):
    if is_local(path):
        os.remove(path)
        return
    with _os_errors(path):
        _gfile().remove(path)


def replace(source, target):
    """Renames `source` onto `target`, replacing it (`os.replace`); see the
    module doc for what is atomic where."""
    if is_local(source) and is_local(target):
        os.replace(source, target)
        return
    with _os_errors(target):
        _gfile().rename(source, target, overwrite=True)


def prepare_output_folder(path):
    """Checks that a folder can be written at `path`, and creates it.

    Raises:
        io_utils.StorageError: naming `path` and what is in the way.
    """
    if is_local(path):
        io_utils.check_output_location(path, directory=True)
        io_utils.makedirs(path)
        return
    try:
        if isfile(path):
            raise io_utils.StorageError(errno.ENOTDIR, f"cannot write into {path}: it is a file, not a folder")
        makedirs(path)
    except io_utils.StorageError:
        raise
    except OSError as error:
        raise _storage_error(path, error, "create the folder") from error


def atomic_write_bytes(path, data):
    """Writes `data` to `path` so that no reader sees it half-written: a
    temporary file beside it ('.tmp-<hex>-<name>'), renamed onto it.

    Raises:
        io_utils.StorageError: naming `path` and the cause.
    """
    if is_local(path):
        with io_utils.atomic_path(path) as temporary, builtins.open(temporary, "wb") as handle:
            handle.write(data)
        return
    folder, name = posixpath.split(os.fspath(path))
    temporary = posixpath.join(folder, f"{io_utils.TEMPORARY_PREFIX}{uuid.uuid4().hex}-{name}")
    try:
        makedirs(folder)
        with _os_errors(temporary), _gfile().GFile(temporary, "wb") as handle:
            handle.write(data)
        replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(Exception):
            if exists(temporary):
                remove(temporary)
        if isinstance(error, OSError) and not isinstance(error, io_utils.StorageError):
            raise _storage_error(path, error, "write") from error
        raise


def _storage_error(url, error, action):
    """A `StorageError` naming `url` with the file system's own message."""
    return io_utils.StorageError(error.errno, f"cannot {action} {url}: {error.strerror or error}")


def atomic_write_json(path, data):
    """Writes `data` as indented, key-sorted JSON (as `io_utils.atomic_write_json`)."""
    if is_local(path):
        io_utils.atomic_write_json(path, data)
        return
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
