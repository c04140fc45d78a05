"""Finds or builds the converted TFRecords a run trains on.

`--data-dir` may point at converted shards (a directory with `splits/`), at a
raw NTU RGB+D or N-UCLA tree (converted once into a cache next to the run's
output, keyed by the tree's file list, sizes and times so that changed raw
files are converted again), or be empty for the synthetic dataset (generated
once, then converted). The generator and converter run as their own command-line tools,
so their progress bars and error reports reach the user unchanged.
"""

import hashlib
import os
import subprocess
import sys

from glimpse_keras.data import pipeline

NTU_HELP = (
    "NTU RGB+D is distributed by the ROSE Lab of Nanyang Technological "
    "University (https://rose1.ntu.edu.sg/dataset/actionRecognition/) after "
    "signing its licence; unpack the RGB videos into <dir>/nturgb+d_rgb/ and "
    "the skeletons into <dir>/nturgb+d_skeletons/."
)
NUCLA_HELP = (
    "N-UCLA (Northwestern-UCLA Multiview Action 3D) unpacks to "
    "multiview_action/view_{1,2,3}/aXX_sYY_eZZ/ with frame_<k>_..._rgb.jpg "
    "and frame_<k>_..._skeletons.txt files."
)


class DataDirError(ValueError):
    """`--data-dir` holds neither converted shards nor a raw dataset."""


def is_converted(path):
    """True when `path` holds converted shards with split indexes."""
    return os.path.isdir(os.path.join(path, "splits"))


def raw_layout(path):
    """'ntu', 'nucla' or None: which raw dataset layout `path` holds."""
    if os.path.isdir(os.path.join(path, "nturgb+d_rgb")):
        return "ntu"
    for root in (path, os.path.join(path, "multiview_action")):
        if os.path.isdir(os.path.join(root, "view_1")):
            return "nucla"
    return None


def _run(command):
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(command)
    if result.returncode != 0:
        raise DataDirError(
            f"data preparation failed (exit code {result.returncode}; its messages "
            f"are above): " + " ".join(command)
        )


def _convert(raw_dir, dataset, output, data_config):
    _run(
        [
            sys.executable,
            "-m",
            "glimpse_keras.data.convert",
            "--dataset",
            dataset,
            "--data-dir",
            raw_dir,
            "--output",
            output,
            "--workers",
            str(data_config.convert_workers),
            "--stored-size",
            str(data_config.stored_size),
        ]
    )


def synthetic_raw_dir(cache_root, data_config):
    """Cache folder of generated raw data; its name holds a digest of the
    generator's version and resolved preset, so data from another generator or
    preset is generated anew instead of reused."""
    import json

    from glimpse_keras.data.synthetic import GENERATOR_VERSION, resolve_config

    generator_config = resolve_config("ntu", data_config.synthetic_preset)
    identity = json.dumps([GENERATOR_VERSION, generator_config], sort_keys=True)
    digest = hashlib.sha1(identity.encode()).hexdigest()[:8]
    name = f"synthetic_ntu_{data_config.synthetic_preset}_seed{data_config.synthetic_seed}_{digest}"
    return os.path.join(cache_root, name, "raw")


def prepare_data(data_config, cache_root):
    """Returns the directory of converted shards for `data_config`.

    Args:
        data_config: `config.DataConfig`.
        cache_root: directory for generated and converted data (created).

    Returns:
        str, a directory with `splits/<protocol>/<split>.json`.

    Raises:
        DataDirError: naming the directory and what was expected.
    """
    dataset = data_config.dataset
    data_dir = data_config.data_dir
    if dataset == "synthetic" and not data_dir:
        raw_dir = synthetic_raw_dir(cache_root, data_config)
        converted = os.path.join(os.path.dirname(raw_dir), f"tfrecords_{data_config.stored_size}")
        if not is_converted(converted):
            _run(
                [
                    sys.executable,
                    "-m",
                    "glimpse_keras.data.synthetic",
                    "--format",
                    "ntu",
                    "--output",
                    raw_dir,
                    "--preset",
                    data_config.synthetic_preset,
                    "--seed",
                    str(data_config.synthetic_seed),
                    "--workers",
                    str(data_config.convert_workers),
                ]
            )
            _convert(raw_dir, "ntu", converted, data_config)
        return converted
    if not data_dir or not os.path.isdir(data_dir):
        raise DataDirError(_missing_message(dataset, data_dir))
    if is_converted(data_dir):
        return data_dir
    if dataset == "videos":
        return _prepare_user_videos(data_dir, cache_root, data_config)
    layout = raw_layout(data_dir)
    expected = "nucla" if dataset == "nucla" else "ntu"
    if layout != expected:
        raise DataDirError(_missing_message(dataset, data_dir))
    digest = raw_tree_digest(data_dir)
    converted = os.path.join(
        cache_root, f"{expected}_{os.path.basename(os.path.abspath(data_dir))}_{digest}_{data_config.stored_size}"
    )
    if not is_converted(converted):
        _convert(data_dir, expected, converted, data_config)
    return converted


def _prepare_user_videos(data_dir, cache_root, data_config):
    """Converts a user-video folder (`user_videos`) once into the cache; returns the shards."""
    from glimpse_keras.data import user_videos

    try:
        user_videos.list_entries(data_dir)
    except user_videos.UserVideosError as error:
        raise DataDirError(f"--data-dir {data_dir}: {error}") from error
    digest = raw_tree_digest(data_dir)
    name = f"videos_{os.path.basename(os.path.abspath(data_dir))}_{digest}_{data_config.stored_size}"
    converted = os.path.join(cache_root, name)
    if not is_converted(converted):
        _convert(data_dir, "videos", converted, data_config)
    return converted


def raw_tree_digest(data_dir):
    """8 hex digits identifying a raw dataset tree and its current contents.

    Hashes the absolute path and the relative path, size and modification
    time of every file under it, so that adding, removing or replacing a
    video or skeleton file gives a new conversion cache instead of reusing
    shards converted from the old files. (Walking the tree stats every file
    once: about a second for NTU's 114,000 files.)
    """
    root = os.path.abspath(data_dir)
    digest = hashlib.sha1(root.encode())
    for directory, subdirectories, names in os.walk(root):
        subdirectories.sort()
        for name in sorted(names):
            path = os.path.join(directory, name)
            stat = os.stat(path)
            relative = os.path.relpath(path, root)
            digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:8]


def _missing_message(dataset, data_dir):
    if dataset == "videos":
        from glimpse_keras.data.user_videos import EXPECTED_LAYOUT

        return f"--data-dir {data_dir or '(not given)'}: expected your videos as {EXPECTED_LAYOUT}"
    what = NUCLA_HELP if dataset == "nucla" else NTU_HELP
    shown = data_dir or "(not given)"
    return (
        f"--data-dir {shown}: expected converted shards (a folder with "
        f"splits/, written by `python -m glimpse_keras.data.convert`) or a raw "
        f"{'N-UCLA' if dataset == 'nucla' else 'NTU RGB+D'} tree. {what} "
        f"To try everything without downloads, run `python train.py` "
        f"(synthetic NTU-format data is generated)."
    )


def label_map(data_config):
    """The stored labels of `data_config.classes`, in order, or None for all.

    The converter stores NTU action A### as label ### - 1 and N-UCLA actions
    through `NUCLA_ACTION_TO_LABEL`; `pipeline.build_dataset(label_map=...)`
    keeps those videos and relabels them 0..K-1.
    """
    if not data_config.classes:
        return None
    if data_config.dataset == "nucla":
        from glimpse_keras.data.nucla import NUCLA_ACTION_TO_LABEL

        return [NUCLA_ACTION_TO_LABEL[number] for number in data_config.classes]
    return [number - 1 for number in data_config.classes]


def split_protocol(data_config):
    """The split protocol name used in the converted indexes."""
    if data_config.dataset == "videos":
        return "user"  # user_videos.PROTOCOL
    return "xview" if data_config.dataset == "nucla" else data_config.protocol


def split_files(converted_dir, data_config, split):
    """TFRecord files of one split (raises pipeline.SplitNotFoundError)."""
    return pipeline.list_split_files(converted_dir, split_protocol(data_config), split)
