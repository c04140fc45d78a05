"""Fixtures shared by the conversion tests: the tiny synthetic NTU set and its
local-engine conversion, made once per session."""

import os

import pytest

from glimpse_keras.data import convert
from glimpse_keras.data.synthetic.runner import generate
from tests.data.conversion_checks import STRAY_FILE, TINY_SETTINGS


@pytest.fixture(scope="session")
def raw_tiny(tmp_path_factory):
    """The tiny synthetic NTU set (one truncated AVI among 36) plus a stray file."""
    root = str(tmp_path_factory.mktemp("raw_tiny"))
    generate("ntu", root, preset="tiny", seed=0, workers=1, progress=False)
    with open(os.path.join(root, "nturgb+d_rgb", STRAY_FILE), "w") as handle:
        handle.write("not a sample")
    return root


@pytest.fixture(scope="session")
def local_output(raw_tiny, tmp_path_factory):
    """`raw_tiny` converted by the local engine (one process) with TINY_SETTINGS."""
    out = str(tmp_path_factory.mktemp("local"))
    assert convert.main([*TINY_SETTINGS, "--data-dir", raw_tiny, "--output", out,
                         "--workers", "1"]) == 0
    return out
