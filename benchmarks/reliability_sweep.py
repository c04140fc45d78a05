"""The issue-21 sweep: every command with every output location unwritable,
full or a file in the way, and every file it reads truncated or garbage.
Prints one line per case and writes the results as JSON; `--table` turns two
result files (before / now) into the Markdown table of docs/reliability.md.

    sudo python benchmarks/reliability_sweep.py --fixtures /tmp/sweep --output now.json
    sudo python benchmarks/reliability_sweep.py --repo /tmp/old_checkout --fixtures /tmp/sweep --output before.json
    python benchmarks/reliability_sweep.py --table before.json now.json

Not a timing: each case runs one command (a fresh process, TensorFlow
imported) and records its exit code and stderr. Needs root (a full disk is a
2 MB tmpfs, a read-only place a tmpfs remounted read-only) and about two
minutes per case on 2 busy cores. The fixtures (a finished run of
configs/tiny.yaml with its export, and its generated and converted data) are
made in --fixtures on the first call, by the code under test (--repo).
Outcomes: "clean" (a non-zero exit, an error line and no traceback),
"traceback", "crash (N)" (killed by signal N), "hang" (still running after
--timeout seconds), "exit 0".
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARSER = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
PARSER.add_argument("--repo", default=HERE, help="checkout whose commands are run (default: this one)")
PARSER.add_argument("--fixtures", default="/tmp/glimpse_sweep", help="folder of the fixtures and the cases")
PARSER.add_argument("--output", help="JSON file of the results (updated after each case)")
PARSER.add_argument("--only", nargs="*", default=[], help="run the cases whose id starts with one of these")
PARSER.add_argument("--timeout", type=int, default=600, help="seconds before a case counts as a hang")
PARSER.add_argument("--table", nargs=2, metavar=("BEFORE", "NOW"), help="print the Markdown table and exit")
ARGS = PARSER.parse_args()
REPO, FIX = os.path.abspath(ARGS.repo), os.path.abspath(ARGS.fixtures)
CASES_DIR = os.path.join(FIX, "cases_" + os.path.splitext(os.path.basename(ARGS.output or "table"))[0])
RUN = os.path.join(FIX, "run")
CACHE = os.path.join(FIX, "data_cache")
TINY = os.path.join(REPO, "configs", "tiny.yaml")
ENVIRONMENT = dict(os.environ, PYTHONPATH=REPO, GLIMPSE_QUIET="1", TF_CPP_MIN_LOG_LEVEL="3")


def converted():
    return next(os.path.join(CACHE, d, "tfrecords_72") for d in os.listdir(CACHE)
                if os.path.isdir(os.path.join(CACHE, d, "tfrecords_72")))


def raw():
    return next(os.path.join(CACHE, d, "raw") for d in os.listdir(CACHE) if os.path.isdir(os.path.join(CACHE, d, "raw")))


def saved_model():
    base = os.path.join(RUN, "export", "glimpse_clouds")
    return os.path.join(base, max((n for n in os.listdir(base) if n.isdigit()), key=int))


def video():
    folder = os.path.join(raw(), "nturgb+d_rgb")
    return os.path.join(folder, sorted(os.listdir(folder))[0])


def make_fixtures():
    """A finished run of configs/tiny.yaml (stages, evaluation, export) in FIX/run."""
    if os.path.isfile(os.path.join(RUN, "stage2", "final.weights.h5")) and os.path.isdir(os.path.join(RUN, "export")):
        return
    os.makedirs(FIX, exist_ok=True)
    print(f"making the fixtures in {FIX} (a few minutes)", flush=True)
    subprocess.run([sys.executable, "train.py", "--config", TINY, "--output-dir", RUN], cwd=REPO, env=ENVIRONMENT,
                   check=True, capture_output=True)


# === Faults ===

def fresh(case):
    path = os.path.join(CASES_DIR, case)
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", path])
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def tmpfs(case, size="2m", read_only=False, fill=False):
    path = fresh(case)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], check=True)
    if fill:
        with open(os.path.join(path, "filler"), "wb") as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
            except OSError:
                pass
    if read_only:
        subprocess.run(["mount", "-o", "remount,ro", path], check=True)
    return path


def file_in_the_way(case, name):
    path = fresh(case)
    blocker = os.path.join(path, name)
    with open(blocker, "w") as handle:
        handle.write("x")
    return blocker


def copy_run(case):
    path = os.path.join(fresh(case), "run")
    shutil.copytree(RUN, path)
    return path


def copy_converted(case):
    path = os.path.join(fresh(case), "converted")
    shutil.copytree(converted(), path)
    return path


def copy_raw(case):
    path = os.path.join(fresh(case), "raw")
    shutil.copytree(raw(), path)
    return path


def truncate(path, keep=0.5):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: int(len(data) * keep)])


def garbage(path, text=b"\x00\xffnot what you expect {[\n"):
    open(path, "wb").write(text)


def first_shard(converted_dir):
    for folder, _, names in os.walk(os.path.join(converted_dir, "shards")):
        for name in sorted(names):
            if name.endswith(".tfrecord"):
                return os.path.join(folder, name)


def user_videos(case):
    """Two classes of two short videos, written by OpenCV."""
    import cv2
    import numpy as np

    root = os.path.join(fresh(case), "videos")
    for label in ("clap", "wave"):
        for index in range(2):
            os.makedirs(os.path.join(root, label), exist_ok=True)
            path = os.path.join(root, label, f"v{index}.avi")
            writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"FMP4"), 10, (64, 48))
            for frame in range(8):
                writer.write(np.full((48, 64, 3), 30 * frame + 40 * index, np.uint8))
            writer.release()
    return root


# === Cases: (id, command, input, setup -> argv) ===

def py(*argv):
    return [sys.executable, *argv]


CASES = []


def case(cid, command, what):
    def register(function):
        CASES.append((cid, command, what, function))
        return function
    return register


# --- train.py ---
TRAIN = ["train.py", "--config", TINY, "--no-export", "--no-evaluate"]


@case("train-out-ro", "train", "--output-dir on a read-only mount")
def _():
    return py(*TRAIN, "--output-dir", os.path.join(tmpfs("train-out-ro", read_only=True), "run"))


@case("train-out-file", "train", "--output-dir is a file")
def _():
    return py(*TRAIN, "--output-dir", file_in_the_way("train-out-file", "run"))


@case("train-out-under-file", "train", "--output-dir under a file")
def _():
    return py(*TRAIN, "--output-dir", os.path.join(file_in_the_way("train-out-under-file", "f"), "run"))


@case("train-out-proc", "train", "--output-dir /proc/x (no --data-dir)")
def _():
    return py(*TRAIN, "--output-dir", "/proc/glimpse_x")


@case("train-out-full", "train", "--output-dir on a full disk")
def _():
    return py(*TRAIN, "--dataset", "ntu", "--data-dir", converted(), "--output-dir",
              os.path.join(tmpfs("train-out-full", fill=True), "run"))


@case("train-out-fills", "train", "--output-dir on a disk that fills at a checkpoint (2 MB)")
def _():
    return py(*TRAIN, "--dataset", "ntu", "--data-dir", converted(), "--output-dir",
              os.path.join(tmpfs("train-out-fills"), "run"))


@case("train-cache-full", "train", "synthetic data generated onto a full disk (cache beside the run)")
def _():
    return py(*TRAIN, "--output-dir", os.path.join(tmpfs("train-cache-full", size="3m"), "run"))


@case("train-config-garbage", "train", "--config garbage YAML")
def _():
    path = os.path.join(fresh("train-config-garbage"), "c.yaml")
    garbage(path, b"data: [unclosed\n  model: {\n")
    return py("train.py", "--config", path, "--output-dir", os.path.join(CASES_DIR, "train-config-garbage", "run"))


@case("train-config-truncated", "train", "--config truncated YAML")
def _():
    path = os.path.join(fresh("train-config-truncated"), "c.yaml")
    shutil.copy(TINY, path)
    truncate(path, 0.6)
    return py("train.py", "--config", path, "--output-dir", os.path.join(CASES_DIR, "train-config-truncated", "run"))


@case("train-config-binary", "train", "--config binary file")
def _():
    path = os.path.join(fresh("train-config-binary"), "c.yaml")
    garbage(path, bytes(range(256)) * 4)
    return py("train.py", "--config", path, "--output-dir", os.path.join(CASES_DIR, "train-config-binary", "run"))


def _resume(cid, damage):
    run = copy_run(cid)
    damage(run)
    return py("train.py", "--config", TINY, "--output-dir", run, "--resume", "--no-export", "--no-evaluate",
              "--set", "train.stages.1.epochs=2")


for _name, _damage, _what in [
    ("checkpoint-truncated", lambda r: truncate(os.path.join(r, "stage2", "checkpoint.weights.h5")), "stage2 checkpoint truncated"),
    ("checkpoint-garbage", lambda r: garbage(os.path.join(r, "stage2", "checkpoint.weights.h5")), "stage2 checkpoint garbage"),
    ("checkpoint-nosha-garbage", lambda r: (garbage(os.path.join(r, "stage2", "checkpoint.weights.h5")),
                                            os.remove(os.path.join(r, "stage2", "checkpoint.weights.h5.sha256")),
                                            _strip_digests(r)), "stage2 checkpoint garbage, no sha256 (old run)"),
    ("final-truncated", lambda r: truncate(os.path.join(r, "stage1", "final.weights.h5")), "stage1 final weights truncated"),
    ("state-garbage", lambda r: garbage(os.path.join(r, "stage2", "state.json")), "stage2 state.json garbage"),
    ("state-truncated", lambda r: truncate(os.path.join(r, "stage2", "state.json")), "stage2 state.json truncated"),
    ("history-garbage", lambda r: garbage(os.path.join(r, "stage2", "history.json")), "stage2 history.json garbage"),
    ("environment-garbage", lambda r: garbage(os.path.join(r, "environment.json")), "environment.json garbage"),
    ("config-garbage", lambda r: garbage(os.path.join(r, "config.yaml")), "run's config.yaml garbage"),
    ("sha-garbage", lambda r: garbage(os.path.join(r, "stage1", "final.weights.h5.sha256")), "stage1 final .sha256 garbage"),
]:
    case(f"train-resume-{_name}", "train --resume", _what)(lambda n=_name, d=_damage: _resume(f"train-resume-{n}", d))


def _strip_digests(run):
    for stage in ("stage1", "stage2"):
        path = os.path.join(run, stage, "state.json")
        state = json.load(open(path))
        json.dump({"epoch": state["epoch"], "done": state["done"]}, open(path, "w"))


def _train_on_converted(cid, damage):
    data = copy_converted(cid)
    damage(data)
    return py(*TRAIN, "--dataset", "ntu", "--data-dir", data, "--output-dir", os.path.join(CASES_DIR, cid, "run"))


for _name, _damage, _what in [
    ("manifest-garbage", lambda d: garbage(os.path.join(d, "manifest.json")), "converted manifest.json garbage"),
    ("settings-garbage", lambda d: garbage(os.path.join(d, "conversion_settings.json")), "conversion_settings.json garbage"),
    ("split-garbage", lambda d: garbage(os.path.join(d, "splits", "xsub", "train.json")), "splits/xsub/train.json garbage"),
    ("split-truncated", lambda d: truncate(os.path.join(d, "splits", "xsub", "test.json")), "splits/xsub/test.json truncated"),
    ("split-missing", lambda d: os.remove(os.path.join(d, "splits", "xsub", "test.json")), "splits/xsub/test.json missing"),
    ("shard-truncated", lambda d: truncate(first_shard(d)), "a TFRecord shard truncated"),
    ("shard-garbage", lambda d: garbage(first_shard(d)), "a TFRecord shard garbage"),
]:
    case(f"train-data-{_name}", "train", _what)(lambda n=_name, d=_damage: _train_on_converted(f"train-data-{n}", d))


@case("train-init-from-garbage", "train --init-from", "the init run's final weights garbage")
def _():
    run = copy_run("train-init-from-garbage")
    garbage(os.path.join(run, "stage2", "final.weights.h5"))
    return py(*TRAIN, "--init-from", run, "--output-dir", os.path.join(CASES_DIR, "train-init-from-garbage", "new"))


# --- evaluate.py ---

@case("evaluate-final-garbage", "evaluate", "final weights garbage")
def _():
    run = copy_run("evaluate-final-garbage")
    garbage(os.path.join(run, "stage2", "final.weights.h5"))
    return py("evaluate.py", "--run", run)


@case("evaluate-final-nosha-truncated", "evaluate", "final weights truncated, no .sha256 (old run)")
def _():
    run = copy_run("evaluate-final-nosha-truncated")
    truncate(os.path.join(run, "stage2", "final.weights.h5"))
    os.remove(os.path.join(run, "stage2", "final.weights.h5.sha256"))
    return py("evaluate.py", "--run", run)


@case("evaluate-config-garbage", "evaluate", "run's config.yaml garbage")
def _():
    run = copy_run("evaluate-config-garbage")
    garbage(os.path.join(run, "config.yaml"))
    return py("evaluate.py", "--run", run)


@case("evaluate-output-ro", "evaluate", "--output on a read-only mount")
def _():
    return py("evaluate.py", "--run", RUN, "--output", os.path.join(tmpfs("evaluate-output-ro", read_only=True), "r.json"))


@case("evaluate-output-full", "evaluate", "--output on a full disk")
def _():
    return py("evaluate.py", "--run", RUN, "--output", os.path.join(tmpfs("evaluate-output-full", fill=True), "r.json"))


@case("evaluate-output-dir", "evaluate", "--output is a folder")
def _():
    return py("evaluate.py", "--run", RUN, "--output", fresh("evaluate-output-dir"))


@case("evaluate-run-ro", "evaluate", "run folder on a read-only mount (report written into it)")
def _():
    path = tmpfs("evaluate-run-ro", size="20m")
    shutil.copytree(RUN, os.path.join(path, "run"), ignore=shutil.ignore_patterns("export", "evaluation"))
    subprocess.run(["mount", "-o", "remount,ro", path], check=True)
    return py("evaluate.py", "--run", os.path.join(path, "run"))


@case("evaluate-shard-garbage", "evaluate", "a TFRecord shard of the test split garbage")
def _():
    run = copy_run("evaluate-shard-garbage")
    data = copy_converted("evaluate-shard-garbage-data")
    garbage(first_shard(data))
    return py("evaluate.py", "--run", run, "--data-dir", data, "--dataset", "ntu")


@case("evaluate-conversion-errors-garbage", "evaluate", "the converted data's conversion_errors.json garbage")
def _():
    run = copy_run("evaluate-conversion-errors-garbage")
    data = copy_converted("evaluate-conversion-errors-garbage-data")
    garbage(os.path.join(data, "conversion_errors.json"))
    return py("evaluate.py", "--run", run, "--data-dir", data, "--dataset", "ntu")


# --- export.py ---

@case("export-output-ro", "export", "--output on a read-only mount")
def _():
    return py("export.py", "--run", RUN, "--output", os.path.join(tmpfs("export-output-ro", read_only=True), "m"))


@case("export-output-full", "export", "--output on a full disk")
def _():
    return py("export.py", "--run", RUN, "--output", os.path.join(tmpfs("export-output-full", fill=True), "m"))


@case("export-output-fills", "export", "--output on a 2 MB disk (fills while writing)")
def _():
    return py("export.py", "--run", RUN, "--output", os.path.join(tmpfs("export-output-fills"), "m"))


@case("export-output-file", "export", "--output is a file")
def _():
    return py("export.py", "--run", RUN, "--output", file_in_the_way("export-output-file", "m"))


@case("export-final-garbage", "export", "final weights garbage")
def _():
    run = copy_run("export-final-garbage")
    garbage(os.path.join(run, "stage2", "final.weights.h5"))
    return py("export.py", "--run", run, "--output", os.path.join(CASES_DIR, "export-final-garbage", "m"))


# --- tune.py ---
TUNE = ["tune.py", "--config", TINY, "--max-trials", "1", "--init-from", RUN, "--no-tensorboard"]


@case("tune-out-ro", "tune", "--output-dir on a read-only mount")
def _():
    return py(*TUNE, "--output-dir", os.path.join(tmpfs("tune-out-ro", read_only=True), "s"))


@case("tune-out-file", "tune", "--output-dir is a file")
def _():
    return py(*TUNE, "--output-dir", file_in_the_way("tune-out-file", "s"))


@case("tune-out-fills", "tune", "--output-dir on a 2 MB disk (fills in the trial)")
def _():
    disk = tmpfs("tune-out-fills")
    return py(*TUNE, "--output-dir", os.path.join(disk, "s"), "--cache-dir", CACHE)


@case("tune-space-garbage", "tune", "--space garbage YAML")
def _():
    path = os.path.join(fresh("tune-space-garbage"), "space.yaml")
    garbage(path, b"num_glimpses: {type: int, min: [\n")
    return py(*TUNE, "--space", path, "--output-dir", os.path.join(CASES_DIR, "tune-space-garbage", "s"))


@case("tune-init-garbage", "tune", "--init-from run whose final weights are garbage")
def _():
    run = copy_run("tune-init-garbage")
    garbage(os.path.join(run, "stage2", "final.weights.h5"))
    argv = [a if a != RUN else run for a in TUNE]
    return py(*argv, "--output-dir", os.path.join(CASES_DIR, "tune-init-garbage", "s"), "--cache-dir", CACHE)


@case("tune-settings-garbage", "tune", "resumed search with garbage search_settings.json")
def _():
    out = os.path.join(fresh("tune-settings-garbage"), "s")
    os.makedirs(os.path.join(out, "glimpse_search"))
    garbage(os.path.join(out, "glimpse_search", "search_settings.json"))
    return py(*TUNE, "--output-dir", out, "--cache-dir", CACHE)


@case("tune-oracle-garbage", "tune", "a search folder whose keras-tuner oracle.json is garbage")
def _():
    out = os.path.join(fresh("tune-oracle-garbage"), "s")
    os.makedirs(os.path.join(out, "glimpse_search"))
    garbage(os.path.join(out, "glimpse_search", "oracle.json"))
    return py(*TUNE, "--output-dir", out, "--cache-dir", CACHE)


# --- predict ---

@case("predict-video-garbage", "predict", "a video file of garbage")
def _():
    path = os.path.join(fresh("predict-video-garbage"), "v.avi")
    garbage(path)
    return py("predict.py", path, "--run", RUN)


@case("predict-video-truncated", "predict", "a truncated video")
def _():
    path = os.path.join(fresh("predict-video-truncated"), "v.avi")
    shutil.copy(video(), path)
    truncate(path, 0.3)
    return py("predict.py", path, "--run", RUN)


@case("predict-run-final-garbage", "predict", "--run final weights garbage")
def _():
    run = copy_run("predict-run-final-garbage")
    garbage(os.path.join(run, "stage2", "final.weights.h5"))
    return py("predict.py", video(), "--run", run)


@case("predict-sm-pb-truncated", "predict", "--saved-model saved_model.pb truncated")
def _():
    path = os.path.join(fresh("predict-sm-pb-truncated"), "1")
    shutil.copytree(saved_model(), path)
    truncate(os.path.join(path, "saved_model.pb"))
    return py("predict.py", video(), "--saved-model", path)


@case("predict-sm-variables-garbage", "predict", "--saved-model variables garbage")
def _():
    path = os.path.join(fresh("predict-sm-variables-garbage"), "1")
    shutil.copytree(saved_model(), path)
    for name in os.listdir(os.path.join(path, "variables")):
        garbage(os.path.join(path, "variables", name))
    return py("predict.py", video(), "--saved-model", path)


@case("predict-sm-contract-garbage", "predict", "--saved-model serving contract garbage")
def _():
    path = os.path.join(fresh("predict-sm-contract-garbage"), "1")
    shutil.copytree(saved_model(), path)
    garbage(os.path.join(path, "assets.extra", "serving_contract.json"))
    return py("predict.py", video(), "--saved-model", path)


@case("predict-output-ro", "predict", "--output-video on a read-only mount")
def _():
    return py("predict.py", video(), "--run", RUN, "--output-video",
              os.path.join(tmpfs("predict-output-ro", read_only=True), "o.mp4"))


@case("predict-output-fills", "predict", "--output-video on a disk that fills (8 KB free)")
def _():
    disk = tmpfs("predict-output-fills", size="1m")
    with open(os.path.join(disk, "filler"), "wb") as handle:
        handle.write(b"\0" * (1024 * 1024 - 8 * 1024))
    return py("predict.py", video(), "--run", RUN, "--output-video", os.path.join(disk, "o.mp4"))


@case("predict-output-dir", "predict", "--output-video is a folder (one video)")
def _():
    return py("predict.py", video(), "--run", RUN, "--output-video", fresh("predict-output-dir"))


# --- visualize ---
VIS = ["-m", "glimpse_keras.visualize", "--run", RUN, "--cache-root", CACHE]


@case("visualize-output-ro", "visualize", "--output on a read-only mount")
def _():
    return py(*VIS, "--video", video(), "--output", os.path.join(tmpfs("visualize-output-ro", read_only=True), "g.png"))


@case("visualize-output-full", "visualize", "--output on a full disk")
def _():
    return py(*VIS, "--video", video(), "--output", os.path.join(tmpfs("visualize-output-full", fill=True), "g.png"))


@case("visualize-output-under-file", "visualize", "--output under a file")
def _():
    return py(*VIS, "--video", video(), "--output", os.path.join(file_in_the_way("visualize-output-under-file", "f"), "g.png"))


@case("visualize-video-garbage", "visualize", "--video garbage file")
def _():
    path = os.path.join(fresh("visualize-video-garbage"), "v.avi")
    garbage(path)
    return py(*VIS, "--video", path, "--output", os.path.join(CASES_DIR, "visualize-video-garbage", "g.png"))


@case("visualize-final-garbage", "visualize", "--run final weights garbage")
def _():
    run = copy_run("visualize-final-garbage")
    garbage(os.path.join(run, "stage2", "final.weights.h5"))
    argv = [a if a != RUN else run for a in VIS]
    return py(*argv, "--video", video(), "--output", os.path.join(CASES_DIR, "visualize-final-garbage", "g.png"))


# --- converter ---
CONVERT = ["-m", "glimpse_keras.data.convert", "--dataset", "ntu", "--no-progress", "--stored-size", "72"]


@case("convert-out-ro", "convert", "--output on a read-only mount")
def _():
    return py(*CONVERT, "--data-dir", raw(), "--output", os.path.join(tmpfs("convert-out-ro", read_only=True), "o"))


@case("convert-out-file", "convert", "--output is a file")
def _():
    return py(*CONVERT, "--data-dir", raw(), "--output", file_in_the_way("convert-out-file", "o"))


@case("convert-out-full", "convert", "--output on a full disk")
def _():
    return py(*CONVERT, "--data-dir", raw(), "--output", os.path.join(tmpfs("convert-out-full", fill=True), "o"))


@case("convert-out-fills", "convert", "--output on a 1 MB disk (fills at a shard)")
def _():
    return py(*CONVERT, "--data-dir", raw(), "--output", os.path.join(tmpfs("convert-out-fills", size="1m"), "o"))


@case("convert-video-garbage", "convert", "a raw video garbage, a skeleton truncated")
def _():
    data = copy_raw("convert-video-garbage")
    folder = os.path.join(data, "nturgb+d_rgb")
    garbage(os.path.join(folder, sorted(os.listdir(folder))[0]))
    skeletons = os.path.join(data, "nturgb+d_skeletons")
    truncate(os.path.join(skeletons, sorted(os.listdir(skeletons))[1]), 0.4)
    return py(*CONVERT, "--data-dir", data, "--output", os.path.join(CASES_DIR, "convert-video-garbage", "o"))


@case("convert-missing-list-garbage", "convert", "--missing-skeletons list garbage")
def _():
    path = os.path.join(fresh("convert-missing-list-garbage"), "missing.txt")
    garbage(path, bytes(range(256)))
    return py(*CONVERT, "--data-dir", raw(), "--missing-skeletons", path,
              "--output", os.path.join(CASES_DIR, "convert-missing-list-garbage", "o"))


@case("convert-resume-settings-garbage", "convert", "resumed output with conversion_settings.json garbage")
def _():
    data = copy_converted("convert-resume-settings-garbage")
    garbage(os.path.join(data, "conversion_settings.json"))
    return py(*CONVERT, "--data-dir", raw(), "--output", data)


@case("convert-resume-sidecar-garbage", "convert", "resumed output with a shard's .json sidecar garbage")
def _():
    data = copy_converted("convert-resume-sidecar-garbage")
    garbage(first_shard(data) + ".json")
    return py(*CONVERT, "--data-dir", raw(), "--output", data)


@case("convert-videos-keypoints-garbage", "convert", "user videos: a keypoint json garbage, classes.txt binary")
def _():
    root = user_videos("convert-videos-keypoints-garbage")
    garbage(os.path.join(root, "clap", "v0.json"))
    garbage(os.path.join(root, "classes.txt"), bytes(range(128, 256)))
    return py("-m", "glimpse_keras.data.convert", "--dataset", "videos", "--no-progress", "--data-dir", root,
              "--output", os.path.join(CASES_DIR, "convert-videos-keypoints-garbage", "o"))


@case("convert-videos-keypoints-only", "convert", "user videos: a keypoint json garbage")
def _():
    root = user_videos("convert-videos-keypoints-only")
    garbage(os.path.join(root, "clap", "v0.json"))
    return py("-m", "glimpse_keras.data.convert", "--dataset", "videos", "--no-progress", "--data-dir", root,
              "--output", os.path.join(CASES_DIR, "convert-videos-keypoints-only", "o"))


# --- synthetic generator ---
SYN = ["-m", "glimpse_keras.data.synthetic", "--format", "ntu", "--quiet"]


@case("synthetic-out-ro", "synthetic", "--output on a read-only mount")
def _():
    return py(*SYN, "--output", os.path.join(tmpfs("synthetic-out-ro", read_only=True), "o"))


@case("synthetic-out-file", "synthetic", "--output is a file")
def _():
    return py(*SYN, "--output", file_in_the_way("synthetic-out-file", "o"))


@case("synthetic-out-proc", "synthetic", "--output /proc/x")
def _():
    return py(*SYN, "--output", "/proc/glimpse_syn")


@case("synthetic-out-fills", "synthetic", "--output on a 2 MB disk (2 workers)")
def _():
    return py(*SYN, "--output", os.path.join(tmpfs("synthetic-out-fills"), "o"))


@case("synthetic-manifest-garbage", "synthetic", "resumed output with synth_manifest.json garbage")
def _():
    out = fresh("synthetic-manifest-garbage")
    garbage(os.path.join(out, "synth_manifest.json"))
    return py(*SYN, "--output", out)


@case("synthetic-nucla-fills", "synthetic", "--format nucla onto a 1 MB disk")
def _():
    return py("-m", "glimpse_keras.data.synthetic", "--format", "nucla", "--quiet",
              "--output", os.path.join(tmpfs("synthetic-nucla-fills", size="1m"), "o"))


# --- serving client ---
CLIENT = ["examples/serving_client.py"]


@case("client-write-ro", "serving_client", "--write-rest on a read-only mount")
def _():
    return py(*CLIENT, video(), "--frame-size", "72", "--num-frames", "4",
              "--write-rest", os.path.join(tmpfs("client-write-ro", read_only=True), "b.json"))


@case("client-write-full", "serving_client", "--write-rest / --write-grpc on a disk that fills (64 KB)")
def _():
    disk = tmpfs("client-write-full", size="1m")
    with open(os.path.join(disk, "filler"), "wb") as handle:
        handle.write(b"\0" * (1024 * 1024 - 64 * 1024))
    return py(*CLIENT, video(), "--frame-size", "72", "--num-frames", "4",
              "--write-rest", os.path.join(disk, "b.json"))


@case("client-contract-garbage", "serving_client", "--export serving contract garbage")
def _():
    path = os.path.join(fresh("client-contract-garbage"), "1")
    shutil.copytree(saved_model(), path)
    garbage(os.path.join(path, "assets.extra", "serving_contract.json"))
    return py(*CLIENT, video(), "--export", path)


@case("client-video-garbage", "serving_client", "a video file of garbage")
def _():
    path = os.path.join(fresh("client-video-garbage"), "v.avi")
    garbage(path)
    return py(*CLIENT, path)


@case("client-server-refused", "serving_client", "--server where nothing listens")
def _():
    return py(*CLIENT, video(), "--frame-size", "72", "--num-frames", "4", "--server", "http://127.0.0.1:9")


def classify(result):
    if result is None:
        return "hang"
    if result.returncode < 0 or result.returncode >= 128:
        return f"crash ({result.returncode})"
    if "Traceback" in result.stderr or "Exception ignored" in result.stderr:
        return "traceback"
    if result.returncode == 0:
        return "exit 0"
    return "clean"


def run_cases():
    make_fixtures()
    os.makedirs(CASES_DIR, exist_ok=True)
    results = json.load(open(ARGS.output)) if ARGS.output and os.path.exists(ARGS.output) else {}
    for cid, command, what, setup in CASES:
        if ARGS.only and not any(cid.startswith(prefix) for prefix in ARGS.only):
            continue
        started = time.time()
        try:
            argv = setup()
        except Exception as error:  # noqa: BLE001 - a fixture problem is reported, the sweep goes on
            results[cid] = {"command": command, "input": what, "outcome": f"setup failed: {error!r}"}
            continue
        try:
            result = subprocess.run(argv, cwd=REPO, env=ENVIRONMENT, capture_output=True, text=True,
                                    timeout=ARGS.timeout)
        except subprocess.TimeoutExpired:
            result = None
        outcome = classify(result)
        lines = [] if result is None else [line for line in result.stderr.splitlines() if line.strip()]
        message = next((line for line in lines if line.startswith("error") or ": error:" in line),
                       lines[-1] if lines else "")
        results[cid] = {"command": command, "input": what, "outcome": outcome,
                        "code": None if result is None else result.returncode, "message": message[:400],
                        "stderr_tail": "" if result is None else result.stderr[-1500:],
                        "stdout_tail": "" if result is None else result.stdout[-600:],
                        "seconds": round(time.time() - started)}
        print(f"{cid:40s} {outcome:12s} {message[:150]}", flush=True)
        if ARGS.output:
            with open(ARGS.output, "w") as handle:
                json.dump(results, handle, indent=1)
        path = os.path.join(CASES_DIR, cid)
        if os.path.ismount(path):
            subprocess.run(["umount", "-l", path])


def print_table(before_path, now_path):
    """| command | input | before | now | with the message of each outcome."""
    before, now = json.load(open(before_path)), json.load(open(now_path))
    print("| command | input | before | now |")
    print("| --- | --- | --- | --- |")
    for cid, command, what, _ in CASES:
        if cid not in now:
            continue
        cells = []
        for results in (before, now):
            entry = results.get(cid)
            if entry is None:
                cells.append("not run")
                continue
            shown = entry["message"].replace("|", "\\|")
            shown = re.sub(r"\S*/cases_\w+/[\w-]+", "D", shown.replace(REPO + "/", ""))  # D: the case folder
            shown = shown if len(shown) <= 160 else shown[:157] + "..."
            cells.append(f"**{entry['outcome']}**" + (f": `{shown}`" if shown else ""))
        print(f"| {command} | {what} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    if ARGS.table:
        print_table(*ARGS.table)
    else:
        run_cases()
