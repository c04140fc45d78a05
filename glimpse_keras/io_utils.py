"""Atomic file writes: a reader never sees a half-written file."""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it onto `path` on success.

    The temporary file lives in the same directory, so the final `os.replace`
    is atomic, and its name ends with the whole final name, so writers that
    look at the extension (video muxers, `.weights.h5`) see the right one. On
    an exception the temporary file is removed and `path` is left as it was.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(
        prefix=".tmp-", suffix=f"-{os.path.basename(path)}", dir=directory
    )
    os.close(handle)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            handle.write(text)


def atomic_write_json(path, data):
    """Writes `data` as indented JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
