"""The native stage: the engine's own bulk paths on the benchmark's data, the yardsticks of load and score.

Three paths, each timed alone, that do what our code does without any of its checks:

- read: the three CSV files into scratch tables with the tables' column types, no keys (DuckDB
  ``read_csv``; PostgreSQL raw ``COPY`` into unlogged tables), against the loader;
- export: the score's matrix query as bytes or Arrow, nothing parsed into frames (``COPY (select ...)
  TO STDOUT``; an Arrow fetch), against the score's read;
- write: the latest run's recommendations from a CSV file into a copy of the table with its key, in
  one transaction (``COPY FROM``; ``insert ... from read_csv``), against the score's write-back.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from scripts.benchmarking.process import rate
from scripts.clock import Stopwatch

# the CSV header's names for the table's columns, where they differ
_CSV_COLUMNS = {"interactions": {"timestamp": "occurred_at"}}
# the score's export of the matrix (scripts.score.read_inputs), without parsing it
_MATRIX_QUERY = (
    "select user_id, shoe_id, cast(strength as real) as strength, purchase_count > 0 as is_purchased,"
    " wishlist_count > 0 as is_wishlisted from interaction_matrix"
)


def stage_native(task: dict[str, Any]) -> dict[str, Any]:
    """The three bulk paths, each on its own clock; their rows and rows per second."""
    import pyarrow  # noqa: F401 - the DuckDB export fetches Arrow

    from scripts.db import Database

    clock = Stopwatch()
    data_dir = Path(task["data_dir"])
    with Database(task["url"]) as db:
        with clock.stage("read"):
            read_rows = sum(
                _bulk_read(db, data_dir / f"{table}.csv", table)
                for table in ("users", "shoes", "interactions")
            )
        with clock.stage("export"):
            export_rows = _raw_export(db)
        written = _raw_write(db, data_dir / "native_recommendations.csv", clock)
    parts = clock.seconds
    return {
        "rows": read_rows,
        "rows_per_second": rate(read_rows, parts["read"]),
        "parts": parts,
        "counts": {"read_rows": read_rows, "export_rows": export_rows, "write_rows": written},
        "rates": {
            "read": rate(read_rows, parts["read"]),
            "export": rate(export_rows, parts["export"]),
            "write": rate(written, parts.get("write", 0.0)),
        },
    }


def _bulk_read(db, path: Path, table: str) -> int:
    """``path`` into a scratch table typed like ``table`` (dropped after); returns its rows."""
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    types = _column_types(db, table)
    renames = _CSV_COLUMNS.get(table, {})
    columns = {name: types.get(renames.get(name, name), "text") for name in header}
    scratch = f"native_{table}"
    db.execute(f"drop table if exists {scratch}")
    if db.is_postgres:
        listed = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
        db.execute(f"create unlogged table {scratch} ({listed})")
        _copy_in(db, scratch, path, header=True)
    else:
        db.execute(f"create table {scratch} as select * from {_read_csv(path, columns, header=True)}")
    rows = int(db.scalar(f"select count(*) from {scratch}"))
    db.execute(f"drop table {scratch}")
    return rows


def _raw_export(db) -> int:
    """The matrix query exported as the engine streams it (CSV bytes, or Arrow); returns its rows."""
    if db.is_postgres:
        sink = _CountingSink()
        with db.raw.cursor() as cur:
            cur.copy_expert(f"copy ({_MATRIX_QUERY}) to stdout with (format csv)", sink)
        return sink.lines
    return int(db.raw.sql(_MATRIX_QUERY).to_arrow_table().num_rows)


def _raw_write(db, rows_file: Path, clock: Stopwatch) -> int:
    """The latest run's recommendations written again from ``rows_file``; only the write is on the clock.

    Into a copy of the table with its key, in one transaction (the score stage writes the same rows);
    returns the rows written (0 without a complete run).
    """
    run_id = db.scalar("select max(run_id) from model_runs where status = 'complete'")
    if run_id is None:
        return 0
    try:
        columns = list(_column_types(db, "recommendations"))
        listed = ", ".join(columns)
        select = f"select {listed} from recommendations where run_id = {int(run_id)}"
        db.execute("drop table if exists native_recommendations")
        if db.is_postgres:
            with rows_file.open("wb") as handle, db.raw.cursor() as cur:
                cur.copy_expert(f"copy ({select}) to stdout with (format csv)", handle)
            db.execute("create table native_recommendations (like recommendations including all)")
        else:
            db.execute(f"copy ({select}) to {_sql_text(str(rows_file))} (format csv, header false)")
            db.execute("create table native_recommendations as select * from recommendations limit 0")
        types = _column_types(db, "native_recommendations")
        with clock.stage("write"), db.transaction():
            if db.is_postgres:
                _copy_in(db, f"native_recommendations ({listed})", rows_file, header=False)
            else:
                source = _read_csv(rows_file, {name: types[name] for name in columns}, header=False)
                db.execute(f"insert into native_recommendations ({listed}) select {listed} from {source}")
        return int(db.scalar("select count(*) from native_recommendations"))
    finally:
        db.execute("drop table if exists native_recommendations")
        rows_file.unlink(missing_ok=True)


def _copy_in(db, target: str, path: Path, header: bool) -> None:
    """PostgreSQL: ``COPY target FROM STDIN`` fed with the bytes of a CSV file."""
    options = "format csv, header" if header else "format csv"
    with path.open("rb") as handle, db.raw.cursor() as cur:
        cur.copy_expert(f"copy {target} from stdin with ({options})", handle)


def _read_csv(path: Path, columns: dict[str, str], header: bool) -> str:
    """DuckDB: a ``read_csv`` of ``path`` with these column names and types."""
    typed = ", ".join(f"{_sql_text(name)}: {_sql_text(kind)}" for name, kind in columns.items())
    return f"read_csv({_sql_text(str(path))}, header = {str(header).lower()}, columns = {{{typed}}})"


def _column_types(db, table: str) -> dict[str, str]:
    rows = db.query(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = current_schema() and table_name = ? order by ordinal_position",
        [table],
    )
    return dict(rows)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _CountingSink:
    """A file-like target for COPY TO that keeps only the number of lines."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, data: bytes | str) -> int:
        self.lines += data.count(b"\n" if isinstance(data, bytes) else "\n")
        return len(data)
