"""The loader on both engines: contract checks, strict vs --skip-invalid, idempotence, upserts.

Every case writes three small CSV files into tmp_path. A refused load must leave the database
exactly as it was: each such test compares a dump of every table before and after.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from helpers import (
    BASE_FILES,
    BASE_INTERACTIONS,
    BASE_SHOES,
    BASE_USERS,
    HEADERS,
    dump,
    write_files,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts.contract import CONTRACTS, parse_column, quote
from scripts.db import Database
from scripts.load import CHUNK_ROWS, LoadError, _chunks, _Records, load, main
from scripts.schema import create_tables

ROOT = Path(__file__).resolve().parent.parent
U, S, E = "users.csv", "shoes.csv", "interactions.csv"  # E for events


def rows(db: Database, sql: str) -> list[tuple]:
    return db.query(sql)


# -- valid input ---------------------------------------------------------------------------------
def test_loads_valid_files_into_empty_database(db, tmp_path):
    summary = load(db, write_files(tmp_path))
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (8, 8, 0)
    assert rows(db, "select * from users order by user_id") == [
        (1, 34, "female", "running"),
        (2, None, None, "walking"),  # empty optional fields are NULL
        (3, 71, "male", "casual"),
    ]
    assert rows(db, "select shoe_id, price, care_instructions from shoes order by shoe_id") == [
        (10, Decimal("129.99"), "Hand wash only."),
        (11, Decimal("189.50"), None),
    ]
    # timestamps in UTC: an offset is applied, no offset means UTC already
    assert rows(
        db, "select user_id, shoe_id, interaction_type, occurred_at from interactions order by occurred_at"
    ) == [
        (1, 10, "view", datetime(2024, 3, 1, 10, 0)),
        (1, 10, "purchase", datetime(2024, 3, 2, 7, 30)),
        (2, 11, "add_to_wishlist", datetime(2024, 3, 3, 8, 0)),
    ]
    assert rows(
        db, "select load_id, is_skip_invalid, rows_read, rows_loaded, rows_rejected from load_runs"
    ) == [(summary.load_id, False, 8, 8, 0)]


def test_children_and_the_oldest_customers_load_and_have_an_age_band(schema_db, tmp_path):
    from scripts.contract import USERS as USERS_CONTRACT

    db = schema_db  # create_schema's database (a copy: conftest.py)
    load(
        db,
        write_files(tmp_path, users_csv=BASE_USERS + "4,0,,casual\n5,7,female,running\n6,120,male,walking\n"),
    )
    assert rows(
        db, "select user_id, age, age_band from user_segments where user_id > 3 order by user_id"
    ) == [
        (4, 0, "under 18"),
        (5, 7, "under 18"),
        (6, 120, "65+"),
    ]
    # every age the contract allows falls in exactly one seeded band
    age = USERS_CONTRACT["age"]
    bands = rows(db, "select min_age, max_age from age_bands")
    assert all(
        sum(low <= years <= high for low, high in bands) == 1 for years in range(age.low, age.high + 1)
    )


def test_loading_the_same_files_again_changes_nothing(db, tmp_path):
    folder = write_files(tmp_path)
    load(db, folder)
    before = dump(db)
    again = load(db, folder)
    assert (again.rows_read, again.rows_loaded, again.rows_rejected) == (8, 0, 0)
    assert {name: counts.unchanged for name, counts in again.files.items()} == {
        "users.csv": 3,
        "shoes.csv": 2,
        "interactions.csv": 3,
    }
    after = dump(db)
    # only the new load_runs row differs
    assert {k: v for k, v in after.items() if k != "load_runs"} == {
        k: v for k, v in before.items() if k != "load_runs"
    }
    assert rows(db, "select load_id, rows_loaded from load_runs order by load_id") == [(1, 8), (2, 0)]


def test_a_later_interactions_file_appends_only_new_events(db, tmp_path):
    load(db, write_files(tmp_path / "first"))
    later = (
        "user_id,shoe_id,interaction_type,timestamp\n"
        "1,10,view,2024-03-01T10:00:00Z\n"  # stored already
        "1,10,view,2024-03-01T11:00:00+01:00\n"  # the same instant again: a duplicate in the file
        "3,11,view,2024-04-01T10:00:00Z\n"  # new
        "3,11,view,2024-04-01T10:00:00Z\n"  # new, repeated in the file: a duplicate, not an error
        "3,11,purchase,2024-04-02T10:00:00Z\n"  # new
    )
    header_only = {
        "users.csv": BASE_USERS.splitlines()[0] + "\n",
        "shoes.csv": BASE_SHOES.splitlines()[0] + "\n",
    }
    summary = load(db, write_files(tmp_path / "later", header_only, interactions_csv=later))
    counts = summary.files["interactions.csv"]
    assert (counts.read, counts.loaded, counts.unchanged, counts.duplicates, counts.rejected) == (
        5,
        2,
        1,
        2,
        0,
    )
    assert db.scalar("select count(*) from interactions") == 5
    # users 3 and shoe 11 come from the database: an incremental file needs no users or shoes
    assert db.scalar("select count(*) from users") == 3


def test_a_changed_user_or_shoe_is_updated_and_only_it_counts(db, tmp_path):
    load(db, write_files(tmp_path / "first"))
    users = BASE_USERS.replace("3,71,male,casual", "3,72,male,walking") + "4,,,hiking\n"
    shoes = BASE_SHOES.replace("189.5,", "179.00,")
    summary = load(db, write_files(tmp_path / "second", users_csv=users, shoes_csv=shoes))
    assert (summary.files["users.csv"].loaded, summary.files["users.csv"].unchanged) == (2, 2)
    assert (summary.files["shoes.csv"].loaded, summary.files["shoes.csv"].unchanged) == (1, 1)
    assert summary.files["interactions.csv"].loaded == 0
    assert rows(db, "select * from users where user_id in (3, 4) order by user_id") == [
        (3, 72, "male", "walking"),
        (4, None, None, "hiking"),
    ]
    assert db.scalar("select price from shoes where shoe_id = 11") == Decimal("179.00")
    # an update of a referenced user keeps its interactions
    assert db.scalar("select count(*) from interactions") == 3


@pytest.mark.parametrize(
    "orphan",
    [
        "(99, 10, 'view', timestamp '2024-01-01 00:00:00')",
        "(1, 99, 'view', timestamp '2024-01-01 00:00:00')",
        "(1, 10, 'click', timestamp '2024-01-01 00:00:00')",
    ],
    ids=["user", "shoe", "type"],
)
def test_a_bulk_append_keeps_the_keys_and_indexes_of_interactions(db, tmp_path, monkeypatch, orphan):
    # every append counts as bulk: on PostgreSQL keys and indexes are dropped and built again
    monkeypatch.setattr("scripts.load.BULK_ROWS", 1)
    create_tables(db)
    indexes = index_names(db, "interactions")
    # PostgreSQL: the key and three secondary indexes; DuckDB: none (sql/macros.sql, secondary_index)
    assert len(indexes) >= 3 if db.is_postgres else indexes == set()
    summary = load(db, write_files(tmp_path))
    assert summary.files["interactions.csv"].loaded == 3
    assert index_names(db, "interactions") == indexes
    if db.is_postgres:  # its foreign keys built again; DuckDB has none (the loader checks them)
        with pytest.raises(Exception):  # noqa: B017 - each driver has its own constraint error class
            db.execute(f"insert into interactions values {orphan}")


def index_names(db: Database, table: str) -> set[str]:
    if db.is_postgres:
        sql = "select indexname from pg_indexes where schemaname = current_schema() and tablename = ?"
    else:
        sql = "select index_name from duckdb_indexes() where table_name = ?"
    return {name for (name,) in db.query(sql, [table])}


SQL_TEXT = "Robert'); drop table users;--"
HTML_TEXT = "<script>alert(1)</script>"
CARE_TEXT = 'Wipe, then dry.\nNever "machine" wash;\r\nline three\rold mac, \\N and \\. stay'


VARIANTS = {
    "bom": {"users.csv": b"\xef\xbb\xbf" + BASE_USERS.encode()},
    "crlf": {name: text.replace("\n", "\r\n") for name, text in BASE_FILES.items()},
    "no-final-newline": {"users.csv": BASE_USERS.rstrip("\n")},
    "blank-lines": {"users.csv": BASE_USERS.replace("\n2,", "\n\n2,") + "\n\n"},
    "padded-numbers": {
        "users.csv": BASE_USERS.replace("1,34,", " 1 , 34 ,"),
        "shoes.csv": BASE_SHOES.replace(",400", ", 400 "),
    },
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_file_variants_load_the_same_rows_as_the_plain_files(db, tmp_path, variant):
    first = load(db, write_files(tmp_path / variant, VARIANTS[variant]))
    assert (first.rows_read, first.rows_loaded, first.rows_rejected) == (8, 8, 0)
    # the plain files, loaded next, find every row already there and identical
    assert load(db, write_files(tmp_path / "plain")).rows_loaded == 0


def test_header_only_files_load_zero_rows(db, tmp_path):
    headers = {name: text.splitlines()[0] + "\n" for name, text in BASE_FILES.items()}
    summary = load(db, write_files(tmp_path, headers))
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (0, 0, 0)
    assert rows(db, "select rows_read, rows_loaded from load_runs") == [(0, 0)]
    assert db.scalar("select count(*) from users") == 0


def test_quoted_commas_newlines_sql_and_html_are_stored_verbatim(db, tmp_path):
    shoes = io.StringIO()
    writer = csv.writer(shoes, lineterminator="\n")
    writer.writerow(HEADERS["shoes.csv"])
    writer.writerow([10, SQL_TEXT, HTML_TEXT, "running", "mesh", "blue, navy", "9.90", CARE_TEXT, 400])
    writer.writerow(
        [11, "Trail Boss", "Peak", "hiking", "leather", "brown", "189.50", "  spaces kept  ", 730]
    )
    users = BASE_USERS.replace("1,34,female,running", f'1,34,"{HTML_TEXT}","{SQL_TEXT}"')
    load(db, write_files(tmp_path, users_csv=users, shoes_csv=shoes.getvalue()))
    assert rows(db, "select name, brand, color, price, care_instructions from shoes where shoe_id = 10") == [
        (SQL_TEXT, HTML_TEXT, "blue, navy", Decimal("9.90"), CARE_TEXT)
    ]
    assert db.scalar("select care_instructions from shoes where shoe_id = 11") == "  spaces kept  "
    assert rows(db, "select gender, primary_usage from users where user_id = 1") == [(HTML_TEXT, SQL_TEXT)]
    assert db.scalar("select count(*) from users") == 3  # the table is still there


def test_an_extra_column_is_a_warning_and_ignored(db, tmp_path, caplog):
    users = "user_id,age,loyalty_tier,gender,primary_usage\n1,34,gold,female,running\n2,,,,walking\n"
    summary = load(db, write_files(tmp_path, users_csv=users))
    assert summary.warnings == ["users.csv:1:3: extra column 'loyalty_tier' is ignored"]
    assert "extra column 'loyalty_tier'" in caplog.text
    assert rows(db, "select * from users where user_id = 1") == [(1, 34, "female", "running")]


# -- the cell rules, without a database -------------------------------------------------------------
CELLS = [
    # (file, column, raw cell, parsed value or None, reason or None)
    (U, "user_id", " 7 ", 7, None),
    (U, "user_id", "+7", 7, None),
    (U, "user_id", "007", 7, None),
    (U, "user_id", "9223372036854775807", 2**63 - 1, None),
    (U, "user_id", "9223372036854775808", None, "is beyond the 64-bit integer range"),
    (U, "user_id", "-9223372036854775809", None, "is beyond the 64-bit integer range"),
    (U, "user_id", "4x", None, "is not an integer"),
    (U, "user_id", "1.0", None, "is not an integer"),
    (U, "user_id", "1_000", None, "is not an integer"),
    (U, "user_id", "\uff11\uff12", None, "is not an integer"),  # full-width digits
    (U, "age", "", None, None),
    (U, "age", "0", 0, None),
    (U, "age", "7", 7, None),
    (U, "age", "120", 120, None),
    (U, "age", "-1", None, "is out of range (0..120)"),
    (U, "age", "121", None, "is out of range (0..120)"),
    (U, "age", "30.5", None, "is not an integer"),
    (U, "age", "NaN", None, "is not an integer"),
    (U, "age", "99999999999999999999999", None, "is out of range (0..120)"),
    (U, "gender", "   ", None, None),
    (U, "gender", " f ", " f ", None),
    (U, "primary_usage", "   ", None, "is empty; a value is required"),
    (S, "price", "0", "0.00", None),
    (S, "price", "-0", "0.00", None),
    (S, "price", ".5", "0.50", None),
    (S, "price", "5.", "5.00", None),
    (S, "price", "12.500", "12.50", None),
    (S, "price", "1000000.00", "1000000.00", None),
    (S, "price", "1000000.01", None, "is too large (at most 1000000.00)"),
    (S, "price", "12345678901", None, "is too large (at most 1000000.00)"),
    (S, "price", "9" * 5000, None, "is too large (at most 1000000.00)"),
    (S, "price", "1e400", None, "is not a decimal number"),
    (S, "price", "1e3", None, "is not a decimal number"),
    (S, "price", "-Infinity", None, "is not a finite number"),
    (S, "price", "12,50", None, "is not a decimal number"),
    (S, "lifespan_days", "1", 1, None),
    (S, "lifespan_days", "3650", 3650, None),
    (S, "lifespan_days", "3651", None, "is out of range (1..3650)"),
    (S, "lifespan_days", "2147483647", None, "is out of range (1..3650)"),
    (S, "lifespan_days", "3000000000", None, "is out of range (1..3650)"),
    (S, "lifespan_days", "9" * 5000, None, "is out of range (1..3650)"),
    (U, "user_id", "9" * 5000, None, "is beyond the 64-bit integer range"),
    (U, "user_id", "-" + "9" * 5000, None, "is beyond the 64-bit integer range"),
    (U, "user_id", "0" * 5000 + "7", 7, None),
    (U, "age", "1" * 5000, None, "is out of range (0..120)"),
    (S, "care_instructions", "", None, None),
    (
        E,
        "interaction_type",
        "View",
        None,
        "is not a known interaction_type (add_to_wishlist, purchase, view)",
    ),
    (
        E,
        "interaction_type",
        " view",
        None,
        "is not a known interaction_type (add_to_wishlist, purchase, view)",
    ),
    (E, "timestamp", "2024-03-01", datetime(2024, 3, 1), None),
    (E, "timestamp", " 2024-03-01T10:00:00Z ", datetime(2024, 3, 1, 10), None),
    (E, "timestamp", "2024-03-01 10:00", datetime(2024, 3, 1, 10), None),
    (E, "timestamp", "2024-03-01T10:00:00.25-05:30", datetime(2024, 3, 1, 15, 30, 0, 250000), None),
    (E, "timestamp", "2024-03-01T10:00:00+0100", datetime(2024, 3, 1, 9), None),
    (E, "timestamp", "1899-12-31T23:59:59-01:00", datetime(1900, 1, 1, 0, 59, 59), None),
    (E, "timestamp", "1900-01-01T00:30:00+01:00", None, "is before 1900-01-01"),
    (E, "timestamp", "0999-01-01", None, "is before 1900-01-01"),
    (E, "timestamp", "2999-01-01T00:00:00Z", None, "is in the future"),
    (E, "timestamp", "2024-02-30T10:00:00", None, "is not a valid ISO 8601 timestamp"),
    (E, "timestamp", "2024-03-01T24:30:00", None, "is not a valid ISO 8601 timestamp"),
    (E, "timestamp", "yesterday", None, "is not a valid ISO 8601 timestamp"),
    (E, "timestamp", "now", None, "is not a valid ISO 8601 timestamp"),  # pandas alone would take it
    (E, "timestamp", "01/03/2024", None, "is not a valid ISO 8601 timestamp"),
    (E, "timestamp", "1709287200", None, "is not a valid ISO 8601 timestamp"),
]


class StartsWith(str):
    """Equal to any string that starts with it (a reason may add detail, such as the cut-off time)."""

    def __eq__(self, other):
        return isinstance(other, str) and other.startswith(str(self))

    __hash__ = str.__hash__


@pytest.mark.parametrize(
    "file, column, raw, expected, reason", CELLS, ids=[f"{c[1]}={quote(c[2], 40)}" for c in CELLS]
)
def test_cell_rules(file, column, raw, expected, reason):
    contract = next(contract for contract in CONTRACTS if contract.file_name == file)
    # a chunk is parsed as a whole: three copies check that the vectorized path agrees with itself
    values, reasons = parse_column(
        contract[column], [raw] * 3, categories=frozenset({"view", "purchase", "add_to_wishlist"})
    )
    assert list(reasons) == [None if reason is None else StartsWith(reason)] * 3
    for value in values:
        if expected is None:
            assert pd.isna(value)
        else:
            assert (value.to_pydatetime() if isinstance(value, pd.Timestamp) else value) == expected


# -- invalid input: strict mode refuses everything --------------------------------------------------
FUTURE = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
INVALID = [
    # (id, file, row appended to the base file (bytes or text), expected message)
    ("age type", U, "4,abc,,running", "users.csv:5:2: age: 'abc' is not an integer"),
    ("age range", U, "4,121,,running", "users.csv:5:2: age: '121' is out of range (0..120)"),
    (
        "id overflow",
        U,
        "99999999999999999999,30,,running",
        "users.csv:5:1: user_id: '99999999999999999999' is beyond the 64-bit integer range",
    ),
    ("required empty", U, "4,30,f,", "users.csv:5:4: primary_usage: '' is empty; a value is required"),
    (
        "duplicate user",
        U,
        "1,40,male,walking",
        "users.csv:5:1: user_id: '1' is a duplicate user_id (first on line 2)",
    ),
    ("not utf-8", U, b"4,30,caf\xe9,running", "users.csv:5:3: gender: 'caf\\xe9' is not valid UTF-8"),
    ("nul", U, "4,30,a\x00b,running", "users.csv:5:3: gender: 'a\\x00b' contains a NUL character"),
    ("too few fields", U, "4,30,running", "users.csv:5: row has 3 fields; the header has 4"),
    ("too many fields", U, "4,30,f,running,x", "users.csv:5: row has 5 fields; the header has 4"),
    ("bad quoting", U, '4,30,"f"x,running', "users.csv:5: malformed CSV record"),
    ("negative price", S, "12,A,B,C,D,E,-5,,100", "shoes.csv:4:7: price: '-5' is negative; it must be >= 0"),
    ("nan price", S, "12,A,B,C,D,E,NaN,,100", "shoes.csv:4:7: price: 'NaN' is not a finite number"),
    ("inf price", S, "12,A,B,C,D,E,inf,,100", "shoes.csv:4:7: price: 'inf' is not a finite number"),
    (
        "price decimals",
        S,
        "12,A,B,C,D,E,1.999,,100",
        "shoes.csv:4:7: price: '1.999' has more than 2 decimal places",
    ),
    ("price text", S, "12,A,B,C,D,E,cheap,,100", "shoes.csv:4:7: price: 'cheap' is not a decimal number"),
    (
        "lifespan zero",
        S,
        "12,A,B,C,D,E,5,,0",
        "shoes.csv:4:9: lifespan_days: '0' is out of range (1..3650)",
    ),
    (
        "duplicate shoe",
        S,
        "10,A,B,C,D,E,5,,100",
        "shoes.csv:4:1: shoe_id: '10' is a duplicate shoe_id (first on line 2)",
    ),
    (
        "unknown user",
        E,
        "999,10,view,2024-03-01T10:00:00Z",
        "interactions.csv:5:1: user_id: '999' is neither in users.csv nor in the database",
    ),
    (
        "unknown shoe",
        E,
        "1,999,view,2024-03-01T10:00:00Z",
        "interactions.csv:5:2: shoe_id: '999' is neither in shoes.csv nor in the database",
    ),
    (
        "unknown type",
        E,
        "1,10,click,2024-03-01T10:00:00Z",
        "interactions.csv:5:3: interaction_type: 'click'"
        " is not a known interaction_type (add_to_wishlist, purchase, view)",
    ),
    (
        "bad month",
        E,
        "1,10,view,2024-13-01",
        "interactions.csv:5:4: timestamp: '2024-13-01' is not a valid ISO 8601 timestamp",
    ),
    ("future", E, f"1,10,view,{FUTURE}", f"interactions.csv:5:4: timestamp: '{FUTURE}' is in the future"),
    (
        "before 1900",
        E,
        "1,10,view,1899-12-31T23:59:59Z",
        "interactions.csv:5:4: timestamp: '1899-12-31T23:59:59Z' is before 1900-01-01",
    ),
]


@pytest.mark.parametrize(
    "file, row, message", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_row_is_refused_and_nothing_is_written(db, tmp_path, file, row, message):
    before = dump(db)  # empty: a refused load does not even create the tables
    base = BASE_FILES[file].encode()
    folder = write_files(tmp_path, {file: base + (row if isinstance(row, bytes) else row.encode()) + b"\n"})
    with pytest.raises(LoadError) as refused:
        load(db, folder)
    report = str(refused.value)
    assert message in report  # file, line, column, column name, quoted value, reason
    assert refused.value.count == 1 and len(refused.value.problems) == 1
    problem = refused.value.problems[0]
    assert problem.file == file and problem.line == int(message.split(":")[1])
    assert dump(db) == before


@pytest.mark.parametrize(
    "files, message",
    [
        (  # one file missing is no change to its table (tests/test_daily_routine.py); all three: refused
            {"users.csv": None, "shoes.csv": None, "interactions.csv": None},
            "none of users.csv, shoes.csv, interactions.csv is in this folder; nothing was loaded",
        ),
        (
            {"users.csv": "user_id,gender,primary_usage\n1,f,running\n"},
            "users.csv:1: missing column 'age' (expected user_id,age,gender,primary_usage)",
        ),
        ({"shoes.csv": ""}, "shoes.csv: file is empty; expected a header line: shoe_id,name,"),
        ({"shoes.csv": "\r\n\n"}, "shoes.csv: file is empty"),
        (
            {"users.csv": "user_id,age,age,gender,primary_usage\n"},
            "users.csv:1:3: column 'age' appears twice",
        ),
        (
            {"users.csv": "\ufeffuser_id,age,gender,primary_usage\n".encode("utf-16")},
            "users.csv:1: header is not valid UTF-8",
        ),
    ],
    ids=["no file at all", "missing column", "empty file", "blank file", "duplicate column", "utf-16"],
)
def test_a_missing_file_or_column_is_refused_in_both_modes(db, tmp_path, files, message):
    before = dump(db)
    folder = write_files(tmp_path, files)
    for skip_invalid in (False, True):
        with pytest.raises(LoadError) as refused:
            load(db, folder, skip_invalid=skip_invalid)
        assert message in str(refused.value)
        assert dump(db) == before


def test_a_refused_load_leaves_a_loaded_database_as_it_was(db, tmp_path):
    load(db, write_files(tmp_path / "base"))
    before = dump(db)
    # an update, a new shoe, new events, and one bad event found last (by the SQL checks)
    changed = {
        "users.csv": BASE_USERS.replace("3,71,male,casual", "3,72,male,walking"),
        "shoes.csv": BASE_SHOES + "12,Court Classic,Acme,sneaker,canvas,white,59.00,,365\n",
        "interactions.csv": BASE_INTERACTIONS
        + "3,12,view,2024-05-01T10:00:00Z\n999,12,view,2024-05-01T10:00:00Z\n",
    }
    folder = write_files(tmp_path / "changed", changed)
    with pytest.raises(LoadError, match="interactions.csv:6:1: user_id: '999' is neither"):
        load(db, folder)
    assert dump(db) == before
    # the same files with --skip-invalid: everything but the bad event
    summary = load(db, folder, skip_invalid=True)
    assert (summary.rows_loaded, summary.rows_rejected) == (3, 1)
    assert dump(db) != before


def test_a_refused_load_into_an_empty_database_creates_nothing(db, tmp_path):
    before = dump(db)
    assert before == {"<views>": []}
    with pytest.raises(LoadError):
        load(db, write_files(tmp_path, users_csv=BASE_USERS + "4,121,,running\n"))
    assert dump(db) == before


def test_rows_depending_on_a_refused_row_are_reported(db, tmp_path):
    users = BASE_USERS.replace("2,,,walking", "2,200,,walking")
    with pytest.raises(LoadError) as refused:
        load(db, write_files(tmp_path, users_csv=users))
    assert [str(problem) for problem in refused.value.problems] == [
        "users.csv:3:2: age: '200' is out of range (0..120)",
        "interactions.csv:4:1: user_id: '2' refers to a rejected row of users.csv (line 3)",
    ]


def test_the_report_shows_50_problems_then_a_count(db, tmp_path):
    # ages 121..125: all refused
    users = BASE_USERS + "".join(f"{4 + i},{121 + i % 5},,running\n" for i in range(60))
    with pytest.raises(LoadError) as refused:
        load(db, write_files(tmp_path, users_csv=users))
    lines = str(refused.value).splitlines()
    assert lines[0] == f"60 problems in {tmp_path}; nothing was loaded:"
    assert lines[1] == "users.csv:5:2: age: '121' is out of range (0..120)"
    assert len(lines) == 1 + 50 + 1 and lines[-1] == "... and 10 more"
    assert refused.value.count == 60 and len(refused.value.problems) == 60


def test_line_numbers_count_physical_lines_across_chunks(db, tmp_path):
    # records spanning lines, a blank line and a broken record, read two records at a time
    shoes = (
        BASE_SHOES
        + '12,"Multi\nline\nname",B,C,D,E,5,"care\r\ntext",100\n'  # lines 4-7
        + "\n"  # line 8
        + '13,A,B,C,D,E,-1,"x\ny",100\n'  # lines 9-10: bad price
        + '14,A,B,C,D,E,"5"x,,100\n'  # line 11: broken quoting
        + "15,A,B,C,D,E,5,,0\n"  # line 12: bad lifespan
    )
    with pytest.raises(LoadError) as refused:
        load(db, write_files(tmp_path, shoes_csv=shoes), chunk_rows=2)
    assert [str(problem) for problem in refused.value.problems] == [
        "shoes.csv:9:7: price: '-1' is negative; it must be >= 0",
        "shoes.csv:11: malformed CSV record (',' expected after '\"')",
        "shoes.csv:12:9: lifespan_days: '0' is out of range (1..3650)",
    ]
    assert CHUNK_ROWS > 2  # the default is not what this test exercises


# -- --skip-invalid ----------------------------------------------------------------------------------
def test_skip_invalid_loads_the_valid_rows_and_keeps_the_rejects(db, tmp_path):
    load(db, write_files(tmp_path / "base"))
    users = (
        BASE_USERS
        + b"4,30,caf\xe9,running\n".decode("utf-8", "surrogateescape")
        + "5,-1,,running\n6,,,hiking\n"
    )
    interactions = BASE_INTERACTIONS + (
        "5,10,view,2024-03-05T10:00:00Z\n"  # line 5: user 5 is refused
        "6,10,view,2024-03-05T10:00:00Z\n"  # line 6: fine
        "6,10,view,2024-03-05T10:00:00Z\n"  # line 7: a duplicate, not a reject
        "6,10,view,2024-13-05\n"  # line 8: bad timestamp
        "7,99,view,2024-03-05T10:00:00Z\n"  # line 9: unknown user and unknown shoe
    )
    folder = write_files(tmp_path / "mixed")
    (folder / "users.csv").write_bytes(users.encode("utf-8", "surrogateescape"))
    (folder / "interactions.csv").write_text(interactions)
    summary = load(db, folder, skip_invalid=True)
    users_counts, events = summary.files["users.csv"], summary.files["interactions.csv"]
    assert (users_counts.read, users_counts.loaded, users_counts.unchanged, users_counts.rejected) == (
        6,
        1,
        3,
        2,
    )
    assert (events.read, events.loaded, events.unchanged, events.duplicates, events.rejected) == (
        8,
        1,
        3,
        1,
        3,
    )
    for counts in summary.files.values():
        assert counts.read == counts.loaded + counts.unchanged + counts.duplicates + counts.rejected
    assert db.scalar("select max(user_id) from users") == 6
    assert rows(
        db, "select rows_read, rows_loaded, rows_rejected, is_skip_invalid from load_runs where load_id = 2"
    ) == [(16, 2, 5, True)]
    assert rows(
        db,
        "select file_name, line_number, column_name, raw_value, reason from load_rejects"
        " where load_id = 2 order by file_name desc, line_number, column_name",
    ) == [
        ("users.csv", 5, "gender", "caf\\xe9", "is not valid UTF-8"),
        ("users.csv", 6, "age", "-1", "is out of range (0..120)"),
        ("interactions.csv", 5, "user_id", "5", "refers to a rejected row of users.csv (line 6)"),
        ("interactions.csv", 8, "timestamp", "2024-13-05", "is not a valid ISO 8601 timestamp"),
        ("interactions.csv", 9, "shoe_id", "99", "is neither in shoes.csv nor in the database"),
        ("interactions.csv", 9, "user_id", "7", "is neither in users.csv nor in the database"),
    ]


def test_skip_invalid_keeps_whole_row_problems_duplicates_and_empty_values(db, tmp_path):
    users = BASE_USERS + "4,30,running\n5,30,f,\n1,50,male,walking\n"
    summary = load(db, write_files(tmp_path, users_csv=users), skip_invalid=True)
    assert summary.rows_rejected == 3
    assert rows(
        db, "select line_number, column_name, raw_value, reason from load_rejects order by line_number"
    ) == [
        (5, None, "4,30,running", "row has 3 fields; the header has 4"),
        (6, "primary_usage", None, "is empty; a value is required"),
        (7, "user_id", "1", "is a duplicate user_id (first on line 2)"),
    ]
    # the first of two rows with one id is the one that counts
    assert rows(db, "select age, primary_usage from users where user_id = 1") == [(34, "running")]


def test_skip_invalid_with_only_valid_rows_records_a_clean_run(db, tmp_path):
    summary = load(db, write_files(tmp_path), skip_invalid=True)
    assert summary.rows_rejected == 0
    assert db.scalar("select count(*) from load_rejects") == 0
    assert db.scalar("select is_skip_invalid from load_runs") is True


# -- command line ----------------------------------------------------------------------------------
def test_cli_exit_codes(db_url, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="scripts.load")
    good = write_files(tmp_path / "good")
    bad = write_files(tmp_path / "bad", users_csv=BASE_USERS + "4,abc,,running\n")
    assert main(["--data-dir", str(good), "--db", db_url]) == 0
    assert "load 1: read 8 rows, loaded 8" in caplog.text
    # the report goes to stderr, one problem per line
    assert main(["--data-dir", str(bad), "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert "\nusers.csv:5:2: age: 'abc' is not an integer" in err and "Traceback" not in err
    assert main(["--data-dir", str(bad), "--db", db_url, "--skip-invalid"]) == 0
    assert "1 rows rejected" in caplog.text
    assert main(["--data-dir", str(tmp_path / "nowhere"), "--db", db_url]) == 2
    assert "data directory not found" in capsys.readouterr().err
    with Database(db_url) as db:
        assert db.scalar("select count(*) from load_runs") == 2


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_cli_unreachable_database_is_one_line_and_exit_1(engine, tmp_path, capsys, caplog):
    url = "postgresql://postgres@127.0.0.1:1/nowhere" if engine == "postgres" else str(tmp_path)  # a folder
    assert main(["--data-dir", str(write_files(tmp_path / "data")), "--db", url]) == 1
    assert "Traceback" not in capsys.readouterr().err
    [error] = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert "cannot" in error.getMessage() and "\n" not in error.getMessage() and not error.exc_info


def test_cli_help_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "scripts.load", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "--skip-invalid" in result.stdout and "--data-dir" in result.stdout


# -- line numbers, as a property (no database) -------------------------------------------------------
_field = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\\x')), max_size=6)


@settings(max_examples=60, deadline=None)
@given(records=st.lists(st.lists(_field, min_size=3, max_size=3), max_size=12), chunk_rows=st.integers(1, 5))
def test_record_start_lines_match_the_physical_lines(records, chunk_rows):
    # write the records the way any CSV writer would, and count lines by hand
    # (a line ends at \n, \r\n or a lone \r, as in Python's universal newlines)
    text, starts = "a,b,c\n", []
    for record in records:
        starts.append(len(re.findall(r"\r\n|\r|\n", text)) + 1)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL).writerow(record)
        text += buffer.getvalue()
    source = _Records(io.StringIO(text, newline=""), block_lines=3)
    next(source.reader)
    seen, values = [], []
    for chunk in _chunks(source, "t.csv", 3, 1, chunk_rows):
        assert not chunk.malformed
        seen += chunk.lines.tolist()
        values += chunk.rows
    assert seen == starts
    assert values == records
