"""Command line: python -m glimpse_keras.data.synthetic --format {ntu,nucla} --output DIR [options].

Examples:
  python -m glimpse_keras.data.synthetic --format ntu --output /tmp/ntu_tiny
  python -m glimpse_keras.data.synthetic --format ntu --output /tmp/ntu_demo --preset demo --workers 2
  python -m glimpse_keras.data.synthetic --format nucla --output /tmp/ucla --classes 1,2,5,6 --size 320x240 \\
      --set drop_view_fraction=0.2 --set 'defects={two_body_blocks: [0.1, 2]}'
"""

from __future__ import annotations

import argparse
import json
import sys

from glimpse_keras.arguments import at_least
from glimpse_keras.data.synthetic.manifest import ManifestMismatchError
from glimpse_keras.data.synthetic.presets import PRESETS, SyntheticConfigError, parse_override
from glimpse_keras.data.synthetic.runner import default_workers, generate
from glimpse_keras.io_utils import StorageError


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _pair(separator: str):
    def parse(text: str) -> list[int]:
        parts = text.lower().split(separator)
        try:
            if len(parts) != 2:
                raise ValueError
            return [int(parts[0]), int(parts[1])]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected A{separator}B with integers, got {text!r}") from None
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m glimpse_keras.data.synthetic",
                                     description="Write a synthetic NTU RGB+D or N-UCLA dataset in the raw layout.")
    parser.add_argument("--format", required=True, choices=("ntu", "nucla"))
    parser.add_argument("--output", required=True, help="output root directory")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=at_least(1), default=None, help=f"processes (default {default_workers()})")
    parser.add_argument("--classes", type=_int_list, help="action numbers, e.g. 8,9,23 (NTU) or 1,2,5 (N-UCLA)")
    parser.add_argument("--num-subjects", type=at_least(1), help="use subjects 1..N")
    parser.add_argument("--size", type=_pair("x"), help="frame size WIDTHxHEIGHT, e.g. 320x180")
    parser.add_argument("--frames", type=_pair("-"), help="frame-count range MIN-MAX, e.g. 32-80")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key (YAML value), repeatable")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = dict(parse_override(text) for text in args.set)
        if args.classes is not None:
            overrides["classes"] = args.classes
        if args.num_subjects is not None:
            overrides["subjects"] = list(range(1, args.num_subjects + 1))
        if args.size is not None:
            overrides["size"] = args.size
        if args.frames is not None:
            overrides["frames"] = args.frames
        summary = generate(args.format, args.output, preset=args.preset, seed=args.seed, workers=args.workers,
                           overrides=overrides, progress=not args.quiet)
    except (SyntheticConfigError, ManifestMismatchError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StorageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
