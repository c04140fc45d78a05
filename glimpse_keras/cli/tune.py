"""Search the number of glimpses G, workers C, the learning rate and the loss
weights of Glimpse Clouds with keras-tuner.

    python tune.py --max-trials 8                       # the demo config: stage 1 trained once, stage 2 tuned
    python tune.py --config configs/ntu_xsub.yaml --data-dir /data/nturgbd \
        --tuner hyperband --init-from runs/ntu_xsub --output-dir runs/tune_xsub
    python tune.py --space my_space.yaml --space-set num_glimpses.max=6 \
        --space-set attraction_weight=null

Each trial trains the LAST stage of the config through train.py's own stage
runner, starting from a finished run of the stages before it: --init-from
RUN_DIR, or, without it, those stages trained once into OUT/init_run and
reused. Trials are scored on a validation split carved from the training
subjects (--validation-fraction, default 0.2); the test split is never read.
Rerunning the same command resumes the search in --output-dir: finished
trials are kept, an interrupted one is retried.

Results: OUT/results.csv and OUT/results.md (one row per trial, best first),
OUT/best_config.yaml (your config with the best values:
`python train.py --config OUT/best_config.yaml` trains the final model on the
whole training split and scores it on the test split) and
OUT/best_trial_config.yaml (the best trial alone: with the printed
--init-from, train.py reproduces its validation score).

Search-space file (YAML), merged into the defaults entry by entry:

    num_glimpses: {type: int, min: 1, max: 6}
    learning_rate: {type: float, min: 1.0e-5, max: 1.0e-3, sampling: log}
    pose_weight: null                         # not tuned: keep the config's value
    batch_size: {type: choice, values: [4, 8], target: stage.batch_size}
"""

import argparse
import os
import sys

from glimpse_keras import config as config_lib
from glimpse_keras.arguments import at_least
from glimpse_keras.cli import default_config_path, prologue
from glimpse_keras.errors import GlimpseError

DEFAULT_CONFIG = default_config_path("demo.yaml")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[prologue.parent_parser()],
    )
    config_lib.add_config_arguments(parser, DEFAULT_CONFIG, "train.stages.1.epochs=2")
    parser.add_argument("--tuner", choices=("random", "hyperband", "bayesian"), default="random",
                        help="search algorithm (bayesian needs scipy and scikit-learn)")
    parser.add_argument("--max-trials", type=at_least(1), default=10,
                        help="trials in total, counting finished ones (random, bayesian)")
    parser.add_argument("--objective", default="val_accuracy",
                        choices=("val_accuracy", "val_top5_accuracy", "val_loss", "val_class_loss"),
                        help="metric on the validation split that ranks the trials")
    parser.add_argument("--space", metavar="FILE", help="search-space YAML merged into the default space")
    parser.add_argument("--space-set", dest="space_overrides", action="append", default=[],
                        metavar="NAME.KEY=VALUE",
                        help="change one search-space entry, e.g. num_workers.max=6 or pose_weight=null")
    parser.add_argument("--output-dir", default=os.path.join("runs", "tune"),
                        help="search directory; an existing search in it is resumed (default: runs/tune)")
    parser.add_argument("--init-from", metavar="RUN_DIR",
                        help="finished training run whose final model initialises every trial "
                             "(default: the stages before the tuned one, trained once into OUT/init_run)")
    parser.add_argument("--validation-fraction", type=float, metavar="F",
                        help="share of the training subjects held out to score the trials "
                             "(default: the config's data.validation_fraction, else 0.2)")
    parser.add_argument("--hyperband-max-epochs", type=at_least(2),
                        help="Hyperband's largest epoch budget (default: the tuned stage's epochs)")
    parser.add_argument("--cache-dir", help="generated/converted data (default: beside --output-dir)")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write OUT/logs/")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        prologue.start(args)
    except GlimpseError as error:  # a backend this process cannot use
        return prologue.bad_argument(error)
    from glimpse_keras import tuning
    from glimpse_keras.experiment import Experiment

    try:
        config = config_lib.load_config(args.config or DEFAULT_CONFIG, config_lib.overrides_from_args(args))
        # Your own videos: the class count; pose losses off without keypoints.
        for message in Experiment(config).adapt_to_data():
            print(message)
        tuning.search_config_of(config, args.validation_fraction)  # a bad fraction: exit code 2
        space = tuning.load_search_space(args.space, args.space_overrides)
        tuning.check_search_space(config, space)
    except (config_lib.ConfigError, tuning.SearchSpaceError) as error:
        return prologue.bad_argument(error)
    try:
        summary = tuning.run_search(
            config,
            args.output_dir,
            tuner=args.tuner,
            max_trials=args.max_trials,
            space=space,
            objective=args.objective,
            init_from=args.init_from,
            cache_root=args.cache_dir,
            hyperband_max_epochs=args.hyperband_max_epochs,
            tensorboard_dir=None if args.no_tensorboard else os.path.join(args.output_dir, "logs"),
            validation_fraction=args.validation_fraction,
        )
    except GlimpseError as error:
        return prologue.fail(error)
    print(f"\n{summary['num_trials']} trial(s) in {args.output_dir} "
          f"({len(summary['trials_run'])} run now).")
    print(f"  results      {summary['results_csv']}, {summary['results_md']}")
    with open(summary["results_md"]) as handle:
        print("\n" + handle.read().rstrip() + "\n")
    if summary["best_trial"] is None:
        print("  no trial finished with a score; see the status column of the results")
        return 1
    print(f"  best trial   {summary['best_trial']}: {args.objective} = {summary['best_score']:.4f}")
    for name, value in summary["best_values"].items():
        print(f"    {name:<18} {value:.6g}" if isinstance(value, float) else f"    {name:<18} {value}")
    print(f"  best config  {summary['best_config']}")
    print(f"  weights      {summary['best_weights']}")
    print(f"\nTrain the final model (all stages, whole training split, scored on the test split):\n"
          f"  python train.py --config {summary['best_config']}")
    again = f" --init-from {summary['init_from']}" if summary["init_from"] else ""
    print(f"Reproduce the best trial (its validation score):\n"
          f"  python train.py --config {summary['best_trial_config']}{again}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
