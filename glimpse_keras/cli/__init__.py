"""The command-line programs, installed as console scripts by pyproject.toml.

| console script      | function                                  | root script (same thing)     |
| ------------------- | ----------------------------------------- | ---------------------------- |
| glimpse-train       | `glimpse_keras.cli.train:main`            | `python train.py`            |
| glimpse-evaluate    | `glimpse_keras.cli.evaluate:main`         | `python evaluate.py`         |
| glimpse-export      | `glimpse_keras.cli.export:main`           | `python export.py`           |
| glimpse-tune        | `glimpse_keras.cli.tune:main`             | `python tune.py`             |
| glimpse-predict     | `glimpse_keras.cli.predict:main`          | `python predict.py`          |
| glimpse-visualize   | `glimpse_keras.cli.visualize:main`        | `python -m glimpse_keras.visualize` |

Every command starts the same way (`prologue`: `--backend` and `--verbose`,
quiet framework logs, the Keras backend chosen before Keras is imported) and
catches `errors.GlimpseError` once. Each `main(argv=None)` returns the exit
code (0 success, 1 failure, 2 bad arguments); the console scripts pass it to
`sys.exit`. Nothing here is imported by the library.
"""

import os

# The repository checkout holding configs/ (beside the package), when there is one.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_config_path(name="demo.yaml"):
    """Path of a config shipped in the repository's configs/ folder.

    Looks beside the package first (a checkout, or `pip install -e .`), then
    in ./configs of the working directory. The first existing path wins; when
    neither exists the first is returned, so the error message of
    `config.load_config` names where the file was expected.
    """
    candidates = [os.path.join(REPO_ROOT, "configs", name), os.path.join(os.getcwd(), "configs", name)]
    for path in candidates:
        if os.path.exists(path):
            return path
    return candidates[0]
