"""The demo world's interactions: sessions of views, then wishlists, purchases and re-purchases.

:func:`simulate_batch` runs the funnel for one batch of users, step by step; each step draws from
the batch's random generator in turn, so their order is part of the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scripts.generator.catalogue import Catalogue
from scripts.generator.tastes import Tastes, user_tastes
from scripts.generator.users import Users
from scripts.generator.world import DAY, PURCHASE, USAGE_WEAR, VIEW, WISHLIST

WISHLISTS_PER_VIEW = 0.15
PURCHASES_PER_VIEW = 0.05
DIRECT_WISHLIST_SHARE = 0.08  # wishlisted without a view of the shoe before
DIRECT_PURCHASE_SHARE = 0.12  # bought without a view or wishlist before (e.g. in a shop)
CONVERSION_TASTE = 0.5  # how much more a liked shoe is wishlisted / bought: weight exp(this x logit)
SESSION_SECONDS = 1800  # the views of a session fall within this time of its start


# ------------------------------------------------------------------------------------------------
# Drawing shoes and times
# ------------------------------------------------------------------------------------------------


class _RowSampler:
    """Draws shoes for given batch rows, each row's distribution given by log-weights (batch x shoes)."""

    def __init__(self, logits: np.ndarray):
        # in place, one array: weights, cumulative, normalized, then row r shifted into (r, r + 1]
        n_rows, self.n_cols = logits.shape
        cdf = np.exp(logits, out=logits)
        np.cumsum(cdf, axis=1, out=cdf)
        total = cdf[:, -1:].copy()
        cdf /= np.where(total > 0, total, 1.0)
        cdf += np.arange(n_rows, dtype=float)[:, None]
        self.flat = cdf.ravel()  # one search over all rows

    def draw(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self.flat, rows + rng.random(len(rows)), side="right")
        return np.minimum(at - rows * self.n_cols, self.n_cols - 1)


def _draw_available(
    rng: np.random.Generator,
    sampler: _RowSampler,
    rows: np.ndarray,
    times: np.ndarray,
    released_at: np.ndarray,
    tries: int = 12,
) -> tuple[np.ndarray, np.ndarray]:
    """A shoe per (row, time), among shoes released by then (rejection); returns (shoes, kept mask)."""
    shoes = sampler.draw(rng, rows)
    for _ in range(tries):
        early = np.flatnonzero(released_at[shoes] > times)
        if len(early) == 0:
            break
        shoes[early] = sampler.draw(rng, rows[early])
    return shoes, released_at[shoes] <= times


def _uniform_time(rng: np.random.Generator, low: np.ndarray, end: int) -> np.ndarray:
    """A second between each ``low`` and ``end``, both included, uniformly."""
    return low + (rng.random(len(low)) * (end + 1 - low)).astype(np.int64)


def _after(rng: np.random.Generator, anchor: np.ndarray, quick_share: float, end: int) -> np.ndarray:
    """A time after each anchor: within the hour (``quick_share``) or days later; at most ``end``."""
    quick = rng.random(len(anchor)) < quick_share
    delay = np.where(quick, rng.exponential(600.0, len(anchor)), rng.exponential(4.0 * DAY, len(anchor)))
    delay = 1 + delay.astype(np.int64)
    late = anchor + delay > end
    # no room for the delay: somewhere between the anchor and the end
    room = np.maximum(end - anchor, 0)
    squeezed = anchor + 1 + (rng.random(len(anchor)) * room).astype(np.int64)
    return np.where(late, np.minimum(squeezed, end), anchor + delay)


def _select(rng: np.random.Generator, weights: np.ndarray, expected: float) -> np.ndarray:
    """A mask choosing each item with probability proportional to its weight, ``expected`` in all."""
    if len(weights) == 0 or expected <= 0:
        return np.zeros(len(weights), dtype=bool)
    cap = 0.9
    p = weights * (expected / weights.sum())
    for _ in range(5):  # spread what the cap cuts off over the others
        p = np.minimum(p, cap)
        missing = expected - p.sum()
        free = p < cap
        if missing <= 1e-9 or not free.any():
            break
        p[free] *= 1 + missing / p[free].sum()
    return rng.random(len(weights)) < np.minimum(p, cap)


def _direct_users(rng: np.random.Generator, views_per_user: np.ndarray, expected: float) -> np.ndarray:
    """Rows of users for ``expected`` direct events, spread in proportion to their views."""
    total = views_per_user.sum()
    if total == 0 or expected <= 0:
        return np.zeros(0, dtype=np.int64)
    counts = rng.multinomial(rng.poisson(expected), views_per_user / total)
    return np.repeat(np.arange(len(views_per_user)), counts)


# ------------------------------------------------------------------------------------------------
# One batch of users
# ------------------------------------------------------------------------------------------------


@dataclass
class _Events:
    """Events of one kind: batch rows of the users, catalogue rows of the shoes, epoch seconds."""

    user: np.ndarray
    shoe: np.ndarray
    at: np.ndarray

    def __getitem__(self, which: np.ndarray) -> _Events:
        return _Events(self.user[which], self.shoe[which], self.at[which])

    def __len__(self) -> int:
        return len(self.user)


@dataclass
class _Pairs:
    """The viewed (user, shoe) pairs of a batch: first view, number of views and taste weight."""

    user: np.ndarray
    shoe: np.ndarray
    first_at: np.ndarray
    n_seen: np.ndarray
    liking: np.ndarray  # see _Batch.liking


@dataclass
class _Batch:
    """What the funnel's steps share about one batch of users."""

    tastes: Tastes
    sampler: _RowSampler  # draws a shoe for a batch row: taste x popularity
    shoes: Catalogue
    active_from: np.ndarray  # per batch row
    wear: np.ndarray  # per batch row: how fast the user wears shoes out (USAGE_WEAR)
    end: int  # the window's last second

    def draw(self, rng: np.random.Generator, user: np.ndarray, at: np.ndarray) -> _Events:
        """Events of the given users at the given times, a shoe each among those released by then.

        The events for which none was found (after a few tries) are left out.
        """
        shoe, ok = _draw_available(rng, self.sampler, user, at, self.shoes.released_at)
        return _Events(user, shoe, at)[ok]

    def liking(self, user: np.ndarray, shoe: np.ndarray) -> np.ndarray:
        """How much more likely a (user row, shoe row) pair converts: exp(CONVERSION_TASTE x log-weight)."""
        return np.exp(CONVERSION_TASTE * self.tastes.logits_at(user, shoe, self.shoes))


def simulate_batch(
    rng: np.random.Generator,
    users: Users,
    rows: slice,
    shoes: Catalogue,
    end: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The interactions of one batch of users: (user_id, shoe_id, type code, epoch seconds).

    Sorted by user, time, funnel step and shoe; at most one event per (user, shoe, type, second).
    """
    tastes = user_tastes(rng, users, rows, shoes)
    logits = tastes.logits(shoes)
    logits += shoes.popularity_log
    batch = _Batch(
        tastes=tastes,
        sampler=_RowSampler(logits),  # takes over the array
        shoes=shoes,
        active_from=users.active_from[rows],
        wear=np.array(USAGE_WEAR)[users.usage[rows]],
        end=end,
    )
    views_per_user = rng.poisson(users.expected_views[rows])
    views = _views(rng, batch, views_per_user)
    pairs = _viewed_pairs(batch, views)

    n_wishlists = WISHLISTS_PER_VIEW * len(views)
    wished, wish_time = _wishlists(rng, batch, pairs, (1 - DIRECT_WISHLIST_SHARE) * n_wishlists)
    direct_wishes = _direct_events(rng, batch, views_per_user, DIRECT_WISHLIST_SHARE * n_wishlists)

    n_purchases = PURCHASES_PER_VIEW * len(views)
    purchases = _purchases(
        rng, batch, pairs, wished, wish_time, direct_wishes, (1 - DIRECT_PURCHASE_SHARE) * n_purchases
    )
    direct_purchases = _direct_events(rng, batch, views_per_user, DIRECT_PURCHASE_SHARE * n_purchases)
    purchases = _concatenate(purchases, direct_purchases)
    again, views_before_again = _repurchases(rng, batch, purchases)

    user, shoe, kind, at = _one_event_per_key(
        (VIEW, views),
        (WISHLIST, _Events(pairs.user[wished], pairs.shoe[wished], wish_time)),
        (WISHLIST, direct_wishes),
        (PURCHASE, purchases),
        (PURCHASE, again),
        (VIEW, views_before_again),
    )
    return users.user_id[rows][user], shoes.shoe_id[shoe], kind, at


def _sessions(
    rng: np.random.Generator, batch: _Batch, views_per_user: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Browsing sessions: (sessions per user, each session's start), a few views per session.

    The sessions of a user follow each other in the batch's order; each starts after the user is
    around and early enough for a whole session before the window ends.
    """
    sessions_per_user = 1 + rng.binomial(np.maximum(views_per_user - 1, 0), 0.22)
    sessions_per_user[views_per_user == 0] = 0
    session_user = np.repeat(np.arange(len(views_per_user)), sessions_per_user)
    latest = batch.end - SESSION_SECONDS
    session_start = _uniform_time(rng, batch.active_from[session_user], latest)
    session_start = np.maximum(np.minimum(session_start, latest), batch.active_from[session_user])
    return sessions_per_user, session_start


def _views(rng: np.random.Generator, batch: _Batch, views_per_user: np.ndarray) -> _Events:
    """Each user's views, spread over their sessions, within half an hour from the session's start."""
    sessions_per_user, session_start = _sessions(rng, batch, views_per_user)
    first_session = np.concatenate(([0], np.cumsum(sessions_per_user)[:-1]))
    user = np.repeat(np.arange(len(views_per_user)), views_per_user)
    session = first_session[user] + (rng.random(len(user)) * sessions_per_user[user]).astype(np.int64)
    at = np.minimum(session_start[session] + rng.integers(0, SESSION_SECONDS, len(user)), batch.end)
    return batch.draw(rng, user, at)


def _viewed_pairs(batch: _Batch, views: _Events) -> _Pairs:
    """The distinct (user, shoe) pairs among the views, with their first view and number of views."""
    n_shoes = len(batch.shoes.released_at)
    key = views.user * n_shoes + views.shoe
    order = np.lexsort((views.at, key))
    pair_key, first_at, n_seen = np.unique(key[order], return_index=True, return_counts=True)
    user, shoe = pair_key // n_shoes, pair_key % n_shoes
    return _Pairs(user, shoe, views.at[order][first_at], n_seen, batch.liking(user, shoe))


def _wishlists(
    rng: np.random.Generator, batch: _Batch, pairs: _Pairs, expected: float
) -> tuple[np.ndarray, np.ndarray]:
    """Wishlists of viewed shoes (liked and seen more often: more likely), after the first view.

    Returns (mask of the wished pairs, their times); a pair first viewed in the window's last second
    has no room left and is not wished.
    """
    wished = _select(rng, pairs.liking * (1 + 0.5 * (pairs.n_seen - 1)), expected)
    wished_at = np.flatnonzero(wished)
    wish_time = _after(rng, pairs.first_at[wished_at], 0.7, batch.end)
    room = wish_time > pairs.first_at[wished_at]
    wished[wished_at[~room]] = False
    return wished, wish_time[room]


def _direct_events(
    rng: np.random.Generator, batch: _Batch, views_per_user: np.ndarray, expected: float
) -> _Events:
    """About ``expected`` events without a view before: users in proportion to their views, any time
    they are around, a shoe released by then."""
    user = _direct_users(rng, views_per_user, expected)
    return batch.draw(rng, user, _uniform_time(rng, batch.active_from[user], batch.end))


def _purchases(
    rng: np.random.Generator,
    batch: _Batch,
    pairs: _Pairs,
    wished: np.ndarray,
    wish_time: np.ndarray,
    direct_wishes: _Events,
    expected: float,
) -> _Events:
    """Purchases of a viewed or wishlisted shoe, after that; a wishlisted shoe sells far better.

    A pair is bought after its first view, and after its wishlist if any; a purchase with no room
    left before the window ends is dropped.
    """
    user = np.concatenate((pairs.user, direct_wishes.user))
    shoe = np.concatenate((pairs.shoe, direct_wishes.shoe))
    pair_anchor = pairs.first_at.copy()
    pair_anchor[wished] = np.maximum(pairs.first_at[wished], wish_time)
    anchor = np.concatenate((pair_anchor, direct_wishes.at))
    weight = np.concatenate(
        (pairs.liking * (1 + 0.3 * (pairs.n_seen - 1)), batch.liking(direct_wishes.user, direct_wishes.shoe))
    )
    weight[np.concatenate((wished, np.ones(len(direct_wishes), dtype=bool)))] *= 5.0
    bought = _select(rng, weight, expected)
    at = _after(rng, anchor[bought], 0.35, batch.end)
    return _Events(user[bought], shoe[bought], at)[at > anchor[bought]]


def _repurchases(rng: np.random.Generator, batch: _Batch, purchases: _Events) -> tuple[_Events, _Events]:
    """Some buy the same shoe again when the first pair is worn out: (the purchases, a view just before
    each)."""
    wear = batch.wear[purchases.user]
    life = batch.shoes.lifespan_days[purchases.shoe] / wear * rng.uniform(0.75, 1.0, len(purchases)) * DAY
    worn_out = purchases.at + life
    again = (rng.random(len(purchases)) < 0.06) & (worn_out <= batch.end)
    bought = _Events(purchases.user[again], purchases.shoe[again], worn_out[again].astype(np.int64))
    viewed = _Events(bought.user, bought.shoe, bought.at - 1 - rng.integers(0, 3 * DAY, len(bought)))
    return bought, viewed


def _concatenate(*parts: _Events) -> _Events:
    """The events of ``parts``, one after the other."""
    return _Events(
        np.concatenate([part.user for part in parts]),
        np.concatenate([part.shoe for part in parts]),
        np.concatenate([part.at for part in parts]),
    )


def _one_event_per_key(*parts: tuple[int, _Events]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user rows, shoe rows, type codes, times) of all ``(type code, events)`` parts.

    Sorted by user, time, type and shoe, with one event per (user, shoe, type, second): the key the
    database stores them by.
    """
    events = _concatenate(*(events for _, events in parts))
    kind = np.concatenate([np.full(len(events), code) for code, events in parts])
    order = np.lexsort((events.shoe, kind, events.at, events.user))
    user, shoe, kind, at = events.user[order], events.shoe[order], kind[order], events.at[order]
    repeat = np.zeros(len(user), dtype=bool)
    repeat[1:] = (
        (user[1:] == user[:-1]) & (shoe[1:] == shoe[:-1]) & (kind[1:] == kind[:-1]) & (at[1:] == at[:-1])
    )
    return user[~repeat], shoe[~repeat], kind[~repeat], at[~repeat]
