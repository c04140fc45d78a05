"""Entry point of `python -m glimpse_keras.visualize` (`glimpse_keras.cli.visualize`)."""

import sys

from glimpse_keras.cli.visualize import main

if __name__ == "__main__":
    sys.exit(main())
