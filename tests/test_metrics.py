"""Ranking metrics against values computed by hand."""

import math

import pytest

from scripts.metrics import (
    average_precision_at_k,
    catalog_coverage,
    hit_rate_at_k,
    mean_metrics,
    ndcg_at_k,
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
