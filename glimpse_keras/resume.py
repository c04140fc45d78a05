"""What a resumed job may change in a run, and what it does with each stage.

A run folder (`runs`) records each stage's progress in its `state.json`, and
the end of an epoch writes, in this order, that epoch's entry of
`history.json`, the checkpoint, then `state.json` (`runs.commit_epoch`).
Whatever moment a run is killed at, `plan_stages` finds a consistent point:

* killed before the checkpoint: the state and checkpoint are those of the
  previous epoch; the history entry written ahead is dropped on resume (it
  is truncated to the committed epochs before the next entry is added);
* killed after the checkpoint, before `state.json`: the checkpoint matches
  its `.sha256` but not the state's record, so it is the next epoch's, whole;
  the run resumes after that epoch, whose history entry is already there.

A file that matches neither record is damaged and refused by name.

`check_resumable` says which config changes a resume applies (epochs, learning
rates, loss weights, bookkeeping) and refuses the others (data, model, seed,
the stage layout). `plan_stages` decides, before a job writes anything, what
each stage does: "skip" (finished: its final weights are loaded), "continue" (from its
checkpoint), "start" (from the previous stage's model) or "redo" (its earlier
result no longer follows from the stage before it, which trains further in
this job or whose final weights changed: it starts again and its old files
are removed when it starts). Every file a resumed stage loads is verified
there, so a damaged file stops the job before it changes anything.
"""

import dataclasses
import os
import shutil

from glimpse_keras import checkpoints, runs
from glimpse_keras.errors import TrainingError
from glimpse_keras.io_utils import ChecksumError, checksum_path, sha256_of, verify_checksum, write_checksum

# Stage keys a resumed run may change: the epoch count, and the optimizer
# settings, which `training.run_stage` applies to the restored optimizer.
RESUMABLE_STAGE_KEYS = ("epochs", "learning_rate")


# === What may change ===


def check_resumable(previous, config, path):
    """Refuses to resume with other data, architecture or stage layout.

    The checkpoints of `path`'s run would not fit (or would silently mean
    something else). Allowed: more or fewer epochs, a new learning rate (the
    restored optimizer takes it), the losses' weights and the bookkeeping
    keys of `train` (validate, jit_compile, ...).

    Returns:
        list of "key: old -> new" strings, every change that is applied.

    Raises:
        TrainingError: naming every key that differs and cannot change.
    """
    old, new = _flatten(previous.to_dict()), _flatten(config.to_dict())
    refused, applied = [], []
    for key in sorted(set(old) | set(new), key=lambda k: (k.split(".")[0], k)):
        if old.get(key) == new.get(key):
            continue
        change = f"{key}: {old.get(key, 'absent')!r} -> {new.get(key, 'absent')!r}"
        section, _, rest = key.partition(".")
        if section in ("data", "model"):
            refused.append(change)
        elif section == "train" and rest.startswith("stages"):
            field = rest.split(".")[-1]
            same_count = len(previous.train.stages) == len(config.train.stages)
            if not same_count or field not in RESUMABLE_STAGE_KEYS:
                refused.append(change)
            else:
                applied.append(change)
        elif key == "train.seed":
            refused.append(change)
        else:
            applied.append(change)
    if refused:
        raise TrainingError(
            f"--resume with a different config than {path}: {'; '.join(refused)}. "
            f"Resume with the same data, model, seed and stages (only "
            f"{', '.join(RESUMABLE_STAGE_KEYS)} of a stage may change), or use a new --output-dir."
        )
    return applied


def _flatten(tree, prefix=""):
    """{"a": {"b": 1}, "c": [{"d": 2}]} -> {"a.b": 1, "c.0.d": 2}."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list) and all(isinstance(item, dict) for item in tree):
        items = enumerate(tree)
    else:
        return {prefix[:-1]: tree}
    flat = {}
    for key, value in items:
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


# === Planning a job over a run's stages ===


@dataclasses.dataclass
class StagePlan:
    """What a job does with one stage.

    Attributes:
        stage: the `StageConfig`.
        action: "skip", "continue", "start" or "redo" (module doc).
        epoch: epochs already done (those of the loaded file; 0 to start).
        weights: the verified file the stage loads ("skip": final weights,
            "continue": checkpoint), or None.
        sha256: that file's sha256 (for "skip", what the next stage records
            as `started_from`), or None.
        note: a line to print (why a stage is redone, an epoch recovered).
        committed: `sha256` is the digest state.json records (not only the
            one in `<weights>.sha256`).
    """

    stage: object
    action: str
    epoch: int = 0
    weights: str = None
    sha256: str = None
    note: str = None
    committed: bool = False

    def repair_checksum(self):
        """Rewrites `<weights>.sha256` when it does not record `sha256` (the
        digest state.json records and the file has: the record beside it is
        stale or damaged). Returns True when it was rewritten."""
        if not self.committed or _recorded_checksum(self.weights) == self.sha256:
            return False
        write_checksum(self.weights, self.sha256)
        return True


def plan_stages(config, run_dir, resume):
    """What each stage of `config` does in a job on `run_dir` (module doc).

    Nothing is written. Without `resume` every stage starts.

    Returns:
        list of `StagePlan`, one per stage of `config.train.stages`.

    Raises:
        checkpoints.CheckpointError: a state.json that cannot be read or a
            weights file a resumed stage would load that is missing, damaged
            or unreadable; the message names it.
    """
    plans = []
    trains_earlier = None  # the name of an earlier stage that trains in this job
    previous_final = None  # sha256 of the previous stage's final weights, when skipped
    for stage in config.train.stages:
        if not resume:
            plans.append(StagePlan(stage, "start"))
            continue
        stage_dir = os.path.join(run_dir, stage.name)
        state = runs.read_state(stage_dir)
        has_result = state["epoch"] > 0 or state.get("done")
        started_from = state.get("started_from")
        if has_result and trains_earlier:
            plan = StagePlan(stage, "redo", note=(
                f"[{stage.name}] trained again from the start: {trains_earlier} trains further in this job, "
                f"so the result of {stage.name} in {stage_dir} (epoch {state['epoch']}) no longer follows from it"))
        elif has_result and started_from and previous_final and started_from != previous_final:
            plan = StagePlan(stage, "redo", note=(
                f"[{stage.name}] trained again from the start: it started from other weights of the stage "
                f"before it than the final weights there now"))
        elif state.get("done") and state["epoch"] >= stage.epochs and os.path.exists(
                os.path.join(stage_dir, runs.FINAL)):
            path = os.path.join(stage_dir, runs.FINAL)
            digest = _verified(path, state.get("final_sha256"), "final weights")
            plan = StagePlan(stage, "skip", epoch=state["epoch"], weights=path, sha256=digest,
                             committed=state.get("final_sha256") is not None)
        elif state["epoch"] > 0 and os.path.exists(os.path.join(stage_dir, runs.CHECKPOINT)):
            plan = _continue_plan(stage, stage_dir, state)
        else:
            plan = StagePlan(stage, "start")
        if plan.action != "skip":
            trains_earlier = trains_earlier or stage.name
        previous_final = plan.sha256 if plan.action == "skip" else None
        plans.append(plan)
    return plans


def _continue_plan(stage, stage_dir, state):
    """The "continue" plan of a stage with a committed checkpoint; recovers
    the epoch whose checkpoint was written but not yet recorded."""
    path = os.path.join(stage_dir, runs.CHECKPOINT)
    committed = state.get("checkpoint_sha256")
    epoch = int(state["epoch"])
    if committed is None:  # a run written before state.json recorded the checkpoint
        digest = _verified(path, None, "checkpoint")
        return StagePlan(stage, "continue", epoch=epoch, weights=path, sha256=digest,
                         note=_history_note(stage, stage_dir, epoch, None))
    actual = sha256_of(path)
    note = None
    if actual != committed:
        # Not the committed checkpoint: the next epoch's (whole: it matches
        # the .sha256 recorded before its rename), or a damaged file.
        _verified(path, None, "checkpoint", actual=actual)
        epoch += 1
        note = (f"[{stage.name}] the checkpoint of epoch {epoch} was written but not recorded when the run "
                f"stopped; resuming after epoch {epoch}")
    _check_readable(path, "checkpoint")
    note = _history_note(stage, stage_dir, epoch, note)
    return StagePlan(stage, "continue", epoch=epoch, weights=path, sha256=actual, note=note, committed=True)


def _history_note(stage, stage_dir, epoch, note):
    """Reads the history entries a continued stage keeps (they must be
    readable) and adds a line to `note` when some are missing."""
    kept = len(runs.read_history(stage_dir, epoch))
    if kept < epoch:
        missing = (f"[{stage.name}] {os.path.join(stage_dir, runs.HISTORY)} records {kept} of the {epoch} epochs "
                   f"done; the missing entries are written as null")
        note = f"{note}\n{missing}" if note else missing
    return note


def _verified(path, expected, what, actual=None):
    """Checks `path` against `expected` (its sha256 as state.json records
    it) or, without one, its `.sha256`; then that HDF5 can open it.

    Returns:
        its sha256.

    Raises:
        checkpoints.CheckpointError: naming the file.
    """
    actual = actual or sha256_of(path)
    if expected is not None and actual != expected:
        raise checkpoints.CheckpointError(
            f"{what} {path} is damaged: its sha256 is {actual} but state.json records {expected}"
        )
    if expected is None:
        try:
            verify_checksum(path)
        except ChecksumError as error:
            raise checkpoints.CheckpointError(f"{what} {error}") from error
    _check_readable(path, what)
    return actual


def _recorded_checksum(path):
    """The digest `<path>.sha256` records, or None (absent or unreadable)."""
    try:
        with open(checksum_path(path)) as handle:
            return (handle.read().split() or [None])[0]
    except (OSError, ValueError):
        return None


def _check_readable(path, what):
    """Opens `path` with h5py (a file written before checksums existed may
    be truncated without any record saying so)."""
    import h5py

    try:
        with h5py.File(path, "r"):
            pass
    except Exception as error:  # h5py raises OSError and its own types
        raise checkpoints.CheckpointError(f"{what} {path} is unreadable ({error})") from error


def clear_stage(stage_dir):
    """Removes a stage folder whose result is redone (`StagePlan` "redo")."""
    if os.path.isdir(stage_dir):
        shutil.rmtree(stage_dir)
