"""The database a benchmark works in: a fresh one per run (a DuckDB file, or a PostgreSQL schema), dropped after.

Only what the benchmark created is ever removed: a schema it made, the DuckDB file (and its WAL) it
made. Without the load stage it works in the database of an earlier run (``--keep-db``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from scripts.db import describe, engine_of, with_search_path

log = logging.getLogger(__name__)

DEFAULT_DB_NAME = "benchmark.duckdb"


@dataclass
class Target:
    """The database a benchmark (or one scaling size) works in, and how to clean it up."""

    url: str
    created: bool = False
    schema: str | None = None  # PostgreSQL: the fresh schema we made
    base_url: str | None = None
    files: list[Path] = field(default_factory=list)  # DuckDB: the files we made

    @property
    def engine(self) -> str:
        return engine_of(self.url)

    def release(self, keep: bool) -> None:
        """The end of a run: keep the database (``--keep-db``, said in the log) or drop what was created."""
        if keep:
            log.info("kept the database: %s", describe(self.url))
        else:
            self.drop()

    def drop(self) -> None:
        """Remove what was created for the benchmark (never a database it did not create)."""
        if not self.created:
            return
        if self.schema:
            from scripts.db import Database

            with Database(self.base_url) as admin:
                admin.execute(f"drop schema if exists {self.schema} cascade")
            log.info("dropped schema %s", self.schema)
        for path in self.files:
            path.unlink(missing_ok=True)


def fresh_target(db: str | None, work_dir: Path, suffix: str = "") -> Target:
    """A new, empty database: a DuckDB file, or a new schema in the PostgreSQL database of ``db``."""
    if db and engine_of(db) == "postgres":
        from scripts.db import Database

        schema = f"shoerec_bench_{uuid.uuid4().hex[:10]}"
        with Database(db) as admin:
            admin.execute(f"create schema {schema}")
        log.info("fresh schema %s in %s", schema, describe(db))
        return Target(with_search_path(db, schema), created=True, schema=schema, base_url=db)
    path = Path(db) if db else work_dir / DEFAULT_DB_NAME
    if suffix:
        path = path.with_name(f"{path.stem}-{suffix}{path.suffix}")
    wal = path.with_name(path.name + ".wal")
    if path.exists():
        if db and not suffix:
            raise SystemExit(f"{path} exists; the load stage needs a fresh database: pass a new --db path")
        path.unlink()
        wal.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Target(str(path), created=True, files=[path, wal])


def existing_target(db: str | None, work_dir: Path) -> Target:
    """The database of an earlier run (without the load stage)."""
    url = db or str(work_dir / DEFAULT_DB_NAME)
    if engine_of(url) == "duckdb" and not Path(url).exists():
        raise SystemExit(f"no database at {url}: run the load stage (or an earlier run with --keep-db)")
    return Target(url)
