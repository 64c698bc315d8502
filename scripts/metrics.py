"""Ranking metrics at k, for one user's list and averaged over users.

Pure functions: a ranked list of recommended ids and the set of relevant ids in, numbers out.
Conventions (the usual ones, stated once): the list is cut at k; a user with no relevant items has
no defined recall, NDCG or AP and is left out of averages by the caller; an empty list scores 0.
Beside the means: per-user values and percentile bootstrap intervals over users (resampling
customers, the unit the figures average over), paired for the difference of two models.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np


def _hits(recommended: Sequence, relevant: Collection, k: int) -> np.ndarray:
    """0/1 array: is the item at each of the first k positions relevant?"""
    return np.fromiter((item in relevant for item in recommended[:k]), dtype=np.float64)


def precision_at_k(recommended: Sequence, relevant: Collection, k: int) -> float:
    """Share of the k slots holding a relevant item (a list shorter than k is padded with misses).

    Parameters
    ----------
    recommended : sequence
        Ranked item ids, best first.
    relevant : collection
        Relevant item ids.
    k : int
        Cut-off, k >= 1.
    """
    return float(_hits(recommended, relevant, k).sum() / k)


def recall_at_k(recommended: Sequence, relevant: Collection, k: int) -> float:
    """Share of the relevant items found in the first k."""
    if not relevant:
        return 0.0
    return float(_hits(recommended, relevant, k).sum() / len(relevant))


def hit_rate_at_k(recommended: Sequence, relevant: Collection, k: int) -> float:
    """1.0 if any of the first k is relevant, else 0.0."""
    return float(_hits(recommended, relevant, k).any())


def ndcg_at_k(recommended: Sequence, relevant: Collection, k: int) -> float:
    """Normalised discounted cumulative gain with binary relevance.

    DCG = sum over hit positions i (0-based) of 1 / log2(i + 2); the ideal DCG places
    min(|relevant|, k) hits first.
    """
    if not relevant:
        return 0.0
    hits = _hits(recommended, relevant, k)
    # discounts 1/log2(2), 1/log2(3), ...
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float((hits * discounts[: len(hits)]).sum())
    ideal = float(discounts[: min(len(relevant), k)].sum())
    return dcg / ideal


def average_precision_at_k(recommended: Sequence, relevant: Collection, k: int) -> float:
    """Mean of precision@i over the hit positions i <= k, divided by min(|relevant|, k)."""
    if not relevant:
        return 0.0
    hits = _hits(recommended, relevant, k)
    if not hits.any():
        return 0.0
    # precision at each position, kept where there is a hit
    precisions = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precisions * hits).sum() / min(len(relevant), k))


METRICS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "hit_rate": hit_rate_at_k,
    "map": average_precision_at_k,
}


def mean_metrics(
    lists: Mapping[object, Sequence], relevant: Mapping[object, Collection], users: Iterable, k: int
) -> dict[str, float]:
    """Each metric of :data:`METRICS` at k, averaged over ``users`` (each must have relevant items).

    A user missing from ``lists`` got no recommendations and scores 0 on every metric.
    """
    users = list(users)
    if not users:
        return {name: float("nan") for name in METRICS}
    totals = dict.fromkeys(METRICS, 0.0)
    for user in users:
        recommended = lists.get(user, ())
        for name, metric in METRICS.items():
            totals[name] += metric(recommended, relevant[user], k)
    return {name: total / len(users) for name, total in totals.items()}


def catalog_coverage(lists: Iterable[Sequence], k: int, n_items: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    if n_items == 0:
        return 0.0
    shown = set()
    for recommended in lists:
        shown.update(recommended[:k])
    return len(shown) / n_items


# ---------------------------------------------------------------------------------------------
# Per-user values and their bootstrap intervals
# ---------------------------------------------------------------------------------------------

# most resampled values held at once: a chunk of resamples is (chunk, n) integers
_RESAMPLE_CELLS = 2_000_000


def per_user_metric(
    lists: Mapping[object, Sequence],
    relevant: Mapping[object, Collection],
    users: Iterable,
    k: int,
    metric: str = "ndcg",
) -> np.ndarray:
    """The metric of :data:`METRICS` for each user in order (a user missing from lists scores 0).

    Its mean is the figure of :func:`mean_metrics`; the values themselves are what
    :func:`bootstrap_interval` resamples.

    Parameters
    ----------
    lists : mapping
        User -> ranked item ids, best first.
    relevant : mapping
        User -> relevant item ids (each user of ``users`` must have some).
    users : iterable
        The users, in the order of the result.
    k : int
        Cut-off.
    metric : str
        A key of :data:`METRICS`.

    Returns
    -------
    ndarray of shape (n_users,), float64
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    score = METRICS[metric]
    return np.array([score(lists.get(user, ()), relevant[user], k) for user in users], dtype=np.float64)


def _interval_bounds(confidence: float) -> tuple[float, float]:
    """Lower and upper quantile levels of a two-sided interval."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tail = (1.0 - confidence) / 2.0
    return tail, 1.0 - tail


def bootstrap_interval(
    values: np.ndarray, confidence: float = 0.95, n_resamples: int = 1000, random_state: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-user values (nan, nan for an empty array).

    Users are resampled with replacement ``n_resamples`` times; the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means.

    Parameters
    ----------
    values : ndarray of shape (n_users,)
        One value per user (e.g. from :func:`per_user_metric`).
    confidence : float
        Coverage, in (0, 1).
    n_resamples : int
        Number of bootstrap resamples, >= 1.
    random_state : int
        Seed of the resampling.

    Returns
    -------
    (low, high) : tuple of float
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    low, high = _interval_bounds(confidence)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    n = values.size
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(random_state)
    # resampled means, a chunk of resamples at a time so that the index array stays bounded
    chunk = max(1, _RESAMPLE_CELLS // n)
    means = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        index = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[index].mean(axis=1)
    # percentile interval
    lower, upper = np.quantile(means, [low, high])
    return float(lower), float(upper)


def paired_bootstrap_interval(
    a: np.ndarray,
    b: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    random_state: int = 0,
) -> tuple[float, float]:
    """Interval of mean(a - b) over the same users, resampling users (for "is A better than B").

    ``a[i]`` and ``b[i]`` belong to the same user, so a user is drawn with both values; an interval
    that excludes 0 says the difference is not the luck of which users were drawn.

    Parameters
    ----------
    a, b : ndarray of shape (n_users,)
        Per-user values of two models, users in the same order.
    confidence, n_resamples, random_state
        As for :func:`bootstrap_interval`.

    Returns
    -------
    (low, high) : tuple of float
        (nan, nan) when there are no users.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold one value per user each, got {a.size} and {b.size}")
    # the per-user difference carries the pairing
    return bootstrap_interval(a - b, confidence, n_resamples, random_state)
