"""Safe writes: umask permissions, clear errors on a refused write, stale
temporary files cleaned, checksums recorded and verified, output locations
checked before work."""

import errno
import os
import stat

import pytest

from glimpse_keras import io_utils


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_atomic_files_get_the_umask_permissions(tmp_path, umask_022):
    path = tmp_path / "out.json"
    io_utils.atomic_write_json(str(path), {"a": 1})
    assert _mode(path) == 0o644  # mkstemp alone gives 0600
    os.umask(0o027)
    io_utils.atomic_write_text(str(path), "again")
    assert _mode(path) == 0o640


def test_a_full_disk_names_the_file_and_keeps_the_old_content(tmp_path):
    path = tmp_path / "state.json"
    io_utils.atomic_write_json(str(path), {"epoch": 1})
    with pytest.raises(io_utils.StorageError, match=r"cannot write .*state.json: No space left on device"):
        with io_utils.atomic_path(str(path)) as tmp:
            with open(tmp, "w") as handle:
                handle.write("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_text().strip() == '{\n  "epoch": 1\n}'.strip()
    assert [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")] == []


def test_stale_temporaries_are_cleaned(tmp_path):
    (tmp_path / "stage").mkdir()
    stale = tmp_path / "stage" / ".tmp-abc-checkpoint.weights.h5"
    stale.write_bytes(b"half")
    stale_dir = tmp_path / ".glimpse_clouds.tmp-xyz"
    stale_dir.mkdir()
    keep = tmp_path / "stage" / "checkpoint.weights.h5"
    keep.write_bytes(b"whole")
    removed = io_utils.clean_stale_temporaries(str(tmp_path))
    assert sorted(removed) == sorted([str(stale), str(stale_dir)])
    assert keep.exists() and not stale.exists() and not stale_dir.exists()


def test_checksum_detects_a_flipped_byte(tmp_path):
    path = tmp_path / "final.weights.h5"
    path.write_bytes(bytes(range(256)) * 4)
    io_utils.write_checksum(str(path))
    assert io_utils.verify_checksum(str(path)) is True
    data = bytearray(path.read_bytes())
    data[500] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(io_utils.ChecksumError, match=r"final.weights.h5 is damaged: its sha256 is"):
        io_utils.verify_checksum(str(path))


def test_a_file_without_recorded_checksum_passes_unless_required(tmp_path):
    path = tmp_path / "old.weights.h5"
    path.write_bytes(b"x")
    assert io_utils.verify_checksum(str(path)) is False
    with pytest.raises(io_utils.ChecksumError, match="no recorded checksum"):
        io_utils.verify_checksum(str(path), required=True)


def test_output_location_checks_name_the_obstacle(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(io_utils.StorageError, match=r"afile is a file, not a folder"):
        io_utils.check_output_location(str(afile / "run"), directory=True)
    with pytest.raises(io_utils.StorageError, match=r"it is a file, not a folder"):
        io_utils.check_output_location(str(afile), directory=True)
    io_utils.check_output_location(str(tmp_path / "new" / "deeper"), directory=True)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            with pytest.raises(io_utils.StorageError, match="locked is not writable"):
                io_utils.check_output_location(str(locked / "run"), directory=True)
        finally:
            locked.chmod(0o755)
