"""The generator's manifest (`synth_manifest.json`): configuration plus one record per sample.

It is rewritten atomically every few seconds and at the end, so an interrupted run keeps the records
of the samples it finished and a re-run skips them. Readers of the dataset never need this file.
"""

from __future__ import annotations

import json
import os

from glimpse_keras.data.synthetic.fileio import write_json_atomically
from glimpse_keras.errors import GlimpseError

MANIFEST_NAME = "synth_manifest.json"
MANIFEST_VERSION = 1


class ManifestMismatchError(GlimpseError, ValueError):
    """The output directory holds a manifest written with a different configuration."""


def load_manifest(root: str, dataset: str, seed: int, config: dict) -> dict:
    """Returns the existing manifest's records keyed by sample id, or {} when there is none.

    Raises:
      ManifestMismatchError: the manifest was written for another format, seed or configuration.
    """
    path = os.path.join(root, MANIFEST_NAME)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as stream:
        try:
            manifest = json.load(stream)
        except ValueError as error:  # not JSON, or not even UTF-8 text
            raise ManifestMismatchError(f"{path}: not valid JSON ({error}); remove it or use another --output")
    if not isinstance(manifest, dict):
        raise ManifestMismatchError(f"{path}: expected a JSON object, got {type(manifest).__name__}; remove it "
                                    f"or use another --output")
    for key, expected in (("format", dataset), ("seed", seed), ("config", config)):
        if manifest.get(key) != expected:
            raise ManifestMismatchError(f"{path}: existing manifest has a different {key!r} "
                                        f"({manifest.get(key)!r} != {expected!r}); use another --output")
    return dict(manifest.get("samples", {}))


def save_manifest(root: str, dataset: str, seed: int, preset: str, config: dict, records: dict,
                  complete: bool, extra: dict | None = None) -> None:
    """Writes the manifest atomically; `complete` is False while a run is still in progress."""
    payload = {"version": MANIFEST_VERSION, "format": dataset, "seed": seed, "preset": preset, "config": config,
               "complete": complete, "num_samples": len(records), "samples": dict(sorted(records.items()))}
    payload.update(extra or {})
    write_json_atomically(os.path.join(root, MANIFEST_NAME), payload)
