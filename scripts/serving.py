"""The read model of the customer views on PostgreSQL (``sql/serving.sql``), brought up to date.

user_recommendations, user_messages and replacement_suggestions serve a customer from tables written here,
so that a page view plans and runs as an index lookup. Triggers mark what a change makes stale, and the
views compute those customers live meanwhile: the rows never differ, only their cost. A scoring run and a
refresh call :func:`refresh` once they have published (customers are served live in between), the daily
job after it enqueues (a new day makes the whole read model stale when the reference date follows the
calendar). DuckDB has no read model.
"""

from __future__ import annotations

import itertools
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from scripts.clock import Stopwatch
from scripts.db import Database, UsageError

log = logging.getLogger(__name__)

# a full rebuild: connections at once (each rebuilds one part at a time; the server's cores do the work), and
# the lock refresh_serving() takes too (one rebuild at a time)
ENV_REBUILD_WORKERS = "SHOEREC_REBUILD_WORKERS"
REBUILD_WORKERS = 2
REBUILD_LOCK = "refresh_serving"

# the customer views with a read model (views/<view>.sql reads live_<view> through read_model_select)
VIEWS = ("user_recommendations", "replacement_suggestions", "user_messages")


# what a run or a refresh has just written, analysed before a rebuild reads it through the live views (the
# planner's guesses for a table written in the same hour can pick a nested loop over every customer)
SCORE_TABLES = (
    "model_runs",
    "recommendations",
    "segment_recommendations",
    "shoe_similarities",
    "model_refreshes",
    "refreshed_recommendations",
    "serving_stale_users",
)


def refresh(db: Database, workers: int | None = None) -> int:
    """Bring the read model up to date, in transactions of its own; returns the customers rebuilt (0 on
    DuckDB or when nothing was stale).

    Every customer after a shared change or on a new reference date (or when more than a quarter are marked):
    in parts on ``workers`` connections at once (default ``$SHOEREC_REBUILD_WORKERS``, else 2), each part
    committed on its own while everyone is served live (sql/serving.sql says why that is exact); else the
    marked customers, by refresh_serving(). A run publishes first; if the rebuild fails
    (a cancelled query, say) it logs a warning and the views stay exact, only slower, until the next one.
    """
    if not db.is_postgres:
        return 0
    workers = rebuild_workers() if workers is None else workers
    clock = Stopwatch()
    try:
        with db.session_lock(REBUILD_LOCK):
            with db.transaction():
                full = bool(db.scalar("select serving_needs_full_rebuild()"))
                if full:
                    for table in SCORE_TABLES:
                        db.execute(f"analyze {table}")
                else:
                    rebuilt = int(db.scalar("select refresh_serving()"))
            if full:
                rebuilt = _full_rebuild(db, workers)
    except Exception as exc:  # what was published stays published: the views compute those customers live
        log.warning(
            "read model not rebuilt (%s); customers are served live until the next run, refresh or"
            " daily job, or: select refresh_serving()",
            " ".join(str(exc).split())[:300],
        )
        return 0
    if rebuilt:
        # the rows it replaced are dead: a lookup of the marks (and, after a full rebuild, of the read
        # model) would step over every one until autovacuum comes by
        tables = ("serving_stale_users", *(f"served_{view}" for view in VIEWS)) if rebuilt > 1000 else ()
        for table in tables:
            db.execute(f"vacuum (analyze) {table}")
        log.info("read model: %d customers rebuilt in %.1f s", rebuilt, clock.total())
    return rebuilt


def rebuild_workers() -> int:
    """Connections a full rebuild uses at once: ``$SHOEREC_REBUILD_WORKERS``, else 2."""
    value = os.environ.get(ENV_REBUILD_WORKERS, "").strip()
    if not value:
        return REBUILD_WORKERS
    if not value.isdigit() or int(value) < 1:
        raise UsageError(
            f"{ENV_REBUILD_WORKERS}={value!r}: expected a whole number of connections, 1 or more"
        )
    return int(value)


def _full_rebuild(db: Database, workers: int) -> int:
    """Every customer's rows on up to ``workers`` connections at once (the lock held): user_recommendations in
    ``workers`` ranges of customers of about the same size (its bulk form reads each table for its range), the
    other two views whole (at 100,000 customers: 35-42 s for user_recommendations whole, 18 s for half of
    it; 5-7 s and 10-11 s for the other two)."""
    with db.transaction():
        version, as_of = db.query("select version, as_of from serving_full_rebuild_start()")[0]
        # the bounds between the ranges: the users' ids at 1/workers, 2/workers, ... of them
        inner = {
            db.scalar(
                "select percentile_disc(?) within group (order by user_id) from users", [part / workers]
            )
            for part in range(1, workers)
        }
    bounds = [None, *sorted(inner - {None}), None]
    # the longest parts first, so that the connections finish together: user_recommendations' ranges, then
    # user_messages, then replacement_suggestions
    parts = [("user_recommendations", low, high) for low, high in itertools.pairwise(bounds)]
    parts += [("user_messages", None, None), ("replacement_suggestions", None, None)]

    def rebuild_part(task: tuple[str, int | None, int | None]) -> None:
        clock = Stopwatch()
        with Database(db.url) as connection, connection.transaction():
            rows = connection.scalar("select serving_rebuild_view(?, ?, ?)", list(task))
        log.debug(
            "read model: served_%s for user_id in [%s, %s): %d rows in %.1f s",
            task[0],
            task[1] if task[1] is not None else "-inf",
            task[2] if task[2] is not None else "inf",
            rows,
            clock.total(),
        )

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rebuild") as pool:
        for _ in pool.map(rebuild_part, parts):  # the first failure is raised here
            pass
    with db.transaction():
        return int(db.scalar("select serving_full_rebuild_finish(?, ?)", [version, as_of]))
