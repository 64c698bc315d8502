"""The real-log profile: a second world, shaped like a public retail / rating log, not like the demo's funnel.

For testing a recommender on data it was not tuned on: a low-rank taste that only collaborative
filtering sees well, weak demographic and content signals, a Zipf-like head, short heavy-tailed
histories in one or two bursts, and mostly one event per (user, shoe), its type set by how much the
user likes the shoe. It reuses the demo's catalogue and user attributes (names, prices, care texts,
ages ...) but none of their preferences.
"""

from __future__ import annotations

import numpy as np

from scripts.generator.batches import batch_size
from scripts.generator.catalogue import Catalogue
from scripts.generator.users import Users
from scripts.generator.world import (
    AGE_TYPE_LOG,
    BRAND_NAMES,
    COLOR_FAMILIES,
    DAY,
    GENDERS,
    MATERIALS,
    TYPES,
    USAGES,
    VIEW,
)

REAL_LOG_LATENT_DIM = 12
REAL_LOG_TASTE_SCALE = 2.5  # weight of the latent taste (a dot product of unit variance) in the log-weights
REAL_LOG_POPULARITY_EXPONENT = 1.0  # popularity of the shoe at popularity rank r ~ r ** -exponent
REAL_LOG_DEMOGRAPHIC_SHARE = 0.2  # share of a user's taste variance set by usage x gender and age band
REAL_LOG_CONTENT_SHARE = 0.15  # share of a shoe's taste variance set by its brand, type, material, colour
REAL_LOG_NOVELTY = 1.5  # log-boost of a shoe just released in the window ...
REAL_LOG_NOVELTY_DAYS = 30  # ... fading with this time constant
REAL_LOG_COLD_USER_SHARE = 0.02
REAL_LOG_ACTIVITY_SIGMA = 1.45  # of the log-normal number of events per user
REAL_LOG_MAX_EVENTS = 650  # per user (before the few extra views) ...
REAL_LOG_MAX_SHOE_SHARE = 0.5  # ... and at most this share of the catalogue
REAL_LOG_TWO_BURST_SHARE = 0.4  # users active in two bursts (the others in one)
REAL_LOG_BURST_DAYS = (0.5, 4.0)  # length of a burst: uniform between these
REAL_LOG_TYPE_SHARE = (0.45, 0.30, 0.25)  # view, add_to_wishlist, purchase
REAL_LOG_TYPE_NOISE = 1.0  # logistic noise on the liking that sets the type
REAL_LOG_EXTRA_VIEW_SHARE = 0.02  # wishlisted or bought pairs that also have a view a little earlier


def real_log_tastes(
    rng: np.random.Generator, users: Users, shoes: Catalogue
) -> tuple[np.ndarray, np.ndarray]:
    r"""Latent user and shoe factors of the real-log world, each row of unit variance per dimension.

    A user's factor is mostly personal, with a small share (``REAL_LOG_DEMOGRAPHIC_SHARE``) from a
    vector per (usage, gender) and per age band; a shoe's is mostly its own, with a small share
    (``REAL_LOG_CONTENT_SHARE``) from vectors per brand, type, material and colour family. The taste
    of ``u`` for ``s`` is then ``x_u^T y_s / sqrt(k)``, of unit variance.

    Returns
    -------
    (user factors (users x k), shoe factors (shoes x k))
    """
    k = REAL_LOG_LATENT_DIM
    n_users, n_shoes = len(users.user_id), len(shoes.shoe_id)
    # demographic part: (usage, gender) and age band vectors, summed with equal variance
    segment = rng.standard_normal((len(USAGES), len(GENDERS), k))
    band = rng.standard_normal((len(AGE_TYPE_LOG), k))
    demographic = (segment[users.usage, users.gender] + band[users.age_band]) / np.sqrt(2)
    d = REAL_LOG_DEMOGRAPHIC_SHARE
    user_factors = np.sqrt(d) * demographic + np.sqrt(1 - d) * rng.standard_normal((n_users, k))
    # content part: brand, type, material and colour family vectors, summed with equal variance
    content = (
        rng.standard_normal((len(BRAND_NAMES), k))[shoes.brand]
        + rng.standard_normal((len(TYPES), k))[shoes.type]
        + rng.standard_normal((len(MATERIALS), k))[shoes.material]
        + rng.standard_normal((len(COLOR_FAMILIES), k))[shoes.family]
    ) / 2.0
    c = REAL_LOG_CONTENT_SHARE
    shoe_factors = np.sqrt(c) * content + np.sqrt(1 - c) * rng.standard_normal((n_shoes, k))
    return user_factors, shoe_factors


def real_log_activity(rng: np.random.Generator, n: int, total: int, cap: float) -> np.ndarray:
    """Events per user: log-normal, at most ``cap``, ``total`` in all (about); 0 (cold users) or >= 1."""
    if n == 0 or total <= 0:
        return np.zeros(n, dtype=np.int64)
    activity = rng.lognormal(0.0, REAL_LOG_ACTIVITY_SIGMA, n)
    activity[rng.random(n) < REAL_LOG_COLD_USER_SHARE] = 0.0
    if activity.sum() == 0:
        return np.zeros(n, dtype=np.int64)
    # scale to the total, spreading what the cap cuts off over the others
    expected = activity * (total / activity.sum())
    cap = max(cap, 1.0)
    for _ in range(10):
        expected = np.minimum(expected, cap)
        free = (expected < cap) & (expected > 0)
        missing = total - expected.sum()
        if missing <= 0.5 or not free.any():
            break
        expected[free] *= 1 + missing / expected[free].sum()
    # at least one event for each active user, the rest Poisson
    counts = 1 + rng.poisson(np.maximum(expected - 1, 0.0))
    counts[activity == 0] = 0
    return np.minimum(counts, int(cap))


def real_log_bursts(rng: np.random.Generator, n: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """One or two bursts per user, at random points of the window: (starts (n, 2), lengths (n, 2)).

    Seconds; a user with one burst has its second equal to the first. The bursts are in time
    order and end by ``end``.
    """
    length = (rng.uniform(*REAL_LOG_BURST_DAYS, (n, 2)) * DAY).astype(np.int64)
    length = np.minimum(length, max(end - start, 1))
    first = start + (rng.random((n, 2)) * (end - start - length)).astype(np.int64)
    # in time order; one burst: the second is the first
    order = np.argsort(first, axis=1)
    first, length = np.take_along_axis(first, order, 1), np.take_along_axis(length, order, 1)
    one = rng.random(n) >= REAL_LOG_TWO_BURST_SHARE
    first[one, 1], length[one, 1] = first[one, 0], length[one, 0]
    return first, length


def _top_k_per_row(keys: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the ``k[row]`` largest keys of each row (at most the finite ones)."""
    k = np.minimum(k, np.isfinite(keys).sum(axis=1))
    order = np.argsort(-keys, axis=1, kind="stable")
    taken = np.arange(keys.shape[1]) < k[:, None]
    rows = np.repeat(np.arange(len(keys)), k)
    return rows, order[taken]


def _real_log_draws(
    rng: np.random.Generator,
    rows: slice,
    counts: np.ndarray,
    last_burst: np.ndarray,
    user_factors: np.ndarray,
    shoe_factors: np.ndarray,
    popularity_log: np.ndarray,
    novelty: np.ndarray,
    released_at: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shoes of a batch of users, drawn without replacement: (user rows, shoe rows, taste)."""
    # log-weights: taste, popularity, novelty; shoes not yet released by the last burst are out
    taste = REAL_LOG_TASTE_SCALE * (user_factors[rows] @ shoe_factors.T) / np.sqrt(REAL_LOG_LATENT_DIM)
    age_days = (last_burst[rows, None] - released_at[None, :]) / DAY
    logits = taste + popularity_log
    logits += novelty * np.exp(-np.maximum(age_days, 0.0) / REAL_LOG_NOVELTY_DAYS)
    logits[age_days < 0] = -np.inf
    # the k largest of log-weight + Gumbel noise: a draw of k without replacement
    keys = logits + rng.gumbel(size=logits.shape)
    user, shoe = _top_k_per_row(keys, counts[rows])
    return user + rows.start, shoe, taste[user, shoe]


def simulate_real_log(
    rng: np.random.Generator, users: Users, shoes: Catalogue, start: int, end: int, total: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""The interactions of the real-log world: (user_id, shoe_id, type code, epoch seconds).

    Each user's shoes are drawn without replacement (Gumbel top-k) with log-weights

    .. math:: \ell_{us} = -\alpha \log r_s + \lambda\, x_u^\top y_s / \sqrt{k} + \nu\, e^{-a_{us}/\tau}

    (Zipf popularity at rank ``r``, the low-rank taste of :func:`real_log_tastes`, a boost of a shoe
    released ``a`` before the user's last burst), among the shoes released by then. Each event lies
    in one of the user's bursts (after the shoe's release); its type is a quantile cut of the taste
    plus logistic noise, so liked shoes are wishlisted and bought more. A few wishlisted or bought
    pairs get a view shortly before. Sorted by user, time, type and shoe.
    """
    n_users, n_shoes = len(users.user_id), len(shoes.shoe_id)
    # share of all events that are the extra views (of the wishlisted or bought: 55% of the others)
    extra_share = REAL_LOG_EXTRA_VIEW_SHARE * 0.55 / (1 + REAL_LOG_EXTRA_VIEW_SHARE * 0.55)
    user_factors, shoe_factors = real_log_tastes(rng, users, shoes)
    cap = min(REAL_LOG_MAX_EVENTS, REAL_LOG_MAX_SHOE_SHARE * n_shoes)
    counts = real_log_activity(rng, n_users, round(total * (1 - extra_share)), cap)
    burst_start, burst_length = real_log_bursts(rng, n_users, start, end)

    popularity_log = -REAL_LOG_POPULARITY_EXPONENT * np.log(rng.permutation(n_shoes) + 1.0)
    novelty = np.where(shoes.released_at >= start, REAL_LOG_NOVELTY, 0.0)
    # the users x shoes part in batches of users (bounded memory at any size)
    size = batch_size(n_shoes)
    drawn = [
        _real_log_draws(
            rng,
            slice(b, b + size),
            counts,
            burst_start[:, 1],
            user_factors,
            shoe_factors,
            popularity_log,
            novelty,
            shoes.released_at,
        )  # fmt: skip
        for b in range(0, n_users, size)
    ]
    user, shoe, taste = (np.concatenate(parts) for parts in zip(*drawn, strict=True))

    at = _times_in_bursts(rng, user, shoe, burst_start, burst_length, shoes.released_at, end)
    kind = _types_by_liking(rng, taste, extra_share)
    user, shoe, kind, at = _with_extra_views(rng, user, shoe, kind, at, shoes.released_at, start)
    order = np.lexsort((shoe, kind, at, user))
    return users.user_id[user[order]], shoes.shoe_id[shoe[order]], kind[order], at[order]


def _times_in_bursts(
    rng: np.random.Generator,
    user: np.ndarray,
    shoe: np.ndarray,
    burst_start: np.ndarray,
    burst_length: np.ndarray,
    released_at: np.ndarray,
    end: int,
) -> np.ndarray:
    """A time per drawn (user, shoe) in one of the user's bursts, not before the shoe's release.

    The last burst if the shoe came out after the first burst began, else either (the second with
    a share per user).
    """
    second_share = rng.uniform(0.3, 0.7, len(burst_start))[user]
    burst = (rng.random(len(user)) < second_share) | (released_at[shoe] > burst_start[user, 0])
    burst = burst.astype(np.int64)
    at = burst_start[user, burst] + (rng.random(len(user)) * burst_length[user, burst]).astype(np.int64)
    return np.minimum(np.maximum(at, released_at[shoe]), end)


def _types_by_liking(rng: np.random.Generator, taste: np.ndarray, extra_share: float) -> np.ndarray:
    """Type codes: cuts of the liking (taste + logistic noise) at the target shares.

    Fewer views than ``REAL_LOG_TYPE_SHARE`` says, by ``extra_share`` of all events: the extra
    views (:func:`_with_extra_views`) come on top.
    """
    liking = taste + REAL_LOG_TYPE_NOISE * rng.logistic(size=len(taste))
    share = np.array(REAL_LOG_TYPE_SHARE) * (1 + extra_share) - [extra_share, 0, 0]
    cuts = np.quantile(liking, np.cumsum(share)[:-1] / share.sum()) if len(taste) else np.zeros(2)
    return np.searchsorted(cuts, liking).astype(np.int64)


def _with_extra_views(
    rng: np.random.Generator,
    user: np.ndarray,
    shoe: np.ndarray,
    kind: np.ndarray,
    at: np.ndarray,
    released_at: np.ndarray,
    start: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The events plus a view a little earlier of a few wishlisted or bought pairs (appended)."""
    extra = np.flatnonzero((kind > VIEW) & (rng.random(len(user)) < REAL_LOG_EXTRA_VIEW_SHARE))
    extra_at = at[extra] - 1 - rng.exponential(3600.0, len(extra)).astype(np.int64)
    extra_at = np.maximum(extra_at, np.maximum(released_at[shoe[extra]], start))
    return (
        np.concatenate((user, user[extra])),
        np.concatenate((shoe, shoe[extra])),
        np.concatenate((kind, np.full(len(extra), VIEW))),
        np.concatenate((at, extra_at)),
    )
