"""Every view tested as data, on DuckDB and PostgreSQL, by one generic test (as Mozilla's bigquery-etl).

    tests/sql/<view>/<case>/
        <table>.csv    input rows, one file per table the case needs (users.csv, shoes.csv, ...);
                       for a lookup table (settings, interaction_types, care_schedules, wear_factors,
                       age_bands) the file REPLACES the seeded defaults, else the defaults stay
        expected.csv   the view's rows (on the columns in its header), in grain-key order
        README.md      how the expected values were worked out by hand

A CSV's values are parsed to the types its table declares (an empty field is NULL), so the same files
load on both engines. Rows are compared as canonical text after sorting: numbers rounded to
``FLOAT_DECIMALS`` places, dates and timestamps as ISO text, NULL as empty. An expected.csv with only a
header says the view returns no rows.

Also here: every view file is named after its view, opens with its grain comment and documents itself,
and the documentation reaches the database's catalogue.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import canonical_rows, column_kinds, fetch

from scripts import serving
from scripts.db import Database, view_files

EXPECTED_FILE = "expected.csv"

# Lookup tables hold seeded defaults: a case's CSV for one of them replaces its rows.
LOOKUP_TABLES = ("settings", "interaction_types", "care_schedules", "wear_factors", "age_bands")
# Parents before children (foreign keys); any other table afterwards.
LOAD_ORDER = (*LOOKUP_TABLES, "users", "shoes", "interactions", "model_runs")


def column_types(db: Database, table: str) -> dict[str, str]:
    """Column name -> a coarse type (int, float, date, timestamp, bool, text) of ``table``."""
    rows = db.query(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = current_schema() and table_name = ?",
        [table],
    )
    return {name: _coarse_type(data_type) for name, data_type in rows}


def _coarse_type(data_type: str) -> str:
    data_type = data_type.lower()
    if data_type in ("integer", "bigint", "smallint", "hugeint"):
        return "int"
    if data_type.startswith(("double", "numeric", "decimal", "real", "float")):
        return "float"
    if data_type == "date":
        return "date"
    if data_type.startswith("timestamp"):
        return "timestamp"
    if data_type == "boolean":
        return "bool"
    return "text"


def _parse(value: str, kind: str) -> Any:
    if value == "":
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "timestamp":
        return dt.datetime.fromisoformat(value)
    if kind == "bool":
        return {"true": True, "false": False}[value.strip().lower()]
    return value


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file, every value as text."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [row for row in reader if row]


def table_frame(db: Database, table: str, path: Path) -> pd.DataFrame:
    """The CSV at ``path`` as a DataFrame typed like ``table``'s columns."""
    types = column_types(db, table)
    if not types:
        raise AssertionError(f"{path}: no table named {table!r}")
    header, rows = read_csv(path)
    unknown = set(header) - set(types)
    if unknown:
        raise AssertionError(f"{path}: columns {sorted(unknown)} are not in table {table}")
    columns = {}
    for index, name in enumerate(header):
        kind = types[name]
        values = [_parse(row[index], kind) for row in rows]
        if kind == "int":
            columns[name] = pd.array(values, dtype="Int64")
        elif kind == "float":
            columns[name] = pd.array(values, dtype="Float64")
        elif kind == "timestamp":
            columns[name] = pd.to_datetime(pd.Series(values, dtype="object"))
        else:
            columns[name] = pd.Series(values, dtype="object")
    return pd.DataFrame(columns)


def load_tables(db: Database, files: list[Path]) -> None:
    """Insert each ``<table>.csv`` into its table; a lookup table's seeded rows are replaced."""
    by_table = {path.stem: path for path in files}
    order = [name for name in LOAD_ORDER if name in by_table]
    order += sorted(set(by_table) - set(order))
    for table in reversed(order):  # children first, so a lookup row can go
        if table in LOOKUP_TABLES:
            db.execute(f"delete from {table}")
    for table in order:
        db.insert_df(table, table_frame(db, table, by_table[table]))


def compare(db: Database, relation: str, expected_path: Path) -> None:
    """Assert that ``relation`` holds exactly the rows of ``expected_path`` (on its columns)."""
    header, expected_rows = read_csv(expected_path)
    names, _ = fetch(db, f"select * from {relation} where 1 = 0")
    missing = [name for name in header if name not in names]
    assert not missing, f"{expected_path}: {relation} has no column {missing}"
    _, rows = fetch(db, f"select {', '.join(header)} from {relation}")
    kinds = column_kinds(rows, len(header))
    actual = canonical_rows(rows, kinds)
    expected = canonical_rows(expected_rows, kinds)
    if actual != expected:
        only_actual = [row for row in actual if row not in expected]
        only_expected = [row for row in expected if row not in actual]
        raise AssertionError(
            f"{relation} differs from {expected_path} on {db.engine}\n"
            f"columns: {header}\n"
            f"only in the view ({len(only_actual)}):\n  " + "\n  ".join(map(str, only_actual)) + "\n"
            f"only in expected ({len(only_expected)}):\n  " + "\n  ".join(map(str, only_expected))
        )


# -- the cases ------------------------------------------------------------------------------------
CASES_DIR = Path(__file__).resolve().parent / "sql"


def _cases() -> list:
    cases = []
    for expected in sorted(CASES_DIR.glob(f"*/*/{EXPECTED_FILE}")):
        case_dir = expected.parent
        view = case_dir.parent.name
        cases.append(pytest.param(view, case_dir, id=f"{view}/{case_dir.name}"))
    return cases


def load_case(db: Database, case_dir: Path) -> None:
    """Load a case's input CSVs into a database with the schema built."""
    load_tables(db, [path for path in sorted(case_dir.glob("*.csv")) if path.name != EXPECTED_FILE])


@pytest.mark.parametrize(("view", "case_dir"), _cases())
def test_view_case(schema_db, view, case_dir):
    db = schema_db  # the schema built (a copy of the session's template)
    load_case(db, case_dir)
    compare(db, view, case_dir / EXPECTED_FILE)
    if db.is_postgres and view in serving.VIEWS:
        # the case's inserts left every customer computed live; the same rows from the read model
        assert not db.scalar("select serving_is_fresh()")
        serving.refresh(db)
        assert db.scalar("select serving_is_fresh()") and not db.scalar(
            "select count(*) from serving_stale_users"
        )
        compare(db, view, case_dir / EXPECTED_FILE)


def test_every_view_has_cases():
    tested = {path.parent.parent.name for path in CASES_DIR.glob(f"*/*/{EXPECTED_FILE}")}
    # live_<view> is what <view> reads (on DuckDB as it is, on PostgreSQL behind its read model)
    tested |= {f"live_{view}" for view in serving.VIEWS if view in tested}
    untested = {path.stem for path in view_files()} - tested
    assert not untested, f"views without a case in tests/sql: {sorted(untested)}"


def test_unset_reference_date_means_today(schema_db):
    db = schema_db  # create_schema's database (a copy: conftest.py)
    db.execute("update settings set reference_date = null")
    today = db.scalar("select current_date")
    assert db.query("select reference_date, is_reference_date_today from current_settings") == [(today, True)]


# -- the view files ---------------------------------------------------------------------------------
GRAIN_COMMENT = re.compile(r"\A-- (zero or )?one row\b", re.IGNORECASE)


@pytest.mark.parametrize("path", view_files(), ids=lambda path: path.stem)
def test_view_file_layout(path):
    text = path.read_text(encoding="utf-8")
    created = re.findall(r"^create view (\w+) as$", text, flags=re.MULTILINE)
    assert created == [path.stem], f"{path.name} must create exactly the view {path.stem}"
    assert GRAIN_COMMENT.match(text), f"{path.name} must open with '-- one row ...' (its grain)"
    assert re.search(rf"^comment on view {path.stem} is '", text, flags=re.MULTILINE), (
        f"{path.name} has no 'comment on view {path.stem}'"
    )
    assert re.search(rf"^comment on column {path.stem}\.\w+ is '", text, flags=re.MULTILINE), (
        f"{path.name} documents none of its columns"
    )


def test_views_are_documented_in_the_catalogue(schema_db):
    db = schema_db  # create_schema's database (a copy: conftest.py)
    views = sorted(path.stem for path in view_files())
    if db.is_postgres:
        rows = db.query(
            "select c.relname, obj_description(c.oid, 'pg_class'),"
            "  (select count(*) from pg_attribute as a"
            "   where a.attrelid = c.oid and a.attnum > 0 and col_description(c.oid, a.attnum) is not null)"
            " from pg_class as c"
            " where c.relkind = 'v' and c.relnamespace = current_schema()::regnamespace"
        )
    else:
        rows = db.query(
            "select view_name, comment,"
            "  (select count(*) from duckdb_columns() as c"
            "   where c.table_name = v.view_name and c.schema_name = v.schema_name and c.comment is not null)"
            " from duckdb_views() as v where not v.internal and v.schema_name = current_schema()"
        )
    documented = {name: (comment, column_comments) for name, comment, column_comments in rows}
    assert sorted(documented) == views
    undocumented = [name for name, (comment, _) in documented.items() if not comment]
    assert not undocumented, f"views without a comment: {undocumented}"
    bare = [name for name, (_, column_comments) in documented.items() if column_comments == 0]
    assert not bare, f"views without a column comment: {bare}"
