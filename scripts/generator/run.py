"""The whole run: the profiles' default sizes, the window, and :func:`generate` (the files in a folder)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from scripts.generator.batches import (
    BatchResult,
    World,
    available_cores,
    batch_result,
    batch_results,
    batch_size,
)
from scripts.generator.catalogue import Catalogue, make_catalogue
from scripts.generator.funnel import PURCHASES_PER_VIEW, WISHLISTS_PER_VIEW
from scripts.generator.real_log import simulate_real_log
from scripts.generator.users import Users, make_users
from scripts.generator.world import DAY, INTERACTION_TYPES
from scripts.generator.writing import INTERACTIONS_HEADER, write_contacts, write_shoes, write_users

log = logging.getLogger(__name__)

DEFAULT_USERS = 2000
DEFAULT_SHOES = 300
DEFAULT_SEED = 42
DEFAULT_END_DATE = dt.date(2026, 6, 30)
DEFAULT_MONTHS = 18
INTERACTIONS_PER_USER = 22  # default --interactions = users * this


@dataclass(frozen=True)
class Profile:
    """The default sizes of a simulated world (each option overrides its own)."""

    users: int
    shoes: int
    interactions_per_user: float  # default --interactions = round(users * this)
    months: int


PROFILES = {
    "demo": Profile(DEFAULT_USERS, DEFAULT_SHOES, INTERACTIONS_PER_USER, DEFAULT_MONTHS),
    # shaped like a public log of about 940 customers, 1,680 items and 100k events over 7 months
    "real-log": Profile(950, 1700, 100_000 / 950, 7),
}
DEFAULT_PROFILE = "demo"

FILES = ("users.csv", "shoes.csv", "interactions.csv", "contacts.csv")


def window(end_date: dt.date, months: int) -> tuple[int, int]:
    """(first second, last second) of the window: ``months`` calendar months ending with ``end_date``."""
    after = end_date + dt.timedelta(days=1)
    month_index = after.year * 12 + after.month - 1 - months
    start = dt.date(month_index // 12, month_index % 12 + 1, min(after.day, 28))
    epoch = dt.date(1970, 1, 1)
    return (start - epoch).days * DAY, (after - epoch).days * DAY - 1


def generate(
    out_dir: str | os.PathLike = "data",
    users: int | None = None,
    shoes: int | None = None,
    interactions: int | None = None,
    seed: int = DEFAULT_SEED,
    end_date: dt.date | str = DEFAULT_END_DATE,
    months: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    profile: str = DEFAULT_PROFILE,
) -> dict[str, int]:
    """Write users.csv, shoes.csv, interactions.csv (and contacts.csv, consent) into ``out_dir``.

    Parameters
    ----------
    out_dir : folder to write into (created if missing); each file is replaced only once complete.
    users, shoes : how many of each (default: the profile's).
    interactions : about how many interactions in all (default: the profile's per user x ``users``).
    seed : the only source of randomness (``numpy.random.default_rng(seed)``).
    end_date : last day of the window, included (an ISO date string or a date); never "today".
    months : length of the window in calendar months (default: the profile's).
    workers : threads simulating user batches (demo profile); None: one for small jobs, else every
        available core. The files do not depend on it.
    progress : show a tqdm bar over the users.
    profile : the simulated world, a key of ``PROFILES``: ``demo`` (segments, personal taste and a
        view -> wishlist -> purchase funnel; the bundled data) or ``real-log`` (shaped like a public
        interaction log: see :func:`scripts.generator.real_log.simulate_real_log`).

    Returns
    -------
    dict with the counts ``users``, ``shoes``, ``interactions``, ``view``, ``add_to_wishlist``,
    ``purchase``, ``users_without_interactions`` and ``shoes_without_interactions``.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; one of {', '.join(PROFILES)}")
    defaults = PROFILES[profile]
    users = defaults.users if users is None else users
    shoes = defaults.shoes if shoes is None else shoes
    months = defaults.months if months is None else months
    if users < 1 or shoes < 1:
        raise ValueError("need at least one user and one shoe")
    if interactions is not None and interactions < 0:
        raise ValueError("interactions must be >= 0")
    if months < 1:
        raise ValueError("months must be >= 1")
    if isinstance(end_date, str):
        end_date = dt.date.fromisoformat(end_date)
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start, end = window(end_date, months)
    total = round(defaults.interactions_per_user * users) if interactions is None else interactions
    n_views = total / (1 + WISHLISTS_PER_VIEW + PURCHASES_PER_VIEW)

    # everything random comes from this generator: catalogue, users, then one child per user batch
    # (demo), or the whole real-log simulation in one go
    rng = np.random.default_rng(seed)
    catalogue = make_catalogue(rng, shoes, start, end)
    people = make_users(rng, users, start, end, n_views)
    if profile == "real-log":
        users_per_batch = users
        batches = iter([_real_log_result(rng, people, catalogue, start, end, total)])
    else:
        world = World(users=people, shoes=catalogue, end=end, batch_size=batch_size(shoes))
        users_per_batch = world.batch_size
        batch_rngs = rng.spawn(-(-users // world.batch_size))
        if workers is None:
            workers = 1 if users * shoes < 50_000_000 else available_cores()
        batches = batch_results(world, batch_rngs, workers)

    result = _write_files(out, people, catalogue, end, seed, batches, users_per_batch, progress)
    _log_summary(result, out, time.perf_counter() - started)
    return result


def _real_log_result(
    rng: np.random.Generator, users: Users, shoes: Catalogue, start: int, end: int, total: int
) -> BatchResult:
    """The real-log profile's interactions, all users as one batch."""
    with threadpool_limits(1, user_api="blas"):  # the CPU is shared; the products are small
        return batch_result(*simulate_real_log(rng, users, shoes, start, end, total))


def _write_files(
    out: Path,
    people: Users,
    catalogue: Catalogue,
    end: int,
    seed: int,
    batches: Iterator[BatchResult],
    users_per_batch: int,
    progress: bool,
) -> dict[str, int]:
    """Write the four files into ``out``, each under a temporary name renamed once all are complete.

    Returns the counts :func:`generate` returns.
    """
    users, shoes = len(people.user_id), len(catalogue.shoe_id)
    counts = np.zeros(len(INTERACTION_TYPES), dtype=np.int64)
    active_users = 0
    shoe_seen = np.zeros(shoes, dtype=bool)
    tmp = {name: out / f".{name}.tmp" for name in FILES}
    try:
        write_users(tmp["users.csv"], people)
        write_shoes(tmp["shoes.csv"], catalogue)
        write_contacts(tmp["contacts.csv"], people, end, seed)
        with (
            open(tmp["interactions.csv"], "wb") as f,
            tqdm(total=users, unit="user", desc="interactions", disable=not progress) as bar,
        ):
            f.write((",".join(INTERACTIONS_HEADER) + "\n").encode())
            for b, batch in enumerate(batches):
                f.write(batch.lines)
                counts += batch.counts
                active_users += batch.active_users
                shoe_seen[batch.shoe_rows] = True
                bar.update(min(users_per_batch, users - b * users_per_batch))
        for name, path in tmp.items():
            os.replace(path, out / name)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    return {
        "users": users,
        "shoes": shoes,
        "interactions": int(counts.sum()),
        **{name: int(c) for name, c in zip(INTERACTION_TYPES, counts, strict=True)},
        "users_without_interactions": users - active_users,
        "shoes_without_interactions": int((~shoe_seen).sum()),
    }


def _log_summary(result: dict[str, int], out: Path, seconds: float) -> None:
    """One line: what was generated, where, and how long it took."""
    log.info(
        "generated %s users, %s shoes, %s interactions (%s views, %s wishlists, %s purchases; "
        "%s users and %s shoes without any) into %s in %.1f s",
        f"{result['users']:,}",
        f"{result['shoes']:,}",
        f"{result['interactions']:,}",
        f"{result['view']:,}",
        f"{result['add_to_wishlist']:,}",
        f"{result['purchase']:,}",
        f"{result['users_without_interactions']:,}",
        f"{result['shoes_without_interactions']:,}",
        out,
        seconds,
    )
