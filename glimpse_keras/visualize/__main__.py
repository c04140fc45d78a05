"""Entry point of `python -m glimpse_keras.visualize` (see `cli`)."""

import sys

from glimpse_keras.visualize.cli import main

if __name__ == "__main__":
    sys.exit(main())
