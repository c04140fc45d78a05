"""Paired statistics on hand-computed cases."""

import math

import numpy as np
import pytest

from glimpse_keras import statistics


def test_binomial_standard_error():
    assert statistics.binomial_standard_error(0.5, 625) == pytest.approx(0.02)
    assert statistics.binomial_standard_error(0.5, 240) == pytest.approx(0.0323, abs=1e-4)
    assert statistics.binomial_standard_error(1.0, 10) == 0.0
    with pytest.raises(ValueError, match="count=0"):
        statistics.binomial_standard_error(0.5, 0)


def test_seed_interval_is_the_student_t_interval():
    result = statistics.seed_interval([0.1, 0.2, 0.3])
    # mean 0.2, sd 0.1, t(0.975, 2) = 4.3027: half-width 4.3027 * 0.1 / sqrt(3) = 0.24842.
    assert result["mean"] == pytest.approx(0.2)
    assert result["sd"] == pytest.approx(0.1)
    assert result["low"] == pytest.approx(0.2 - 0.24842, abs=1e-5)
    assert result["high"] == pytest.approx(0.2 + 0.24842, abs=1e-5)
    assert result["seeds"] == 3
    five = statistics.seed_interval([0.062, -0.05, 0.075, 0.0, 0.1])
    assert five["high"] - five["mean"] == pytest.approx(2.7764 * five["sd"] / math.sqrt(5), rel=1e-4)
    single = statistics.seed_interval([0.05])
    assert (single["mean"], single["low"], single["high"]) == (0.05, None, None)
    with pytest.raises(ValueError):
        statistics.seed_interval([])


def test_video_interval_uses_the_per_video_differences():
    a = [1, 1, 1, 0, 1, 0, 1, 1]
    b = [1, 0, 1, 0, 0, 0, 1, 0]
    result = statistics.video_interval(a, b)
    differences = np.array(a) - np.array(b)  # three +1, five 0
    se = differences.std(ddof=1) / math.sqrt(8)
    assert result["mean"] == pytest.approx(3 / 8)
    assert result["high"] - result["mean"] == pytest.approx(1.959964 * se, rel=1e-5)
    assert result["videos"] == 8
    same = statistics.video_interval(a, a)
    assert (same["mean"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="8 and 7"):
        statistics.video_interval(a, b[:7])


def test_bootstrap_interval_is_zero_width_for_identical_models_and_covers_a_constant_gain():
    seeds = [[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 0]]
    same = statistics.bootstrap_interval(seeds, seeds, draws=200)
    assert (same["mean"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    # A model right on every video against one right on none: +1 whatever is resampled.
    ones = [[1, 1, 1], [1, 1, 1]]
    zeros = [[0, 0, 0], [0, 0, 0]]
    gain = statistics.bootstrap_interval(ones, zeros, draws=200)
    assert (gain["mean"], gain["low"], gain["high"]) == (1.0, 1.0, 1.0)
    # Reproducible from its own seed.
    a = [[1, 0, 1, 0, 1], [0, 1, 1, 0, 0]]
    b = [[0, 0, 1, 1, 0], [0, 0, 1, 0, 1]]
    assert statistics.bootstrap_interval(a, b, seed=3) == statistics.bootstrap_interval(a, b, seed=3)


def test_compare_pairs_each_seed_then_intervals_over_seeds():
    a = [[1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]]
    b = [[1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 1, 0]]
    result = statistics.compare(a, b)
    assert [entry["mean"] for entry in result["per_seed"]] == [0.25, 0.25, 0.5]
    assert result["seeds"]["mean"] == pytest.approx(1 / 3)
    assert result["bootstrap"]["mean"] == pytest.approx(1 / 3)
    assert statistics.format_interval(result["seeds"]).startswith("+33.3 [")
    assert statistics.format_interval({"mean": 0.029, "low": None, "high": None}) == "+2.9"
    assert statistics.format_interval({"mean": 0.029, "low": -0.012, "high": 0.07}) == "+2.9 [-1.2, +7.0]"
