"""Choosing which samples (or performances) receive each injected defect.

Selection is deterministic given (seed, configuration): the eligible keys are ranked by a hash of
(seed, defect, key) and the first `count` are taken, where count = max(minimum, round(rate * n)),
capped at n. Presets set minimum = 1 so that even the tiny preset contains every defect once.
"""

from __future__ import annotations

from collections.abc import Sequence

from glimpse_keras.data.synthetic.seeding import unit_hash


def choose_keys(seed: int, defect: str, eligible: Sequence, rate: float, minimum: int) -> list:
    """Returns the keys of `eligible` that get `defect`, in ranking order."""
    if not eligible:
        return []
    count = min(len(eligible), max(int(minimum), int(round(float(rate) * len(eligible)))))
    ranked = sorted(eligible, key=lambda key: unit_hash(seed, "defect", defect, key))
    return list(ranked[:count])


def assign_defects(seed: int, defects_config: dict, eligible_by_defect: dict) -> dict:
    """Maps defect name -> set of chosen keys, for every defect in `eligible_by_defect`.

    Args:
      defects_config: defect name -> [rate, minimum] (from the generator config).
      eligible_by_defect: defect name -> list of eligible keys (sample names or performance keys).
    """
    chosen = {}
    for name, eligible in eligible_by_defect.items():
        rate, minimum = defects_config[name]
        chosen[name] = set(choose_keys(seed, name, eligible, rate, minimum))
    return chosen
