"""Least privilege on PostgreSQL: a writer for the steps, a read-only role for the dashboard.

    python -m scripts.roles --db postgresql://admin@host/db [--schema public]
        [--writer shoerec_writer] [--reader shoerec_reader]
        [--reader-password ...] [--writer-password ...]

Run it as an administrator (a superuser, or the owner of the database and schema with CREATEROLE).
It creates the two roles if they are missing and (re)sets their privileges; running it again is
harmless. See sql/roles.sql for every statement:

  writer  LOGIN; owns every table, view and function of the schema (load and score write the tables; the
          loader drops and rebuilds the keys of `interactions` in a bulk load, and a build drops
          and re-creates the views: both need ownership); USAGE and CREATE on the schema;
          CONNECT and TEMP on the database (staging tables).
  reader  LOGIN; CONNECT on the database, USAGE on the schema, SELECT on our views; nothing on
          any base table, no CREATE anywhere, no TEMP; a member of no role; its sessions in this
          database start read-only.
  PUBLIC  loses CREATE and TEMP on the database, CREATE on schemas `public` and --schema, and any
          privilege on the schema's tables and views (every role holds PUBLIC's privileges).

Views are dropped and re-created by every build, and a new view has no grants (default privileges
cannot tell a view from a table). So the build calls `apply_grants(db)` right after creating the
views; it grants the reader SELECT on them again when that reader was provisioned for the schema.

Passwords: --reader-password / --writer-password, else $SHOEREC_READER_PASSWORD /
$SHOEREC_WRITER_PASSWORD; without one, an existing password is left as it is (a new role has none:
fine with trust or peer authentication, otherwise set one).
"""

from __future__ import annotations

import logging
import os
import re

from scripts.cli import base_parser, setup_logging
from scripts.db import SQL_DIR, Database, describe, view_files

log = logging.getLogger(__name__)

DEFAULT_WRITER = "shoerec_writer"
DEFAULT_READER = "shoerec_reader"
ENV_READER_ROLE = "SHOEREC_READER_ROLE"
ENV_READER_PASSWORD = "SHOEREC_READER_PASSWORD"
ENV_WRITER_PASSWORD = "SHOEREC_WRITER_PASSWORD"
ROLES_SQL = SQL_DIR / "roles.sql"

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"not a plain lower-case SQL name: {value!r}")
    return value


def _existing_views(db: Database, schema: str) -> list[str]:
    rows = db.query(
        "select table_name from information_schema.views where table_schema = ?",
        [schema],
    )
    present = {name for (name,) in rows}
    return sorted(path.stem for path in view_files() if path.stem in present)


def _is_provisioned(db: Database, reader: str, schema: str) -> bool:
    """True when ``reader`` exists and holds an explicit USAGE grant on ``schema`` (given by this
    command), so that a same-named role of another database or schema gets nothing here."""
    return bool(
        db.scalar(
            "select exists (select from pg_namespace as schemas, aclexplode(schemas.nspacl) as acl"
            " inner join pg_roles as roles on roles.oid = acl.grantee"
            " where schemas.nspname = ? and roles.rolname = ? and acl.privilege_type = 'USAGE')",
            [schema, reader],
        )
    )


def apply_grants(db: Database, reader: str | None = None, schema: str | None = None) -> list[str]:
    """Grant the dashboard reader SELECT on the views again; call it after the views are re-created.

    A no-op on DuckDB, when the role does not exist, or when it was not provisioned for this
    schema by ``python -m scripts.roles`` (no explicit USAGE grant on it). Idempotent.

    Parameters
    ----------
    db : Database
        A connection as the owner of the views (the writer, or an administrator).
    reader : str, optional
        The reader role; default ``$SHOEREC_READER_ROLE``, else ``shoerec_reader``.
    schema : str, optional
        The schema of the views; default the connection's current schema.

    Returns
    -------
    list of str
        The views the reader may now SELECT (empty when nothing was done).
    """
    if not db.is_postgres:
        return []
    reader = _name(reader or os.environ.get(ENV_READER_ROLE) or DEFAULT_READER)
    schema = _name(schema or db.scalar("select current_schema()"))
    if not _is_provisioned(db, reader, schema):
        log.debug("no reader %s provisioned for schema %s: no grants", reader, schema)
        return []
    views = _existing_views(db, schema)
    # the reader may hold nothing on a base table, whoever granted it
    db.execute(f'revoke all on all tables in schema "{schema}" from "{reader}"')
    for view in views:
        db.execute(f'grant select on "{schema}"."{view}" to "{reader}"')
    log.debug("reader %s may select %d views in %s", reader, len(views), schema)
    return views


def create_roles(
    db: Database,
    *,
    schema: str,
    writer: str = DEFAULT_WRITER,
    reader: str = DEFAULT_READER,
    reader_password: str | None = None,
    writer_password: str | None = None,
) -> list[str]:
    """Create or update the two roles and their privileges on ``schema``, in one transaction.

    Returns the summary lines of what the roles may now do (see :func:`summary`).
    """
    if not db.is_postgres:
        raise ValueError("roles exist on PostgreSQL only (DuckDB is an embedded file: no users)")
    schema, writer, reader = _name(schema), _name(writer), _name(reader)
    if writer == reader:
        raise ValueError("the writer and the reader must be two roles")
    if not db.scalar("select exists (select from pg_namespace where nspname = ?)", [schema]):
        raise ValueError(f"no schema {schema!r} in this database")
    views = _existing_views(db, schema)
    sql = db.render_file(ROLES_SQL, schema=schema, writer=writer, reader=reader, views=views)
    with db.transaction():
        db.run_script(sql)
        # passwords as bound parameters, never in the rendered SQL or a log line
        for role, password in ((reader, reader_password), (writer, writer_password)):
            if password:
                db.execute(f'alter role "{role}" password ?', [password])
    return summary(db, schema=schema, writer=writer, reader=reader)


def summary(db: Database, *, schema: str, writer: str, reader: str) -> list[str]:
    """What each role may do, read back from the catalogue (not from what we meant to grant)."""

    database = db.scalar("select current_database()")

    def on_database(role: str) -> str:
        privileges = ("CONNECT", "CREATE", "TEMP")
        check = "select has_database_privilege(?, ?, ?)"
        held = [p for p in privileges if db.scalar(check, [role, database, p])]
        return ", ".join(held) or "nothing"

    def on_schema(role: str) -> str:
        privileges = ("USAGE", "CREATE")
        held = [p for p in privileges if db.scalar("select has_schema_privilege(?, ?, ?)", [role, schema, p])]
        return ", ".join(held) or "nothing"

    kinds = db.query(
        "select classes.relkind, count(*) filter (where roles.rolname = ?), count(*)"
        " from pg_class as classes"
        " inner join pg_namespace as schemas on schemas.oid = classes.relnamespace"
        " inner join pg_roles as roles on roles.oid = classes.relowner"
        " where schemas.nspname = ? and classes.relkind in ('r', 'v') group by classes.relkind",
        [writer, schema],
    )
    owned = {kind: (mine, total) for kind, mine, total in kinds}
    readable = db.query(
        "select classes.relkind, count(*) from pg_class as classes"
        " inner join pg_namespace as schemas on schemas.oid = classes.relnamespace"
        " where schemas.nspname = ? and classes.relkind in ('r', 'v')"
        " and has_table_privilege(?, classes.oid, 'SELECT') group by classes.relkind",
        [schema, reader],
    )
    reads = dict(readable)
    tables_mine, tables_total = owned.get("r", (0, 0))
    views_mine, views_total = owned.get("v", (0, 0))
    return [
        f"writer {writer}: database {database}: {on_database(writer)}",
        f"writer {writer}: schema {schema}: {on_schema(writer)}",
        f"writer {writer}: owns {tables_mine} of {tables_total} tables"
        f" and {views_mine} of {views_total} views",
        f"reader {reader}: database {database}: {on_database(reader)}",
        f"reader {reader}: schema {schema}: {on_schema(reader)}",
        f"reader {reader}: SELECT on {reads.get('v', 0)} of {views_total} views"
        f" and {reads.get('r', 0)} of {tables_total} tables",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument(
        "--schema", default=None, help="the schema (default: the connection's current schema, usually public)"
    )
    parser.add_argument("--writer", default=DEFAULT_WRITER, help=f"owner, writer (default {DEFAULT_WRITER})")
    parser.add_argument("--reader", default=DEFAULT_READER, help=f"dashboard role (default {DEFAULT_READER})")
    parser.add_argument("--reader-password", default=None, help=f"default ${ENV_READER_PASSWORD}; none: keep")
    parser.add_argument("--writer-password", default=None, help=f"default ${ENV_WRITER_PASSWORD}; none: keep")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        for name in (args.writer, args.reader, args.schema or "public"):
            _name(name)
    except ValueError as exc:
        parser.error(str(exc))
    with Database(args.db) as db:
        if not db.is_postgres:
            parser.error(f"{describe(db.url)} is DuckDB: roles are for PostgreSQL (--db postgresql://...)")
        schema = args.schema or db.scalar("select current_schema()")
        try:
            lines = create_roles(
                db,
                schema=schema,
                writer=args.writer,
                reader=args.reader,
                reader_password=args.reader_password or os.environ.get(ENV_READER_PASSWORD),
                writer_password=args.writer_password or os.environ.get(ENV_WRITER_PASSWORD),
            )
        except ValueError as exc:
            parser.error(str(exc))
    for line in lines:
        print(line)
    log.info(
        "roles %s (writer) and %s (reader) ready on %s, schema %s",
        args.writer,
        args.reader,
        describe(db.url),
        schema,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
