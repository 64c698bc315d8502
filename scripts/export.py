"""Export what scoring reads to Parquet files, for a data lake or a Spark run.

    python -m scripts.export [--db ...] --out DIR

Writes, from the views the scorer reads (the same queries as ``scripts.score.read_inputs``):
  DIR/interaction_matrix.parquet  user_id, shoe_id, strength (float32), is_purchased, is_wishlisted
  DIR/user_segments.parquet       user_id, primary_usage, gender, age_band

``python -m scripts.score --spark MASTER`` on a DuckDB database writes these itself (DuckDB has no
JDBC driver a Spark cluster could use); a lake that already holds them points the Spark run at them
with ``SHOEREC_SPARK_INPUT=DIR``. The shoes, age bands and settings stay in the database: they are
small and read by the Spark driver.
"""

from __future__ import annotations

import logging
from pathlib import Path

from scripts.cli import base_parser, reports_database_errors, setup_logging
from scripts.db import Database
from scripts.score import INPUT_QUERIES

log = logging.getLogger(__name__)

# name of the file (and of the view) -> the query: the very queries scripts.score.read_inputs runs
QUERIES = INPUT_QUERIES


def parquet_path(directory: str | Path, name: str) -> Path:
    """Where the export of ``name`` (a key of :data:`QUERIES`) lives in ``directory``."""
    return Path(directory) / f"{name}.parquet"


def export(db: Database, out: str | Path) -> dict[str, int]:
    """Write every query of :data:`QUERIES` to ``out/<name>.parquet``; returns the rows per file.

    DuckDB writes the files itself (``COPY ... TO``, streaming); PostgreSQL's rows go through one
    DataFrame per file (pyarrow writes it).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, sql in QUERIES.items():
        path = parquet_path(out, name)
        if db.is_postgres:
            frame = db.query_df(sql)
            frame.to_parquet(path, index=False)
            counts[name] = len(frame)
        else:
            # the path is ours (out/name.parquet), quoted as a string literal
            literal = "'" + str(path).replace("'", "''") + "'"
            db.execute(f"copy ({sql}) to {literal} (format parquet)")
            counts[name] = int(db.scalar(f"select count(*) from read_parquet({literal})"))
        log.info("exported %s: %d rows -> %s", name, counts[name], path)
    return counts


@reports_database_errors
def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--out", required=True, help="directory the Parquet files go to (created if missing)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    with Database(args.db, read_only=True, must_exist=True) as db:
        export(db, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
