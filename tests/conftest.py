"""Shared pytest setup: the `slow` and `slow_on_jax` markers, quiet
TensorFlow logs, fast XLA compiles for the JAX run."""

import os

FAST_XLA_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("KERAS_BACKEND") == "jax":
    # Test shapes are tiny, so XLA's compile time (every eager JAX op and
    # every jitted step is compiled for its shapes) dominates the run; these
    # flags compile CPU code about 2.4x faster (README, "Tests"). Set before
    # JAX is imported.
    os.environ.setdefault("XLA_FLAGS", FAST_XLA_COMPILE_FLAGS)

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (minutes each)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: takes minutes; skipped unless --run-slow is given"
    )
    config.addinivalue_line(
        "markers",
        "slow_on_jax: full ResNet-50 size, dominated by XLA compiles on JAX; the TensorFlow run always "
        "runs it, the JAX run only with --run-slow (the tiny-shape tests cover the same code on JAX)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow test: pass --run-slow to run it")
    on_jax = os.environ.get("KERAS_BACKEND") == "jax"
    for item in items:
        if "slow" in item.keywords or (on_jax and "slow_on_jax" in item.keywords):
            item.add_marker(skip)
