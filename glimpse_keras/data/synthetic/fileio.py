"""Atomic file writes: a temporary name in the same directory, then os.replace.

An interrupted run therefore never leaves a half-written file under a final name.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from glimpse_keras.io_utils import atomic_path


def write_atomically(path: str, produce: Callable[[str], None]) -> None:
    """Calls `produce(temp_path)` to write the content, then renames the temp file to `path`.

    The temp file is removed if `produce` raises.
    """
    with atomic_path(path) as temp:
        produce(temp)


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
