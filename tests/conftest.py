"""Fixtures shared by every test: an empty database on each engine.

PostgreSQL: ``SHOEREC_TEST_PG`` (default: the local server) is an admin URL; the session creates a
fresh database, gives every test a schema of its own inside it (``search_path``), and drops the
database at the end. Without a server the PostgreSQL tests skip, unless ``SHOEREC_REQUIRE_PG=1``
(as in CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from scripts.db import Database

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
ENGINES = ("duckdb", "postgres")
DEFAULT_TEST_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pg_admin_url() -> str:
    return os.environ.get("SHOEREC_TEST_PG", DEFAULT_TEST_PG)


def _with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


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


def fresh_url(engine: str, request, tmp_path: Path) -> str:
    """An empty database on ``engine``: a DuckDB file, or a new PostgreSQL schema."""
    if engine == "duckdb":
        return str(tmp_path / f"test_{uuid.uuid4().hex[:6]}.duckdb")
    base = request.getfixturevalue("pg_database_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with Database(base) as admin:
        admin.execute(f"create schema {schema}")
    request.addfinalizer(lambda: _drop_schema(base, schema))
    return _with_search_path(base, schema)


def _drop_schema(base: str, schema: str) -> None:
    with Database(base) as admin:
        admin.execute(f"drop schema if exists {schema} cascade")


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
