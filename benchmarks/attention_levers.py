"""Which levers make the glimpses attend? One table: attention diagnostics and top-1 per setting.

Each setting is a list of config overrides applied to a base config (default `configs/demo.yaml`).
For every seed, stage 1 (the global model) is trained once per distinct stage-1 configuration and
shared by the settings that only change stage 2; each setting then trains stage 2 from it, and both
models are evaluated on the test split (multi-clip, as `evaluate.py`). The table holds, per setting
and seed: the global model's top-1, Glimpse Clouds' top-1 and the attention diagnostics of
`glimpse_keras.diagnostics`, then the mean and spread over seeds.

    python benchmarks/attention_levers.py                          # every setting, seed 0
    python benchmarks/attention_levers.py --seeds 0 1 2 --settings authors demo
    python benchmarks/attention_levers.py --list                   # the settings and their overrides

Runs go to `--runs-dir` (default runs/attention_levers); a finished setting is not trained again, so
an interrupted run resumes. The markdown table is printed and written to `--output`.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from demo_runs import ROOT, config_lib, run_setting, setting_config  # noqa: E402

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
    "train.stages.1.freeze_backbone=true",
]
LOCAL16 = AUTHORS + ["model.output_stride=16", "model.output_stride_dilation=false"]
SCALE0_RESET = LOCAL16 + ["model.scale_bias=0.0", "model.zoomer_reset_each_frame=true"]
HANDS = SCALE0_RESET + ["loss.attraction_joints=hands"]
# Added to a setting: glimpses at random places (the control), the backbone trained in stage 2.
RANDOM = ["model.glimpse_type=random"]
TRAIN_BACKBONE = ["train.stages.1.freeze_backbone=false"]

# name -> (overrides on top of the base config, what it tests). Each builds on the one before unless
# its description says otherwise.
SETTINGS = {
    "authors": (AUTHORS, "the authors' levers: res5 map 4x4 at 128 px, scale starts at 0.95, 1/(1+d) diversity"),
    "stride16": (AUTHORS + ["model.output_stride=16", "model.output_stride_dilation=true"],
                 "res5 map 8x8: output stride 16, res5 dilated (DeepLab)"),
    "local16": (LOCAL16, "res5 map 8x8: output stride 16, res5 not dilated (more local features)"),
    "scale0": (LOCAL16 + ["model.scale_bias=0.0"], "+ glimpses start at scale 0.5"),
    "eq15": (LOCAL16 + ["model.scale_bias=0.0", "loss.diversity_form=exponential"],
             "+ exponential diversity (Eq. 15)"),
    "eq15_reset": (LOCAL16 + ["model.scale_bias=0.0", "loss.diversity_form=exponential",
                              "model.zoomer_reset_each_frame=true"],
                   "+ glimpse GRU restarted every frame"),
    "eq15_reset_prior": (LOCAL16 + ["model.scale_bias=0.0", "loss.diversity_form=exponential",
                                    "model.zoomer_reset_each_frame=true", "loss.scale_weight=0.1"],
                         "+ scale prior w_S = 0.1"),
    "scale0_reset": (SCALE0_RESET, "scale0 + glimpse GRU restarted every frame (no Eq. 15)"),
    "longer_stage1": (SCALE0_RESET + ["train.stages.0.epochs=25", "train.stages.1.epochs=10"],
                      "scale0_reset with the time moved to stage 1: 25 + 10 epochs instead of 20 + 15"),
    "flip": (SCALE0_RESET + ["data.flip=true"],
             "scale0_reset with random horizontal flips (left/right joints swapped) in both stages"),
    "max_scale05": (SCALE0_RESET + ["model.max_scale=0.5"],
                    "scale0_reset with glimpses of at most half the frame side"),
    "max_scale035": (SCALE0_RESET + ["model.max_scale=0.35"],
                     "scale0_reset with glimpses of at most 35% of the frame side"),
    "hands": (HANDS, "scale0_reset with the glimpses attracted to the hand joints only"),
    "random_frozen": (HANDS + RANDOM, "control for hands: glimpses at random places (a fixed grid at test time), "
                                      "scale 0.5"),
    "finetune": (SCALE0_RESET + TRAIN_BACKBONE, "scale0_reset with the backbone trained in stage 2 (every joint "
                                                "attracts)"),
    "hands_finetune": (HANDS + TRAIN_BACKBONE, "hands with the backbone trained in stage 2 (about 12 minutes for "
                                               "the whole job)"),
    "random_finetune": (HANDS + RANDOM + TRAIN_BACKBONE, "control for hands_finetune: random glimpses, backbone "
                                                         "trained in stage 2"),
    "hands_res4": (HANDS + TRAIN_BACKBONE + ["train.stages.1.train_backbone_from=res4"],
                   "hands_finetune training only res4 and res5 of the backbone (the demo's defaults)"),
    "random_res4": (HANDS + RANDOM + TRAIN_BACKBONE + ["train.stages.1.train_backbone_from=res4"],
                    "control for hands_res4"),
    "hands_finetune5": (HANDS + TRAIN_BACKBONE + ["train.stages.1.epochs=5"],
                        "hands_finetune with 5 stage-2 epochs (the whole job within 10 minutes)"),
    "random_finetune5": (HANDS + RANDOM + TRAIN_BACKBONE + ["train.stages.1.epochs=5"],
                         "control for hands_finetune5"),
    "demo": ([], "the demo's defaults (configs/demo.yaml)"),
}

COLUMNS = (
    ("global top-1", lambda r: _percent(r["stage1"]["top1"])),
    ("GC top-1", lambda r: _percent(r["stage2"]["top1"])),
    ("gap", lambda r: f"{100 * (r['stage2']['top1'] - r['stage1']['top1']):+.1f}"),
    ("on body", lambda r: _percent(r["attention"]["on_body_rate"])),
    ("on hands", lambda r: _percent(r["attention"].get("on_hands_rate"))),
    ("scale median", lambda r: f"{r['attention']['scale_median']:.2f}"),
    ("input dep.", lambda r: f"{r['attention']['input_dependence']:.2f}"),
    ("diversity", lambda r: f"{r['attention']['diversity']:.2f}"),
    ("max weight", lambda r: f"{r['attention']['assignment_max_weight']:.2f}"),
    ("worker shares", lambda r: " ".join(f"{s:.0%}" for s in r["attention"]["worker_shares"])),
    ("minutes", lambda r: f"{r['minutes']:.1f}"),
)


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.1f}"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "demo.yaml"), help="base config")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS),
                        metavar="NAME", help=f"settings to run (default: all of {', '.join(SETTINGS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="each seed sets both the generator seed and the training seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="an override applied to every setting (e.g. train.stages.1.epochs=5)")
    parser.add_argument("--runs-dir", default=os.path.join("runs", "attention_levers"))
    parser.add_argument("--output", default=os.path.join(HERE, "results", "attention_levers.md"))
    parser.add_argument("--list", action="store_true", help="print the settings and exit")
    return parser.parse_args(argv)


def markdown_table(results, descriptions):
    header = "| setting | seed | " + " | ".join(name for name, _ in COLUMNS) + " |"
    lines = [header, "|" + " --- |" * (len(COLUMNS) + 2)]
    for result in results:
        cells = [result["setting"], str(result["seed"])] + [format_cell(result) for _, format_cell in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    by_setting = {}
    for result in results:
        by_setting.setdefault(result["setting"], []).append(result)
    lines.append("| setting | seeds | global top-1 mean (range) | GC top-1 mean (range) | gap mean | what it tests |")
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for name, group in by_setting.items():
        first = [100 * r["stage1"]["top1"] for r in group]
        second = [100 * r["stage2"]["top1"] for r in group]
        gaps = [b - a for a, b in zip(first, second)]
        lines.append(
            f"| {name} | {len(group)} | {sum(first) / len(first):.1f} ({min(first):.1f}-{max(first):.1f}) | "
            f"{sum(second) / len(second):.1f} ({min(second):.1f}-{max(second):.1f}) | "
            f"{sum(gaps) / len(gaps):+.1f} | {descriptions[name]} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for name, (overrides, description) in SETTINGS.items():
            print(f"{name:<12} {description}\n{'':<12} {' '.join(overrides) or '(no override)'}")
        return 0
    os.environ.setdefault("GLIMPSE_QUIET", "1")
    runs_dir = os.path.abspath(args.runs_dir)
    cache_root = os.path.join(os.path.dirname(runs_dir), "data_cache")
    results = []
    for seed in args.seeds:
        for name in args.settings:
            overrides = SETTINGS[name][0] + list(args.overrides)
            try:
                config = setting_config(args.config, overrides, seed)
            except config_lib.ConfigError as error:
                print(f"error: setting {name}: {error}", file=sys.stderr)
                return 2
            print(f"=== {name}, seed {seed}: {' '.join(overrides) or '(base config)'}", flush=True)
            results.append(run_setting(name, config, runs_dir, cache_root))
            table = markdown_table(results, {key: value[1] for key, value in SETTINGS.items()})
            print(table, flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        handle.write(f"Command: `python benchmarks/attention_levers.py {' '.join(sys.argv[1:] if argv is None else argv)}`\n\n")
        handle.write(table)
    print(f"table written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
