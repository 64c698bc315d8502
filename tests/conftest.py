"""Fixtures shared by every test: an empty database on each engine.

PostgreSQL: ``SHOEREC_TEST_PG`` (default: the local server) is an admin URL; the session creates a
fresh database, gives every test a schema of its own inside it (``search_path``), and drops the
database at the end. Without a server the PostgreSQL tests skip, unless ``SHOEREC_REQUIRE_PG=1``
(as in CI), where they fail.
"""

from __future__ import annotations

import os
import sys
import uuid

import pytest
from helpers import ENGINES, fresh_url

from scripts.db import Database, with_search_path

DEFAULT_TEST_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pg_admin_url() -> str:
    return os.environ.get("SHOEREC_TEST_PG", DEFAULT_TEST_PG)


def _with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def pg_database_url():
    """URL of a fresh PostgreSQL database for this test session (dropped afterwards)."""
    import psycopg2

    admin_url = _pg_admin_url()
    try:
        admin = psycopg2.connect(admin_url, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        message = f"PostgreSQL not reachable at {admin_url}: {str(exc).strip()}"
        if os.environ.get("SHOEREC_REQUIRE_PG") == "1":
            pytest.fail(message + " (SHOEREC_REQUIRE_PG=1)")
        pytest.skip(message)
    admin.autocommit = True
    name = f"shoerec_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    try:
        yield _with_database(admin_url, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name} with (force)")
        admin.close()


@pytest.fixture(autouse=True)
def _main_module_kept():
    """Streamlit's script runner (AppTest) installs the page as ``sys.modules["__main__"]`` and leaves
    it there: a multiprocessing "spawn" child started later in the same process (scripts.benchmark's
    stages) would then run dashboard.py instead of its job. Each test gets the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture
def db_url(engine, request, tmp_path) -> str:
    """URL of an empty database on each engine in turn."""
    return fresh_url(engine, request, tmp_path)


@pytest.fixture
def db(db_url):
    """An open connection to an empty database on each engine in turn."""
    with Database(db_url) as database:
        yield database


# -- the bundled data set, built once per session -----------------------------------------------
# what the main job's evaluation and scoring wrote, copied from DuckDB to PostgreSQL
COPIED_TABLES = (
    "model_runs",
    "recommendations",
    "shoe_similarities",
    "segment_recommendations",
    "evaluation_runs",
    "evaluations",
    "tuned_parameters",
)


@pytest.fixture(scope="session")
def bundled_duckdb_url(tmp_path_factory) -> str:
    """A DuckDB file built from data/ by the main command itself (schema, load, reference date, score)."""
    from scripts import build

    path = str(tmp_path_factory.mktemp("bundled") / "shoerec.duckdb")
    assert build.main(["--db", path]) == 0
    return path


@pytest.fixture(scope="session")
def bundled_postgres_url(bundled_duckdb_url, pg_database_url) -> str:
    """The same data loaded into PostgreSQL, with the settings, evaluation and score tables of the
    DuckDB build copied over (so that comparing the two engines compares the SQL alone)."""
    from scripts import build, serving
    from scripts.load import load
    from scripts.schema import create_schema

    schema = f"bundled_{uuid.uuid4().hex[:8]}"
    with Database(pg_database_url) as admin:
        admin.execute(f"create schema {schema}")
    url = with_search_path(pg_database_url, schema)
    with Database(url) as db, Database(bundled_duckdb_url, read_only=True) as source:
        create_schema(db)
        load(db, build.BUNDLED_DATA_DIR)
        build.set_reference_date(db, "auto", build.BUNDLED_DATA_DIR)
        with db.transaction():
            db.execute("delete from settings")
            db.insert_df("settings", source.query_df("select * from settings"))
            for table in COPIED_TABLES:
                db.insert_df(table, source.query_df(f"select * from {table}"))
        # the customer views' read model, as a run leaves it (the copies above left everyone live)
        serving.refresh(db)
        # the statistics scripts.build leaves on PostgreSQL: without them (autovacuum may not have run
        # yet) the planner rescans a subquery of every customer per row, and
        # `select * from user_recommendations` takes 45-75 s instead of about 1
        db.execute("analyze")
    return url


@pytest.fixture(params=ENGINES)
def bundled_url(request) -> str:
    """The bundled, scored database on each engine in turn (shared: do not write to it)."""
    return request.getfixturevalue(f"bundled_{request.param}_url")
