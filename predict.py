"""Classify videos with a trained run or an exported SavedModel (top-5 class names).

    python predict.py VIDEO_OR_FOLDER [...] --run runs/demo [--json] [--output-video out.mp4]
    python predict.py VIDEO_OR_FOLDER [...] --saved-model runs/demo/export/glimpse_clouds/1

The same command as `glimpse-predict` (see glimpse_keras/cli/predict.py).
"""

import sys

from glimpse_keras.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
