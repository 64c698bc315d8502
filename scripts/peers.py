"""Peers for the offline evaluation: popularity, PureSVD, EASE, ALS and BM25 item-kNN.

Each peer is fitted on the same user x item training matrix as the hybrid and returns, for some of
its rows, the top-k item positions, so that :mod:`scripts.evaluate` can put the hybrid beside the
usual yardsticks on one split. Small pure functions over numpy and scipy.sparse arrays; no I/O,
randomness only through ``random_state``. ``als`` and ``bm25_knn`` are implicit's
(``implicit.cpu.als.AlternatingLeastSquares`` and ``implicit.nearest_neighbours.BM25Recommender``,
the 0.7 API: ``fit`` takes users x items); their scores are read from the fitted model (factors,
item-item similarities) so that our own exclusion and tie order apply to every peer alike.

Conventions: ``X`` is the users x items matrix a peer is fitted on (``train > 0`` as 1.0 by
default, see ``binary``); scores are computed a batch of users at a time, so memory stays
O(batch x items) beside the model itself (EASE holds a dense items x items matrix).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd
from threadpoolctl import threadpool_limits

PEERS: tuple[str, ...] = ("popularity", "puresvd", "ease", "als", "bm25_knn")

# the peers that run on implicit
_IMPLICIT_PEERS = ("als", "bm25_knn")

# options of peer_top_n and their defaults (an option a peer does not use is ignored)
DEFAULTS: dict[str, dict[str, object]] = {
    "popularity": {},
    "puresvd": {"factors": 32},
    "ease": {"lam": 300.0},
    "als": {"factors": 64, "iterations": 15, "regularization": 0.01, "num_threads": 0},
    "bm25_knn": {"K": 100, "num_threads": 0},
}
_OPTIONS = frozenset({"binary"}.union(*DEFAULTS.values()))

# users scored at once: the dense score block is BATCH x items
BATCH = 2000

__all__ = [
    "BATCH",
    "DEFAULTS",
    "PEERS",
    "als_factors",
    "available_peers",
    "bm25_similarity",
    "ease_weights",
    "peer_top_n",
    "popularity_counts",
    "puresvd_factors",
    "top_k",
]


@functools.cache
def _has_implicit() -> bool:
    """Can implicit's CPU ALS and nearest-neighbour models be imported?"""
    try:
        import implicit.cpu.als  # noqa: F401
        import implicit.nearest_neighbours  # noqa: F401
    except ImportError:
        return False
    return True


def available_peers() -> tuple[str, ...]:
    """The peers that can run here (als and bm25_knn need the `implicit` package).

    Returns
    -------
    tuple of str
        The names of :data:`PEERS` that :func:`peer_top_n` accepts on this machine, in that order.
    """
    return tuple(name for name in PEERS if name not in _IMPLICIT_PEERS or _has_implicit())


# ---------------------------------------------------------------------------------------------
# Fitting: one small function per peer
# ---------------------------------------------------------------------------------------------


def popularity_counts(X: sp.csr_matrix) -> np.ndarray:
    """Number of distinct users with a nonzero in each column.

    Parameters
    ----------
    X : csr_matrix of shape (n_users, n_items)

    Returns
    -------
    ndarray of shape (n_items,), float64
    """
    # distinct users: one per stored nonzero after explicit zeros are dropped
    X = sp.csr_matrix(X, copy=True)
    X.eliminate_zeros()
    return np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)


def puresvd_factors(X: sp.csr_matrix, factors: int, random_state: int = 0) -> np.ndarray:
    """PureSVD's item factors Q (Cremonesi et al. 2010): the top right singular vectors of X.

    A user's scores are ``r_u Q Q^T``, the projection of their row on the top singular subspace.

    Parameters
    ----------
    X : csr_matrix of shape (n_users, n_items)
    factors : int
        Number of singular vectors, capped at ``min(X.shape)``.
    random_state : int
        Seed of the randomized SVD.

    Returns
    -------
    ndarray of shape (n_items, factors), orthonormal columns
    """
    # cap the rank at what the matrix has
    factors = max(1, min(int(factors), *X.shape))
    # randomized SVD; only the right singular vectors are kept
    _, _, vt = randomized_svd(X, n_components=factors, random_state=random_state)
    return np.ascontiguousarray(vt.T)


def ease_weights(X: sp.csr_matrix, lam: float) -> np.ndarray:
    """EASE's item-item weights B (Steck 2019), in closed form.

    ``G = X^T X + lam I``, ``P = G^-1``, ``B = -P / diag(P)`` (column j divided by ``P_jj``) and
    ``diag(B) = 0``; a user's scores are ``X_u B``. Dense over items: 800 MB at 10,000 items.

    Parameters
    ----------
    X : csr_matrix of shape (n_users, n_items)
    lam : float
        L2 regularisation, > 0.

    Returns
    -------
    ndarray of shape (n_items, n_items), float64
    """
    if lam <= 0:
        raise ValueError(f"ease needs lam > 0, got {lam}")
    # Gram matrix, regularised on the diagonal
    gram = np.asarray((X.T @ X).toarray(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += lam
    # its inverse (symmetric positive definite)
    precision = np.linalg.inv(gram)
    # B = -P / diag(P) column-wise, zero diagonal
    weights = precision / -np.diag(precision)
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


def als_factors(
    X: sp.csr_matrix,
    factors: int,
    iterations: int,
    regularization: float = 0.01,
    random_state: int = 0,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """User and item factors of implicit's ALS (Hu, Koren and Volinsky 2008), CPU model.

    Parameters
    ----------
    X : csr_matrix of shape (n_users, n_items)
        Confidences (implicit 0.7 fits on users x items).
    factors, iterations : int
    regularization : float
    random_state : int
        Seed of the initial factors.
    num_threads : int
        implicit's threads (0: all cores); BLAS is held to one thread during the fit.

    Returns
    -------
    user_factors : ndarray of shape (n_users, factors), float32
    item_factors : ndarray of shape (n_items, factors), float32
    """
    from implicit.cpu.als import AlternatingLeastSquares

    # implicit parallelises itself: a threaded BLAS underneath only oversubscribes (and warns)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=int(factors),
            regularization=float(regularization),
            iterations=int(iterations),
            random_state=random_state,
            num_threads=int(num_threads),
        )
        model.fit(sp.csr_matrix(X, dtype=np.float32), show_progress=False)
    return np.asarray(model.user_factors), np.asarray(model.item_factors)


def bm25_similarity(X: sp.csr_matrix, K: int, num_threads: int = 0) -> sp.csr_matrix:
    """Item-item similarities of implicit's BM25 item-kNN: each item's K nearest items.

    Parameters
    ----------
    X : csr_matrix of shape (n_users, n_items)
    K : int
        Neighbours kept per item.
    num_threads : int
        implicit's threads (0: all cores).

    Returns
    -------
    csr_matrix of shape (n_items, n_items)
        A user's scores are ``X_u S``, as in implicit's own ``recommend``.
    """
    from implicit.nearest_neighbours import BM25Recommender
    from implicit.utils import ParameterWarning

    # BM25-weight the users x items matrix and keep each item's K nearest neighbours
    model = BM25Recommender(K=int(K), num_threads=int(num_threads))
    with warnings.catch_warnings():
        # implicit 0.7 hands its own BM25-weighted COO matrix on and warns that it converts it
        warnings.simplefilter("ignore", ParameterWarning)
        model.fit(sp.csr_matrix(X, dtype=np.float64), show_progress=False)
    return sp.csr_matrix(model.similarity)


# ---------------------------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------------------------


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The k best columns of each row, best first, ties by column index, -inf never returned.

    ``np.argpartition`` finds the k best of a row; a row whose k-th best score is tied with a
    column left out is re-ranked by a full stable sort, so that ties go to the lower index exactly.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_cols)
        Excluded cells hold -inf.
    k : int
        How many to keep.

    Returns
    -------
    ndarray of shape (n_rows, k), int64
        Column positions, padded with -1 where fewer than k columns have a score above -inf.
    """
    n_rows, n_cols = scores.shape
    out = np.full((n_rows, k), -1, dtype=np.int64)
    kept = min(int(k), n_cols)
    if kept < 1 or n_rows == 0:
        return out
    if kept < n_cols:
        # the k best per row, in no order, then in column order
        index = np.argpartition(-scores, kept - 1, axis=1)[:, :kept]
        index.sort(axis=1)
        value = np.take_along_axis(scores, index, axis=1)
        # rows where the k-th best value ties a column that was left out: rank them by full sort
        kth = value.min(axis=1, keepdims=True)
        tied = (scores == kth).sum(axis=1) > (value == kth).sum(axis=1)
        if tied.any():
            index[tied] = np.sort(np.argsort(-scores[tied], axis=1, kind="stable")[:, :kept], axis=1)
            value[tied] = np.take_along_axis(scores[tied], index[tied], axis=1)
    else:
        index = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
        value = scores.copy()
    # best first; the stable sort keeps column order among equal scores
    order = np.argsort(-value, axis=1, kind="stable")
    index = np.take_along_axis(index, order, axis=1)
    value = np.take_along_axis(value, order, axis=1)
    # pad what was excluded
    index[value == -np.inf] = -1
    out[:, :kept] = index
    return out


def _scorer(name: str, X: sp.csr_matrix, random_state: int, options: dict) -> Callable:
    """Fit the peer ``name`` on X; return ``rows -> dense scores of shape (len(rows), n_items)``."""
    if name == "popularity":
        counts = popularity_counts(X)
        return lambda rows: np.broadcast_to(counts, (len(rows), counts.size)).copy()
    if name == "puresvd":
        Q = puresvd_factors(X, options["factors"], random_state)
        return lambda rows: np.asarray(X[rows] @ Q) @ Q.T
    if name == "ease":
        B = ease_weights(X, options["lam"])
        return lambda rows: np.asarray(X[rows] @ B)
    if name == "als":
        user_factors, item_factors = als_factors(
            X,
            options["factors"],
            options["iterations"],
            options["regularization"],
            random_state,
            options["num_threads"],
        )
        return lambda rows: (user_factors[rows] @ item_factors.T).astype(np.float64)
    if name == "bm25_knn":
        S = bm25_similarity(X, options["K"], options["num_threads"])
        return lambda rows: (X[rows] @ S).toarray()
    raise AssertionError(name)


def peer_top_n(
    name: str,
    train: sp.csr_matrix,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    random_state: int = 0,
    **options,
) -> np.ndarray:
    """Top-k item positions of a peer for the rows ``users`` of ``train``.

    The peer is fitted on all rows of ``train``, then the rows ``users`` are scored a batch of
    :data:`BATCH` at a time; excluded cells are set to -inf before :func:`top_k`.

    Parameters
    ----------
    name : str
        One of :func:`available_peers`.
    train : csr_matrix of shape (n_users, n_items)
        Interaction strengths, users x items.
    users : ndarray of int
        Row positions in ``train`` to recommend for.
    k : int
        List length.
    exclude : csr_matrix of shape (n_users, n_items), optional
        Aligned with ``train``'s rows: items with a nonzero in ``exclude[users]`` are never returned.
    random_state : int
        Seed of puresvd's randomized SVD and of als's initial factors.
    **options
        ``factors`` (puresvd 32, als 64), ``lam`` (ease 300.0), ``K`` (bm25_knn 100),
        ``iterations`` (als 15), ``regularization`` (als 0.01), ``num_threads`` (als and bm25_knn,
        0: all cores), ``binary`` (default True: fit and score on ``train > 0`` as 1.0, as these
        peers are usually run on implicit feedback). An option another peer uses is ignored.

    Returns
    -------
    ndarray of shape (len(users), k), int64
        Item positions, best first (ties by item index), padded with -1 when fewer than k items
        are allowed.

    Raises
    ------
    ValueError
        An unknown peer, a negative k, or ``exclude`` not of ``train``'s shape.
    ImportError
        ``als`` or ``bm25_knn`` without the implicit package.
    TypeError
        An option no peer knows (a typo).
    IndexError
        A user that is not a row of ``train``.
    """
    # check the name and the options
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; expected one of {', '.join(PEERS)}")
    if name not in available_peers():
        raise ImportError(f"peer {name!r} needs the implicit package (pip install -r requirements.txt)")
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"unknown peer options: {', '.join(sorted(unknown))}")
    settings = {**DEFAULTS[name], **{key: value for key, value in options.items() if key in DEFAULTS[name]}}
    binary = bool(options.get("binary", True))
    k = int(k)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    # the matrix the peer sees: binary by default, float64 CSR either way
    X = sp.csr_matrix(train, dtype=np.float64, copy=True)
    X.eliminate_zeros()
    if binary:
        X.data[:] = 1.0
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    if users.size and (users.min() < 0 or users.max() >= X.shape[0]):
        raise IndexError(f"users must be row positions in 0..{X.shape[0] - 1}")
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if exclude.shape != X.shape:
            raise ValueError(f"exclude has shape {exclude.shape}, train {X.shape}")
    # fit once on all rows
    score = _scorer(name, X, random_state, settings)
    out = np.full((users.size, k), -1, dtype=np.int64)
    for start in range(0, users.size, BATCH):
        rows = users[start : start + BATCH]
        scores = np.array(score(rows), dtype=np.float64)
        # mask the excluded cells (explicit zeros in exclude do not count)
        if exclude is not None:
            block = exclude[rows]
            hit = block.data != 0
            scores[np.repeat(np.arange(rows.size), np.diff(block.indptr))[hit], block.indices[hit]] = -np.inf
        out[start : start + rows.size] = top_k(scores, k)
    return out
