"""Finds or builds the converted TFRecords a run trains on.

`--data-dir` may point at converted shards (a directory with `splits/`), at a
raw tree of a registered family (NTU RGB+D, N-UCLA, your own videos; see
`data.datasets`), converted once into a cache next to the run's output, keyed
by the tree's file list, sizes and times so that changed raw files are
converted again, or be empty for the synthetic dataset (generated once, then
converted). The generator and converter run as their own command-line tools,
so their progress bars and error reports reach the user unchanged.

Converted shards may also be at a URL (gs://...; `glimpse_keras.filesystem`).
A raw tree is converted here only from a local path; convert a remote one with
`python -m glimpse_keras.data.convert` and point `--data-dir` at its output.
"""

import contextlib
import hashlib
import os
import subprocess
import sys

from glimpse_keras import filesystem
from glimpse_keras.data import datasets, pipeline
from glimpse_keras.errors import DataDirError



def is_converted(path):
    """True when `path` holds converted shards with split indexes."""
    return filesystem.isdir(os.path.join(path, "splits"))


def raw_layout(path):
    """The raw format ('ntu', 'nucla', ...) of the registered family whose raw
    tree `path` holds, or None."""
    for name in datasets.names():
        adapter = datasets.get(name)
        if adapter.is_raw_tree(path):
            return adapter.raw_format
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
    adapter = datasets.get(data_config.dataset)
    data_dir = data_config.data_dir
    raw_dir = adapter.generated_raw_dir(data_config, cache_root)
    if raw_dir is not None:
        converted = os.path.join(os.path.dirname(raw_dir), f"tfrecords_{data_config.stored_size}")
        if not is_converted(converted):
            _run(adapter.generate(raw_dir, data_config))
            _convert(raw_dir, adapter.raw_format, converted, data_config)
        return converted
    if not data_dir or not filesystem.isdir(data_dir):
        raise DataDirError(_missing_message(adapter, data_dir))
    if is_converted(data_dir):
        check_conversion_settings(data_dir, data_config)
        return data_dir
    if not adapter.is_raw_tree(data_dir):
        raise DataDirError(_missing_message(adapter, data_dir))
    digest = raw_tree_digest(data_dir)
    converted = os.path.join(
        cache_root,
        f"{adapter.raw_format}_{os.path.basename(os.path.abspath(data_dir))}_{digest}_{data_config.stored_size}",
    )
    if not is_converted(converted):
        _convert(data_dir, adapter.raw_format, converted, data_config)
    return converted


SETTINGS_FILE = "conversion_settings.json"


def conversion_settings(converted_dir):
    """The settings the converter recorded in `converted_dir`
    (`conversion_settings.json`: dataset, stored_size, ...), or None when
    the file is absent.

    Raises:
        DataDirError: the file exists but cannot be read.
    """
    path = os.path.join(converted_dir, SETTINGS_FILE)
    if not filesystem.exists(path):
        return None
    try:
        return filesystem.read_json(path)
    except (OSError, ValueError) as error:
        raise DataDirError(f"cannot read {path}: {error}") from error


def check_conversion_settings(converted_dir, data_config):
    """Checks converted data against the config that will read it.

    The frames were stored at `stored_size` x `stored_size`; the model is
    trained and evaluated on crops of them and the serving graph resizes
    to `data.stored_size`, so a config with another stored size would serve
    frames at a size the model never saw.

    Raises:
        DataDirError: naming the settings file, the key and both values.
    """
    settings = conversion_settings(converted_dir)
    if settings is None:
        return
    path = os.path.join(converted_dir, SETTINGS_FILE)
    stored = settings.get("stored_size")
    if stored is not None and int(stored) != data_config.stored_size:
        raise DataDirError(
            f"data.stored_size: the config says {data_config.stored_size} but {converted_dir} "
            f"was converted at stored_size {stored} ({path}); set --set data.stored_size={stored} "
            f"or convert the raw data again"
        )
    dataset = settings.get("dataset")
    expected = datasets.get(data_config.dataset).raw_format
    if dataset is not None and dataset != expected:
        raise DataDirError(
            f"data.dataset: the config says {data_config.dataset!r} but {converted_dir} holds "
            f"{dataset!r} data ({path}); set --dataset to match"
        )


def damaged_shards(converted_dir):
    """The TFRecord shards under `converted_dir` that cannot be read to the
    end (a CRC mismatch, a truncated record), each with TensorFlow's reason.

    Reads every shard once: called after a read failed, to name the file.

    Returns:
        sorted list of (path, reason).
    """
    import tensorflow as tf

    damaged = []
    for folder, _, names in os.walk(converted_dir):
        for name in sorted(names):
            if not name.endswith(".tfrecord"):
                continue
            path = os.path.join(folder, name)
            try:
                for _ in tf.data.TFRecordDataset(path):
                    pass
            except tf.errors.OpError as error:
                damaged.append((path, error.message.splitlines()[0][:200]))
    return sorted(damaged)


@contextlib.contextmanager
def shard_errors(converted_dir):
    """Turns TensorFlow's `DataLossError` from reading the shards inside the
    block (a damaged TFRecord file: its message names no file) into a
    `DataDirError` naming the damaged shard(s) and the way out.

    Raises:
        DataDirError: the shards of `converted_dir` that cannot be read.
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.DataLossError as error:
        damaged = damaged_shards(converted_dir)
        named = "; ".join(f"{path} ({reason})" for path, reason in damaged) or error.message.splitlines()[0]
        raise DataDirError(
            f"damaged converted data in {converted_dir}: {named}. Delete the damaged shard(s) and their "
            f".json sidecar and run the converter again into the same folder (it rewrites only those), "
            f"or convert into a new folder; a training run keeps its last good checkpoint (--resume)"
        ) from None


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


def _missing_message(adapter, data_dir):
    shown = data_dir or "(not given)"
    problem = adapter.raw_tree_problem(data_dir) if data_dir and os.path.isdir(data_dir) else None
    if data_dir and not filesystem.is_local(data_dir):
        problem = ("a raw tree at a URL is not converted on the fly: convert it with "
                   "`python -m glimpse_keras.data.convert`, then pass its output")
    return (
        f"--data-dir {shown}: expected converted shards (a folder with "
        f"splits/, written by `python -m glimpse_keras.data.convert`) or a raw "
        f"{adapter.title} tree{f' ({problem})' if problem else ''}. {adapter.help} "
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
    adapter = datasets.get(data_config.dataset)
    return [adapter.stored_label(number) for number in data_config.classes]


def split_protocol(data_config):
    """The split protocol name used in the converted indexes."""
    return datasets.get(data_config.dataset).split_protocol(data_config)


def split_files(converted_dir, data_config, split):
    """TFRecord files of one split (raises pipeline.SplitNotFoundError)."""
    return pipeline.list_split_files(converted_dir, split_protocol(data_config), split)
