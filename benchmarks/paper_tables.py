"""The paper's Tables 3 and 4 on the synthetic demo: which parts of Glimpse Clouds matter.

Table 3 (the model): the global model (backbone + pooling), the global model trained with the pose
loss (the authors' stage 1), glimpses summed into one GRU (no workers), and Glimpse Clouds.
Table 4 (where the glimpses come from): the recurrent attention, 3D tubes (one set of locations per
clip), random locations and saliency (the strongest res5 cells).

Every row is trained on the demo (`configs/demo.yaml`) for each seed, with its stage 1 shared where
it is the same, and scored on the Cross-Subject test split with 3 clips per video. The markdown
tables are printed and written to `--output`.

    python benchmarks/paper_tables.py                   # 5 seeds, about an hour per seed on 2 cores
    python benchmarks/paper_tables.py --seeds 0 --rows global glimpse_clouds
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from demo_runs import ROOT, config_lib, mean_and_range, quiet_console, run_setting, setting_config  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (table, row label, overrides, score stage 1 only).
ROWS = {
    "global": ("3", "Global model (3D CNN + pooling)", ["train.stages.0.variant=global"], True),
    "global_pose": ("3", "Global model + pose loss (stage 1)", [], True),
    "glimpse_gru": ("3", "Glimpses + one GRU (no workers, no memory)", ["train.stages.1.variant=glimpse_gru"],
                    False),
    "glimpse_clouds": ("3", "Glimpse Clouds (glimpses + memory + workers)", [], False),
    "attention": ("4", "Recurrent attention (Glimpse Clouds)", [], False),
    "tube": ("4", "3D tubes: one set of locations per clip", ["model.glimpse_type=tube"], False),
    "random": ("4", "Random locations", ["model.glimpse_type=random"], False),
    "saliency": ("4", "Saliency: the strongest res5 cells", ["model.glimpse_type=saliency"], False),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "demo.yaml"), help="base config")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW",
                        help=f"rows to run (default: all of {', '.join(ROWS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                        help="each seed sets both the generator seed and the training seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="an override applied to every row")
    parser.add_argument("--runs-dir", default=os.path.join("runs", "paper_tables"))
    parser.add_argument("--output", default=os.path.join(HERE, "results", "paper_tables.md"))
    return parser.parse_args(argv)


def _report(result, first_stage_only):
    return result["stage1"] if first_stage_only else result["stage2"]


def tables(results_by_row, seeds):
    """Markdown of Tables 3 and 4 from {row: [result per seed]}."""
    lines = []
    for table, title in (("3", "Table 3: the model"), ("4", "Table 4: where the glimpses come from")):
        rows = [name for name in ROWS if ROWS[name][0] == table and name in results_by_row]
        if not rows:
            continue
        lines += [f"**{title}** (top-1 %, mean and range over seeds {', '.join(map(str, seeds))}; "
                  "attention columns: mean over seeds)", "",
                  "| model | top-1 | top-5 | on body | scale median | input dep. | per seed |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for name in rows:
            _, label, _, first_only = ROWS[name]
            reports = [_report(result, first_only) for result in results_by_row[name]]
            top1 = [100 * report["top1"] for report in reports]
            top5 = [100 * report["top5"] for report in reports]
            attention = [report.get("attention") for report in reports]
            if all(attention):
                on_body = f"{100 * sum(a['on_body_rate'] for a in attention) / len(attention):.0f}%"
                scale = f"{sum(a['scale_median'] for a in attention) / len(attention):.2f}"
                dependence = f"{sum(a['input_dependence'] for a in attention) / len(attention):.2f}"
            else:
                on_body = scale = dependence = "-"
            per_seed = " / ".join(f"{value:.1f}" for value in top1)
            lines.append(f"| {label} | {mean_and_range(top1)} | {mean_and_range(top5)} | {on_body} | "
                         f"{scale} | {dependence} | {per_seed} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    quiet_console()
    runs_dir = os.path.abspath(args.runs_dir)
    from glimpse_keras.runs import data_cache

    cache_root = data_cache(runs_dir)
    results = {}
    for seed in args.seeds:
        done = {}  # rows with the same overrides (Glimpse Clouds in both tables) share one run
        for name in args.rows:
            _, label, overrides, first_only = ROWS[name]
            key = (tuple(overrides), first_only)
            if key not in done:
                try:
                    config = setting_config(args.config, overrides + list(args.overrides), seed)
                except config_lib.ConfigError as error:
                    print(f"error: row {name}: {error}", file=sys.stderr)
                    return 2
                print(f"=== {label}, seed {seed}", flush=True)
                done[key] = run_setting(name, config, runs_dir, cache_root, first_stage_only=first_only)
            results.setdefault(name, []).append(done[key])
        text = tables(results, args.seeds[: args.seeds.index(seed) + 1])
        print(text, flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        handle.write(f"Command: `python benchmarks/paper_tables.py {' '.join(argv)}`\n\n{text}")
    print(f"tables written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
