"""The recommender's math on tiny matrices whose right answer is known (no database).

The fixture is a checkerboard of three tastes: shoes 0-3 are running shoes of brand "swift", 4-7
hiking boots of brand "summit", 8-11 formal shoes of brand "oxford"; every user touches three of
the four shoes of one taste. Users of taste t have primary usage t (segment code = usage code).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from scripts import model

TASTES = ("running", "hiking", "formal")
BRANDS = ("swift", "summit", "oxford")
PER_TASTE = 4
N_USERS = 30


def taste_of_shoe(shoe: int) -> int:
    return shoe // PER_TASTE


def checkerboard(n_users: int = N_USERS, seed: int = 0) -> sp.csr_matrix:
    """User u has taste u % 3 and touched 3 of its 4 shoes, with strengths in [1, 2)."""
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    for user in range(n_users):
        taste = user % len(TASTES)
        for shoe in rng.choice(PER_TASTE, 3, replace=False):
            rows.append(user)
            cols.append(taste * PER_TASTE + shoe)
            vals.append(1.0 + rng.random())
    shape = (n_users, len(TASTES) * PER_TASTE)
    return sp.csr_matrix((vals, (rows, cols)), shape=shape, dtype=np.float32)


def shoe_fields(extra: int = 0) -> dict[str, list[str]]:
    """Attributes of the 12 checkerboard shoes, plus ``extra`` untouched running shoes of brand swift."""
    tastes = [taste_of_shoe(j) for j in range(len(TASTES) * PER_TASTE)] + [0] * extra
    return {
        "brand": [BRANDS[t] for t in tastes],
        "type": [TASTES[t] for t in tastes],
        "material": ["mesh" if t == 0 else "leather" for t in tastes],
        "color": ["black"] * len(tastes),
        "name": [f"{BRANDS[t]} model {j}" for j, t in enumerate(tastes)],
    }


WEIGHTS = {"brand": 1.0, "type": 2.0, "material": 1.0, "color": 0.5, "name": 0.5}


def segments_by_taste(n_users: int = N_USERS) -> tuple[np.ndarray, np.ndarray]:
    """One segment per usage: user u is in segment u % 3, segment s has usage s."""
    return np.arange(n_users) % len(TASTES), np.arange(len(TASTES))


def fitted(R=None, extra_shoes: int = 0, **params) -> model.HybridModel:
    R = checkerboard() if R is None else R
    if extra_shoes:
        R = sp.hstack([R, sp.csr_matrix((R.shape[0], extra_shoes), dtype=np.float32)]).tocsr()
    X = model.item_features(shoe_fields(extra_shoes), WEIGHTS)
    user_segment, segment_usage = segments_by_taste(R.shape[0])
    params = {"factors": 3, "random_state": 0, **params}
    return model.fit(R, X, user_segment, segment_usage, **params)


def tastes(shoes) -> set[int]:
    return {taste_of_shoe(j) for j in np.ravel(shoes) if 0 <= j < len(TASTES) * PER_TASTE} | (
        {0} if any(j >= len(TASTES) * PER_TASTE for j in np.ravel(shoes)) else set()
    )


# ---------------------------------------------------------------------------------------------
# each part on its own ranks the user's taste first
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", [0, 1, 2, 7])
def test_cf_alone_ranks_the_users_taste_first(user):
    R = checkerboard()
    Q, _ = model.item_factors(R, 3, random_state=0)
    scores = model.cf_scores(R[user], Q)
    best = np.argsort(-scores[0])[:PER_TASTE]
    assert tastes(best) == {user % 3}


@pytest.mark.parametrize("user", [0, 1, 2, 7])
def test_content_alone_ranks_the_users_taste_first(user):
    R = checkerboard()
    X = model.item_features(shoe_fields(), WEIGHTS)
    scores, norms = model.content_scores(R[user], X)
    best = np.argsort(-scores[0])[:PER_TASTE]
    assert tastes(best) == {user % 3}
    # a cosine: at most 1, and the profile norm is that of the weighted sum of unit vectors
    assert scores.max() <= 1 + 1e-6
    profile = R[user].toarray() @ X.toarray()
    assert norms[0] == pytest.approx(np.linalg.norm(profile), rel=1e-5)


@pytest.mark.parametrize("user", [0, 1, 2, 7])
def test_hybrid_ranks_the_users_taste_first(user):
    m = fitted()
    R = checkerboard()
    recs = model.recommend(m, R[user], np.array([user % 3]), PER_TASTE)
    assert tastes(recs.index) == {user % 3}
    # parts and weight are on their documented scales
    assert np.all((recs.score >= 0) & (recs.score <= 1 + 1e-6))
    assert np.all((recs.cf >= 0) & (recs.cf <= 1 + 1e-6))
    assert recs.cf_weight[0] == pytest.approx(3 / (3 + 5))
    np.testing.assert_allclose(
        recs.score,
        recs.cf_weight[:, None] * recs.cf + (1 - recs.cf_weight[:, None]) * recs.content,
        rtol=1e-5,
    )


def test_no_factors_leaves_content_only():
    """With an empty interaction matrix the SVD has no factors and CF contributes nothing."""
    R = sp.csr_matrix((4, 12), dtype=np.float32)
    Q, s = model.item_factors(R, 3)
    assert Q.shape == (12, 0) and s.shape == (0,)
    assert not model.cf_scores(checkerboard()[:2], Q).any()


# ---------------------------------------------------------------------------------------------
# cold start and new shoes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("segment", [0, 1, 2])
def test_new_user_gets_the_shoes_of_their_segment(segment):
    m = fitted()
    no_history = sp.csr_matrix((1, 12), dtype=np.float32)
    recs = model.recommend(m, no_history, np.array([segment]), PER_TASTE)
    # a brand-new 'running' user (segment 0) gets the running shoes, and so on
    assert tastes(recs.index) == {segment}
    # no CF part, no personal reason: it comes from the segment
    assert recs.cf_weight[0] == 0
    assert np.isnan(recs.cf).all()
    assert (recs.reason == -1).all()
    np.testing.assert_allclose(recs.score, recs.content)


def test_new_shoe_reaches_a_matching_user_through_content():
    """Shoe 12 is a swift running shoe nobody touched: a running fan gets it in their top 2."""
    m = fitted(extra_shoes=1)
    R = sp.hstack([checkerboard(), sp.csr_matrix((N_USERS, 1), dtype=np.float32)]).tocsr()
    user = 0  # taste running: touched three of shoes 0-3
    assert not m.item_factors[12].any(), "the new shoe has no CF factors"
    # the three shoes they touched are bought: two running shoes are left, the old and the new one
    recs = model.recommend(m, R[user], np.array([0]), 2, exclude=R[user])
    untouched_running = set(range(PER_TASTE)) - set(R[user].indices)
    assert set(recs.index[0]) == untouched_running | {12}
    # and a brand-new running user sees it too (content of the popular shoes)
    cold = model.recommend(m, sp.csr_matrix((1, 13), dtype=np.float32), np.array([0]), 5)
    assert 12 in cold.index[0]


def test_cf_weight_grows_with_history():
    w = model.cf_weights(np.array([0, 1, 5, 45]), k=5)
    np.testing.assert_allclose(w, [0, 1 / 6, 0.5, 0.9], rtol=1e-6)
    np.testing.assert_allclose(model.cf_weights(np.array([0, 1, 9]), k=0), [0, 1, 1])


# ---------------------------------------------------------------------------------------------
# bought shoes, determinism, folding in, batching
# ---------------------------------------------------------------------------------------------


def test_purchased_shoes_never_appear():
    rng = np.random.default_rng(3)
    R = sp.random(40, 12, density=0.3, random_state=4, format="csr", dtype=np.float32)
    m = fitted(R)
    bought = sp.random(40, 12, density=0.5, random_state=5, format="csr", dtype=np.float32)
    recs = model.recommend(m, R, rng.integers(0, 3, 40), 12, exclude=bought)
    for user in range(40):
        shown = set(recs.index[user][recs.index[user] >= 0])
        assert not shown & set(bought[user].indices)
        # everything not bought is still there (n = all shoes)
        assert len(shown) == 12 - bought[user].nnz


def test_fixed_random_state_is_deterministic():
    a, b = fitted(random_state=7), fitted(random_state=7)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    R = checkerboard()
    ra = model.recommend(a, R, segments_by_taste()[0], 5)
    rb = model.recommend(b, R, segments_by_taste()[0], 5)
    np.testing.assert_array_equal(ra.index, rb.index)
    np.testing.assert_array_equal(ra.score, rb.score)


def test_cf_projects_a_user_not_in_the_fit():
    R = checkerboard()
    Q, _ = model.item_factors(R[3:], 3, random_state=0)  # users 0-2 left out of the fit
    for user in range(3):
        scores = model.cf_scores(R[user], Q)
        # r Q Q^T by hand, and the user's taste first
        np.testing.assert_allclose(scores[0], R[user].toarray()[0] @ Q @ Q.T, rtol=1e-5, atol=1e-6)
        assert tastes(np.argsort(-scores[0])[:PER_TASTE]) == {user % 3}


def test_batches_give_the_same_result_as_one_batch():
    R = checkerboard()
    m = fitted()
    segment = segments_by_taste()[0]
    exclude = sp.csr_matrix(R.multiply(R > 1.5))
    whole = model.recommend(m, R, segment, 6, exclude=exclude)
    parts = [
        model.recommend(m, R[i : i + 7], segment[i : i + 7], 6, exclude=exclude[i : i + 7])
        for i in range(0, 30, 7)
    ]
    for field in ("index", "score", "cf", "content", "cf_weight", "reason"):
        np.testing.assert_array_equal(
            getattr(whole, field), np.concatenate([getattr(p, field) for p in parts])
        )


# ---------------------------------------------------------------------------------------------
# the building blocks, on hand-computed values
# ---------------------------------------------------------------------------------------------


def test_minmax_rows_on_hand_values():
    S = np.array([[1, 2, 3], [5, 5, 5], [-1, 0, 1], [0, 0, 4]], dtype=np.float32)
    low, scale = model.minmax_rows(S)
    np.testing.assert_allclose(S, [[0, 0.5, 1], [0, 0, 0], [0, 0.5, 1], [0, 0, 1]])
    np.testing.assert_allclose(low, [1, 5, -1, 0])
    np.testing.assert_allclose(scale, [0.5, 0, 0.5, 0.25])


def test_blend_on_hand_values():
    cf = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    content = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(model.blend(cf, content, np.array([0.25, 1.0])), [[0.25, 0.75], [0.5, 0.5]])


def test_top_n_matches_a_full_sort():
    rng = np.random.default_rng(11)
    scores = rng.random((50, 200)).astype(np.float32)
    index, value = model.top_n(scores.copy(), 10)
    expected = np.argsort(-scores, axis=1)[:, :10]
    np.testing.assert_array_equal(index, expected)
    np.testing.assert_array_equal(value, np.take_along_axis(scores, expected, axis=1))


def test_top_n_orders_ties_by_column_and_pads_excluded():
    scores = np.array([[1, 3, 3, 2], [5, 5, 5, 5]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 0], [1, 1, 0, 1]]))
    index, value = model.top_n(scores, 3, exclude)
    np.testing.assert_array_equal(index, [[1, 2, 3], [2, -1, -1]])
    assert value[1, 0] == 5 and np.isneginf(value[1, 1:]).all()


def test_field_weights_decide_which_shared_attribute_counts_more():
    fields = {
        "brand": ["a", "a", "b", "c", "d"],
        "type": ["run", "walk", "run", "hike", "trail"],
    }
    by_type = model.item_features(fields, {"brand": 1, "type": 3}).toarray()
    by_brand = model.item_features(fields, {"brand": 3, "type": 1}).toarray()
    # shoe 0 shares its brand with shoe 1 and its type with shoe 2 (equally rare values)
    assert by_type[0] @ by_type[2] > by_type[0] @ by_type[1]
    assert by_brand[0] @ by_brand[1] > by_brand[0] @ by_brand[2]
    # unit rows; a zero weight drops the field
    np.testing.assert_allclose(np.linalg.norm(by_type, axis=1), 1, rtol=1e-6)
    only_brand = model.item_features(fields, {"brand": 1, "type": 0}).toarray()
    assert only_brand[0] @ only_brand[2] == 0


def test_rare_values_count_more_than_common_ones():
    # 0 and 1 share only the rare brand (2 of 5 shoes); 1 and 2 share only white (4 of 5 shoes)
    fields = {
        "brand": ["rare", "rare", "x", "y", "z"],
        "color": ["black", "white", "white", "white", "white"],
    }
    X = model.item_features(fields, {"brand": 1, "color": 1}).toarray()
    assert X[0] @ X[1] > X[1] @ X[2] > 0


def test_segment_popularity_backs_off_by_hand():
    # 3 shoes; segment 0 (usage 0) has two users, segment 1 (usage 0) none, segment 2 (usage 1) one
    R = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 2], [0, 0, 0]], dtype=np.float32))
    user_segment = np.array([0, 0, 2, 1])
    segment_usage = np.array([0, 0, 1])
    p = model.segment_popularity(R, user_segment, segment_usage, prior_users=1.0)
    # votes: u0 (1, 0, 0), u1 (.5, .5, 0), u2 (0, 0, 1); global mean of 3 voters
    p_global = np.array([1.5, 0.5, 1.0]) / 3
    p_usage0 = (np.array([1.5, 0.5, 0]) + p_global) / (2 + 1)
    p_usage1 = (np.array([0, 0, 1.0]) + p_global) / (1 + 1)
    np.testing.assert_allclose(p[0], (np.array([1.5, 0.5, 0]) + p_usage0) / 3)
    np.testing.assert_allclose(p[1], p_usage0)  # nobody in it: its usage
    np.testing.assert_allclose(p[2], (np.array([0, 0, 1.0]) + p_usage1) / 2)
    np.testing.assert_allclose(p.sum(axis=1), 1)


def test_reason_is_the_history_shoe_behind_each_pick():
    m = fitted()
    # one running shoe (1) and one hiking boot (5), equally strong
    R = sp.csr_matrix(([1.0, 1.0], ([0, 0], [1, 5])), shape=(1, 12), dtype=np.float32)
    recs = model.recommend(m, R, np.array([0]), 8)
    picked = {taste_of_shoe(shoe): reason for shoe, reason in zip(recs.index[0], recs.reason[0], strict=True)}
    assert {0, 1} <= set(picked)
    for shoe, reason in zip(recs.index[0], recs.reason[0], strict=True):
        assert reason in (1, 5)
        if taste_of_shoe(shoe) == 0:
            assert reason == 1, f"running shoe {shoe} explained by {reason}"
        if taste_of_shoe(shoe) == 1:
            assert reason == 5, f"hiking boot {shoe} explained by {reason}"


def test_similar_items_share_taste_and_exclude_themselves():
    m = fitted()
    sims = model.similar_items(m, 3, content_weight=0.5)
    assert sims.index.shape == (12, 3)
    for shoe in range(12):
        assert shoe not in sims.index[shoe]
        assert tastes(sims.index[shoe]) == {taste_of_shoe(shoe)}
    np.testing.assert_allclose(sims.similarity, 0.5 * sims.content + 0.5 * sims.cf, rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(sims.similarity, axis=1) <= 1e-6)


def test_explain_matches_a_brute_force_argmax():
    rng = np.random.default_rng(8)
    n_users, n_shoes, n = 25, 30, 6
    R = sp.random(n_users, n_shoes, density=0.2, random_state=9, format="csr", dtype=np.float32)
    Q = rng.normal(size=(n_shoes, 4)).astype(np.float32)
    X = np.abs(rng.normal(size=(n_shoes, 7))).astype(np.float32)
    grams = np.stack([Q @ Q.T, X @ X.T], axis=-1)
    index = np.stack([rng.choice(n_shoes, n, replace=False) for _ in range(n_users)]).astype(np.int32)
    index[0, -2:] = -1  # padding
    # the kernel visits the picks grouped by shoe: one shoe picked by every user, at two ranks
    index[:, 0] = 3
    index[::2, 0], index[::2, 1] = index[::2, 1].copy(), 3
    R = R.tolil()
    R[5, :] = 0  # a user without history
    R = sp.csr_matrix(R)
    R.eliminate_zeros()
    alpha, beta = rng.random(n_users).astype(np.float32), rng.random(n_users).astype(np.float32)
    reason = model.explain(R, index, grams, alpha, beta)
    for user in range(n_users):
        history, strength = R[user].indices, R[user].data
        for rank, shoe in enumerate(index[user]):
            if shoe < 0 or len(history) == 0:
                assert reason[user, rank] == -1
                continue
            terms = strength * (alpha[user] * grams[history, shoe, 0] + beta[user] * grams[history, shoe, 1])
            assert reason[user, rank] == history[np.argmax(terms)]


def _recommend_in_numpy(fit: model.HybridModel, R, user_segment, n, exclude):
    """The blend and top-N of model.recommend written out in whole-array numpy, as the reference of the
    compiled pass: ties to the lower column, excluded shoes never, padding -1."""
    R = sp.csr_matrix(R, dtype=np.float32)
    n_known = np.diff(R.indptr)
    weight = model.cf_weights(n_known, fit.cf_k)
    p = model.prior_weights(n_known, fit.prior_k)
    cf = fit.cf(R)
    content, _ = model.content_scores(R, fit.content)
    cf_low, cf_scale = model.row_range(cf)
    content_low, content_scale = model.row_range(content)
    prior = fit.segment_scores[user_segment]
    a, b, c = weight * cf_scale, (1 - weight) * (1 - p) * content_scale, (1 - weight) * p
    score = cf * a[:, None] + content * b[:, None] + prior * c[:, None]
    score[exclude.toarray() != 0] = -np.inf
    columns = np.broadcast_to(np.arange(score.shape[1]), score.shape)
    order = np.lexsort((columns, -score), axis=1)[:, :n]
    value = np.take_along_axis(score, order, axis=1)
    index = np.where(np.isneginf(value), -1, order)
    value = value - (a * cf_low + b * content_low)[:, None]
    return index, np.where(index >= 0, value, np.nan)


@pytest.mark.parametrize("weights", [{}, {"ease_weight": 1.0}, {"ease_weight": 0.5, "knn_weight": 0.5}])
def test_recommend_matches_the_numpy_formulas(weights):
    rng = np.random.default_rng(21)
    n_users, n_shoes = 60, 40
    R = sp.random(n_users, n_shoes, density=0.15, random_state=5, format="csr", dtype=np.float32)
    R.data = 1 + 4 * R.data
    R = sp.vstack([R, sp.csr_matrix((3, n_shoes), dtype=np.float32)]).tocsr()  # three users without history
    fields = {"brand": [f"b{j % 5}" for j in range(n_shoes)], "type": [f"t{j % 3}" for j in range(n_shoes)]}
    X = model.item_features(fields, {"brand": 1.0, "type": 2.0})
    segment = rng.integers(0, 4, R.shape[0])
    fit = model.fit(R, X, segment, np.arange(4) % 2, factors=5, prior_k=3.0, random_state=0, **weights)
    exclude = R.tolil()
    exclude[0] = 1  # a user who may see nothing: a row of padding
    exclude = exclude.tocsr()
    n = 45  # more than there are shoes: every row ends in padding
    recs = model.recommend(fit, R, segment, n, exclude)
    index, value = _recommend_in_numpy(fit, R, segment, min(n, n_shoes), exclude)
    assert (index == -1).all(axis=1)[0] and (index[1:] >= 0).any(axis=1).all()
    np.testing.assert_array_equal(recs.index, index)
    np.testing.assert_allclose(recs.score, value.astype(np.float32), rtol=1e-5, atol=1e-6)


def test_recommend_breaks_ties_towards_the_lower_column():
    # two shoes nobody touched, identical in content: a user without history ties them exactly
    R = sp.csr_matrix(([1, 1, 1, 1], ([1, 2, 3, 3], [0, 1, 0, 1])), shape=(4, 6), dtype=np.float32)
    X = model.item_features({"brand": ["a", "b", "c", "c", "c", "c"]}, {"brand": 1.0})
    fit = model.fit(R, X, np.zeros(4, int), np.zeros(1, int), factors=2, random_state=0)
    assert len(set(fit.segment_scores[0, 2:])) == 1  # shoes 2..5 tie
    recs = model.recommend(fit, sp.csr_matrix((1, 6), dtype=np.float32), np.zeros(1, int), 4)
    # the two touched shoes, then the first two of the four tied ones
    assert sorted(recs.index[0, :2]) == [0, 1]
    np.testing.assert_array_equal(recs.index[0, 2:], [2, 3])


def test_prior_weights_fade_with_history():
    # p = m / (n + m); 1 without history whatever m
    p = model.prior_weights(np.array([0, 1, 10, 30]), 10.0)
    np.testing.assert_allclose(p, [1.0, 10 / 11, 0.5, 0.25], rtol=1e-6)
    np.testing.assert_allclose(model.prior_weights(np.array([0, 5]), 0.0), [1.0, 0.0])


def test_segment_prior_leads_a_user_with_little_history():
    """Two segments with opposite favourites; one user of segment 1 viewed one unrelated shoe."""
    n_shoes = 6
    # segment 0 (users 0-3) loves shoes 0 and 1; segment 1 (users 4-7) loves shoes 4 and 5
    rows = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8]
    cols = [0, 1, 0, 1, 0, 1, 0, 1, 4, 5, 4, 5, 4, 5, 4, 5, 2]
    R = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(9, n_shoes))
    user_segment = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    X = np.eye(n_shoes, dtype=np.float32)  # no content overlap between shoes
    fitted = model.fit(
        R, X, user_segment, np.array([0, 1]), factors=2, cf_k=1000.0, prior_k=10.0, random_state=0
    )
    with_prior = model.recommend(fitted, R[8], user_segment[8:], 2)
    assert set(with_prior.index[0].tolist()) <= {2, 4, 5}
    assert {4, 5} & set(with_prior.index[0].tolist())
    # without the prior the same user gets nothing of their segment's taste in their top 1
    without = model.recommend(dataclasses.replace(fitted, prior_k=0.0), R[8], user_segment[8:], 1)
    assert without.index[0, 0] == 2


# ---------------------------------------------------------------------------------------------
# EASE, item-kNN and the blended CF operator
# ---------------------------------------------------------------------------------------------


def test_ease_is_the_closed_form_ridge_regression():
    R = checkerboard()
    B = model.ease_weights(R, l2=0.5)
    # by hand: P = (G + lambda I)^-1, B = -P / diag(P), zero diagonal
    gram = (R.T @ R).toarray().astype(np.float64)
    lam = 0.5 * gram.diagonal().mean()
    P = np.linalg.inv(gram + lam * np.eye(len(gram)))
    expected = -P / P.diagonal()[None, :]
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(B, expected, rtol=1e-4, atol=1e-6)
    assert not B.diagonal().any()
    # each shoe is explained by the shoes of its own taste only
    for j in range(B.shape[1]):
        others = [i for i in range(B.shape[0]) if taste_of_shoe(i) != taste_of_shoe(j)]
        assert np.abs(B[others, j]).max() < 1e-6


def test_item_knn_keeps_the_nearest_neighbours_by_cosine():
    R = checkerboard()
    S = model.item_knn_weights(R, neighbours=2)
    dense = R.toarray()
    norms = np.linalg.norm(dense, axis=0)
    cosine = dense.T @ dense / np.outer(norms, norms)
    np.fill_diagonal(cosine, 0)
    for j in range(S.shape[1]):
        kept = np.flatnonzero(S[:, j])
        assert len(kept) <= 2 + 1  # ties at the cut may keep one more
        np.testing.assert_allclose(S[kept, j], cosine[kept, j], rtol=1e-5)
        # the kept neighbours are the most similar ones
        assert S[kept, j].min() >= np.sort(cosine[:, j])[-2] - 1e-6


@pytest.mark.parametrize("weights", [(0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0)])
def test_every_cf_component_ranks_the_users_taste_first(weights):
    svd, ease, knn = weights
    fitted_model = fitted(svd_weight=svd, ease_weight=ease, knn_weight=knn, cf_k=0.0)
    assert fitted_model.cf_operator is not None
    R = checkerboard()
    recs = model.recommend(fitted_model, R, segments_by_taste()[0], 1, exclude=R)
    for user in range(R.shape[0]):
        # the one shoe of their taste they have not touched comes first
        assert taste_of_shoe(recs.index[user, 0]) == user % len(TASTES), user


def test_cf_operator_scales_each_component_to_a_unit_range():
    R = checkerboard()
    component = np.asarray(model.ease_weights(R, 1.0))
    operator = model.cf_operator(R, [component, 10 * component], [1.0, 1.0])
    # a component 10x larger counts the same after scaling: the blend equals the component, rescaled
    scores = np.asarray(R @ operator)
    spread = (scores.max(axis=1) - scores.min(axis=1)).mean()
    np.testing.assert_allclose(spread, 1.0, rtol=1e-5)
    np.testing.assert_allclose(operator / operator.max(), component / component.max(), rtol=1e-4, atol=1e-6)


def test_explanations_use_the_blended_operator_in_the_right_direction():
    # with an asymmetric operator (EASE), the reason must be argmax_i r_ui C_ij, not C_ji
    fitted_model = fitted(svd_weight=0.0, ease_weight=1.0, cf_k=0.0)
    R = checkerboard()
    recs = model.recommend(fitted_model, R, segments_by_taste()[0], 3)
    C = fitted_model.cf_operator
    for user in range(5):
        history = R[user].indices
        for j, reason in zip(recs.index[user], recs.reason[user], strict=True):
            contributions = R[user].data * C[history, j]
            assert reason == history[int(np.argmax(contributions))]


# ---------------------------------------------------------------------------------------------
# Cold start: the additive prior and what votes count
# ---------------------------------------------------------------------------------------------


def test_additive_prior_carries_an_attribute_into_an_empty_segment():
    # two usages x two genders; gender decides taste (women: shoes 0-1, men: shoes 2-3); nobody is in
    # segment (usage 1, female): its prior must still lean to the women's shoes
    segments = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])  # (usage, gender) codes per segment
    user_segment = np.array([0] * 10 + [1] * 10 + [3] * 10)
    rows, cols = [], []
    for user, segment in enumerate(user_segment):
        shoes = (0, 1) if segments[segment, 1] == 0 else (2, 3)
        rows += [user, user]
        cols += list(shoes)
    R = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(user_segment), 4))
    p = model.segment_popularity(
        R, user_segment, segments[:, 0], prior_users=5.0, segment_features=segments, feature_prior_users=1.0
    )
    assert p[2, :2].sum() > p[2, 2:].sum()  # (usage 1, female), empty: leans female
    assert p[3, 2:].sum() > p[3, :2].sum()  # (usage 1, male): male taste
    # infinite shrinkage at both levels is global popularity
    flat = model.segment_popularity(
        R, user_segment, segments[:, 0], prior_users=1e12, segment_features=segments, feature_prior_users=1e12
    )
    global_votes = np.asarray((R / 2).sum(axis=0)).ravel() / len(user_segment)
    np.testing.assert_allclose(flat, np.repeat(global_votes[None, :], 4, axis=0), rtol=1e-6)


def test_vote_exponent_zero_counts_every_interaction():
    # user 0 touched three shoes, user 1 one: with e = 0 each interaction is a vote; with e = 1 each user
    R = sp.csr_matrix(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]))
    one_each = model.segment_popularity(R, np.zeros(2, int), np.zeros(1, int), 0.0, vote_exponent=1.0)
    counts = model.segment_popularity(R, np.zeros(2, int), np.zeros(1, int), 0.0, vote_exponent=0.0)
    np.testing.assert_allclose(one_each[0], [1 / 6, 1 / 6, 4 / 6])
    np.testing.assert_allclose(counts[0], [0.5, 0.5, 1.0])


def test_popularity_share_is_all_for_new_users_and_a_share_for_others():
    fitted_model = fitted(prior_k=3.0, cf_k=3.0)
    R = checkerboard()
    R_new = sp.vstack([R[:3], sp.csr_matrix((1, R.shape[1]), dtype=np.float32)]).tocsr()
    recs = model.recommend(fitted_model, R_new, np.array([0, 1, 2, 0]), 4)
    assert np.allclose(recs.popularity_share[3], 1.0)
    assert ((recs.popularity_share[:3] >= 0) & (recs.popularity_share[:3] < 1)).all()
