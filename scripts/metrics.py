"""Ranking metrics at k, for one user's list and averaged over users.

Pure functions: a ranked list of recommended ids and the set of relevant ids in, numbers out.
Conventions (the usual ones, stated once): the list is cut at k; a user with no relevant items has
no defined recall, NDCG or AP and is left out of averages by the caller; an empty list scores 0.
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
