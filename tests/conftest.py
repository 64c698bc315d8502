"""Fixtures shared by every test: an empty database on each engine.

PostgreSQL: ``SHOEREC_TEST_PG`` (default: the local server) is an admin URL; the session creates a
fresh database, gives every test a schema of its own inside it (``search_path``), and drops the
database at the end. Without a server the PostgreSQL tests skip, unless ``SHOEREC_REQUIRE_PG=1``
(as in CI), where they fail.

A test that starts from a built schema (``schema_db``, or ``helpers.built_url`` with a build of its own)
gets a copy of a template made once per session: a DuckDB file copied, or on PostgreSQL a database of its
own created from the template database and dropped after the test. Under pytest-xdist (pyproject.toml
runs two workers) each worker has its own session database and templates.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import uuid
from collections.abc import Callable

import pytest
from helpers import ENGINES, built_url, drop_database, fresh_url, pg_admin_url, with_database

from scripts.db import Database, with_search_path


@pytest.fixture(scope="session")
def pg_database_url():
    """URL of a fresh PostgreSQL database for this test session (dropped afterwards)."""
    import psycopg2

    admin_url = pg_admin_url()
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
        yield with_database(admin_url, name)
    finally:
        admin.close()
        drop_database(name)


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


@pytest.fixture(scope="session")
def database_templates(request, tmp_path_factory):
    """(engine, build) -> a database made once per session, engine and ``build``, for ``built_url`` to
    copy: ``build(db)`` run on an empty database. A DuckDB file, or the URL of a PostgreSQL database no
    connection is left open to (``create database ... template`` needs that)."""
    templates: dict[tuple[str, str], str] = {}
    created: list[str] = []

    def template(engine: str, build: Callable[[Database], None]) -> str:
        key = (engine, f"{build.__module__}.{build.__qualname__}")
        if key in templates:
            return templates[key]
        if engine == "duckdb":
            url = str(tmp_path_factory.mktemp("template") / "template.duckdb")
        else:
            request.getfixturevalue("pg_database_url")  # the server is there (or the test skips or fails)
            name = f"shoerec_test_{uuid.uuid4().hex[:10]}"
            with Database(pg_admin_url()) as admin:
                admin.execute(f"create database {name}")
            created.append(name)
            schema = f"t_{uuid.uuid4().hex[:12]}"
            with Database(with_database(pg_admin_url(), name)) as admin:
                admin.execute(f"create schema {schema}")
            url = with_search_path(with_database(pg_admin_url(), name), schema)
        with Database(url) as database:
            build(database)
        templates[key] = url
        return url

    yield template
    for name in created:
        drop_database(name)


@pytest.fixture
def schema_db_url(engine, request, tmp_path) -> str:
    """URL of a database with the schema built (a copy of the session's template), on each engine in turn."""
    return built_url(engine, request, tmp_path)


@pytest.fixture
def schema_db(schema_db_url):
    """An open connection to a database with the schema built, on each engine in turn: the same as
    ``db`` followed by ``create_schema(db)``."""
    with Database(schema_db_url) as database:
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
    """A DuckDB file built from data/ by the main command itself (schema, load, reference date, score).

    Under pytest-xdist the first worker to need it builds it once for the run (the others wait for it)
    and every worker gets its own copy of that file: the same build, not one per worker."""
    from scripts import build

    path = tmp_path_factory.mktemp("bundled") / "shoerec.duckdb"
    if "PYTEST_XDIST_WORKER" not in os.environ:
        assert build.main(["--db", str(path)]) == 0
        return str(path)
    # the run's base directory, shared by its workers (each has basetemp/<worker> below it)
    shared = tmp_path_factory.getbasetemp().parent / "bundled"
    shared.mkdir(exist_ok=True)
    built = shared / "shoerec.duckdb"
    with open(shared / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not built.exists():
            building = shared / "building.duckdb"
            assert build.main(["--db", str(building)]) == 0
            assert not building.with_name(building.name + ".wal").exists(), "the build left a WAL"
            os.replace(building, built)
    shutil.copyfile(built, path)
    return str(path)


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
