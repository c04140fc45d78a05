"""Could a fixed glimpse schedule cover the hands? Placement figures of a config's test split, from the
skeletons alone (no model).

The data is prepared as `python train.py` prepares it (generated and converted into the cache) and the
test split is read exactly as the model sees it in evaluation (`Experiment.test_dataset`: K clips per
video, centre crop); the pose targets give, in the crop's [-1, 1] units:

- the share of visible hand joints within `--radius` of two schedules that are the same for every video
  (`glimpse_keras.diagnostics`): "mean hands" (per frame index, the dataset mean of the right hand, of
  the left hand and their midpoint) and "best fixed" (per frame index, k-means with G centres over
  every visible hand joint, G = model.num_glimpses): the more they cover, the less a model needs to
  choose where to look per video;
- the spread of the hands from video to video (`diagnostics.hand_spread`);
- the figure's size: the median head-to-foot height as a share of the crop height, over the frames
  that show the head and a foot of the first person, and how often the hands are inside the crop.

    python benchmarks/placement_spread.py                                # configs/demo.yaml, seed 0
    python benchmarks/placement_spread.py --config configs/demo.yaml --seed 1
    python benchmarks/placement_spread.py --set data.data_dir=/tmp/converted   # data converted before
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import ROOT, load_average  # noqa: E402

import numpy as np  # noqa: E402

from glimpse_keras import config as config_lib  # noqa: E402
from glimpse_keras import diagnostics  # noqa: E402
from glimpse_keras.experiment import Experiment  # noqa: E402

# NTU's 25-joint order (0-based): the head, the two feet, and the spine (base, middle, shoulder).
HEAD, FEET, TORSO = 3, (15, 19), (0, 1, 20)


def read_test_pose(experiment, split):
    """(pose (N, T, P, J, 2), pose_mask (N, T, P, J)) of every test clip, K clips per video merged
    into N."""
    poses, masks = [], []
    for _, targets in experiment.test_dataset(split=split, batch_size=16):
        pose, mask = np.asarray(targets["pose"]), np.asarray(targets["pose_mask"])
        poses.append(pose.reshape((-1,) + pose.shape[-4:]))
        masks.append(mask.reshape((-1,) + mask.shape[-3:]))
    return np.concatenate(poses), np.concatenate(masks)


def figure_size(pose, pose_mask):
    """(median head-to-foot height / crop height, share of frames counted) for the first person;
    frames count when the head and at least one foot are inside the crop."""
    y, visible = pose[:, :, 0, :, 1], pose_mask[:, :, 0] > 0
    foot = np.max(np.where(visible[..., list(FEET)], y[..., list(FEET)], -np.inf), axis=-1)
    counted = visible[..., HEAD] & np.isfinite(foot)
    if not counted.any():
        return None, 0.0
    return float(np.median((foot - y[..., HEAD])[counted]) / 2.0), float(counted.mean())


def hands_inside(pose_mask):
    """Share of the first person's hand joints inside the crop, over frames whose torso is."""
    slots = [slot for side in diagnostics.HAND_SIDE_SLOTS[pose_mask.shape[-1]] for slot in side]
    visible = pose_mask[:, :, 0] > 0
    torso = visible[..., list(TORSO)].all(axis=-1)
    return float(visible[..., slots][torso].mean()) if torso.any() else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "demo.yaml"))
    parser.add_argument("--seed", type=int, default=0, help="the synthetic generator's seed (data.synthetic_seed)")
    parser.add_argument("--cache-root", default=os.path.join(ROOT, "runs", "data_cache"),
                        help="generated and converted data (default runs/data_cache, as train.py)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--radius", type=float, default=diagnostics.ON_BODY_RADIUS, help="crop units")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, repeatable (e.g. data.data_dir=CONVERTED to read given data)")
    args = parser.parse_args(argv)

    config = config_lib.load_config(args.config, args.set + [f"data.synthetic_seed={args.seed}"])
    experiment = Experiment(config)
    started = time.time()
    print(f"{os.path.relpath(args.config, ROOT)}, seed {args.seed}, {load_average()}")
    converted = experiment.prepare_data(args.cache_root)
    print(f"data: {converted} ({time.time() - started:.0f} s to prepare)")
    pose, pose_mask = read_test_pose(experiment, args.split)
    videos = experiment.count_videos(args.split)
    glimpses = config.model.num_glimpses
    print(f"{args.split} split: {videos} videos, {len(pose)} clips of {pose.shape[1]} frames "
          f"({config.data.image_size} px centre crop of {config.data.stored_size} px frames)")

    mean_hands = diagnostics.mean_hands_schedule(pose, pose_mask)
    best_fixed = diagnostics.fixed_schedule(pose, pose_mask, glimpses)
    rows = (("mean hands (right, left, midpoint)", mean_hands),
            (f"best fixed (k-means, G = {glimpses})", best_fixed))
    print(f"visible hand joints within {args.radius} of a schedule that is the same for every video:")
    for label, schedule in rows:
        print(f"  {label:<40} {diagnostics.schedule_coverage(pose, pose_mask, schedule, args.radius):.1%}")
    spread = diagnostics.hand_spread(pose, pose_mask)
    print(f"hand position spread across videos (std, crop units): x {spread[0]:.3f}, y {spread[1]:.3f}")
    height, counted = figure_size(pose, pose_mask)
    print(f"figure height (head to foot) / crop height, median: {height:.2f} "
          f"(over the {counted:.0%} of frames showing the head and a foot)")
    print(f"hand joints inside the crop (frames whose torso is): {hands_inside(pose_mask):.1%}")
    print(f"{time.time() - started:.0f} s, {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
