"""Two real processes at once, on both engines (issue 17, items 5 and 6).

- Two ``python -m scripts.score`` at once: once, on PostgreSQL, one marked the other's live run as
  abandoned (which then completed with ``error='abandoned: ...'``), both could pick the same next
  run_id, and one could prune a run still in progress. Runs are serialised now (an advisory lock on
  PostgreSQL, the file lock on DuckDB): both complete, with ids 1 and 2 and no error.
- Two ``python -m scripts.load`` into an empty database: one failed with a catalogue UniqueViolation
  from the concurrent ``create table``; into a built one, both counted the same new rows as loaded.
  Loads (and schema builds) are serialised on PostgreSQL by an advisory lock: both succeed and every
  row is counted once.

On PostgreSQL the test makes the race certain: it holds a lock that both processes reach (an
uncommitted ``create table`` of the first table, or an exclusive lock on a table they write), waits
until both are blocked (on it, or on the other's advisory lock), then lets go. DuckDB lets one
process hold the file at a time (a second writer waits for it), so there both simply start at once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.db import Database
from scripts.generate_data import generate
from scripts.load import load
from scripts.schema import create_schema

ROOT = Path(__file__).resolve().parent.parent
SCORE_FLAGS = ["--top-n", "3", "--factors", "2", "--similar-n", "2", "--workers", "1", "--keep-runs", "2"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A small data set: 60 users, 20 shoes, 300 events."""
    folder = tmp_path_factory.mktemp("concurrent_data")
    generate(folder, users=60, shoes=20, interactions=300, seed=0, progress=False)
    return folder


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=180)
    return process.returncode, err


def wait_for_blocked(url: str, count: int, timeout: float = 90.0) -> None:
    """Wait until ``count`` other sessions of this database wait for a lock."""
    deadline = time.monotonic() + timeout
    with Database(url) as watcher:
        while time.monotonic() < deadline:
            blocked = watcher.scalar(
                "select count(*) from pg_stat_activity where datname = current_database()"
                " and pid <> pg_backend_pid() and wait_event_type = 'Lock'"
            )
            if blocked >= count:
                return
            time.sleep(0.1)
    raise AssertionError(f"fewer than {count} sessions blocked after {timeout} s")


def run_both(engine: str, url: str, first: list[str], second: list[str], hold_sql: list[str]):
    """Start two commands; on PostgreSQL both are held at ``hold_sql``'s lock until both wait."""
    if engine == "duckdb":
        return [finish(process) for process in (start(*first), start(*second))]
    with Database(url) as holder:
        holder.execute("begin")
        for statement in hold_sql:
            holder.execute(statement)
        processes = [start(*first)]
        wait_for_blocked(url, 1)
        processes.append(start(*second))
        wait_for_blocked(url, 2)
        holder.execute("rollback")
    return [finish(process) for process in processes]


# -- item 5: concurrent scoring runs ---------------------------------------------------------------
def test_two_scoring_runs_at_once_both_complete_one_after_the_other(engine, schema_db_url, data_dir):
    with Database(schema_db_url) as db:
        load(db, data_dir)
    command = ["scripts.score", "--db", schema_db_url, *SCORE_FLAGS]
    results = run_both(
        engine, schema_db_url, command, command, ["lock table shoe_similarities in access exclusive mode"]
    )
    for code, err in results:
        assert code == 0, err
    with Database(schema_db_url) as db:
        assert db.query("select run_id, status, error from model_runs order by run_id") == [
            (1, "complete", None),
            (2, "complete", None),
        ]
        # each run's rows are whole, and the newest is the one shown
        for run_id in (1, 2):
            assert db.scalar("select count(*) from recommendations where run_id = ?", [run_id]) == 60 * 3
        assert db.scalar("select run_id from latest_model_run") == 2
    messages = " ".join(err for _, err in results)
    assert "abandoned" not in messages


# -- item 6: concurrent loads ----------------------------------------------------------------------
def table_rows(db: Database) -> int:
    return sum(db.scalar(f"select count(*) from {table}") for table in ("users", "shoes", "interactions"))


@pytest.mark.parametrize(
    "schema_first, holder_statement",
    [
        # into an empty database: the first table of sql/tables.sql, created and not committed; both
        # loads reach it (before: a catalogue UniqueViolation)
        (False, "create table interaction_types (interaction_type text primary key)"),
        # into a built schema: both loads wait on the same table (before: 375 and 60 rows counted)
        (True, "lock table users in access exclusive mode"),
    ],
    ids=["first loads into an empty database", "loads into a built schema"],
)
def test_two_loads_at_once_both_succeed_and_count_each_new_row_once(
    engine, db_url, data_dir, schema_first, holder_statement
):
    if schema_first:
        with Database(db_url) as db:
            create_schema(db)
    command = ["scripts.load", "--data-dir", str(data_dir), "--db", db_url]
    results = run_both(engine, db_url, command, command, [holder_statement])
    for code, err in results:
        assert code == 0, err
        assert "UniqueViolation" not in err and "duplicate key" not in err
    with Database(db_url) as db:
        # every row was counted as loaded by the first load, none by the second
        loaded = [n for (n,) in db.query("select rows_loaded from load_runs order by load_id")]
        assert loaded == [table_rows(db), 0]
