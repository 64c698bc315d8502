"""Create (or re-create) the schema and the views, in dependency order, on either engine.

    python -m scripts.schema [--db ...]

Tables are created if missing and never dropped; defaults are seeded once; views are dropped and
created again, so changing a view's columns is harmless.
"""

from __future__ import annotations

import logging
import re
from graphlib import TopologicalSorter
from pathlib import Path

from scripts.cli import base_parser, setup_logging
from scripts.db import SQL_DIR, VIEWS_DIR, Database
from scripts.roles import apply_grants

log = logging.getLogger(__name__)

TABLE_FILES = ("tables.sql", "defaults.sql")
SCHEMA_LOCK = "shoerec.schema"  # held by a schema build and by a load (scripts.load), one at a time


def view_files(views_dir: Path = VIEWS_DIR) -> list[Path]:
    """The view files in an order where every view comes after the views it reads."""
    files = {path.stem: path for path in sorted(views_dir.glob("*.sql"))}
    texts = {name: _code_only(path.read_text(encoding="utf-8")) for name, path in files.items()}
    graph = {
        name: {other for other in files if other != name and re.search(rf"\b{other}\b", text)}
        for name, text in texts.items()
    }
    return [files[name] for name in TopologicalSorter(graph).static_order()]


def _code_only(sql: str) -> str:
    """The SQL without comments and string literals (a view named in a comment is no dependency)."""
    sql = re.sub(r"--[^\n]*", "", sql)
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def create_tables(db: Database) -> None:
    """Tables, indexes, comments and default settings (idempotent)."""
    for name in TABLE_FILES:
        db.run_file(SQL_DIR / name)


def create_views(db: Database) -> list[str]:
    """Drop every view of ours and create them again, in dependency order; returns their names."""
    ordered = view_files()
    for path in reversed(ordered):
        db.execute(f"drop view if exists {path.stem}")
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
