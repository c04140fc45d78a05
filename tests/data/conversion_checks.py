"""Comparing two conversions record by record, on the local disk or on any
`tf.io.gfile` file system (the fixtures using these are in conftest.py)."""

import json
import os
import posixpath

import tensorflow as tf

from glimpse_keras import filesystem

TINY_SETTINGS = ["--dataset", "ntu", "--shard-size", "4", "--stored-size", "32",
                 "--protocol", "xsub,xview", "--no-progress"]
STRAY_FILE = "notes_rgb.avi"  # found, but no sample id: a listing problem


def files_under(root):
    """Paths of every file under `root`, relative to it, '/'-separated."""
    root = os.fspath(root)
    found = set()
    for folder, _, names in filesystem.walk(root):
        relative = os.path.relpath(folder, root) if filesystem.is_local(root) else folder[len(root):].lstrip("/")
        found.update(posixpath.normpath(posixpath.join(relative, name)) for name in names)
    return found


def copy_tree(source, target):
    """Copies the folder `source` to `target` (any file systems), folders first."""
    for folder, _, names in filesystem.walk(source):
        relative = os.path.relpath(folder, source)
        destination = target if relative == "." else posixpath.join(target, relative)
        tf.io.gfile.makedirs(destination)
        for name in names:
            tf.io.gfile.copy(os.path.join(folder, name), posixpath.join(destination, name), overwrite=True)


def records(path):
    return [tf.train.SequenceExample.FromString(serialized.numpy())
            for serialized in tf.data.TFRecordDataset(os.fspath(path))]


def read_bytes(path):
    with filesystem.open(path, "rb") as handle:
        return handle.read()


def read_json(path, renamed=()):
    """The JSON file's content, with each (old, new) prefix of `renamed`
    replaced in its text first (raw-data paths of another location)."""
    text = read_bytes(os.fspath(path)).decode()
    for old, new in renamed:
        text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    return json.loads(text)


def assert_same_conversion(expected, actual, renamed=(), min_shards=5):
    """Same files; shards byte-identical with equal records; equal JSON files
    (after `renamed`, as `read_json`). `expected` must hold `min_shards`
    shards with records (a shard may hold only skipped samples)."""
    expected, actual = os.fspath(expected), os.fspath(actual)
    names = files_under(expected)
    assert files_under(actual) == names
    shards = sorted(name for name in names if name.endswith(".tfrecord"))
    filled = 0
    for name in shards:
        wanted = records(os.path.join(expected, name))
        assert records(os.path.join(actual, name)) == wanted, name
        assert read_bytes(os.path.join(actual, name)) == read_bytes(os.path.join(expected, name)), name
        filled += bool(wanted)
    assert filled >= min_shards
    for name in names - set(shards):  # sidecars, splits, manifest, errors, settings
        assert read_json(os.path.join(actual, name), renamed) == read_json(os.path.join(expected, name)), name
