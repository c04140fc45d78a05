"""Deterministic assignment of samples to TFRecord shards.

Each video is written once. Samples are grouped by their split under EVERY
chosen protocol (for NTU with xsub and xview: 'xsub-train_xview-test', ...),
so each split of each protocol is a union of whole groups and is read without
filtering or reconverting. Inside a group, samples are sorted by id and cut
into shards of `shard_size`; the plan depends only on the sorted sample list,
so an interrupted conversion resumes with the same shards.

Layout (relative to the output directory):
    shards/<group>/<group>-00000-of-00003.tfrecord
    shards/<group>/<group>-00000-of-00003.tfrecord.json   (sidecar, see convert)
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    """One shard to write.

    Attributes:
        group: split-group name, e.g. 'xsub-train_xview-test'.
        splits: tuple of (protocol, split) pairs shared by its samples.
        path: TFRecord path relative to the output directory.
        samples: tuple of RawSample, sorted by id.
    """

    group: str
    splits: tuple
    path: str
    samples: tuple

    @property
    def sidecar_path(self):
        return self.path + ".json"


def group_name(splits):
    """(('xsub', 'train'), ('xview', 'test')) -> 'xsub-train_xview-test'."""
    return "_".join(f"{protocol}-{split}" for protocol, split in splits)


def plan_shards(samples, shard_size):
    """Cuts samples into shards, grouped by split membership.

    Args:
        samples: RawSample list (any order; ids unique).
        shard_size: maximum samples per shard, >= 1.

    Returns:
        list of ShardPlan, sorted by path.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size: expected an integer >= 1, got {shard_size!r}")
    groups = {}
    for sample in sorted(samples, key=lambda s: s.video_id):
        groups.setdefault(tuple(sample.splits), []).append(sample)
    plans = []
    for splits, members in groups.items():
        name = group_name(splits)
        count = -(-len(members) // shard_size)
        for index in range(count):
            chunk = members[index * shard_size:(index + 1) * shard_size]
            path = f"shards/{name}/{name}-{index:05d}-of-{count:05d}.tfrecord"
            plans.append(ShardPlan(name, splits, path, tuple(chunk)))
    return sorted(plans, key=lambda plan: plan.path)


def shards_of_split(plans, protocol, split):
    """The plans whose samples belong to `split` of `protocol`."""
    return [plan for plan in plans if (protocol, split) in plan.splits]
