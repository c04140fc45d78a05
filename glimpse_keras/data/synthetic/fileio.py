"""Atomic file writes: a temporary name in the same directory, then os.replace.

An interrupted run therefore never leaves a half-written file under a final name.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable


def temporary_path_for(path: str) -> str:
    """Creates an empty temporary file beside `path` (same directory, same suffix) and returns its name."""
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(name)[1]
    handle, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".part{suffix}", dir=directory)
    os.close(handle)
    return temp


def write_atomically(path: str, produce: Callable[[str], None]) -> None:
    """Calls `produce(temp_path)` to write the content, then renames the temp file to `path`.

    The temp file is removed if `produce` raises.
    """
    temp = temporary_path_for(path)
    try:
        produce(temp)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def write_bytes_atomically(path: str, data: bytes) -> None:
    """Writes `data` to `path` atomically."""

    def produce(temp: str) -> None:
        with open(temp, "wb") as stream:
            stream.write(data)

    write_atomically(path, produce)


def write_text_atomically(path: str, text: str, newline: str = "\n") -> None:
    """Writes `text` (with '\\n' line breaks) to `path` atomically, translating breaks to `newline`."""
    if newline != "\n":
        text = text.replace("\n", newline)
    write_bytes_atomically(path, text.encode("ascii"))


def write_json_atomically(path: str, payload: object) -> None:
    """Writes `payload` as indented JSON to `path` atomically."""
    write_text_atomically(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
