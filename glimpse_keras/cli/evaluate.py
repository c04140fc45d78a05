"""Evaluate a trained run with multi-clip testing.

    python evaluate.py --run runs/demo
    python evaluate.py --run runs/ntu_xsub --data-dir /data/ntu_tfrecords --clips 5 --output report.json

Logits are averaged over K clips per video (fixed temporal offsets, centre
crop; or `--test-sampling random`, the authors' test: a random frame per bin and
a random crop per clip, seeded by the run's train.seed and the video id).
Writes a JSON report (top-1, top-5, per-class accuracy, confusion matrix, every
video evaluated with its prediction, samples skipped by conversion) and a PNG of
the confusion matrix beside it.

`--placement-controls` also scores a glimpse model with its glimpse places
swapped (the dataset-mean schedule, another video's places, random centres,
the hand joints; `glimpse_keras.placement`), written into the report under
attention.placement_controls: does the model need the places its glimpses
chose for each video?
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
    parser.add_argument("--stage", help="stage to evaluate (default: the last)")
    from glimpse_keras.data import datasets

    parser.add_argument("--dataset", choices=datasets.names(), help="override the run's dataset")
    parser.add_argument("--data-dir", help="override the run's data directory (raw or converted)")
    parser.add_argument("--protocol", choices=("xsub", "xview", "xsub120", "xset120"),
                        help="override the run's protocol")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--clips", type=at_least(1), help="clips per video (default: the config's, 5)")
    from glimpse_keras.config import DataConfig, field_choices

    samplings = field_choices(DataConfig.__dataclass_fields__["test_sampling"].metadata)
    parser.add_argument("--test-sampling", choices=samplings,
                        help="how the clips are cut (overrides the run's data.test_sampling)")
    parser.add_argument("--output", help="report path (default: RUN/evaluation/<stage>/<split>_report.json)")
    parser.add_argument("--placement-controls", action="store_true",
                        help="also score the glimpse model with its glimpse places swapped (a second pass)")
    parser.add_argument("--placement-seed", type=int, default=0,
                        help="seed of the swapped places (default 0)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        prologue.start(args)
    except GlimpseError as error:  # a backend this process cannot use
        return prologue.bad_argument(error)
    from glimpse_keras import evaluation, runs
    from glimpse_keras.io_utils import check_output_location

    try:
        model, experiment = runs.load_run(args.run, args.stage)
        config = experiment.config
        data = config.data
        if args.dataset:
            data.dataset = args.dataset
        if args.data_dir:
            data.data_dir = args.data_dir
        if args.protocol:
            data.protocol = args.protocol
        if args.test_sampling:
            data.test_sampling = args.test_sampling
        stage = args.stage or config.train.stages[-1].name
        output = args.output or runs.report_path(args.run, stage, args.split)
        # Checked before minutes of evaluation, not after.
        check_output_location(output)
        check_output_location(os.path.splitext(output)[0] + "_confusion.png")
        experiment.prepare_data(runs.data_cache(args.run))
        report = evaluation.evaluate_split(
            model, experiment, split=args.split, clips=args.clips, output=output,
            stage=stage, weights=runs.final_weights(args.run, stage),
            placement_controls=args.placement_controls, placement_seed=args.placement_seed,
        )
    except GlimpseError as error:
        return prologue.fail(error)
    print(f"videos evaluated: {report['videos']} of {report['split_size']} "
          f"({report['protocol']} {report['split']}, {report['clips_per_video']} clips each"
          + (", random frames and crops)" if report["test_sampling"] == "random" else ")"))
    print(f"top-1: {100 * report['top1']:.2f}%   top-5: {100 * report['top5']:.2f}%   "
          f"chance: {100 * report['chance']:.2f}%")
    skipped = report["skipped_by_conversion"]
    if skipped:
        print(f"skipped during conversion ({len(skipped)}):")
        for entry in skipped:
            print(f"  {entry['sample']}: {entry['reason']}")
    if report["attention"]:
        from glimpse_keras.diagnostics import format_diagnostics

        print(f"glimpse attention ({report['attention']['clips']} clips):")
        print("\n".join(format_diagnostics(report["attention"])))
        controls = report["attention"].get("placement_controls")
        if controls:
            from glimpse_keras.placement import format_placement_controls

            print("top-1 with the glimpses placed at:")
            print("\n".join(format_placement_controls(controls)))
    elif args.placement_controls:
        print("no placement controls: the model has no glimpses")
    print(f"report: {output}\nconfusion matrix: {report['confusion_png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
