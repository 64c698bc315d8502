"""Create (or re-create) the schema and the views, in dependency order, on either engine.

    python -m scripts.schema [--db ...]

Tables are created if missing and never dropped; defaults are seeded once; views are dropped and
created again, so changing a view's columns is harmless.
"""

from __future__ import annotations

import logging

from scripts import serving
from scripts.cli import base_parser, setup_logging
from scripts.db import SQL_DIR, Database, view_files
from scripts.roles import apply_grants

log = logging.getLogger(__name__)

TABLE_FILES = ("tables.sql", "defaults.sql")
# PostgreSQL only: the read model of the customer views, kept fresh by triggers (the file says how)
SERVING_FILE = "serving.sql"
SCHEMA_LOCK = "shoerec.schema"  # held by a schema build and by a load (scripts.load), one at a time


def create_tables(db: Database) -> None:
    """Tables, indexes, comments and default settings (idempotent)."""
    for name in TABLE_FILES:
        db.run_file(SQL_DIR / name)
    if db.is_postgres:
        db.run_file(SQL_DIR / SERVING_FILE)


def create_views(db: Database) -> list[str]:
    """Drop every view of ours and create them again, in dependency order; returns their names."""
    ordered = view_files()
    for path in reversed(ordered):
        if db.is_postgres and path.stem.removeprefix("live_") in serving.VIEWS:
            # the bulk form of a live view (sql/macros.sql, read_model_bulk) returns its row type, and
            # is created in its file: it goes first
            db.execute(f"drop function if exists {path.stem}_all(bigint, bigint)")
        db.execute(f"drop view if exists {path.stem}")
        if db.is_postgres and path.stem in serving.VIEWS:
            # its read-model function (sql/macros.sql) returns live_<view>'s row type: it goes before
            # that view does, and comes back with the view that reads it
            db.execute(f"drop function if exists live_{path.stem}_for(bigint)")
    for path in ordered:
        db.run_file(path)
    return [path.stem for path in ordered]


def create_schema(db: Database) -> None:
    """Everything the steps need, in one transaction (one build or load of the schema at a time)."""
    with db.transaction():
        db.lock_transaction(SCHEMA_LOCK)
        create_tables(db)
        views = create_views(db)
        # re-created views come back without grants: give the dashboard reader its SELECT again
        apply_grants(db)
    log.info(
        "schema ready on %s: %d tables, %d views", db.engine, len(db.relations("BASE TABLE")), len(views)
    )


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    with Database(args.db) as db:
        create_schema(db)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
