"""The weighted draws the catalogue, the users and their tastes share."""

from __future__ import annotations

import numpy as np


def choice(rng: np.random.Generator, n: int, weights) -> np.ndarray:
    """``n`` indices drawn with the given (unnormalized) weights."""
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def inverse_cdf(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One index per row of ``probabilities`` (rows sum to 1), drawn by inverse CDF."""
    cdf = np.cumsum(probabilities, axis=1)
    picks = (rng.random((len(cdf), 1)) * cdf[:, -1:] >= cdf).sum(axis=1)
    return np.minimum(picks, probabilities.shape[1] - 1)
