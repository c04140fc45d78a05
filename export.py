"""Export a trained run as a SavedModel for TensorFlow Serving.

A thin wrapper kept so that `python export.py` works from a checkout; the
program is `glimpse_keras.cli.export` (installed as `glimpse-export`).
Run `python export.py --help` for its options.
"""

import sys

from glimpse_keras.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
