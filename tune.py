"""Search the hyperparameters of Glimpse Clouds (glimpses G, workers C, learning rate, loss weights).

A thin wrapper kept so that `python tune.py` works from a checkout; the
program is `glimpse_keras.cli.tune` (installed as `glimpse-tune`).
Run `python tune.py --help` for its options.
"""

import sys

from glimpse_keras.cli.tune import main

if __name__ == "__main__":
    sys.exit(main())
