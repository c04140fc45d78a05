"""Synthetic NTU RGB+D / N-UCLA data in the datasets' raw on-disk layouts (DATASETS.md section 5).

Command line: `python -m glimpse_keras.data.synthetic --format {ntu,nucla} --output DIR [--preset tiny|demo]`.
Python: `generate(dataset, output, preset=..., seed=..., workers=..., overrides=...)`.
"""

from glimpse_keras.data.synthetic.presets import PRESETS, SyntheticConfigError, resolve_config
from glimpse_keras.data.synthetic.runner import generate

# Bumped whenever a change to the generator's code changes what it draws or writes for the same
# configuration, so that caches of generated data keyed by it are made anew.
GENERATOR_VERSION = 2

__all__ = ["GENERATOR_VERSION", "PRESETS", "SyntheticConfigError", "generate", "resolve_config"]
