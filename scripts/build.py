"""The main job: schema, data, views and scores, ready for the dashboard.

    python -m scripts.build [--db ...] [--data-dir data] [--reference-date auto|today|YYYY-MM-DD] [--skip-invalid]

Creates the schema (tables, defaults, views), loads the three CSV files of --data-dir (strict: any
invalid row stops the build and leaves the database as it was; --skip-invalid loads the valid rows
and keeps each rejected one in load_rejects), sets the reference date, evaluates
the model offline on a split in time (tuning its parameters on the training period and storing
them), and scores with the tuned parameters. Re-running it is safe: loading the same files changes
nothing, and evaluating and scoring publish new runs.

The reference date is what statuses (care reminders, end of life) are computed against. With
`auto` (the default) the bundled demo data is viewed as of its own last interaction day, and any
other data set as of today. When the newest interaction is more than 90 days older than the
reference date, the build warns and names the date to pass to view the data as of its last day
(interaction strengths decay to the newest interaction's day, so they do not depend on it).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

from scripts.cli import base_parser, reports_database_errors, setup_logging
from scripts.db import Database, describe
from scripts.evaluate import evaluate
from scripts.load import DATA_DIR, LoadError, add_load_arguments, load
from scripts.schema import create_schema
from scripts.score import score

log = logging.getLogger(__name__)

BUNDLED_DATA_DIR = DATA_DIR  # the bundled synthetic data set, also the loader's default folder
STALE_DATA_DAYS = 90  # warn when the newest interaction is older than this on the reference date


def parse_reference_date(value: str) -> str:
    """`auto`, `today` or an ISO date (validated)."""
    if value in ("auto", "today"):
        return value
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise ValueError(f"--reference-date: {value!r} is not auto, today or YYYY-MM-DD") from exc


def set_reference_date(db: Database, value: str, data_dir: Path) -> dt.date | None:
    """Store the reference date in `settings`; returns the stored date (None = today)."""
    if value == "auto":
        if Path(data_dir).resolve() != BUNDLED_DATA_DIR.resolve():
            return db.scalar("select reference_date from settings")
        value = "last-interaction"
    if value == "today":
        db.execute("update settings set reference_date = null")
    elif value == "last-interaction":
        db.execute(
            "update settings set reference_date = (select cast(max(occurred_at) as date) from interactions)"
        )
    else:
        db.execute("update settings set reference_date = ?", [value])
    return db.scalar("select reference_date from settings")


def warn_if_data_is_stale(db: Database) -> dt.date:
    """Log the reference date in force, and warn when the newest interaction is far older; returns it."""
    [(reference_date, is_today)] = db.query(
        "select reference_date, is_reference_date_today from current_settings"
    )
    newest = db.scalar("select cast(max(occurred_at) as date) from interactions")
    log.info("reference date in force: %s%s", reference_date, " (today)" if is_today else "")
    if newest is not None and (reference_date - newest).days > STALE_DATA_DAYS:
        log.warning(
            "the newest interaction (%s) is %d days older than the reference date (%s): care and"
            " end-of-life statuses are computed as of the reference date; to view the data as of its"
            " last day, build with --reference-date %s",
            newest,
            (reference_date - newest).days,
            reference_date,
            newest,
        )
    return reference_date


def build(
    db: Database,
    data_dir: Path,
    reference_date: str = "auto",
    do_score: bool = True,
    do_evaluate: bool = True,
    skip_invalid: bool = False,
) -> dict:
    """Run every step of the main job on an open database; returns a summary of each step."""
    started = time.perf_counter()
    summary: dict = {}
    create_schema(db)
    summary["load"] = load(db, data_dir, skip_invalid=skip_invalid)
    log.info("loaded: %s", summary["load"])
    if summary["load"].rows_rejected:
        log.warning(
            "%d rows rejected; see load_rejects where load_id = %d",
            summary["load"].rows_rejected,
            summary["load"].load_id,
        )
    summary["reference_date"] = set_reference_date(db, reference_date, data_dir)
    warn_if_data_is_stale(db)
    if do_score and do_evaluate:
        if db.scalar("select count(*) from interactions"):
            summary["evaluate"] = evaluate(db)
            hybrid = {
                row["user_group"]: row["value"]
                for row in summary["evaluate"]["rows"]
                if row["model"] == "hybrid" and row["metric"] == "ndcg" and row["k"] == 10
            }
            log.info(
                "hybrid NDCG@10: warm %.4f, cold %.4f, all %.4f",
                hybrid["warm"],
                hybrid["cold"],
                hybrid["all"],
            )
        else:
            log.info("no interactions yet: nothing to evaluate")
    if do_score:
        summary["score"] = score(db)
    if db.is_postgres:
        # fresh statistics for the views' plans (autovacuum may be off or not have run yet)
        db.execute("analyze")
    summary["seconds"] = time.perf_counter() - started
    return summary


@reports_database_errors
def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    add_load_arguments(parser)
    parser.add_argument(
        "--reference-date",
        type=parse_reference_date,
        default="auto",
        help="auto (default), today, or YYYY-MM-DD",
    )
    parser.add_argument(
        "--no-score", action="store_true", help="stop after loading (no evaluation, no scoring run)"
    )
    parser.add_argument(
        "--no-evaluate", action="store_true", help="score with the stored parameters, skip the evaluation"
    )
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        with Database(args.db) as db:
            summary = build(
                db,
                args.data_dir,
                args.reference_date,
                do_score=not args.no_score,
                do_evaluate=not args.no_evaluate,
                skip_invalid=args.skip_invalid,
            )
            log.info("build done on %s in %.1f s", describe(db.url), summary["seconds"])
    except LoadError as exc:
        log.error("build stopped: the data did not load, the database is as it was.\n%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
