"""Do the glimpses matter? Glimpse Clouds against its like-for-like controls, per setting, over seeds.

Each setting is a list of config overrides applied to a base config (default `configs/demo.yaml`).
For every seed (the generator's seed and the training seed), stage 1 is trained once per distinct
stage-1 configuration and shared; then each setting trains its stage 2 (Glimpse Clouds) and, beside
it, with the same stage 1 and the same stage-2 budget:
- the matched global model (stage 2 trains the global model with the pose loss), and
- the random control (glimpses at random places, at the scales the attention run used),
and the Glimpse Clouds model is scored again with its glimpse places swapped at test time (the
dataset-mean schedule, another video's places, random centres, the hand joints;
`glimpse_keras.placement`). Per setting the script prints every seed's figures and the paired
differences with their 95% intervals (`glimpse_keras.statistics`):
- GC - matched global, own places - dataset-mean schedule, attention - random control;
- "t" is the Student-t interval over seeds (each seed's difference carries its own test-video
  noise), "boot" a two-level bootstrap over seeds and videos.

    python benchmarks/attention_levers.py --settings demo              # the default job, 5 seeds
    python benchmarks/attention_levers.py --settings demo spatial --seeds 0 1
    python benchmarks/attention_levers.py --list                       # the settings and their overrides

Runs go to `--runs-dir` (default runs/attention_levers); a finished run is not trained again, so an
interrupted script resumes. The markdown tables are printed and written to `--output`.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from demo_runs import ROOT, config_lib, correct_by_video, quiet_console, run_setting, setting_config  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# The authors' behaviour for every lever this script varies (MODEL_SPEC.md sections 2 and 6).
AUTHORS = [
    "model.output_stride=32",
    "model.output_stride_dilation=true",  # no effect at stride 32; the library default
    "model.scale_bias=3.0",
    "loss.diversity_form=inverse",
    "loss.scale_weight=0.0",
    "model.zoomer_reset_each_frame=false",
    "loss.attraction_joints=all",
    "model.locator=linear",
    "model.locator_keypoints=0",
    "model.glimpse_map=res5",
    "train.stages.1.freeze_backbone=true",
]
LOCAL16 = AUTHORS + ["model.output_stride=16", "model.output_stride_dilation=false"]
SCALE0_RESET = LOCAL16 + ["model.scale_bias=0.0", "model.zoomer_reset_each_frame=true"]
HANDS = SCALE0_RESET + ["loss.attraction_joints=hands"]
RES4 = ["train.stages.1.freeze_backbone=false", "train.stages.1.train_backbone_from=res4"]
# The demo before this round's locator levers: hands attraction, res4 and res5 trained in stage 2.
HANDS_RES4 = HANDS + RES4

# name -> (overrides on top of the base config, what it tests).
SETTINGS = {
    "demo": ([], "the demo's defaults (configs/demo.yaml)"),
    "authors": (AUTHORS, "the authors' levers: res5 map 4x4 at 128 px, scale starts at 0.95, 1/(1+d) diversity, "
                         "frozen backbone"),
    "hands_res4": (HANDS_RES4, "the paper's linear locator on c_t, glimpses attracted to the hands, res4 and res5 "
                               "trained in stage 2 (the previous demo)"),
    "keypoints": (HANDS_RES4 + ["model.locator_keypoints=8"],
                  "hands_res4 + the coordinates of 8 spatial-softmax keypoints of res4 in the locator's input"),
    "spatial": (HANDS_RES4 + ["model.locator=spatial"],
                "hands_res4 with each glimpse placed at a soft-argmax over the res4 cells"),
    "spatial_keypoints": (HANDS_RES4 + ["model.locator=spatial", "model.locator_keypoints=8"],
                          "spatial + 8 keypoints in the query"),
    "spatial_frozen": (HANDS + ["model.locator=spatial"], "spatial on the frozen stage-1 backbone"),
    "spatial_res4": (HANDS_RES4 + ["model.locator=spatial", "model.glimpse_map=res4"],
                     "spatial with the glimpses cropping res4 instead of res5 (more local features)"),
    "res4_glimpses": (HANDS_RES4 + ["model.glimpse_map=res4"],
                      "hands_res4 with the glimpses cropping res4 instead of res5"),
}
CONTROLS = ("matched_global", "random")


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.1f}"


def _controls(result):
    attention = result["attention"] or {}
    return (attention.get("placement_controls") or {}).get("top1", {})


def _correct(report, reference):
    return None if report is None else correct_by_video(report, reference["video_ids"])


COLUMNS = (
    ("stage 1", lambda r: _percent(r["stage1"]["top1"])),
    ("matched global", lambda r: _percent((r["matched_global"] or {}).get("top1"))),
    ("GC", lambda r: _percent(r["stage2"]["top1"])),
    ("mean schedule", lambda r: _percent(_controls(r).get("mean_schedule"))),
    ("other video", lambda r: _percent(_controls(r).get("other_video"))),
    ("random centres", lambda r: _percent(_controls(r).get("random_centres"))),
    ("hands (oracle)", lambda r: _percent(_controls(r).get("hand_joints"))),
    ("random control", lambda r: _percent((r["random"] or {}).get("top1"))),
    ("on body", lambda r: _percent(r["attention"]["on_body_rate"])),
    ("on hands", lambda r: _percent(r["attention"].get("on_hands_rate"))),
    ("scale median", lambda r: f"{r['attention']['scale_median']:.2f}"),
    ("input dep.", lambda r: f"{r['attention']['input_dependence']:.2f}"),
    ("worker shares", lambda r: " ".join(f"{s:.0%}" for s in r["attention"]["worker_shares"])),
    ("minutes", lambda r: f"{r['minutes']:.1f}"),
)


def comparisons(group):
    """The paired comparisons of one setting's results (one per seed), as
    {name: `statistics.compare` result or None}."""
    from glimpse_keras import statistics

    pairs = {"GC - matched global": [], "own - mean schedule": [], "attention - random control": []}
    for result in group:
        report = result["stage2"]
        gc = correct_by_video(report)
        if result["matched_global"] is not None:
            pairs["GC - matched global"].append((gc, _correct(result["matched_global"], report)))
        controls = (result["attention"] or {}).get("placement_controls")
        if controls:
            pairs["own - mean schedule"].append((controls["correct"]["own"], controls["correct"]["mean_schedule"]))
        if result["random"] is not None:
            pairs["attention - random control"].append((gc, _correct(result["random"], report)))
    return {name: statistics.compare([a for a, _ in values], [b for _, b in values]) if values else None
            for name, values in pairs.items()}


def markdown_tables(results, descriptions):
    """Per-seed rows, then per setting the means and the paired differences with their intervals."""
    from glimpse_keras import statistics

    header = "| setting | seed | " + " | ".join(name for name, _ in COLUMNS) + " |"
    lines = [header, "|" + " --- |" * (len(COLUMNS) + 2)]
    for result in results:
        cells = [result["setting"], str(result["seed"])] + [format_cell(result) for _, format_cell in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| setting | seeds | stage 1 | matched global | GC | SE of one score | comparison | per seed | "
                  "mean [95% t over seeds] | [95% bootstrap, seeds x videos] |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    by_setting = {}
    for result in results:
        by_setting.setdefault(result["setting"], []).append(result)
    for name, group in by_setting.items():
        def mean(values):
            values = [v for v in values if v is not None]
            return f"{100 * sum(values) / len(values):.1f}" if values else "n/a"

        gc = [r["stage2"]["top1"] for r in group]
        se = max(statistics.binomial_standard_error(value, r["stage2"]["videos"]) for value, r in zip(gc, group))
        head = [name, str(len(group)), mean([r["stage1"]["top1"] for r in group]),
                mean([(r["matched_global"] or {}).get("top1") for r in group]), mean(gc), f"{100 * se:.1f}"]
        for comparison, outcome in comparisons(group).items():
            if outcome is None:
                continue
            per_seed = " / ".join(f"{100 * entry['mean']:+.1f}" for entry in outcome["per_seed"])
            lines.append("| " + " | ".join(head + [comparison, per_seed,
                                                   statistics.format_interval(outcome["seeds"]),
                                                   statistics.format_interval(outcome["bootstrap"])]) + " |")
            head = ["", "", "", "", "", ""]
    lines += ["", "| setting | what it tests |", "| --- | --- |"]
    lines += [f"| {name} | {descriptions[name]} |" for name in by_setting]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "demo.yaml"), help="base config")
    parser.add_argument("--settings", nargs="+", default=["demo"], choices=list(SETTINGS), metavar="NAME",
                        help=f"settings to run (default: demo; any of {', '.join(SETTINGS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                        help="each seed sets both the generator seed and the training seed (default 0-4)")
    parser.add_argument("--controls", nargs="*", default=list(CONTROLS), choices=CONTROLS,
                        help="baselines trained beside each setting (default: both)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="an override applied to every setting (e.g. train.stages.1.epochs=5)")
    parser.add_argument("--runs-dir", default=os.path.join("runs", "attention_levers"))
    parser.add_argument("--output", default=os.path.join(HERE, "results", "attention_levers.md"))
    parser.add_argument("--list", action="store_true", help="print the settings and exit")
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.list:
        for name, (overrides, description) in SETTINGS.items():
            print(f"{name:<18} {description}\n{'':<18} {' '.join(overrides) or '(no override)'}")
        return 0
    quiet_console()
    runs_dir = os.path.abspath(args.runs_dir)
    from glimpse_keras.runs import data_cache

    cache_root = data_cache(runs_dir)
    descriptions = {key: value[1] for key, value in SETTINGS.items()}
    results, table = [], ""
    for seed in args.seeds:
        for name in args.settings:
            overrides = SETTINGS[name][0] + list(args.overrides)
            try:
                config = setting_config(args.config, overrides, seed)
            except config_lib.ConfigError as error:
                print(f"error: setting {name}: {error}", file=sys.stderr)
                return 2
            print(f"=== {name}, seed {seed}: {' '.join(overrides) or '(base config)'}", flush=True)
            results.append(run_setting(name, config, runs_dir, cache_root, controls=args.controls))
            table = markdown_tables(results, descriptions)
            print(table, flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        handle.write(f"Command: `python benchmarks/attention_levers.py {' '.join(argv)}`\n\n{table}")
    print(f"tables written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
