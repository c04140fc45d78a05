"""Statistics that can tell: paired differences of two models, with 95% intervals.

Two models compared on this project's demo differ by training noise (the seed moves one score by
several points) and by test-sample noise (one video is 1/N of the score). Every comparison here is
*paired*: both models are trained from the same seed (same data, same stage 1) and scored on the
same test videos, and the difference is taken per seed (and per video) before anything is
averaged.

- `seed_interval`: the mean over seeds of the per-seed differences and its Student-t interval.
  Each seed's difference already carries its own test-video noise, so this interval covers both
  sources; it is the one to judge a claim by.
- `video_interval`: within one seed, the difference of two accuracies on the same videos and its
  normal interval from the per-video differences (how much the test set alone could move it).
- `bootstrap_interval`: a two-level bootstrap over seeds, then videos within each drawn seed.
- `binomial_standard_error`: one accuracy's standard error, sqrt(p (1 - p) / n).

Accuracies and differences are fractions (0.05 = 5 points); callers format them.
"""

import math

import numpy as np


def binomial_standard_error(accuracy, count):
    """sqrt(p (1 - p) / n): the standard error of one accuracy `p` measured on `count` videos.

    Raises:
        ValueError: for `count` < 1 or an accuracy outside [0, 1].
    """
    if count < 1 or not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"need count >= 1 and accuracy in [0, 1], got count={count}, accuracy={accuracy}")
    return math.sqrt(accuracy * (1.0 - accuracy) / count)


def seed_interval(differences, confidence=0.95):
    """Mean of per-seed paired differences and its Student-t interval.

    Args:
        differences: one difference per seed (e.g. accuracy of A minus accuracy of B).
        confidence: the interval's coverage.

    Returns:
        dict with "mean", "low", "high" (None with fewer than 2 seeds), "sd" (sample standard
        deviation, None with fewer than 2) and "seeds".

    Raises:
        ValueError: with no difference.
    """
    from scipy import stats

    values = np.asarray(differences, np.float64)
    if values.size == 0:
        raise ValueError("seed_interval needs at least one difference")
    mean = float(values.mean())
    if values.size < 2:
        return {"mean": mean, "low": None, "high": None, "sd": None, "seeds": 1}
    sd = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, values.size - 1)) * sd / math.sqrt(values.size)
    return {"mean": mean, "low": mean - half, "high": mean + half, "sd": sd, "seeds": int(values.size)}


def video_interval(correct_a, correct_b, confidence=0.95):
    """Accuracy of A minus accuracy of B on the same videos, with a normal interval.

    Args:
        correct_a, correct_b: 0/1 per video, in the same video order.

    Returns:
        dict with "mean", "low", "high" and "videos".

    Raises:
        ValueError: when the two lists differ in length or are empty.
    """
    from scipy import stats

    a = np.asarray(correct_a, np.float64)
    b = np.asarray(correct_b, np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two equally long non-empty 0/1 lists, got {a.size} and {b.size}")
    difference = a - b
    mean = float(difference.mean())
    se = float(difference.std(ddof=1)) / math.sqrt(a.size) if a.size > 1 else 0.0
    half = float(stats.norm.ppf(0.5 + confidence / 2.0)) * se
    return {"mean": mean, "low": mean - half, "high": mean + half, "videos": int(a.size)}


def bootstrap_interval(correct_a_by_seed, correct_b_by_seed, draws=4000, confidence=0.95, seed=0):
    """Two-level bootstrap of the mean paired difference: seeds, then videos within each seed.

    Args:
        correct_a_by_seed, correct_b_by_seed: per seed, the 0/1 per-video lists of A and B (the same
            videos, in the same order, within a seed).
        draws: bootstrap replicates.
        confidence: the interval's coverage (percentile interval).
        seed: the bootstrap's own random seed.

    Returns:
        dict with "mean" (the observed mean of per-seed differences), "low", "high", "draws".
    """
    rng = np.random.default_rng(seed)
    per_seed = [np.asarray(a, np.float64) - np.asarray(b, np.float64)
                for a, b in zip(correct_a_by_seed, correct_b_by_seed)]
    if not per_seed or any(d.size == 0 for d in per_seed):
        raise ValueError("bootstrap_interval needs at least one seed with videos")
    observed = float(np.mean([d.mean() for d in per_seed]))
    replicates = np.empty(draws)
    for index in range(draws):
        chosen = rng.integers(0, len(per_seed), len(per_seed))
        replicates[index] = np.mean([per_seed[s][rng.integers(0, per_seed[s].size, per_seed[s].size)].mean()
                                     for s in chosen])
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return {"mean": observed, "low": float(low), "high": float(high), "draws": int(draws)}


def compare(correct_a_by_seed, correct_b_by_seed, confidence=0.95):
    """Every statistic of a paired comparison of A and B over seeds.

    Args:
        correct_a_by_seed, correct_b_by_seed: per seed, 0/1 per video (same videos within a seed).

    Returns:
        dict with "per_seed" (list of `video_interval` results), "seeds" (`seed_interval` of the
        per-seed differences) and "bootstrap" (`bootstrap_interval`).
    """
    per_seed = [video_interval(a, b, confidence) for a, b in zip(correct_a_by_seed, correct_b_by_seed)]
    return {
        "per_seed": per_seed,
        "seeds": seed_interval([entry["mean"] for entry in per_seed], confidence),
        "bootstrap": bootstrap_interval(correct_a_by_seed, correct_b_by_seed, confidence=confidence),
    }


def format_interval(result, scale=100.0, digits=1):
    """'+2.9 [-1.2, +7.0]' from a result with "mean", "low", "high" (points by default)."""
    mean = f"{scale * result['mean']:+.{digits}f}"
    if result.get("low") is None:
        return mean
    return f"{mean} [{scale * result['low']:+.{digits}f}, {scale * result['high']:+.{digits}f}]"
