"""Deterministic random streams keyed by names, so each sample is a function of (seed, its keys)."""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(*keys: object) -> int:
    """Returns a 64-bit integer hash of `keys` that is identical across processes and runs.

    Python's built-in `hash` is salted per process, so it cannot be used for reproducible data.
    """
    digest = hashlib.blake2b(repr(keys).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """Returns a numpy Generator determined only by `seed` and `keys` (any reprs)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, stable_hash(*keys)]))


def unit_hash(seed: int, *keys: object) -> float:
    """Returns a float in [0, 1) determined by `seed` and `keys`; used to rank samples."""
    return stable_hash(int(seed), *keys) / 2.0**64
