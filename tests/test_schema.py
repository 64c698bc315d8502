"""The DDL builds on both engines, twice, and mirrors the data contract's constraints."""

import pytest

from scripts.db import view_files
from scripts.schema import create_schema

TABLES = {
    "interaction_types",
    "settings",
    "care_schedules",
    "wear_factors",
    "age_bands",
    "users",
    "shoes",
    "interactions",
    "load_runs",
    "load_rejects",
    "model_runs",
    "recommendations",
    "shoe_similarities",
    "segment_recommendations",
}


def test_schema_builds_twice(db):
    create_schema(db)
    create_schema(db)
    assert db.relations("BASE TABLE") >= TABLES
    assert {path.stem for path in view_files()} == db.relations("VIEW")
    # defaults seeded once, not twice
    assert db.scalar("select count(*) from interaction_types") == 3
    assert db.scalar("select count(*) from settings") == 1


def test_settings_and_weights_are_editable_and_survive_rebuild(db):
    create_schema(db)
    db.execute("update interaction_types set weight = 10 where interaction_type = 'purchase'")
    db.execute("update settings set half_life_days = 30")
    create_schema(db)
    assert db.scalar("select weight from interaction_types where interaction_type = 'purchase'") == 10
    assert db.scalar("select half_life_days from settings") == 30


@pytest.mark.parametrize(
    "statement",
    [
        "insert into users (user_id, age, gender, primary_usage) values (1, 121, null, 'running')",
        "insert into users (user_id, age, gender, primary_usage) values (1, 30, null, '')",
        "insert into users (user_id, age, gender, primary_usage) values (1, 30, null, null)",
        "insert into shoes values (1, 'A', 'B', 'running', 'mesh', 'red', -1, null, 100)",
        "insert into shoes values (1, 'A', 'B', 'running', 'mesh', 'red', 10, null, 0)",
        "insert into settings (settings_id, half_life_days, replacement_window_share, due_soon_days)"
        " values (2, 1, 0.5, 7)",
    ],
    ids=["age", "empty-usage", "null-usage", "price", "lifespan", "second-settings"],
)
def test_constraints_refuse_contract_violations(db, statement):
    create_schema(db)
    with pytest.raises(Exception):  # noqa: B017 - each driver has its own constraint error class
        db.execute(statement)


def test_an_orphan_event_is_refused_by_the_key_on_postgres_and_has_none_on_duckdb(db):
    """interactions' foreign keys: constraints on PostgreSQL; on DuckDB the loader checks them instead
    (sql/macros.sql, merge_enforced_reference; tests/test_load.py refuses orphans on both engines)."""
    create_schema(db)
    orphan = "insert into interactions values (1, 1, 'view', timestamp '2024-01-01 00:00:00')"
    if db.is_postgres:
        with pytest.raises(Exception):  # noqa: B017 - the driver's own constraint error class
            db.execute(orphan)
    else:
        kinds = "select count(*) from duckdb_constraints() where table_name = ? and constraint_type = 'FOREIGN KEY'"
        assert db.scalar(kinds, ["interactions"]) == 0
        assert db.scalar(kinds, ["load_rejects"]) == 1  # the other tables keep theirs


def test_view_order_ignores_names_in_comments_and_strings(tmp_path):
    (tmp_path / "a_view.sql").write_text(
        "-- one row per thing; b_view is mentioned here only\n"
        "create view a_view as select 1 as x;\ncomment on view a_view is 'not from b_view';\n"
    )
    (tmp_path / "b_view.sql").write_text("-- one row\ncreate view b_view as select x from a_view;\n")
    assert [path.stem for path in view_files(tmp_path)] == ["a_view", "b_view"]


def test_duckdb_writer_waits_for_a_reader_in_another_process(tmp_path):
    import subprocess
    import sys
    import time

    from scripts.db import Database, DatabaseError

    path = tmp_path / "locked.duckdb"
    with Database(str(path)) as db:
        db.execute("create table t (x integer)")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1], read_only=True);"
            " print('held', flush=True); time.sleep(1.5)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        # a writer that may not wait fails at once, with a clear error
        with pytest.raises(DatabaseError, match="cannot open"):
            Database(str(path), lock_wait_seconds=0)
        # one that may wait gets the file once the reader lets go
        started = time.monotonic()
        with Database(str(path), lock_wait_seconds=20) as db:
            db.execute("insert into t values (1)")
        assert time.monotonic() - started < 20
    finally:
        holder.wait(timeout=30)
