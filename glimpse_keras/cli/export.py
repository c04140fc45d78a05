"""Export a trained run as a SavedModel for TensorFlow Serving.

    python export.py --run runs/demo --output models/glimpse_clouds
    python export.py --run runs/ntu_xsub --output models/glimpse_clouds --version 3
    python export.py --run runs/demo --output models/glimpse_clouds --serving-base-path /models/glimpse_clouds

Writes models/glimpse_clouds/<version>/ (saved_model.pb + variables/; the
next free version by default) and models/models.config, then serve with

    tensorflow_model_server --rest_api_port=8501 --port=8500 \\
        --model_config_file=models/models.config

and query it with examples/serving_client.py. The signatures are described in
glimpse_keras/export.py.

The export always runs Keras on TensorFlow (the SavedModel is TensorFlow's
format), whatever backend trained the run: the weights files are the same on
TensorFlow and JAX.
"""

import argparse
import os
import sys

from glimpse_keras.arguments import at_least
from glimpse_keras.cli import prologue
from glimpse_keras.errors import GlimpseError


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[prologue.parent_parser()])
    parser.add_argument("--run", required=True, help="run directory written by train.py")
    parser.add_argument("--output", required=True, help="model base path, e.g. models/glimpse_clouds")
    parser.add_argument("--version", type=at_least(1), help="version number (default: the next free one)")
    parser.add_argument("--stage", help="stage to export (default: the run's last stage)")
    parser.add_argument("--weights", help="weights file (default: the stage's final weights)")
    parser.add_argument("--model-name", help="served name (default: the --output folder's name)")
    parser.add_argument("--serving-base-path",
                        help="base path written into models.config as the server sees it "
                             "(default: the absolute --output)")
    parser.add_argument("--clips", type=at_least(1), help="clips averaged by whole_video (default: data.clips_per_video)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.backend not in (None, "tensorflow"):
        return prologue.bad_argument(
            f"--backend {args.backend}: the export runs on TensorFlow (a SavedModel is TensorFlow's format); "
            "the weights of a run trained on any backend load there")
    try:
        prologue.start(args, backend="tensorflow")
    except GlimpseError as error:  # Keras already imported on another backend
        return prologue.bad_argument(error)
    from glimpse_keras import export as export_lib
    from glimpse_keras import runs
    from glimpse_keras.io_utils import check_output_location

    try:
        # The destination is checked before the model is built.
        check_output_location(args.output, directory=True)
        model, experiment = runs.load_run(args.run, stage_name=args.stage, weights=args.weights)
        result = export_lib.export_for_serving(
            model,
            args.output,
            version=args.version,
            model_name=args.model_name,
            serving_base_path=args.serving_base_path,
            **experiment.serving_settings(clips=args.clips),
        )
    except GlimpseError as error:
        return prologue.fail(error)
    print(f"SavedModel:    {result['saved_model']} (version {result['version']})")
    print(f"models.config: {result['models_config']} (model name {result['model_name']!r})")
    print(f"serve:         tensorflow_model_server --rest_api_port=8501 --port=8500 "
          f"--model_config_file={os.path.abspath(result['models_config'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
