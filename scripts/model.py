"""The recommender's math: collaborative (PureSVD), content (TF-IDF), cold start and the hybrid.

Small pure functions over numpy and scipy.sparse arrays; no I/O, no database, randomness only
through ``random_state``. Conventions used throughout:

- ``R`` is the user x shoe interaction matrix (``scipy.sparse.csr_matrix``, float32): the
  weighted, time-decayed strength of ``interaction_matrix``; rows are users, columns shoes.
- ``X`` holds the shoes' TF-IDF content vectors, one L2-normalised row per shoe.
- ``Q`` holds the SVD item factors (one row per shoe, k columns, orthonormal columns).
- Segments (usage x gender x age band) are integer codes ``0..S-1``; ``segment_usage[s]`` is the
  code of the usage that segment ``s`` belongs to (the next coarser level of the back-off).

Everything that is O(users x shoes) is done a batch of users at a time, in float32:
:func:`recommend` takes one batch and never sees the other users. What is O(shoes x shoes) (two
Gram matrices used to explain recommendations, the item-to-item similarities) is computed once per
fit: 100 MB each for 5,000 shoes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.utils.extmath import randomized_svd

# Relative size below which a row's score range counts as "constant" (float32 noise).
_FLAT = 1e-5
_WORD = re.compile(r"\w+")

__all__ = [
    "HybridModel",
    "Recommendations",
    "assemble",
    "Similarities",
    "blend",
    "cf_operator",
    "cf_scores",
    "cf_weights",
    "cold_start_scores",
    "content_scores",
    "ease_weights",
    "explain",
    "fit",
    "item_factors",
    "item_features",
    "item_knn_weights",
    "minmax_rows",
    "nearest_neighbours",
    "prior_weights",
    "recommend",
    "row_range",
    "segment_popularity",
    "similar_items",
    "top_n",
]


# ---------------------------------------------------------------------------------------------
# Content: TF-IDF over the shoes' attributes
# ---------------------------------------------------------------------------------------------


def item_features(
    fields: Mapping[str, Sequence[str | None]],
    field_weights: Mapping[str, float],
    tokenized: Sequence[str] = ("name",),
) -> sp.csr_matrix:
    """TF-IDF vectors of the shoes' attributes, one L2-normalised row per shoe.

    Each shoe is a bag of field-tagged terms: a categorical field (brand, type, material, color)
    gives one term, its whole value (``type=trail running``); a tokenized field (the name) gives
    one term per word (``name=pegasus``). A term's frequency is the weight of its field, so a
    field can count more than another; the inverse document frequency over the catalogue then
    makes a rare value (a niche brand) count more than a common one (black)::

        x_{j,t} = w_{f(t)} * n_{j,t} * idf_t,   idf_t = 1 + ln((1 + m) / (1 + df_t)),   x_j <- x_j / ||x_j||

    so the cosine of two shoes is ``x_i . x_j``.

    Parameters
    ----------
    fields : mapping of str to sequence of str
        Field name -> one value per shoe (same length for every field); None or blank is no term.
    field_weights : mapping of str to float
        Field name -> weight (>= 0). Fields with weight 0, or missing here, are left out.
    tokenized : sequence of str
        Fields split into words rather than taken whole.

    Returns
    -------
    csr_matrix of shape (n_shoes, n_terms), float32
        A shoe without any term gets a zero row.
    """
    n_shoes = len(next(iter(fields.values()))) if fields else 0
    # one dict of term -> weighted count per shoe
    documents: list[dict[str, float]] = [{} for _ in range(n_shoes)]
    for field, weight in field_weights.items():
        if weight <= 0:
            continue
        for document, value in zip(documents, fields[field], strict=True):
            text = (value or "").strip().lower()
            terms = _WORD.findall(text) if field in tokenized else ([text] if text else [])
            for term in terms:
                key = f"{field}={term}"
                document[key] = document.get(key, 0.0) + float(weight)
    if not any(documents):
        return sp.csr_matrix((n_shoes, 0), dtype=np.float32)
    # term counts, then idf and row normalisation
    counts = DictVectorizer(dtype=np.float32, sort=True).fit_transform(documents)
    tfidf = TfidfTransformer(norm="l2", smooth_idf=True).fit_transform(counts)
    return sp.csr_matrix(tfidf, dtype=np.float32)


def content_scores(R: sp.csr_matrix, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each user's content profile with every shoe.

    The profile is the strength-weighted sum (hence direction of the weighted mean) of the
    content vectors of the shoes the user touched: ``p_u = sum_i r_ui x_i``; the score of shoe j
    is ``cos(p_u, x_j) = p_u . x_j / ||p_u||`` (the ``x_j`` are unit vectors). X stays sparse, so
    the cost is O(users x nnz(X)), whatever the size of the vocabulary.

    Parameters
    ----------
    R : csr_matrix of shape (n_users, n_shoes)
        Interaction strengths of a batch of users.
    X : csr_matrix of shape (n_shoes, n_terms), float32
        L2-normalised content vectors (:func:`item_features`).

    Returns
    -------
    scores : ndarray of shape (n_users, n_shoes), float32
        Zero rows for users without history.
    profile_norms : ndarray of shape (n_users,), float32
        ``||p_u||`` (0 without history), needed to explain a score.
    """
    # profile = strength-weighted sum of the shoes' vectors
    profiles = np.asarray((R @ X).todense(), dtype=np.float32)
    norms = np.linalg.norm(profiles, axis=1).astype(np.float32)
    # unit profiles (zero stays zero)
    profiles /= np.where(norms > 0, norms, 1)[:, None]
    # cosine with every shoe: sparse X times the dense profiles, back to users x shoes
    scores = np.ascontiguousarray((X @ profiles.T).T, dtype=np.float32)
    return scores, norms


# ---------------------------------------------------------------------------------------------
# Collaborative: PureSVD
# ---------------------------------------------------------------------------------------------


def item_factors(
    R: sp.spmatrix, factors: int, n_iter: int = 5, random_state: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Item factors of a truncated SVD ``R ~ U S Q^T`` (randomized, on the sparse matrix).

    Parameters
    ----------
    R : sparse matrix of shape (n_users, n_shoes)
        Interaction strengths; never densified.
    factors : int
        Number of factors k; at most ``min(R.shape)`` are used.
    n_iter : int
        Power iterations of the randomized range finder.
    random_state : int, optional
        Seed of the random projection.

    Returns
    -------
    Q : ndarray of shape (n_shoes, k'), float32
        Right singular vectors, orthonormal columns. Directions with a singular value of (almost)
        zero are dropped, so ``k' <= k``; a shoe nobody touched has a zero row.
    singular_values : ndarray of shape (k',), float32
    """
    n_shoes = R.shape[1]
    k = min(int(factors), min(R.shape))
    if k < 1 or R.nnz == 0:
        return np.zeros((n_shoes, 0), dtype=np.float32), np.zeros(0, dtype=np.float32)
    # randomized SVD of the sparse matrix (sign-normalised, so deterministic for a seed)
    _, s, vt = randomized_svd(
        sp.csr_matrix(R, dtype=np.float32), n_components=k, n_iter=n_iter, random_state=random_state
    )
    # drop null directions: they are arbitrary and would add noise to r Q Q^T
    keep = s > s[0] * 1e-6
    Q = np.ascontiguousarray(vt[keep].T, dtype=np.float32)
    # a shoe nobody touched gets an exact zero row (the randomized solver leaves float noise there,
    # which would give it an arbitrary direction in the similarities)
    Q[np.asarray(sp.csc_matrix(R).getnnz(axis=0)) == 0] = 0.0
    return Q, s[keep].astype(np.float32)


def cf_scores(R: sp.csr_matrix, Q: np.ndarray) -> np.ndarray:
    """PureSVD scores: each user's row projected on the item factors, ``r_u Q Q^T``.

    Works for any row, including a user whose history is newer than ``Q`` (folding in without
    refitting).

    Parameters
    ----------
    R : csr_matrix of shape (n_users, n_shoes)
        Interaction strengths of a batch of users.
    Q : ndarray of shape (n_shoes, k), float32
        Item factors from :func:`item_factors`.

    Returns
    -------
    ndarray of shape (n_users, n_shoes), float32
    """
    # user factors r_u Q (sparse x dense), then back to shoe space
    return np.asarray(R @ Q, dtype=np.float32) @ Q.T


def ease_weights(R: sp.spmatrix, l2: float) -> np.ndarray:
    """EASE item-item weights (Steck 2019): the closed-form ridge regression of each shoe on the others.

    With the Gram matrix ``G = R^T R`` and ``lambda = l2 * mean(diag G)`` (so that l2 does not
    depend on the scale of the strengths)::

        P = (G + lambda I)^-1,   B_ij = -P_ij / P_jj,   B_jj = 0

    and the score of shoe j for a user is ``r_u . B[:, j]``. Dense over shoes: O(shoes^3) time and
    O(shoes^2) memory (fine up to about 10,000 shoes).

    Parameters
    ----------
    R : sparse matrix of shape (n_users, n_shoes)
        Interaction strengths.
    l2 : float
        Ridge strength relative to the mean diagonal of G (> 0).

    Returns
    -------
    ndarray of shape (n_shoes, n_shoes), float32
        Zero diagonal; a shoe nobody touched has a zero row and column.
    """
    R = sp.csr_matrix(R, dtype=np.float64)
    n_shoes = R.shape[1]
    # Gram matrix of the shoes
    gram = np.asarray((R.T @ R).todense())
    diagonal = np.arange(n_shoes)
    scale = float(gram[diagonal, diagonal].mean()) if n_shoes else 0.0
    gram[diagonal, diagonal] += float(l2) * (scale if scale > 0 else 1.0)
    # P = G^-1 through a Cholesky factorisation (G is symmetric positive definite), in float32
    # (4-5x faster than a float64 LU inverse); float64 if float32 cannot factor it
    precision = _spd_inverse(gram.astype(np.float32))
    if precision is None:
        precision = _spd_inverse(gram)
    # closed form: B = I - P diag(1 / diag P), i.e. -P_ij / P_jj off the diagonal
    weights = -precision / np.diag(precision)[None, :]
    weights[diagonal, diagonal] = 0.0
    return weights.astype(np.float32)


def _spd_inverse(matrix: np.ndarray) -> np.ndarray | None:
    """Inverse of a symmetric positive definite matrix (LAPACK potrf + potri); None if not positive definite."""
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (matrix,))
    factor, info = potrf(matrix, lower=False, clean=False)
    if info != 0:
        return None
    inverse, info = potri(factor, lower=False)
    if info != 0:
        return None
    # potri fills the upper triangle only
    return np.triu(inverse) + np.triu(inverse, 1).T


def item_knn_weights(R: sp.spmatrix, neighbours: int) -> np.ndarray:
    """Item-kNN weights: the cosine of two shoes' columns of R, each shoe keeping its nearest neighbours.

    ``S_ij = cos(R[:, i], R[:, j])`` for the ``neighbours`` shoes i most similar to j (column j),
    0 elsewhere and on the diagonal; the score of shoe j for a user is ``r_u . S[:, j]``.

    Parameters
    ----------
    R : sparse matrix of shape (n_users, n_shoes)
    neighbours : int
        K, the neighbours kept per shoe (>= 1).

    Returns
    -------
    ndarray of shape (n_shoes, n_shoes), float32
    """
    R = sp.csc_matrix(R, dtype=np.float32)
    # unit columns, then all cosines
    norms = np.sqrt(np.asarray(R.multiply(R).sum(axis=0)).ravel())
    unit = R @ sp.diags(1 / np.where(norms > 0, norms, 1))
    cosine = np.asarray((unit.T @ unit).todense(), dtype=np.float32)
    return nearest_neighbours(cosine, neighbours)


def nearest_neighbours(cosine: np.ndarray, neighbours: int) -> np.ndarray:
    """Item-kNN weights from an item x item cosine matrix: the diagonal zeroed, then only the
    ``neighbours`` largest of each column kept (the rest 0). Shared by the local and the Spark fit.

    Parameters
    ----------
    cosine : ndarray of shape (n_shoes, n_shoes), float32
        Modified in place.
    neighbours : int
        K, the neighbours kept per shoe.

    Returns
    -------
    ndarray of shape (n_shoes, n_shoes), float32: ``cosine`` itself.
    """
    n_shoes = cosine.shape[0]
    cosine[np.arange(n_shoes), np.arange(n_shoes)] = 0.0
    # keep the K largest of each column
    k = min(int(neighbours), n_shoes)
    if 0 < k < n_shoes:
        cut = np.partition(cosine, n_shoes - k, axis=0)[n_shoes - k]
        cosine[cosine < cut[None, :]] = 0.0
    return cosine


def cf_operator(
    R: sp.csr_matrix, components: Sequence[np.ndarray], weights: Sequence[float], sample: int = 2000
) -> np.ndarray:
    """One shoe x shoe operator C blending item-item models: the CF score of a user is ``r_u C``.

    Each component (``Q Q^T`` of PureSVD, EASE's B, item-kNN's S) is divided by its typical score
    range (the mean over up to ``sample`` users with history of max - min of ``r_u C_c``), so that
    the weights compare like with like::

        C = sum_c w_c C_c / range_c,   weights normalised to sum 1

    Parameters
    ----------
    R : csr_matrix of shape (n_users, n_shoes)
        Interaction strengths (the users the ranges are measured on).
    components : sequence of ndarray of shape (n_shoes, n_shoes)
    weights : sequence of float
        w_c >= 0, not all zero.
    sample : int
        Users used to measure the ranges (the first ones with history).

    Returns
    -------
    ndarray of shape (n_shoes, n_shoes), float32
    """
    total = float(sum(weights))
    n_shoes = R.shape[1]
    operator = np.zeros((n_shoes, n_shoes), dtype=np.float32)
    rows = np.flatnonzero(np.diff(R.indptr) > 0)[:sample]
    for component, weight in zip(components, weights, strict=True):
        if weight <= 0:
            continue
        # typical per-user range of this component's scores
        scores = np.asarray(R[rows] @ component, dtype=np.float32)
        spread = float(np.mean(scores.max(axis=1) - scores.min(axis=1))) if len(rows) else 0.0
        operator += np.float32(weight / total / (spread if spread > 0 else 1.0)) * component
    return operator


# ---------------------------------------------------------------------------------------------
# Putting parts on one scale, blending, top-N
# ---------------------------------------------------------------------------------------------


def row_range(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's minimum and ``1 / (max - min)``, the parameters of :func:`minmax_rows`.

    Parameters
    ----------
    S : ndarray of shape (n_rows, n_cols), float

    Returns
    -------
    low : ndarray of shape (n_rows,)
        Each row's minimum.
    scale : ndarray of shape (n_rows,)
        ``1 / (max - min)``, or 0 for a row whose range is zero or float noise (it carries no
        preference); the scaled row is ``(S - low) * scale``.
    """
    if S.shape[1] == 0:
        return np.zeros(S.shape[0], S.dtype), np.zeros(S.shape[0], S.dtype)
    low = S.min(axis=1)
    high = S.max(axis=1)
    span = high - low
    # a flat row (up to float noise) carries no preference
    flat = span <= _FLAT * np.maximum(np.abs(high), np.abs(low))
    scale = np.where(flat, 0, 1 / np.where(span > 0, span, 1)).astype(S.dtype)
    return low, scale


def minmax_rows(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale each row to 0..1 in place: ``(s - min) / (max - min)``.

    A row whose range is zero (or float noise) becomes all zeros: it carries no preference.

    Parameters
    ----------
    S : ndarray of shape (n_rows, n_cols), float
        Scores, modified in place.

    Returns
    -------
    low : ndarray of shape (n_rows,)
        Each row's minimum before scaling.
    scale : ndarray of shape (n_rows,)
        ``1 / (max - min)``, or 0 for a flat row; ``S_scaled = (S - low) * scale``.
    """
    low, scale = row_range(S)
    S -= low[:, None]
    S *= scale[:, None]
    return low, scale


def cf_weights(n_interactions: np.ndarray, k: float) -> np.ndarray:
    """Share of the blend given to behaviour: ``w = n / (n + k)``.

    Parameters
    ----------
    n_interactions : ndarray of shape (n_users,)
        What we know about each user: the number of shoes they interacted with.
    k : float
        The n at which behaviour and content count the same (w = 1/2); k = 0 trusts behaviour
        fully as soon as there is any.

    Returns
    -------
    ndarray of shape (n_users,), float32, in [0, 1]; 0 for a user without history.
    """
    n = np.asarray(n_interactions, dtype=np.float32)
    return np.where(n > 0, n / np.maximum(n + np.float32(k), np.float32(1e-12)), 0).astype(np.float32)


def prior_weights(n_interactions: np.ndarray, m: float) -> np.ndarray:
    """Share of the content side given to the segment prior: ``p = m / (n + m)``.

    Parameters
    ----------
    n_interactions : ndarray of shape (n_users,)
        The number of shoes each user interacted with.
    m : float
        The n at which a user's own content profile and their segment's prior count the same;
        0 keeps the prior for users without history only.

    Returns
    -------
    ndarray of shape (n_users,), float32, in [0, 1]; 1 for a user without history.
    """
    n = np.asarray(n_interactions, dtype=np.float32)
    return np.where(n > 0, np.float32(m) / np.maximum(n + np.float32(m), np.float32(1e-12)), 1).astype(
        np.float32
    )


def blend(cf: np.ndarray, content: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-user convex blend ``w_u * cf + (1 - w_u) * content`` of two 0..1 score matrices.

    Parameters
    ----------
    cf, content : ndarray of shape (n_users, n_shoes)
        Both on the same scale (see :func:`minmax_rows`).
    weights : ndarray of shape (n_users,)
        ``w_u`` from :func:`cf_weights`.

    Returns
    -------
    ndarray of shape (n_users, n_shoes), a new array.
    """
    w = np.asarray(weights, dtype=cf.dtype)[:, None]
    return w * cf + (1 - w) * content


def top_n(scores: np.ndarray, n: int, exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The n best columns of each row, best first, via ``argpartition`` (no full sort).

    Ties are ordered by column index. Excluded cells are never returned; a row with fewer than n
    allowed columns is padded with index -1 and score -inf.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_cols)
        Modified in place where ``exclude`` is set (to -inf).
    n : int
        How many to keep.
    exclude : csr_matrix of shape (n_rows, n_cols), optional
        Nonzero cells are excluded (e.g. shoes already bought).

    Returns
    -------
    index : ndarray of shape (n_rows, min(n, n_cols)), int32
    value : ndarray of shape (n_rows, min(n, n_cols))
    """
    n_rows, n_cols = scores.shape
    n = min(int(n), n_cols)
    if n < 1:
        return np.zeros((n_rows, 0), np.int32), np.zeros((n_rows, 0), scores.dtype)
    # mask the excluded cells
    if exclude is not None and exclude.nnz:
        exclude = sp.csr_matrix(exclude)
        rows = np.repeat(np.arange(n_rows), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf
    # the n largest per row, in no order; then in column order, so that ties sort by column
    if n < n_cols:
        index = np.argpartition(scores, n_cols - n, axis=1)[:, n_cols - n :]
        index.sort(axis=1)
    else:
        index = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    value = np.take_along_axis(scores, index, axis=1)
    # best first (stable: equal scores keep column order)
    order = np.argsort(-value, axis=1, kind="stable")
    index = np.take_along_axis(index, order, axis=1).astype(np.int32)
    value = np.take_along_axis(value, order, axis=1)
    # pad what was excluded
    index[np.isneginf(value)] = -1
    return index, value


# ---------------------------------------------------------------------------------------------
# Cold start: segment popularity with back-off, and its content
# ---------------------------------------------------------------------------------------------


def segment_popularity(
    R: sp.csr_matrix,
    user_segment: np.ndarray,
    segment_usage: np.ndarray,
    prior_users: float,
    *,
    segment_features: np.ndarray | None = None,
    feature_prior_users: float = 5.0,
    vote_exponent: float = 1.0,
) -> np.ndarray:
    """Popularity of each shoe in each segment, shrunk towards coarser levels, then everyone.

    Every user with history casts a vote spread over their shoes in proportion to strength,
    ``v_u = r_u / (sum r_u)^e``: with ``e = 1`` one vote per user (a heavy user does not outweigh a
    segment), with ``e = 0`` their strengths as they are (popularity as a count of interactions).
    A level's popularity is the mean vote of its users with history, and each level is shrunk
    towards the next coarser one (empirical Bayes with m pseudo-users), so that global popularity
    is the limit of the model for small segments and large m, never a competitor::

        p_global = mean of all votes
        p_usage  = (n_usage * mean_usage + m * p_global) / (n_usage + m)       (no segment_features)
        p_seg    = (n_seg * mean_seg + m * p_coarse) / (n_seg + m)

    With ``segment_features`` (one column per attribute, e.g. usage, gender, age band) the coarser
    level is additive instead of the usage alone: a ridge regression of the users' votes on their
    one-hot attributes, with everyone's popularity as the intercept, so that gender and age inform
    a segment even where the segment itself has few users, without counting correlated attributes
    twice::

        p_coarse = max(p_global + (f_s - mean f) W, 0),
        W = argmin sum_u ||v_u - p_global - (f_u - mean f) W||^2 + m_f ||W||^2

    where n is the number of users with history at that level and ``m_f = feature_prior_users``
    (the limit m_f -> inf is global popularity).

    Parameters
    ----------
    R : csr_matrix of shape (n_users, n_shoes)
        Interaction strengths of all users.
    user_segment : ndarray of shape (n_users,), int
        Segment code of each user.
    segment_usage : ndarray of shape (n_segments,), int
        Usage code of each segment (the coarser level when ``segment_features`` is None).
    prior_users : float
        m, the weight of the coarser level for a segment (in users).
    segment_features : ndarray of shape (n_segments, n_features), int, optional
        Code of each attribute of each segment (codes 0..L_f - 1 per column).
    feature_prior_users : float
        m_f, the shrinkage of each attribute value towards everyone.
    vote_exponent : float
        e in [0, 1], how a user's strengths become votes.

    Returns
    -------
    ndarray of shape (n_segments, n_shoes), float64
        Non-negative scores per segment (each row sums to 1 with e = 1 and no segment_features);
        zeros when nobody has any history.
    """
    n_users, n_shoes = R.shape
    n_segments = len(segment_usage)
    user_segment = np.asarray(user_segment)
    # votes: each user's strengths divided by their total to the power e
    votes = sp.csr_matrix(R, dtype=np.float64)
    totals = np.asarray(votes.sum(axis=1)).ravel()
    divisor = np.where(totals > 0, totals, 1) ** float(vote_exponent)
    votes = sp.csr_matrix(sp.diags(1 / divisor) @ votes)
    has_history = (np.diff(votes.indptr) > 0).astype(np.float64)

    def level_sums(codes: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
        # sum of votes and number of voters per level (one-hot user -> level)
        membership = sp.csr_matrix((np.ones(n_users), (codes, np.arange(n_users))), shape=(n_levels, n_users))
        return np.asarray((membership @ votes).todense()), membership @ has_history

    seg_sum, seg_n = level_sums(user_segment, n_segments)
    global_n = seg_n.sum()
    p_global = seg_sum.sum(axis=0) / global_n if global_n > 0 else np.zeros(n_shoes)
    if segment_features is None:
        # the usage, shrunk towards everyone
        n_usages = int(segment_usage.max()) + 1 if n_segments else 0
        usage_sum, usage_n = level_sums(np.asarray(segment_usage)[user_segment], n_usages)
        p_usage = (usage_sum + prior_users * p_global) / np.maximum(usage_n + prior_users, 1e-12)[:, None]
        p_coarse = p_usage[segment_usage]
    else:
        # additive: a ridge regression of the votes on one-hot attributes (intercept = everyone)
        features = np.asarray(segment_features, dtype=np.int64)
        features = features.reshape(n_segments, features.shape[-1] if features.ndim == 2 else 0)
        levels = features.max(axis=0) + 1 if n_segments else np.zeros(features.shape[1], np.int64)
        offsets = np.concatenate([[0], np.cumsum(levels)]).astype(np.int64)
        one_hot = np.zeros((n_segments, int(offsets[-1])))
        for f, column in enumerate(features.T):
            one_hot[np.arange(n_segments), offsets[f] + column] = 1.0
        # centred design over the users with history (each user's row is their segment's row)
        weight = seg_n  # users with history per segment
        mean_features = (weight @ one_hot) / global_n if global_n > 0 else one_hot.mean(axis=0)
        centred = one_hot - mean_features
        gram = centred.T @ (weight[:, None] * centred)
        target = centred.T @ seg_sum  # sum over users of (f_u - mean f) v_u
        ridge = np.linalg.solve(
            gram + feature_prior_users * np.eye(len(gram)) + 1e-9 * np.eye(len(gram)), target
        )
        p_coarse = np.maximum(p_global[None, :] + centred @ ridge, 0)
    # each segment shrunk towards its coarser level
    return (seg_sum + prior_users * p_coarse) / np.maximum(seg_n + prior_users, 1e-12)[:, None]


def cold_start_scores(
    popularity: np.ndarray, X: np.ndarray, popularity_blend: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a user with no history gets: their segment's popular shoes, plus those shoes' content.

    The segment's popularity acts as a pseudo-history: its content profile is the
    popularity-weighted sum of the shoes' vectors, so shoes like the popular ones (including ones
    nobody touched yet) score too. Both parts are scaled to 0..1 per segment and blended::

        score_s = a * minmax(p_s) + (1 - a) * minmax(cos(p_s X, x_j))

    Parameters
    ----------
    popularity : ndarray of shape (n_segments, n_shoes)
        From :func:`segment_popularity`.
    X : csr_matrix of shape (n_shoes, n_terms), float32
        L2-normalised content vectors.
    popularity_blend : float
        a in [0, 1]: the share of popularity in the blend.

    Returns
    -------
    score, popular, content : ndarrays of shape (n_segments, n_shoes), float32
        The blend and its two 0..1 parts.
    """
    popular = np.asarray(popularity, dtype=np.float32).copy()
    # content of the popular shoes: popularity-weighted profile, cosine with every shoe
    content, _ = content_scores(sp.csr_matrix(popular), sp.csr_matrix(X))
    # one scale, then blend
    minmax_rows(popular)
    minmax_rows(content)
    a = np.float32(popularity_blend)
    return a * popular + (1 - a) * content, popular, content


# ---------------------------------------------------------------------------------------------
# Explaining a recommendation
# ---------------------------------------------------------------------------------------------


def explain(
    R: sp.csr_matrix,
    index: np.ndarray,
    grams: np.ndarray,
    cf_coef: np.ndarray,
    content_coef: np.ndarray,
) -> np.ndarray:
    """The shoe in each user's history that contributes most to each recommended shoe.

    Both parts of the hybrid are linear in the user's row, so the score of shoe j splits exactly
    into one term per shoe i of the history (up to a per-user constant)::

        c_uij = r_ui * (alpha_u * C_ij + beta_u * (X X^T)_ij)

    where C is the CF operator (``Q Q^T`` for PureSVD alone, else :func:`cf_operator`).

    with ``alpha_u = w_u / (max - min of cf_u)`` and
    ``beta_u = (1 - w_u) / ((max - min of content_u) * ||p_u||)``; the reason is ``argmax_i c_uij``
    (the first in column order on ties). It can be j itself (a shoe viewed but not bought).
    Cost: O(nnz(R) x n), no users x shoes array.

    Parameters
    ----------
    R : csr_matrix of shape (n_users, n_shoes)
        Interaction strengths of a batch of users (canonical: sorted, no duplicates).
    index : ndarray of shape (n_users, n), int
        Recommended shoes (-1 = none).
    grams : ndarray of shape (n_shoes, n_shoes, 2), float32, C-contiguous
        The CF operator transposed (``Q Q^T``, or ``C^T`` of :func:`cf_operator`: ``[j, i]`` is
        the weight of history shoe i in the score of j) in ``[..., 0]`` and ``X X^T`` in ``[..., 1]`` (side by side, so that one
        8-byte read fetches both similarities of a pair).
    cf_coef, content_coef : ndarray of shape (n_users,)
        alpha_u and beta_u.

    Returns
    -------
    ndarray of shape (n_users, n), int32
        Shoe index of the reason, -1 for users without history and for padding.
    """
    # numba is loaded by the commands that score, not by every reader of this module (the dashboard)
    from scripts import kernels

    reason = np.empty(index.shape, dtype=np.int32)
    # per user and pick, over the user's history (scripts/kernels.py: no (picks x entries) array)
    kernels.explain_picks(
        R.indptr,
        R.indices,
        R.data,
        np.ascontiguousarray(index, dtype=np.int32),
        grams,
        np.asarray(cf_coef, dtype=np.float32),
        np.asarray(content_coef, dtype=np.float32),
        reason,
    )
    return reason


# ---------------------------------------------------------------------------------------------
# The fitted hybrid
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HybridModel:
    """Everything :func:`recommend` needs, independent of which users are scored.

    Attributes
    ----------
    item_factors : ndarray (n_shoes, k), float32
        Q from the truncated SVD.
    singular_values : ndarray (k,), float32
    content : csr_matrix (n_shoes, n_terms), float32
        L2-normalised TF-IDF vectors.
    grams : ndarray (n_shoes, n_shoes, 2), float32
        The CF operator transposed and ``X X^T`` side by side, for :func:`explain` and
        :func:`similar_items`.
    cf_k : float
        Parameter of :func:`cf_weights`.
    prior_k : float
        Parameter of :func:`prior_weights`.
    segment_scores : ndarray (n_segments, n_shoes), float32
        Cold-start score of every segment (:func:`cold_start_scores`).
    cf_operator : ndarray (n_shoes, n_shoes), float32, optional
        The blended item-item operator C of :func:`cf_operator` (CF score ``r_u C``); None when
        PureSVD is the only CF component (scored as ``(r_u Q) Q^T``, cheaper).
    """

    item_factors: np.ndarray
    singular_values: np.ndarray
    content: sp.csr_matrix
    grams: np.ndarray
    cf_k: float
    prior_k: float
    segment_scores: np.ndarray
    cf_operator: np.ndarray | None = None

    def cf(self, R: sp.csr_matrix) -> np.ndarray:
        """CF scores of a batch of users (n_users, n_shoes), float32."""
        if self.cf_operator is None:
            return cf_scores(R, self.item_factors)
        return np.asarray(R @ self.cf_operator, dtype=np.float32)


def fit(
    R: sp.csr_matrix,
    X: sp.spmatrix | np.ndarray,
    user_segment: np.ndarray,
    segment_usage: np.ndarray,
    *,
    factors: int = 64,
    n_iter: int = 5,
    cf_k: float = 5.0,
    prior_k: float = 0.0,
    popularity_blend: float = 0.5,
    segment_prior_users: float = 20.0,
    svd_weight: float = 1.0,
    ease_weight: float = 0.0,
    knn_weight: float = 0.0,
    ease_l2: float = 1.0,
    knn_neighbours: int = 100,
    segment_features: np.ndarray | None = None,
    feature_prior_users: float = 5.0,
    vote_exponent: float = 1.0,
    votes: sp.spmatrix | None = None,
    random_state: int | None = None,
) -> HybridModel:
    """Fit the hybrid: CF (PureSVD, EASE, item-kNN), content vectors, segment cold-start scores.

    Parameters
    ----------
    R : csr_matrix of shape (n_users, n_shoes)
        Interaction strengths of all users (the population the factors and popularity come from).
    X : sparse matrix or ndarray of shape (n_shoes, n_terms)
        Content vectors from :func:`item_features`.
    user_segment : ndarray of shape (n_users,), int
        Segment code of each row of R.
    segment_usage : ndarray of shape (n_segments,), int
        Usage code of each segment (for the back-off).
    factors, n_iter, random_state
        See :func:`item_factors`.
    cf_k
        See :func:`cf_weights`.
    prior_k
        See :func:`prior_weights` (0: the segment prior serves users without history only).
    popularity_blend
        See :func:`cold_start_scores`.
    segment_prior_users, segment_features, feature_prior_users, vote_exponent
        See :func:`segment_popularity`.
    svd_weight, ease_weight, knn_weight
        Weights of the CF components in :func:`cf_operator` (all zero: PureSVD alone).
    ease_l2
        See :func:`ease_weights`.
    knn_neighbours
        See :func:`item_knn_weights`.
    votes : sparse matrix of shape (n_users, n_shoes), optional
        What popularity counts (default: R itself), e.g. only wishlists and purchases.

    Returns
    -------
    HybridModel
    """
    R = sp.csr_matrix(R, dtype=np.float32)
    # collaborative factors (also the CF half of the shoe similarities)
    Q, s = item_factors(R, factors, n_iter=n_iter, random_state=random_state)
    # the CF operator: PureSVD alone stays factored, otherwise one blended shoe x shoe matrix
    weights = (svd_weight, ease_weight, knn_weight)
    operator = None
    if ease_weight > 0 or knn_weight > 0:
        components = [
            Q @ Q.T if svd_weight > 0 else None,
            ease_weights(R, ease_l2) if ease_weight > 0 else None,
            item_knn_weights(R, knn_neighbours) if knn_weight > 0 else None,
        ]
        used = [(c, w) for c, w in zip(components, weights, strict=True) if w > 0]
        operator = cf_operator(R, [c for c, _ in used], [w for _, w in used])
    # content vectors, sparse
    content = sp.csr_matrix(X, dtype=np.float32)
    # cold start: segment popularity shrunk towards coarser levels, plus its content
    popularity = segment_popularity(
        R if votes is None else sp.csr_matrix(votes, dtype=np.float32),
        user_segment,
        segment_usage,
        segment_prior_users,
        segment_features=segment_features,
        feature_prior_users=feature_prior_users,
        vote_exponent=vote_exponent,
    )
    segment_scores, _, _ = cold_start_scores(popularity, content, popularity_blend)
    return assemble(Q, s, content, segment_scores, operator, cf_k=cf_k, prior_k=prior_k)


def assemble(
    Q: np.ndarray,
    singular_values: np.ndarray,
    content: sp.spmatrix,
    segment_scores: np.ndarray,
    operator: np.ndarray | None,
    *,
    cf_k: float,
    prior_k: float,
) -> HybridModel:
    """A :class:`HybridModel` from its fitted parts: what :func:`fit` ends with, and how a stored run's
    model is rebuilt to fold new users in without refitting (the same arrays give the same model).

    Parameters
    ----------
    Q, singular_values
        From :func:`item_factors`.
    content : sparse matrix of shape (n_shoes, n_terms)
        From :func:`item_features`.
    segment_scores : ndarray of shape (n_segments, n_shoes)
        From :func:`cold_start_scores`.
    operator : ndarray of shape (n_shoes, n_shoes), optional
        From :func:`cf_operator`; None for PureSVD alone.
    cf_k, prior_k
        See :func:`cf_weights` and :func:`prior_weights`.

    Returns
    -------
    HybridModel
    """
    content = sp.csr_matrix(content, dtype=np.float32)
    Q = np.ascontiguousarray(Q, dtype=np.float32)
    # the two item x item matrices of the linear parts, side by side (explanations, similarities)
    grams = np.empty((content.shape[0], content.shape[0], 2), dtype=np.float32)
    # explain() reads grams[j, i] for the weight of history shoe i in the score of j: C transposed
    grams[..., 0] = Q @ Q.T if operator is None else operator.T
    dense = content.toarray()
    grams[..., 1] = dense @ dense.T
    return HybridModel(
        item_factors=Q,
        singular_values=np.asarray(singular_values, dtype=np.float32),
        content=content,
        grams=grams,
        cf_k=float(cf_k),
        prior_k=float(prior_k),
        segment_scores=np.asarray(segment_scores, dtype=np.float32),
        cf_operator=operator,
    )


@dataclass(frozen=True)
class Recommendations:
    """Top-N of a batch of users; index -1 marks padding (fewer allowed shoes than n).

    Attributes
    ----------
    index : ndarray (n_users, n), int32
        Shoe index, best first.
    score : ndarray (n_users, n), float32
        Hybrid score (0..1).
    cf : ndarray (n_users, n), float32
        CF part (0..1); NaN for users without history (no CF part).
    content : ndarray (n_users, n), float32
        Content part (0..1); for users without history, their segment's cold-start score.
    cf_weight : ndarray (n_users,), float32
        w_u of the blend.
    reason : ndarray (n_users, n), int32
        Shoe index from the user's history that most explains the pick; -1 = their segment.
    popularity_share : ndarray (n_users, n), float32
        Share of the score that comes from the segment prior, ``(1 - w) p prior / score`` in
        [0, 1] (1 for users without history): what "popular with customers like you" means.
    """

    index: np.ndarray
    score: np.ndarray
    cf: np.ndarray
    content: np.ndarray
    cf_weight: np.ndarray
    reason: np.ndarray
    popularity_share: np.ndarray | None = None


def recommend(
    model: HybridModel,
    R: sp.csr_matrix,
    user_segment: np.ndarray,
    n: int,
    exclude: sp.csr_matrix | None = None,
) -> Recommendations:
    """Top-n shoes for a batch of users: per-user scaled CF and content, blended, filtered.

    For a user with history (n_u shoes)::

        score_u = w_u * minmax(r_u Q Q^T) + (1 - w_u) * minmax(cos(p_u, X)),   w_u = n_u / (n_u + k)

    For a user without history, their segment's cold-start score (``w_u = 0``). Excluded shoes
    (bought ones) are dropped before the top-n. Memory is O(batch x shoes), float32.

    Parameters
    ----------
    model : HybridModel
    R : csr_matrix of shape (n_users, n_shoes)
        Interaction strengths of the batch (need not be rows the model was fitted on).
    user_segment : ndarray of shape (n_users,), int
        Segment code of each user.
    n : int
        List length.
    exclude : csr_matrix of shape (n_users, n_shoes), optional
        Shoes that must not be recommended (nonzero cells).

    Returns
    -------
    Recommendations
    """
    R = sp.csr_matrix(R, dtype=np.float32)
    R.sum_duplicates()
    R.eliminate_zeros()
    n_users, n_shoes = R.shape
    n = max(min(int(n), n_shoes), 0)
    n_known = np.diff(R.indptr)
    cold = n_known == 0
    weight = cf_weights(n_known, model.cf_k)
    # the segment's cold-start score (already 0..1) joins the content side as a prior that fades
    # with history: p = m / (n + m), so a user without history gets the prior alone
    p = prior_weights(n_known, model.prior_k)
    # per user in one compiled pass (scripts/kernels.py): the CF part and the content part, each
    # one's range, the blend on one scale without rescaling the rows,
    #   w (cf - lo) s + (1 - w) [(1 - p) (content - lo') s' + p prior]  =  a cf + b content + c prior + const
    # (the per-user constant does not change the ranking), the excluded shoes dropped, the top n
    from scripts import kernels  # numba, as in explain

    empty = np.zeros((0, 0), np.float32)
    if model.cf_operator is None:
        operator, cf_rows = empty, np.ascontiguousarray(cf_scores(R, model.item_factors), dtype=np.float32)
    else:
        operator, cf_rows = np.ascontiguousarray(model.cf_operator, dtype=np.float32), empty
    X = model.content
    if not X.has_sorted_indices:
        X = X.sorted_indices()
    XT = X.T.tocsr()
    if exclude is None:
        ex_indptr, ex_indices = np.zeros(n_users + 1, np.int32), np.zeros(0, np.int32)
    else:
        exclude = sp.csr_matrix(exclude)
        ex_indptr, ex_indices = exclude.indptr, exclude.indices
    index = np.empty((n_users, n), np.int32)
    value = np.empty((n_users, n), np.float32)
    picked_cf, own_content, prior_part = (np.empty((n_users, n), np.float32) for _ in range(3))
    ranges = np.empty((n_users, 4), np.float32)
    profile_norm = np.empty(n_users, np.float32)
    kernels.score_top_n(
        R.indptr, R.indices, R.data, operator, cf_rows,
        X.indptr, X.indices, X.data, XT.indptr, XT.indices, XT.data, X.shape[1],
        model.segment_scores, np.asarray(user_segment, dtype=np.int64),
        ex_indptr, ex_indices, weight, p, _FLAT,
        index, value, picked_cf, own_content, prior_part, ranges, profile_norm,
    )  # fmt: skip
    cf_low, cf_scale, content_low, content_scale = ranges.T
    a = weight * cf_scale
    b = (1 - weight) * (1 - p) * content_scale
    c = (1 - weight) * p
    # the parts of the chosen shoes on their 0..1 scale
    cf_part = (picked_cf - cf_low[:, None]) * cf_scale[:, None]
    cf_part[cold] = np.nan
    own_content = (own_content - content_low[:, None]) * content_scale[:, None]
    content_part = (1 - p)[:, None] * own_content + p[:, None] * prior_part
    value -= (a * cf_low + (1 - weight) * (1 - p) * content_scale * content_low)[:, None]
    # explain: the history shoe contributing most to each pick
    content_coef = b / np.where(profile_norm > 0, profile_norm, 1)
    reason = explain(R, index, model.grams, a, content_coef)
    return Recommendations(
        index=index,
        score=np.where(index >= 0, value, np.nan).astype(np.float32),
        cf=cf_part,
        content=content_part,
        cf_weight=weight,
        reason=reason,
        popularity_share=_share(c[:, None] * prior_part, value),
    )


def _share(part: np.ndarray, total: np.ndarray) -> np.ndarray:
    """part / total in [0, 1] (0 where the total is not positive)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, part / np.where(total > 0, total, 1), 0)
    return np.clip(np.nan_to_num(share), 0, 1).astype(np.float32)


@dataclass(frozen=True)
class Similarities:
    """Most similar shoes of each shoe, best first; index -1 marks padding.

    Attributes
    ----------
    index : ndarray (n_shoes, n), int32
    similarity, content, cf : ndarray (n_shoes, n), float32
        The blend and its two cosines.
    """

    index: np.ndarray
    similarity: np.ndarray
    content: np.ndarray
    cf: np.ndarray


def similar_items(
    model: HybridModel, n: int, content_weight: float = 0.5, block_size: int = 2048
) -> Similarities:
    """Item-to-item similarity: TF-IDF cosine blended with the cosine of SVD item factors.

    The CF cosine compares shoes as columns of the rank-k approximation of R, i.e. rows of
    ``Q S``; a shoe nobody touched has CF cosine 0 with everything::

        sim_ij = c * cos(x_i, x_j) + (1 - c) * cos(q_i S, q_j S)

    Parameters
    ----------
    model : HybridModel
    n : int
        Shoes kept per shoe (the shoe itself is never its own neighbour).
    content_weight : float
        c in [0, 1].
    block_size : int
        Rows computed at a time (memory O(block x shoes)).

    Returns
    -------
    Similarities
    """
    n_shoes = model.content.shape[0]
    # unit item embeddings of the rank-k approximation
    embedding = model.item_factors * model.singular_values[None, :]
    norms = np.linalg.norm(embedding, axis=1, keepdims=True)
    embedding = (embedding / np.where(norms > 0, norms, 1)).astype(np.float32)
    c = np.float32(content_weight)
    parts = []
    for start in range(0, n_shoes, block_size):
        rows = np.arange(start, min(start + block_size, n_shoes))
        # both cosines for a block of shoes
        content = model.grams[rows, :, 1]
        cf = embedding[rows] @ embedding.T
        score = c * content + (1 - c) * cf
        # never a shoe's own neighbour
        self_cell = sp.csr_matrix((np.ones(len(rows)), (np.arange(len(rows)), rows)), shape=score.shape)
        index, value = top_n(score, n, exclude=self_cell)
        safe = np.maximum(index, 0)
        parts.append(
            (
                index,
                np.where(index >= 0, value, np.nan),
                np.take_along_axis(content, safe, axis=1),
                np.take_along_axis(cf, safe, axis=1),
            )
        )
    if not parts:
        empty = np.zeros((0, 0), np.float32)
        return Similarities(np.zeros((0, 0), np.int32), empty, empty, empty)
    index, similarity, content, cf = (np.concatenate(column) for column in zip(*parts, strict=True))
    return Similarities(index, similarity.astype(np.float32), content, cf)
