"""`glimpse_keras.filesystem`: local paths through `os`, URLs through
`tf.io.gfile` (TensorFlow's in-memory `ram://` file system here)."""

import builtins
import io
import os
import uuid

import pytest
import tensorflow as tf

from glimpse_keras import filesystem, io_utils


@pytest.fixture
def ram():
    root = f"ram://filesystem-{uuid.uuid4().hex[:8]}"
    tf.io.gfile.makedirs(root)
    return root


def _write(url, data):
    with tf.io.gfile.GFile(url, "wb") as handle:
        handle.write(data)


def test_local_paths_stay_local(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x\n")
    with filesystem.open(path) as handle:
        assert isinstance(handle, io.TextIOWrapper) and handle.name == str(path)
    with filesystem.local_copy(str(path)) as local:
        assert local == str(path)  # no copy
    assert filesystem.is_local(str(path)) and not filesystem.is_local("gs://bucket/a")
    assert filesystem.absolute("x") == os.path.abspath("x")


def test_url_paths():
    assert filesystem.absolute("gs://b/a/../c") == "gs://b/a/../c"
    assert filesystem.normpath("gs://b/root/./a/../v.mp4") == "gs://b/root/v.mp4"
    assert filesystem.normpath("gs://b/") == "gs://b"
    assert filesystem.isabs("ram://x") and not filesystem.isabs("x/y")
    assert filesystem.relpath("gs://b/root/c/v.mp4", "gs://b/root") == "c/v.mp4"
    assert filesystem.relpath("gs://other/v.mp4", "gs://b/root").startswith("..")
    assert filesystem.relpath("/data/v.mp4", "gs://b/root").startswith("..")


def test_reading_a_url_reads_like_open(ram, tmp_path):
    _write(f"{ram}/t.txt", b"a\r\nb\xff\n")
    (tmp_path / "t.txt").write_bytes(b"a\r\nb\xff\n")
    with filesystem.open(f"{ram}/t.txt", encoding="utf-8", errors="replace") as remote, \
            builtins.open(tmp_path / "t.txt", encoding="utf-8", errors="replace") as local:
        assert list(remote) == list(local) == ["a\n", "b\ufffd\n"]
    with filesystem.open(f"{ram}/t.txt", "rb") as handle:
        assert handle.read() == b"a\r\nb\xff\n"
    with pytest.raises(FileNotFoundError) as missing:
        filesystem.open(f"{ram}/missing.txt")
    assert missing.value.filename == f"{ram}/missing.txt"
    with pytest.raises(ValueError, match="for reading only"):
        filesystem.open(f"{ram}/t.txt", "w")


def test_listing_a_url_as_os_walk_does(ram):
    for folder in ("b", "a", "a/inner"):
        tf.io.gfile.makedirs(f"{ram}/{folder}")
    for name in ("top.txt", "a/one.avi", "a/inner/two.avi", "b/three.avi"):
        _write(f"{ram}/{name}", b"x")
    assert sorted(filesystem.listdir(ram)) == ["a", "b", "top.txt"]
    assert filesystem.isdir(f"{ram}/a") and not filesystem.isfile(f"{ram}/a")
    assert filesystem.isfile(f"{ram}/a/one.avi") and not filesystem.isfile(f"{ram}/nothing")
    visited = []
    for folder, folders, files in filesystem.walk(ram):
        folders.sort(reverse=True)
        if "inner" in folders:
            folders.remove("inner")  # pruned: never visited
        visited.append((folder[len(ram):], sorted(files)))
    assert visited == [("", ["top.txt"]), ("/b", ["three.avi"]), ("/a", ["one.avi"])]
    assert list(filesystem.walk(f"{ram}/missing")) == []
    with pytest.raises(FileNotFoundError):
        filesystem.listdir(f"{ram}/missing")


class _GcsLikeListing:
    """A gfile stand-in listing as TensorFlow's GCS file system does (sub-folders
    end with '/'); asking it `isdir` fails the test."""

    def listdir(self, url):
        return {"gs://b/raw": ["videos/", "list.txt"], "gs://b/raw/videos": ["S001_rgb.avi"]}[url]

    def isdir(self, url):
        raise AssertionError(f"isdir({url}) costs a request per entry")


def test_a_gcs_listing_is_walked_without_a_request_per_entry(monkeypatch):
    monkeypatch.setattr(filesystem, "_gfile", _GcsLikeListing)
    assert list(filesystem.walk("gs://b/raw")) == [
        ("gs://b/raw", ["videos"], ["list.txt"]), ("gs://b/raw/videos", [], ["S001_rgb.avi"])]


def test_atomic_writes_and_replace_on_a_url(ram):
    target = f"{ram}/out/manifest.json"
    filesystem.atomic_write_json(target, {"b": 1, "a": [1, 2]})
    filesystem.atomic_write_json(target, {"b": 2})
    assert filesystem.read_json(target) == {"b": 2}
    assert filesystem.listdir(f"{ram}/out") == ["manifest.json"]  # no temporary file left
    _write(f"{ram}/out/new", b"new")
    filesystem.replace(f"{ram}/out/new", f"{ram}/out/manifest.json")
    assert filesystem.listdir(f"{ram}/out") == ["manifest.json"]
    with filesystem.open(f"{ram}/out/manifest.json", "rb") as handle:
        assert handle.read() == b"new"


def test_the_json_of_a_url_is_the_json_of_a_local_write(ram, tmp_path):
    data = {"z": [1, {"y": "é"}], "a": None}
    filesystem.atomic_write_json(f"{ram}/d.json", data)
    io_utils.atomic_write_json(str(tmp_path / "d.json"), data)
    with filesystem.open(f"{ram}/d.json", "rb") as handle:
        assert handle.read() == (tmp_path / "d.json").read_bytes()


def test_a_remote_file_is_copied_locally_and_the_copy_removed(ram):
    _write(f"{ram}/clip.avi", b"\x00\x01video")
    with filesystem.local_copy(f"{ram}/clip.avi") as local:
        assert filesystem.is_local(local) and local.endswith(".avi")
        with builtins.open(local, "rb") as handle:
            assert handle.read() == b"\x00\x01video"
    assert not os.path.exists(local)
    with pytest.raises(FileNotFoundError):
        with filesystem.local_copy(f"{ram}/none.avi"):
            pass


@pytest.mark.parametrize("raised, expected", [
    (tf.errors.NotFoundError, FileNotFoundError),
    (tf.errors.PermissionDeniedError, PermissionError),
    (tf.errors.UnavailableError, filesystem.TransientStorageError),
    (tf.errors.DeadlineExceededError, filesystem.TransientStorageError),
    (tf.errors.FailedPreconditionError, OSError),
])
def test_file_system_errors_become_os_errors_naming_the_path(monkeypatch, raised, expected):
    class Failing:
        def exists(self, url):
            raise raised(None, None, "the service said no")

    monkeypatch.setattr(filesystem, "_gfile", Failing)
    with pytest.raises(expected) as error:
        filesystem.exists("gs://b/x")
    assert type(error.value) is expected
    assert error.value.filename == "gs://b/x" and "the service said no" in str(error.value)
