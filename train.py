"""Train Glimpse Clouds.

A thin wrapper kept so that `python train.py` works from a checkout; the
program is `glimpse_keras.cli.train` (installed as `glimpse-train`).
Run `python train.py --help` for its options.
"""

import sys

from glimpse_keras.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
