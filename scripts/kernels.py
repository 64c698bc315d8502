"""The scorer's inner loop, compiled: one pass per user from their history to their top-N.

:func:`scripts.model.recommend` spends its time here. In numpy the same work is a dozen passes over
users x shoes arrays (the CF product, the content product and its transpose, two row ranges, the
blend, the exclusions, a partition), each streaming the whole batch through memory; here each user's
rows stay in a few per-thread buffers of one row each, and the batch-wide arrays are only the top-N.
numba compiles it once per machine (``cache=True`` keeps the machine code beside this file, in
``__pycache__``) and it runs without the GIL, so the scorer's worker threads use every core.

The arithmetic is the numpy version's, operation for operation in float32 (no fused multiply-adds,
the same order of summation), so the scores are the same; ties are broken towards the lower column.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["explain_picks", "score_top_n"]


@numba.njit(nogil=True, cache=True)
def score_top_n(
    indptr,
    indices,
    data,
    operator,
    cf_rows,
    x_indptr,
    x_indices,
    x_data,
    xt_indptr,
    xt_indices,
    xt_data,
    n_terms,
    prior,
    segment,
    ex_indptr,
    ex_indices,
    weight,
    prior_weight,
    flat,
    out_index,
    out_value,
    out_cf,
    out_content,
    out_prior,
    ranges,
    norms,
):  # pragma: no cover - compiled; tests/test_model.py checks it against the numpy formulas
    """Blend and top-N of a batch of users, written into the ``out_*`` arrays.

    Parameters
    ----------
    indptr, indices, data : the batch's csr_matrix (n_users, n_shoes), float32, canonical
    operator : ndarray (n_shoes, n_shoes), float32
        The CF operator C (CF score ``r_u C``); shape (0, 0) when ``cf_rows`` holds the CF scores.
    cf_rows : ndarray (n_users, n_shoes), float32
        Precomputed CF scores (PureSVD alone, ``(r_u Q) Q^T`` by BLAS); shape (0, 0) otherwise.
    x_indptr, x_indices, x_data, n_terms : the content matrix X (n_shoes, n_terms), csr, float32,
        sorted indices; xt_indptr, xt_indices, xt_data: the same matrix transposed (X^T as csr)
    prior : ndarray (n_segments, n_shoes), float32
        Every segment's cold-start score; ``segment`` (n_users,) picks each user's row.
    ex_indptr, ex_indices : csr structure (n_users, n_shoes) of the excluded cells
    weight, prior_weight : ndarray (n_users,), float32
        w_u (:func:`cf_weights`) and p_u (:func:`prior_weights`).
    flat : float
        A row whose range is at most ``flat`` x its largest magnitude is flat (``row_range``).
    out_index, out_value : ndarray (n_users, n), int32 and float32
        The top-N, best first; -1 and -inf pad a row with fewer allowed shoes.
    out_cf, out_content, out_prior : ndarray (n_users, n), float32
        The picks' raw CF score, raw content score and segment prior (0 for padding).
    ranges : ndarray (n_users, 4), float32
        Per user: CF low, CF scale, content low, content scale (``row_range``).
    norms : ndarray (n_users,), float32
        ``||p_u||``, the norm of the user's content profile.
    """
    n_users = indptr.shape[0] - 1
    n_shoes = prior.shape[1]
    n = out_index.shape[1]
    use_operator = operator.shape[0] > 0
    cf = np.empty(n_shoes, np.float32)
    content = np.empty(n_shoes, np.float32)
    score = np.empty(n_shoes, np.float32)
    profile = np.empty(n_terms, np.float32)
    heap_value = np.empty(n, np.float32)
    heap_index = np.empty(n, np.int32)
    minus_inf = np.float32(-np.inf)
    for u in range(n_users):
        start, stop = indptr[u], indptr[u + 1]
        # CF: r_u C, one row of C per shoe of the history (scipy's csr x dense, in the same order)
        if use_operator:
            _operator_product(indices, data, start, stop, operator, cf)
        else:
            cf[:] = cf_rows[u]
        # content: the strength-weighted profile, unit length, then its cosine with every shoe
        profile[:] = 0
        for e in range(start, stop):
            j = indices[e]
            r = data[e]
            for t in range(x_indptr[j], x_indptr[j + 1]):
                profile[x_indices[t]] += r * x_data[t]
        squares = np.float32(0)
        for t in range(n_terms):
            squares += profile[t] * profile[t]
        norm = np.float32(np.sqrt(squares))
        norms[u] = norm
        if norm > 0:
            for t in range(n_terms):
                profile[t] /= norm
        # x_j . p for every shoe j, term by term over X's columns (each shoe's sum in its row's term order)
        content[:] = 0
        for t in range(n_terms):
            weight_t = profile[t]
            if weight_t != 0:
                for k in range(xt_indptr[t], xt_indptr[t + 1]):
                    content[xt_indices[k]] += weight_t * xt_data[k]
        # each part's range (row_range): low and 1 / (high - low), 0 for a flat row
        cf_low, cf_scale = _row_range(cf, flat)
        content_low, content_scale = _row_range(content, flat)
        ranges[u, 0] = cf_low
        ranges[u, 1] = cf_scale
        ranges[u, 2] = content_low
        ranges[u, 3] = content_scale
        # the blend a cf + b content + c prior (model.recommend derives it)
        w = weight[u]
        p = prior_weight[u]
        a = w * cf_scale
        b = (np.float32(1) - w) * (np.float32(1) - p) * content_scale
        c = (np.float32(1) - w) * p
        own_prior = prior[segment[u]]
        for i in range(n_shoes):
            value = cf[i] * a
            value += content[i] * b
            value += own_prior[i] * c
            score[i] = value
        # excluded shoes are never returned
        for e in range(ex_indptr[u], ex_indptr[u + 1]):
            score[ex_indices[e]] = minus_inf
        if n == 0:
            continue
        # the n best: a min-heap of the best so far (worst on top; on equal scores the later column is
        # worse, so that ties go to the lower column), then sorted best first
        size = 0
        for i in range(n_shoes):
            value = score[i]
            if value == minus_inf or value != value:
                continue
            if size < n:
                _heap_push(heap_value, heap_index, size, value, i)
                size += 1
            elif value > heap_value[0]:
                _heap_replace_top(heap_value, heap_index, size, value, i)
        order = _best_first(heap_value, heap_index, size)
        for rank in range(n):
            if rank < size:
                i = heap_index[order[rank]]
                out_index[u, rank] = i
                out_value[u, rank] = heap_value[order[rank]]
                out_cf[u, rank] = cf[i]
                out_content[u, rank] = content[i]
                out_prior[u, rank] = own_prior[i]
            else:
                out_index[u, rank] = -1
                out_value[u, rank] = minus_inf
                out_cf[u, rank] = cf[0] if n_shoes else 0
                out_content[u, rank] = content[0] if n_shoes else 0
                out_prior[u, rank] = own_prior[0] if n_shoes else 0


@numba.njit(nogil=True, cache=True)
def _operator_product(indices, data, start, stop, operator, cf):  # pragma: no cover - compiled
    """cf = r_u C: the rows of C of the user's shoes, scaled by their strengths and summed in history
    order, four rows a pass (one read and write of cf per four rows; the same sums as one at a time)."""
    n_shoes = cf.shape[0]
    cf[:] = 0
    e = start
    while e + 4 <= stop:
        r0, r1, r2, r3 = data[e], data[e + 1], data[e + 2], data[e + 3]
        a0, a1 = operator[indices[e]], operator[indices[e + 1]]
        a2, a3 = operator[indices[e + 2]], operator[indices[e + 3]]
        for i in range(n_shoes):
            value = cf[i] + r0 * a0[i]
            value = value + r1 * a1[i]
            value = value + r2 * a2[i]
            cf[i] = value + r3 * a3[i]
        e += 4
    while e < stop:
        r = data[e]
        row = operator[indices[e]]
        for i in range(n_shoes):
            cf[i] += r * row[i]
        e += 1


@numba.njit(nogil=True, cache=True)
def _row_range(row, flat):  # pragma: no cover - compiled
    """(low, 1 / (high - low)) of one row, the scale 0 for a flat row (model.row_range)."""
    if row.shape[0] == 0:
        return np.float32(0), np.float32(0)
    low = row[0]
    high = row[0]
    for i in range(1, row.shape[0]):
        if row[i] < low:
            low = row[i]
        if row[i] > high:
            high = row[i]
    span = high - low
    if span <= np.float32(flat) * max(abs(high), abs(low)):
        return low, np.float32(0)
    return low, np.float32(1) / span


@numba.njit(nogil=True, cache=True, inline="always")
def _worse(value_a, index_a, value_b, index_b):  # pragma: no cover - compiled
    """Whether pick a ranks below pick b: a lower score, or the same score in a later column."""
    return value_a < value_b or (value_a == value_b and index_a > index_b)


@numba.njit(nogil=True, cache=True, inline="always")
def _swap(values, indices, a, b):  # pragma: no cover - compiled
    values[a], values[b] = values[b], values[a]
    indices[a], indices[b] = indices[b], indices[a]


@numba.njit(nogil=True, cache=True)
def _heap_push(values, indices, size, value, index):  # pragma: no cover - compiled
    position = size
    values[position] = value
    indices[position] = index
    while position > 0:
        parent = (position - 1) // 2
        if _worse(values[position], indices[position], values[parent], indices[parent]):
            _swap(values, indices, position, parent)
            position = parent
        else:
            break


@numba.njit(nogil=True, cache=True)
def _heap_replace_top(values, indices, size, value, index):  # pragma: no cover - compiled
    values[0] = value
    indices[0] = index
    position = 0
    while True:
        left = 2 * position + 1
        if left >= size:
            break
        child = left
        right = left + 1
        if right < size and _worse(values[right], indices[right], values[left], indices[left]):
            child = right
        if _worse(values[child], indices[child], values[position], indices[position]):
            _swap(values, indices, position, child)
            position = child
        else:
            break


@numba.njit(nogil=True, cache=True)
def _best_first(values, indices, size):  # pragma: no cover - compiled
    """Positions 0..size-1 of the heap, best first (insertion sort: size is the list length)."""
    order = np.arange(size)
    for k in range(1, size):
        current = order[k]
        position = k
        while position > 0 and _worse(
            values[order[position - 1]], indices[order[position - 1]], values[current], indices[current]
        ):
            order[position] = order[position - 1]
            position -= 1
        order[position] = current
    return order


@numba.njit(nogil=True, cache=True)
def explain_picks(indptr, indices, data, index, grams, cf_coef, content_coef, out_reason):  # pragma: no cover
    """The history shoe contributing most to each pick (model.explain), written into ``out_reason``.

    The picks are visited grouped by shoe (a counting sort of the batch's picks), so that row
    ``grams[j]`` (40 kB at 5,000 shoes) comes from memory once per batch and serves every pick of j
    from cache; in user order every pick would read its own row afresh, one cache miss per history
    shoe. Each pick's own loop is unchanged, so the reasons are the same.

    Parameters
    ----------
    indptr, indices, data : the batch's csr_matrix (n_users, n_shoes), float32, canonical
    index : ndarray (n_users, n), int32
        The picks (-1 = padding).
    grams : ndarray (n_shoes, n_shoes, 2), float32
        ``[j, i, 0]``: weight of history shoe i in the CF score of j; ``[j, i, 1]``: ``x_j . x_i``.
    cf_coef, content_coef : ndarray (n_users,), float32
        alpha_u and beta_u of model.explain.
    out_reason : ndarray (n_users, n), int32
        Shoe index of the reason; -1 for padding and for users without history.
    """
    n_users, n = index.shape
    n_shoes = grams.shape[0]
    # the picks to explain, bucketed by shoe: starts[j]..starts[j + 1] in ``order`` (pick = u * n + rank)
    starts = np.zeros(n_shoes + 1, np.int64)
    for u in range(n_users):
        has_history = indptr[u + 1] > indptr[u]
        for rank in range(n):
            j = index[u, rank]
            if j < 0 or not has_history:
                out_reason[u, rank] = -1
            else:
                starts[j + 1] += 1
    for j in range(n_shoes):
        starts[j + 1] += starts[j]
    order = np.empty(starts[n_shoes], np.int64)
    fill = starts[:n_shoes].copy()
    for u in range(n_users):
        if indptr[u + 1] == indptr[u]:
            continue
        for rank in range(n):
            j = index[u, rank]
            if j >= 0:
                order[fill[j]] = u * n + rank
                fill[j] += 1
    for j in range(n_shoes):
        row = grams[j]
        for position in range(starts[j], starts[j + 1]):
            pick = order[position]
            u = pick // n
            alpha = cf_coef[u]
            beta = content_coef[u]
            # contribution of history shoe i to j: strength x (alpha cf similarity + beta content
            # similarity), as numpy computes it; the first of equal contributions wins
            best = -np.inf
            best_shoe = -1
            for e in range(indptr[u], indptr[u + 1]):
                i = indices[e]
                contribution = row[i, 0] * (alpha * data[e])
                contribution += row[i, 1] * (beta * data[e])
                if best_shoe < 0 or contribution > best:
                    best = contribution
                    best_shoe = i
            out_reason[u, pick - u * n] = best_shoe
