"""Least privilege on PostgreSQL: what the dashboard's reader role may and may not do.

The roles are cluster-wide, so the session provisions a writer and a reader with unique names on
the bundled PostgreSQL schema and drops them (after handing back what they own) at the end.
The reader logs in with its own password in the URL (works with trust auth and with passwords).
"""

from __future__ import annotations

import io
import re
import secrets
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
import pytest
from streamlit.testing.v1 import AppTest

from scripts import roles
from scripts.db import ROOT, Database
from scripts.schema import create_views

DASHBOARD = ROOT / "dashboard.py"
INSUFFICIENT_PRIVILEGE = "42501"
# PostgreSQL refuses these for every role, before any privilege check (a view that is not
# automatically updatable; TRUNCATE of a view): for the reader they count as refused when the
# superuser gets the same error
REFUSED_FOR_EVERYONE = {"55000", "42809"}
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")


def as_role(url: str, role: str, password: str) -> str:
    """``url`` with another user and password (the rest, search_path included, kept)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}:{quote(password, safe='')}@{host}"))


@pytest.fixture(scope="session")
def provisioned(bundled_postgres_url, pg_database_url):
    """Writer and reader roles on the bundled PostgreSQL schema: names, schema and login URLs."""
    suffix = uuid.uuid4().hex[:8]
    writer, reader = f"shoerec_w_{suffix}", f"shoerec_r_{suffix}"
    writer_password, reader_password = secrets.token_hex(12), secrets.token_hex(12)
    with Database(bundled_postgres_url) as admin:
        schema = admin.scalar("select current_schema()")
        tables, views = sorted(admin.relations("BASE TABLE")), sorted(admin.relations("VIEW"))
        try:
            summary = roles.create_roles(
                admin,
                schema=schema,
                writer=writer,
                reader=reader,
                reader_password=reader_password,
                writer_password=writer_password,
            )
            yield {
                "schema": schema,
                "writer": writer,
                "reader": reader,
                "tables": tables,
                "views": views,
                "summary": summary,
                "admin_url": bundled_postgres_url,
                "writer_url": as_role(bundled_postgres_url, writer, writer_password),
                "reader_url": as_role(bundled_postgres_url, reader, reader_password),
            }
        finally:
            # give back what they own, drop their grants and settings, then the roles themselves
            admin.execute(f'reassign owned by "{writer}", "{reader}" to current_user')
            admin.execute(f'drop owned by "{writer}", "{reader}"')
            admin.execute(f'drop role "{writer}"')
            admin.execute(f'drop role "{reader}"')
            database = admin.scalar("select current_database()")
            admin.execute(f'grant temporary on database "{database}" to public')  # the default


def sqlstate(connection, statement: str, *, copy: bool = False) -> str | None:
    """Run one statement in a read-write transaction that is always rolled back; its SQLSTATE."""
    with connection.cursor() as cur:
        cur.execute("begin read write")
        try:
            if copy:
                cur.copy_expert(statement, io.StringIO(""))
            else:
                cur.execute(statement)
            return None
        except psycopg2.Error as exc:
            return exc.pgcode
        finally:
            cur.execute("rollback")


def connect(url: str):
    connection = psycopg2.connect(url)
    connection.autocommit = True
    return connection


def first_column(admin: Database, schema: str, relation: str) -> str:
    return admin.scalar(
        "select column_name from information_schema.columns"
        " where table_schema = ? and table_name = ? order by ordinal_position limit 1",
        [schema, relation],
    )


# -- the matrix: every write and every read of a base table refused -------------------------------
def test_reader_is_refused_everything_but_reading_views(provisioned):
    schema, tables, views = provisioned["schema"], provisioned["tables"], provisioned["views"]
    reader = connect(provisioned["reader_url"])
    superuser = connect(provisioned["admin_url"])
    admin = Database(provisioned["admin_url"])
    try:
        cases = []  # (statement, is_copy, is_view)
        for name in [*tables, *views]:
            is_view = name in views
            relation = f'"{schema}"."{name}"'
            column = first_column(admin, schema, name)
            cases += [
                (f"insert into {relation} default values", False, is_view),
                (f"update {relation} set {column} = {column} where false", False, is_view),
                (f"delete from {relation} where false", False, is_view),
                (f"truncate {relation}", False, is_view),
                (f"copy {relation} from stdin", True, is_view),
                (f"lock table {relation} in access exclusive mode", False, is_view),
                (f"drop {'view' if is_view else 'table'} {relation}", False, is_view),
                (f"alter {'view' if is_view else 'table'} {relation} rename to stolen", False, is_view),
                (f"comment on {'view' if is_view else 'table'} {relation} is 'mine'", False, is_view),
            ]
            if not is_view:
                cases += [
                    (f"select * from {relation} limit 1", False, False),
                    (f"create index on {relation} ({column})", False, False),
                ]
        for target in (schema, "public"):
            cases += [
                (f'create table "{target}".stolen (id integer)', False, False),
                (f'create view "{target}".stolen as select 1 as id', False, False),
                (
                    f'create function "{target}".stolen() returns integer language sql as $$select 1$$',
                    False,
                    False,
                ),
            ]
        cases += [
            ("create temporary table stolen (id integer)", False, False),
            ("create schema stolen", False, False),
        ]

        wrong, refused_for_everyone = [], 0
        for statement, is_copy, is_view in cases:
            got = sqlstate(reader, statement, copy=is_copy)
            if got == INSUFFICIENT_PRIVILEGE:
                continue
            everyone = sqlstate(superuser, statement, copy=is_copy) if is_view else None
            if got is not None and got == everyone and everyone in REFUSED_FOR_EVERYONE:
                refused_for_everyone += 1
                continue
            wrong.append((statement, got))

        reads = [f'select * from "{schema}"."{view}" limit 1' for view in views]
        unreadable = [(sql, got) for sql in reads if (got := sqlstate(reader, sql)) is not None]
    finally:
        reader.close()
        superuser.close()
        admin.close()

    tried = len(cases) + len(reads)
    failed = len(wrong) + len(unreadable)
    print(
        f"\nreader matrix: {tried} cases tried, {tried - failed} passed"
        f" ({len(cases)} refused, {refused_for_everyone} of them refused for every role;"
        f" {len(reads)} view reads)"
    )
    assert not wrong, wrong
    assert not unreadable, unreadable
    # the statements really cover every relation
    assert len(views) >= 10 and len(tables) >= 10
    assert refused_for_everyone < len(cases) // 4


# -- the grants: exactly an allow-list, read back from the catalogue -------------------------------
def test_reader_holds_exactly_the_allowed_privileges(provisioned):
    schema, reader, views = provisioned["schema"], provisioned["reader"], provisioned["views"]
    probes = 0
    with Database(provisioned["admin_url"]) as admin:
        database = admin.scalar("select current_database()")
        relations = admin.query(
            "select schemas.nspname, classes.relname, classes.relkind in ('v', 'm') from pg_class as classes"
            " inner join pg_namespace as schemas on schemas.oid = classes.relnamespace"
            " where classes.relkind in ('r', 'p', 'v', 'm', 'f')"
            " and schemas.nspname not in ('pg_catalog', 'information_schema')"
            " and schemas.nspname !~ '^pg_(toast|temp)'"
        )
        held_tables, held_columns = set(), set()
        for namespace, name, _ in relations:
            qualified = f'"{namespace}"."{name}"'
            for privilege in TABLE_PRIVILEGES:
                probes += 1
                if admin.scalar("select has_table_privilege(?, ?, ?)", [reader, qualified, privilege]):
                    held_tables.add((namespace, name, privilege))
            for privilege in COLUMN_PRIVILEGES:
                probes += 1
                if admin.scalar("select has_any_column_privilege(?, ?, ?)", [reader, qualified, privilege]):
                    held_columns.add((namespace, name, privilege))
        sequences = admin.query(
            "select schemas.nspname, classes.relname from pg_class as classes"
            " inner join pg_namespace as schemas on schemas.oid = classes.relnamespace"
            " where case when classes.relkind = 'S'"
            " then has_sequence_privilege(?, classes.oid, 'USAGE, SELECT, UPDATE') else false end",
            [reader],
        )
        schemas = admin.query("select nspname from pg_namespace where nspname !~ '^pg_(toast|temp)'")
        held_schemas = set()
        for (namespace,) in schemas:
            for privilege in ("USAGE", "CREATE"):
                probes += 1
                if admin.scalar("select has_schema_privilege(?, ?, ?)", [reader, namespace, privilege]):
                    held_schemas.add((namespace, privilege))
        held_database = set()
        for privilege in ("CONNECT", "CREATE", "TEMPORARY"):
            probes += 1
            if admin.scalar("select has_database_privilege(?, ?, ?)", [reader, database, privilege]):
                held_database.add(privilege)
        attributes = admin.query(
            "select rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin"
            " from pg_roles where rolname = ?",
            [reader],
        )
        memberships = admin.query(
            "select roleid from pg_auth_members where member = (select oid from pg_roles where rolname = ?)",
            [reader],
        )
        probes += 3 + len(sequences)
    # what the reader itself sees granted to it in the information schema
    with Database(provisioned["reader_url"]) as own:
        granted = set(
            own.query(
                "select table_schema, table_name, privilege_type from information_schema.role_table_grants"
                " where grantee = current_user"
            )
        )
        read_only = own.scalar("show transaction_read_only")
        probes += 2

    allowed_tables = {(schema, view, "SELECT") for view in views}
    print(f"\nreader grants check: {probes} privileges probed against the allow-list")
    assert held_tables == allowed_tables
    assert held_columns == allowed_tables  # no column-level grant on a base table either
    assert granted == allowed_tables
    assert sequences == []
    # USAGE where names are looked up: ours, the catalogues, and `public` (PUBLIC's default there)
    assert held_schemas == {
        (schema, "USAGE"),
        ("public", "USAGE"),
        ("pg_catalog", "USAGE"),
        ("information_schema", "USAGE"),
    }
    assert held_database == {"CONNECT"}
    assert attributes == [(False, False, False, False, False, True)]
    assert memberships == []
    assert read_only == "on"


# -- the writer: owns what the loader alters, rebuilds views, and apply_grants keeps the reader ----
def test_writer_can_do_what_load_score_and_build_need(provisioned):
    schema, writer = provisioned["schema"], provisioned["writer"]
    with Database(provisioned["writer_url"]) as db:
        for table in provisioned["tables"]:
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"):
                qualified = f'"{schema}"."{table}"'
                held = db.scalar("select has_table_privilege(?, ?, ?)", [writer, qualified, privilege])
                assert held, (table, privilege)
        # the loader drops and rebuilds the keys of interactions only when this holds
        assert db.scalar(
            "select pg_has_role(relowner, 'USAGE') from pg_class where oid = cast(? as regclass)",
            ["interactions"],
        )
        with db.transaction(rollback=True):
            db.execute("create temporary table load_stage_probe (line_number bigint)")
            db.execute("alter table interactions drop constraint if exists interactions_shoe_id_fkey")


def test_views_rebuilt_by_the_writer_stay_readable_after_apply_grants(provisioned):
    schema, reader = provisioned["schema"], provisioned["reader"]
    with Database(provisioned["writer_url"]) as writer, connect(provisioned["reader_url"]) as reader_con:
        with writer.transaction():
            create_views(writer)
        # re-created views carry no grants: this is why the build must call apply_grants
        assert sqlstate(reader_con, "select * from user_profiles limit 1") == INSUFFICIENT_PRIVILEGE
        with writer.transaction():
            granted = roles.apply_grants(writer, reader=reader, schema=schema)
        assert sorted(granted) == provisioned["views"]
        assert all(sqlstate(reader_con, f"select * from {view} limit 1") is None for view in granted)
        assert sqlstate(reader_con, "select * from users limit 1") == INSUFFICIENT_PRIVILEGE


# -- the command: prints what it granted, and running it again changes nothing ----------------------
def acl_snapshot(url: str, schema: str) -> list[tuple]:
    """Owner and access list (entries sorted) of every table, view, schema and the database."""
    with Database(url) as admin:
        rows = admin.query(
            "select classes.relname, cast(classes.relacl as text), cast(roles.rolname as text)"
            " from pg_class as classes"
            " inner join pg_namespace as schemas on schemas.oid = classes.relnamespace"
            " inner join pg_roles as roles on roles.oid = classes.relowner"
            " where schemas.nspname = ? and classes.relkind in ('r', 'v')"
            " union all select nspname, cast(nspacl as text), ''"
            " from pg_namespace where nspname in (?, 'public')"
            " union all select datname, cast(datacl as text), ''"
            " from pg_database where datname = current_database()"
            " order by 1",
            [schema, schema],
        )
    return [(name, sorted((acl or "").strip("{}").split(",")), owner) for name, acl, owner in rows]


def test_command_is_idempotent_and_prints_the_grants(provisioned, capsys):
    schema, writer, reader = provisioned["schema"], provisioned["writer"], provisioned["reader"]
    before = acl_snapshot(provisioned["admin_url"], schema)
    argv = ["--db", provisioned["admin_url"], "--schema", schema, "--writer", writer, "--reader", reader]
    assert roles.main(argv) == 0
    assert roles.main(argv) == 0
    assert acl_snapshot(provisioned["admin_url"], schema) == before
    printed = capsys.readouterr().out
    n_views, n_tables = len(provisioned["views"]), len(provisioned["tables"])
    assert f"reader {reader}: SELECT on {n_views} of {n_views} views and 0 of {n_tables} tables" in printed
    assert f"writer {writer}: owns {n_tables} of {n_tables} tables and {n_views} of {n_views}" in printed
    assert re.search(rf"reader {reader}: database \w+: CONNECT\n", printed)


def test_command_refuses_duckdb_and_bad_names(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        roles.main(["--db", str(tmp_path / "x.duckdb")])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        roles.main(["--db", "postgresql://nobody@127.0.0.1:1/none", "--reader", 'x"; drop table users; --'])


def test_apply_grants_without_a_provisioned_reader_does_nothing(schema_db):
    db = schema_db  # create_schema's database (a copy: conftest.py)
    assert roles.apply_grants(db, reader=f"shoerec_nobody_{uuid.uuid4().hex[:8]}") == []


# -- the dashboard, given nothing but the reader ----------------------------------------------------
def test_dashboard_runs_as_the_reader(provisioned, monkeypatch):
    monkeypatch.setenv("SHOEREC_DASHBOARD_DB", provisioned["reader_url"])
    page = AppTest.from_file(str(DASHBOARD), default_timeout=60).run()
    assert not page.exception, [e.value for e in page.exception]
    assert not page.error, [e.value for e in page.error]
    cards = [e.value for e in page.markdown if re.match(r"^\*\*\d+\. .*\*\*$", e.value, flags=re.DOTALL)]
    assert len(cards) == 10
    shown = "\n".join(str(e.value) for kind in ("warning", "info", "caption") for e in getattr(page, kind))
    assert "permission denied" not in shown.lower()
