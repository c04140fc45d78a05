"""The conversion cache of a raw dataset tree follows the tree's contents."""

import os

from glimpse_keras.data.preparation import raw_tree_digest


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def test_raw_tree_digest_changes_with_the_files_only(tmp_path):
    root = tmp_path / "ntu"
    write(str(root / "nturgb+d_rgb" / "a.avi"), "video")
    write(str(root / "nturgb+d_skeletons" / "a.skeleton"), "1")
    first = raw_tree_digest(str(root))
    assert len(first) == 8 and first == raw_tree_digest(str(root))

    write(str(root / "nturgb+d_rgb" / "b.avi"), "video")  # a video added
    added = raw_tree_digest(str(root))
    assert added != first

    path = str(root / "nturgb+d_skeletons" / "a.skeleton")
    write(path, "12")  # a file replaced by a longer one
    replaced = raw_tree_digest(str(root))
    assert replaced != added

    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, newer
    assert raw_tree_digest(str(root)) != replaced

    # The same files under another directory are another cache.
    before = raw_tree_digest(str(root))
    moved = tmp_path / "moved"
    os.rename(str(root), str(moved))
    assert raw_tree_digest(str(moved)) != before
