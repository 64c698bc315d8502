"""Helpers more than one test module uses (fixtures live in conftest.py, which imports from here).

Engines and empty databases, the CSV files of the contract, a database's checksum, a command run as
a subprocess, rows compared as canonical text, and the tally of a kill-point test.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pandas as pd

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

from scripts.contract import CONTRACTS
from scripts.db import ROOT, Database, with_search_path
from scripts.schema import create_schema

DATA_DIR = ROOT / "data"
ENGINES = ("duckdb", "postgres")
FLOAT_DECIMALS = 6  # numbers compare rounded to this many places

# the columns each file's header must name, in order (scripts.contract: the optional ones left out)
HEADERS = {contract.file_name: contract.header_names for contract in CONTRACTS}


# -- databases -------------------------------------------------------------------------------------
DEFAULT_TEST_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_admin_url() -> str:
    """The PostgreSQL server's admin URL the tests create their databases with (``SHOEREC_TEST_PG``)."""
    return os.environ.get("SHOEREC_TEST_PG", DEFAULT_TEST_PG)


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead (its query string kept)."""
    base, _, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


def fresh_url(engine: str, request, tmp_path: Path) -> str:
    """An empty database on ``engine``: a DuckDB file, or a new PostgreSQL schema (dropped after the test)."""
    if engine == "duckdb":
        return str(tmp_path / f"test_{uuid.uuid4().hex[:6]}.duckdb")
    base = request.getfixturevalue("pg_database_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with Database(base) as admin:
        admin.execute(f"create schema {schema}")
    request.addfinalizer(lambda: _drop_schema(base, schema))
    return with_search_path(base, schema)


def _drop_schema(base: str, schema: str) -> None:
    with Database(base) as admin:
        admin.execute(f"drop schema if exists {schema} cascade")


def built_url(engine: str, request, tmp_path: Path, build: Callable[[Database], None] = create_schema) -> str:
    """What ``build(db)`` (by default ``create_schema``) leaves in an empty database, as a copy of the
    session's template of it (conftest.py's ``database_templates``): a DuckDB file copied, or a PostgreSQL
    database created from the template database (dropped after the test). A copy is the database build
    made, in a fraction of the time; a build must leave nothing that depends on the clock or the test."""
    template = request.getfixturevalue("database_templates")(engine, build)
    if engine == "duckdb":
        path = tmp_path / f"test_{uuid.uuid4().hex[:6]}.duckdb"
        shutil.copyfile(template, path)
        return str(path)
    return copy_database(request, template)


def copy_database(request, template_url: str) -> str:
    """A new PostgreSQL database created from the template database of ``template_url`` (dropped after
    the test); its URL, with the template's search_path."""
    import psycopg2

    template = urlsplit(template_url).path.lstrip("/")
    name = f"shoerec_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(pg_admin_url(), connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            for attempt in range(50):
                try:
                    cursor.execute(f"create database {name} template {template}")
                    break
                except psycopg2.errors.ObjectInUse:  # a moment's connection to the template (autovacuum)
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
    finally:
        admin.close()
    request.addfinalizer(lambda: drop_database(name))
    return with_database(template_url, name)


def drop_database(name: str) -> None:
    import psycopg2

    admin = psycopg2.connect(pg_admin_url(), connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"drop database if exists {name} with (force)")
    finally:
        admin.close()


def data_tables(db: Database) -> list[str]:
    """The tables that hold data: all but PostgreSQL's read model of the customer views (served_*, and
    its bookkeeping, sql/serving.sql), a cache whose one promise, the views equal to the live ones
    whatever it holds, tests/test_read_model.py checks; a committed 'running' row or a test's own
    clean-up legitimately marks it stale."""
    return sorted(
        name
        for name in db.relations("BASE TABLE")
        if not name.startswith("served_") and name not in ("serving_state", "serving_stale_users")
    )


def dump(db: Database) -> dict[str, list[str]]:
    """Every data table with all its rows (sorted), and the list of views: a checksum of the database."""
    state = {name: sorted(map(repr, db.query(f"select * from {name}"))) for name in data_tables(db)}
    state["<views>"] = sorted(db.relations("VIEW"))
    return state


# -- files and commands ----------------------------------------------------------------------------
def csv_text(rows: Iterable[Sequence[object]], lineterminator: str = "\n") -> str:
    """Rows (the header first) as CSV text, every field quoted (csv.writer leaves a lone CR unquoted
    when the line ends with LF)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=lineterminator, quoting=csv.QUOTE_ALL).writerows(rows)
    return buffer.getvalue()


def run_module(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m <args>`` as a subprocess from ``cwd``, as a user would run it (the project importable,
    no ``$SHOEREC_DB`` inherited, ``env`` added); its output captured as text."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("SHOEREC_DB", None)
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- the scorer's tiny world: twelve customers of two tastes (running, hiking), eight shoes
# twelve users: small shrinkage, so that a segment of a few customers still shows its own taste
TINY_PARAMS = {
    "top_n": 3,
    "factors": 2,
    "similar_n": 2,
    "batch_size": 4,
    "segment_prior_users": 2.0,
    "feature_prior_users": 2.0,
}

TINY_USERS = pd.DataFrame(
    {
        "user_id": range(1, 13),
        "age": [25, 31, 45, 22, 38, 29, 52, 41, 35, 60, 27, None],
        "gender": [
            "female",
            "male",
            "female",
            "male",
            "female",
            "male",
            "female",
            "male",
            "female",
            "male",
            "female",
            None,
        ],
        "primary_usage": ["running"] * 6 + ["hiking"] * 4 + ["running", "hiking"],
    }
)
TINY_SHOES = pd.DataFrame(
    {
        "shoe_id": [101, 102, 103, 104, 201, 202, 203, 204],
        "name": [
            "Swift Pace",
            "Swift Tempo",
            "Swift Glide",
            "Swift Nova",
            "Summit Ridge",
            "Summit Peak",
            "Summit Trail",
            "Summit Alp",
        ],
        "brand": ["swift"] * 4 + ["summit"] * 4,
        "type": ["running"] * 4 + ["hiking"] * 4,
        "material": ["mesh"] * 4 + ["leather"] * 4,
        "color": ["black", "red", "blue", "white", "brown", "green", "black", "grey"],
        "price": [120.0, 130.0, 110.0, 150.0, 180.0, 200.0, 160.0, 210.0],
        "care_instructions": [None] * 8,
        "lifespan_days": [500] * 4 + [900] * 4,
    }
)


def tiny_interactions() -> pd.DataFrame:
    day = dt.datetime(2024, 5, 1, 12, 0)
    rows = []
    for user in range(1, 11):
        shoes = [101, 102, 103] if user <= 6 else [201, 202, 203]
        for k, shoe in enumerate(shoes):
            rows.append((user, shoe, "view", day + dt.timedelta(days=user + k)))
        rows.append((user, shoes[user % 3], "add_to_wishlist", day + dt.timedelta(days=20 + user)))
        rows.append((user, shoes[(user + 1) % 3], "purchase", day + dt.timedelta(days=30 + user)))
    return pd.DataFrame(rows, columns=["user_id", "shoe_id", "interaction_type", "occurred_at"])


def load_tiny(db: Database) -> None:
    create_schema(db)
    db.insert_df("users", TINY_USERS.astype({"age": "Int64"}))
    db.insert_df("shoes", TINY_SHOES)
    db.insert_df("interactions", tiny_interactions())


# -- the loader's three small files
BASE_USERS = "user_id,age,gender,primary_usage\n1,34,female,running\n2,,,walking\n3,71,male,casual\n"
BASE_SHOES = (
    "shoe_id,name,brand,type,material,color,price,care_instructions,lifespan_days\n"
    "10,Cloud Runner,Acme,running,mesh,blue,129.99,Hand wash only.,400\n"
    "11,Trail Boss,Peak,hiking,leather,brown,189.5,,730\n"
)
BASE_INTERACTIONS = (
    "user_id,shoe_id,interaction_type,timestamp\n"
    "1,10,view,2024-03-01T10:00:00Z\n"
    "1,10,purchase,2024-03-02T09:30:00+02:00\n"
    "2,11,add_to_wishlist,2024-03-03 08:00:00\n"
)
BASE_FILES = {"users.csv": BASE_USERS, "shoes.csv": BASE_SHOES, "interactions.csv": BASE_INTERACTIONS}


def write_files(folder: Path, files: dict[str, str | bytes | None] | None = None, **changes) -> Path:
    """The three base files in ``folder``, with ``changes`` ({'users.csv': text}) applied; None leaves a file out."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        **BASE_FILES,
        **(files or {}),
        **{name.replace("_csv", ".csv"): text for name, text in changes.items()},
    }
    for name, text in contents.items():
        if text is not None:
            (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return folder


# -- rows as comparable text -----------------------------------------------------------------------
def fetch(db: Database, sql: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of a query, with the driver's own Python types."""
    if db.is_postgres:
        with db.raw.cursor() as cursor:
            cursor.execute(sql)
            return [d[0] for d in cursor.description], cursor.fetchall()
    cursor = db.raw.execute(sql)
    return [d[0] for d in cursor.description], cursor.fetchall()


def kind_of(value: Any) -> str:
    """The kind a driver's value is compared as: bool, number, timestamp, date or text."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, Decimal)):  # one kind: engines differ (sum of bigint is numeric on PG)
        return "number"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    return "text"


def column_kinds(rows: Sequence[Sequence[Any]], width: int) -> list[str]:
    """The kind of each column, from its first non-null value (text when it has none)."""
    samples = (next((row[i] for row in rows if row[i] is not None), None) for i in range(width))
    return [kind_of(sample) if sample is not None else "text" for sample in samples]


def canonical(value: Any, kind: str) -> str:
    """A value (from the driver, or text from a CSV) as comparable text for a column of ``kind``."""
    if value is None or value == "":
        return ""
    if kind == "bool":
        return str(value if isinstance(value, bool) else value.strip().lower() == "true").lower()
    if kind == "number":
        number = round(float(value), FLOAT_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
        return f"{number:.{FLOAT_DECIMALS}f}"
    if kind == "timestamp":
        stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        return stamp.isoformat(sep=" ")
    if kind == "date":
        return value.isoformat() if isinstance(value, dt.date) else dt.date.fromisoformat(value).isoformat()
    return str(value)


def canonical_rows(rows: Iterable[Sequence[Any]], kinds: Sequence[str]) -> list[tuple[str, ...]]:
    """Rows as sorted tuples of canonical text (one kind per column)."""
    return sorted(
        tuple(canonical(value, kind) for value, kind in zip(row, kinds, strict=True)) for row in rows
    )


# -- kill points -----------------------------------------------------------------------------------
def snapshot(db: Database, exclude_running: bool = False) -> dict[str, tuple]:
    """Row count and checksum of every data table (and, on PostgreSQL, the constraints and indexes).

    With ``exclude_running``, model_runs leaves out 'running' rows (a scorer commits that row first).
    """
    result = {}
    for table in data_tables(db):
        where = " where status <> 'running'" if exclude_running and table == "model_runs" else ""
        # bytea comes back from psycopg2 as a memoryview, whose repr is its address: compare the bytes
        rows = sorted(
            repr(tuple(bytes(value) if isinstance(value, memoryview) else value for value in row))
            for row in db.query(f"select * from {table}{where}")
        )
        result[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    if db.is_postgres:
        result["(constraints)"] = tuple(
            sorted(
                db.query(
                    "select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint"
                    " where connamespace = cast(current_schema() as regnamespace)"
                )
            )
        )
        result["(indexes)"] = tuple(
            sorted(db.query("select indexdef from pg_indexes where schemaname = current_schema()"))
        )
    return result


def differences(before: dict, after: dict) -> list[str]:
    return [name for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]


def _child(env: str, point: str, job, args) -> None:
    os.environ[env] = point
    job(*args)


def run_killed(env: str, point: str, job, *args) -> int | None:
    """Run ``job(*args)`` in a forked child with ``env=point``; its exit code (-9 when killed)."""
    process = multiprocessing.get_context("fork").Process(target=_child, args=(env, point, job, args))
    process.start()
    process.join(timeout=120)
    if process.is_alive():
        process.kill()
        process.join()
    return process.exitcode


def assert_every_kill_point_passes(
    what: str, points: Sequence[str], check: Callable[[str], list[str]]
) -> None:
    """Run ``check(point)`` (the problems found after a kill there) at every point; print the tally the
    README reports (tried, passed) and fail naming each point with a problem."""
    failures = []
    for point in points:
        problems = check(point)
        if problems:
            failures.append(f"{point}: {'; '.join(problems)}")
    print(f"\n{what}: {len(points)} kill points tried, {len(points) - len(failures)} passed")
    assert failures == []


# -- the dashboard, run headless ---------------------------------------------------------------------
DASHBOARD = ROOT / "dashboard.py"
PAGE_TIMEOUT = 60


def run_page(monkeypatch, url: str, **state) -> AppTest:
    """dashboard.py run headless (Streamlit's AppTest) on ``url``, with ``state`` in its session state."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SHOEREC_DASHBOARD_DB", url)
    page = AppTest.from_file(str(DASHBOARD), default_timeout=PAGE_TIMEOUT)
    for key, value in state.items():
        page.session_state[key] = value
    return page.run()


def texts(page: AppTest) -> str:
    """Everything the page wrote as text, markdown, captions and notices, in one string."""
    parts = []
    for kind in ("markdown", "caption", "text", "info", "warning", "error", "subheader", "metric"):
        for element in getattr(page, kind):
            parts.append(str(getattr(element, "value", "")))
    return "\n".join(parts)


def recommendation_cards(page: AppTest) -> list[str]:
    """The names on the recommendation cards ("**1. Name**"), in rank order, markdown escapes undone."""
    cards = []
    for element in page.markdown:
        match = re.match(r"^\*\*(\d+)\. (.*)\*\*$", element.value, flags=re.DOTALL)
        if match:
            cards.append((int(match.group(1)), re.sub(r"\\(.)", r"\1", match.group(2))))
    return [name for _, name in sorted(cards)]


def assert_no_failure(page: AppTest) -> None:
    assert not page.exception, [e.value for e in page.exception]
    assert not page.error, [e.value for e in page.error]
