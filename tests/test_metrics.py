"""Ranking metrics against values computed by hand."""

import math

import numpy as np
import pytest

from scripts.metrics import (
    METRICS,
    average_precision_at_k,
    bootstrap_interval,
    catalog_coverage,
    hit_rate_at_k,
    mean_metrics,
    ndcg_at_k,
    paired_bootstrap_interval,
    per_user_metric,
    precision_at_k,
    recall_at_k,
)


def test_perfect_list_scores_one():
    assert ndcg_at_k([1, 2, 3], {1, 2, 3}, 3) == pytest.approx(1.0)
    assert average_precision_at_k([1, 2, 3], {1, 2, 3}, 3) == pytest.approx(1.0)
    assert precision_at_k([1, 2, 3], {1, 2, 3}, 3) == 1.0
    assert recall_at_k([1, 2, 3], {1, 2, 3}, 3) == 1.0


def test_empty_list_scores_zero():
    for metric in (precision_at_k, recall_at_k, hit_rate_at_k, ndcg_at_k, average_precision_at_k):
        assert metric([], {1}, 5) == 0.0


def test_known_permutation():
    # relevant {a, c}; list [b, a, c]: hits at positions 2 and 3 (1-based)
    recommended, relevant = ["b", "a", "c"], {"a", "c"}
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(recommended, relevant, 3) == pytest.approx(dcg / ideal)  # 0.6934...
    assert ndcg_at_k(recommended, relevant, 3) == pytest.approx(0.693426, abs=1e-6)
    # AP: precision@2 = 1/2, precision@3 = 2/3, over min(2, 3) = 2 relevant
    assert average_precision_at_k(recommended, relevant, 3) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert precision_at_k(recommended, relevant, 3) == pytest.approx(2 / 3)
    assert recall_at_k(recommended, relevant, 1) == 0.0
    assert hit_rate_at_k(recommended, relevant, 1) == 0.0
    assert hit_rate_at_k(recommended, relevant, 2) == 1.0


def test_cut_at_k_and_short_lists():
    assert precision_at_k([1], {1}, 10) == pytest.approx(0.1)  # a short list is padded with misses
    assert recall_at_k([5, 6, 1], {1, 2}, 2) == 0.0
    assert recall_at_k([5, 6, 1], {1, 2}, 3) == 0.5
    # ideal DCG is capped at k when there are more relevant items than slots
    assert ndcg_at_k([1, 2], {1, 2, 3, 4}, 2) == pytest.approx(1.0)


def test_mean_over_users_counts_missing_lists_as_zero():
    lists = {"u1": [1, 2], "u2": [9]}
    relevant = {"u1": {1}, "u2": {1}, "u3": {1}}
    means = mean_metrics(lists, relevant, ["u1", "u2", "u3"], k=2)
    assert means["hit_rate"] == pytest.approx(1 / 3)
    assert means["precision"] == pytest.approx((1 / 2) / 3)
    assert math.isnan(mean_metrics(lists, relevant, [], k=2)["ndcg"])


def test_catalog_coverage():
    # top-2 lists [1, 2] and [3, 4]: four distinct shoes of ten
    assert catalog_coverage([[1, 2, 3], [3, 4]], k=2, n_items=10) == pytest.approx(4 / 10)
    assert catalog_coverage([], k=2, n_items=0) == 0.0


# ---------------------------------------------------------------------------------------------
# Per-user values and bootstrap intervals
# ---------------------------------------------------------------------------------------------


def test_per_user_metric_averages_to_mean_metrics():
    lists = {"u1": [1, 2, 3], "u2": [9, 1], "u4": [4]}
    relevant = {"u1": {1, 3}, "u2": {1}, "u3": {2}, "u4": {4, 5}}
    users = ["u1", "u2", "u3", "u4"]
    means = mean_metrics(lists, relevant, users, k=2)
    for name in METRICS:
        values = per_user_metric(lists, relevant, users, k=2, metric=name)
        assert values.shape == (4,)
        assert values.mean() == pytest.approx(means[name])
    # in the users' order; the user without a list scores 0
    ndcg = per_user_metric(lists, relevant, users, k=2)
    assert ndcg[2] == 0.0
    assert ndcg[1] == pytest.approx(ndcg_at_k([9, 1], {1}, 2))
    with pytest.raises(ValueError, match="unknown metric"):
        per_user_metric(lists, relevant, users, k=2, metric="auc")


def test_bootstrap_interval_contains_the_mean_and_is_deterministic():
    values = np.random.default_rng(1).random(200)
    low, high = bootstrap_interval(values)
    assert low < values.mean() < high
    assert bootstrap_interval(values, random_state=3) == bootstrap_interval(values, random_state=3)
    assert bootstrap_interval(values, random_state=3) != bootstrap_interval(values, random_state=4)
    # a wider confidence, a wider interval
    wide = bootstrap_interval(values, confidence=0.99)
    assert wide[0] <= low and high <= wide[1]


def test_bootstrap_interval_shrinks_with_more_users():
    rng = np.random.default_rng(2)
    small, large = rng.random(50), rng.random(5000)
    small_width = np.subtract(*bootstrap_interval(small)[::-1])
    large_width = np.subtract(*bootstrap_interval(large)[::-1])
    # the width goes as 1 / sqrt(n): 10 times narrower for 100 times the users
    assert large_width < small_width / 5


def test_bootstrap_interval_of_nothing_and_of_a_constant():
    assert all(math.isnan(bound) for bound in bootstrap_interval(np.array([])))
    assert bootstrap_interval(np.full(30, 0.25)) == pytest.approx((0.25, 0.25))
    with pytest.raises(ValueError):
        bootstrap_interval(np.ones(3), confidence=1.0)


def test_bootstrap_interval_chunks_large_arrays(monkeypatch):
    import scripts.metrics as metrics

    values = np.random.default_rng(5).random(300)
    whole = bootstrap_interval(values, n_resamples=200)
    # fewer cells per chunk: more chunks, the same draws in the same order
    monkeypatch.setattr(metrics, "_RESAMPLE_CELLS", 1000)
    assert bootstrap_interval(values, n_resamples=200) == pytest.approx(whole)


def test_paired_interval_excludes_zero_when_a_dominates_b():
    rng = np.random.default_rng(3)
    b = rng.random(100)
    a = b + rng.uniform(0.001, 0.01, size=100)  # better on every user, by a little
    low, high = paired_bootstrap_interval(a, b)
    assert 0 < low <= (a - b).mean() <= high
    # the unpaired intervals overlap: only the pairing shows the difference
    assert bootstrap_interval(a)[0] < bootstrap_interval(b)[1]
    assert paired_bootstrap_interval(b, a)[1] < 0


def test_paired_interval_of_identical_arrays_contains_zero():
    a = np.random.default_rng(4).random(80)
    low, high = paired_bootstrap_interval(a, a.copy())
    assert low <= 0 <= high
    assert all(math.isnan(bound) for bound in paired_bootstrap_interval(np.array([]), np.array([])))
    with pytest.raises(ValueError, match="one value per user"):
        paired_bootstrap_interval(np.ones(3), np.ones(4))
