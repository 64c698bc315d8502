"""The customers: primary usage, gender, age, when they are around and how active they are."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scripts.generator.draws import choice
from scripts.generator.world import (
    AGE_BAND_EDGES,
    FIRST_USER_ID,
    NO_AGE_SHARE,
    NO_GENDER_SHARE,
    NO_INTERACTION_USER_SHARE,
    NONBINARY_SHARE,
    USAGE_AGE,
    USAGE_MALE_SHARE,
    USAGE_SHARE,
)


@dataclass
class Users:
    """The users, one array per attribute (row i is user_id FIRST_USER_ID + i)."""

    usage: np.ndarray  # index into USAGES
    gender: np.ndarray  # index into GENDERS (3 = unknown)
    age: np.ndarray  # years, -1 when unknown
    active_from: np.ndarray  # epoch seconds: the later of joining and the window start
    expected_views: np.ndarray  # Poisson mean of the user's number of views (0 for never-active users)
    # derived from the above
    user_id: np.ndarray = field(init=False)
    age_band: np.ndarray = field(init=False)  # 0 unknown, 1..7 the bands of AGE_BAND_EDGES

    def __post_init__(self):
        self.user_id = FIRST_USER_ID + np.arange(len(self.usage), dtype=np.int64)
        self.age_band = np.where(self.age < 0, 0, 1 + np.searchsorted(AGE_BAND_EDGES, self.age, side="right"))


def make_users(rng: np.random.Generator, n: int, start: int, end: int, n_views: float) -> Users:
    """``n`` users with segment attributes, join date and expected number of views (``n_views`` in all).

    ``start`` and ``end`` (epoch seconds) bound the interaction window.
    """
    usage = choice(rng, n, USAGE_SHARE)
    gender, age = _genders(rng, usage), _ages(rng, usage)
    active_from = _active_from(rng, n, start, end)
    expected_views = _expected_views(rng, active_from, start, end, n_views)
    return Users(usage=usage, gender=gender, age=age, active_from=active_from, expected_views=expected_views)


def _genders(rng: np.random.Generator, usage: np.ndarray) -> np.ndarray:
    """Gender by usage (a little), some non-binary, some not given."""
    n = len(usage)
    male = rng.random(n) < np.array(USAGE_MALE_SHARE)[usage]
    gender = np.where(male, 1, 0)
    other = rng.random(n)
    gender = np.where(other < NONBINARY_SHARE, 2, gender)
    return np.where(other > 1 - NO_GENDER_SHARE, 3, gender)


def _ages(rng: np.random.Generator, usage: np.ndarray) -> np.ndarray:
    """Age in years by usage, 13 to 95; -1 (not given) for some."""
    mean_sd = np.array(USAGE_AGE, dtype=float)[usage]
    age = np.clip(np.round(rng.normal(mean_sd[:, 0], mean_sd[:, 1])), 13, 95).astype(np.int64)
    return np.where(rng.random(len(usage)) < NO_AGE_SHARE, -1, age)


def _active_from(rng: np.random.Generator, n: int, start: int, end: int) -> np.ndarray:
    """55% were customers before the window; the others join during it (uniformly)."""
    joined_before = rng.random(n) < 0.55
    return np.where(joined_before, start, start + (rng.random(n) * (end - start)).astype(np.int64))


def _expected_views(
    rng: np.random.Generator, active_from: np.ndarray, start: int, end: int, n_views: float
) -> np.ndarray:
    """Activity: heavy-tailed, proportional to the time the user is around; some never interact."""
    n = len(active_from)
    activity = rng.lognormal(0.0, 0.8, n) * (end - active_from) / (end - start)
    activity[rng.random(n) < NO_INTERACTION_USER_SHARE] = 0.0
    return activity * (n_views / activity.sum()) if activity.sum() > 0 else activity
