"""Train Glimpse Clouds.

    python train.py                                   # the synthetic demo, end to end
    python train.py --dataset ntu --data-dir /data/nturgbd --config configs/ntu_xsub.yaml
    python train.py --dataset nucla --data-dir /data/multiview_action \\
        --config configs/nucla.yaml --init-from runs/ntu_xsub
    python train.py --config configs/tiny.yaml --set train.stages.0.epochs=1 --resume
    python train.py --backend jax                     # train on JAX (tf.data still feeds it)
    python train.py --backend jax --strategy data_parallel    # every local GPU (docs/scaling.md)
    python train.py --backend jax --strategy data_parallel \
        --coordinator-address host0:1234 --num-processes 2 --process-id 0    # and 1 on the other host

With no arguments it runs the demo: generates the synthetic NTU-format dataset
(cached), converts it, trains stage 1 and stage 2 of `configs/demo.yaml`,
evaluates on the Cross-Subject test split, exports a SavedModel and prints
where each result is.
"""

import argparse
import os
import sys
import time

from glimpse_keras import config as config_lib
from glimpse_keras.cli import default_config_path, prologue
from glimpse_keras.errors import GlimpseError

DEFAULT_CONFIG = default_config_path("demo.yaml")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[prologue.parent_parser()])
    config_lib.add_config_arguments(parser, DEFAULT_CONFIG, "model.num_glimpses=4")
    parser.add_argument("--output-dir", help="run directory (default: runs/<config name>)")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true",
                        help="continue the run in --output-dir (which must hold one); changed learning "
                             "rates and epochs are applied and recorded, other changes refused")
    resume.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --output-dir (without --resume or --overwrite "
                             "a folder holding a run is refused)")
    parser.add_argument("--init-from", metavar="RUN_DIR",
                        help="start from a trained run's model (fine-tuning; new heads where sizes differ)")
    parser.add_argument("--strategy", choices=config_lib.STRATEGIES,
                        help="overrides train.strategy: mirrored or multi_worker (tf.distribute, TensorFlow), "
                             "data_parallel (keras.distribution, JAX: every local device, several hosts with "
                             "the three options below)")
    cluster = parser.add_argument_group(
        "several processes (--strategy data_parallel on JAX; docs/scaling.md)",
        "Run the same command in every process, changing only --process-id.",
    )
    cluster.add_argument("--coordinator-address", metavar="HOST:PORT",
                         help="process 0's address (default $KERAS_DISTRIBUTION_JOB_ADDRESSES)")
    cluster.add_argument("--num-processes", type=int, metavar="N",
                         help="processes in the job (default $KERAS_DISTRIBUTION_NUM_PROCESSES)")
    cluster.add_argument("--process-id", type=int, metavar="I",
                         help="this process, 0 to N-1; 0 writes the run folder "
                              "(default $KERAS_DISTRIBUTION_PROCESS_ID)")
    parser.add_argument("--no-evaluate", action="store_true", help="skip the test-split evaluation")
    parser.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    overrides = config_lib.overrides_from_args(args)
    if args.strategy:
        overrides.append(f"train.strategy={args.strategy}")
    config_path = args.config or DEFAULT_CONFIG
    try:
        backend = prologue.start(args)
    except GlimpseError as error:  # a backend this process cannot use
        return prologue.bad_argument(error)
    from glimpse_keras.experiment import Experiment

    try:
        experiment = Experiment(config_lib.load_config(config_path, overrides))
        # The config fitted to its data (your own videos: the class count;
        # pose losses off without keypoints).
        for message in experiment.adapt_to_data():
            print(message)
    except config_lib.ConfigError as error:
        return prologue.bad_argument(error)
    config = experiment.config
    name = os.path.splitext(os.path.basename(config_path))[0]
    run_dir = args.output_dir or os.path.join("runs", name)

    from glimpse_keras import parallel

    cluster = (args.coordinator_address, args.num_processes, args.process_id)
    if config.train.strategy == parallel.DATA_PARALLEL:
        try:
            parallel.check_strategy(config.train.strategy, backend)
            # Before anything runs on JAX.
            parallel.join_cluster(*cluster)
        except config_lib.ConfigError as error:
            return prologue.bad_argument(error)
        except parallel.ClusterError as error:
            return prologue.fail(error)
    elif any(value is not None for value in cluster):
        return prologue.bad_argument("--coordinator-address, --num-processes and --process-id need "
                                     "--strategy data_parallel (on JAX)")

    from glimpse_keras import workflow

    started = time.time()
    try:
        results = workflow.run(
            experiment,
            run_dir,
            resume=args.resume,
            overwrite=args.overwrite,
            init_from=args.init_from,
            evaluate=not args.no_evaluate,
            export=not args.no_export,
        )
    except GlimpseError as error:
        return prologue.fail(error)
    if not parallel.is_chief():
        print(f"\nFinished in {(time.time() - started) / 60:.1f} min; process 0 wrote the results in {run_dir}.")
        return 0
    print(f"\nFinished in {(time.time() - started) / 60:.1f} min. Results:")
    attention = results.pop("attention", None)
    for key, value in results.items():
        print(f"  {key:<30} {value}")
    if attention:
        from glimpse_keras.diagnostics import format_diagnostics

        print(f"Glimpse attention on the test clips ({attention['clips']} clips):")
        print("\n".join(format_diagnostics(attention, indent="  ")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
