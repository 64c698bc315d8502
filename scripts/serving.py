"""The read model of the customer views on PostgreSQL (``sql/serving.sql``), brought up to date.

user_recommendations, user_messages and replacement_suggestions serve a customer from tables written here,
so that a page view plans and runs as an index lookup. Triggers mark what a change makes stale, and the
views compute those customers live meanwhile: the rows never differ, only their cost. A scoring run and a
refresh call :func:`refresh` once they have published (customers are served live in between), the daily
job after it enqueues (a new day makes the whole read model stale when the reference date follows the
calendar). DuckDB has no read model.
"""

from __future__ import annotations

import logging

from scripts.clock import Stopwatch
from scripts.db import Database

log = logging.getLogger(__name__)

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


def refresh(db: Database) -> int:
    """Rebuild the stale part of the read model, in a transaction of its own (everyone after a shared change
    or on a new reference date, else the customers marked since); returns the customers rebuilt, 0 on DuckDB
    or when nothing was stale. Customers are served live until it commits, so a run publishes first; if it
    fails (a cancelled query, say) it logs a warning and changes nothing: the views stay exact, only slower."""
    if not db.is_postgres:
        return 0
    clock = Stopwatch()
    try:
        with db.transaction():
            if not db.scalar("select serving_is_fresh()"):
                for table in SCORE_TABLES:
                    db.execute(f"analyze {table}")
            rebuilt = int(db.scalar("select refresh_serving()"))
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
