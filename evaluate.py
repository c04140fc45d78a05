"""Evaluate a trained run with multi-clip testing.

A thin wrapper kept so that `python evaluate.py` works from a checkout; the
program is `glimpse_keras.cli.evaluate` (installed as `glimpse-evaluate`).
Run `python evaluate.py --help` for its options.
"""

import sys

from glimpse_keras.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
