"""The one module that knows the two engines.

It turns ``--db`` / ``SHOEREC_DB`` into a connection, renders SQL files for the chosen engine
(jinja2 with the macros in ``sql/macros.sql``) and offers the few operations the steps need:
run a statement with bound parameters, fetch rows or a DataFrame, run a script, bulk-insert a
DataFrame, a transaction block, locks, and the catalogue (relations, a table's keys, the view files
in dependency order). Everything else in the project is engine-agnostic.

Placeholders are written ``?`` everywhere; they are translated to ``%s`` for psycopg2.

Bulk paths on PostgreSQL: ``query_df`` exports with ``COPY (select ...) TO STDOUT`` and parses the
CSV with pyarrow (the same frame, dtypes included, as fetching the rows would give, 10x faster), and
``insert_df`` feeds ``COPY ... FROM STDIN``: in binary, encoded by numpy, where every column holds
exactly what its table column stores (integers, doubles, reals, booleans, timestamps, bytea: the
score's write-back and model state), else as CSV (pyarrow's writer for numbers, booleans and
timestamps, pandas' for the rest). ``query_df`` falls back to the row path for what it does not cover.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
VIEWS_DIR = ROOT / "views"

ENV_DB = "SHOEREC_DB"
DEFAULT_DUCKDB_PATH = ROOT / "data" / "shoerec.duckdb"

POSTGRES = "postgres"
DUCKDB = "duckdb"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_COPY_CHUNK_ROWS = 250_000
# a query the COPY export can take: one select (or with ... select); anything else is fetched
_SELECT = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)
# seconds a DuckDB writer retries while another process (say the dashboard) holds the file
DUCKDB_WRITER_LOCK_WAIT = 30.0


def resolve_url(db: str | None = None) -> str:
    """The database to use: ``db`` if given, else ``$SHOEREC_DB``, else the DuckDB default file."""
    return db or os.environ.get(ENV_DB) or str(DEFAULT_DUCKDB_PATH)


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
ACCEPTED_FORMS = (
    "postgresql://user@host:5432/dbname (any libpq URI) or a DuckDB file path such as data/shoerec.duckdb"
)


def engine_of(url: str) -> str:
    """``postgres`` for a libpq URI (``postgresql://`` or ``postgres://``), else ``duckdb``.

    Raises
    ------
    UsageError
        For any other URI scheme (``mysql://...`` is not a file name).
    """
    if url.startswith(("postgresql://", "postgres://")):
        return POSTGRES
    scheme = _SCHEME.match(url)
    if scheme:
        raise UsageError(f"--db {describe(url)}: {scheme.group(1)}:// is not supported; use {ACCEPTED_FORMS}")
    return DUCKDB


def describe(url: str) -> str:
    """The URL without its password, for logs and messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def with_search_path(url: str, schema: str) -> str:
    """A PostgreSQL URL whose sessions resolve unqualified names in ``schema`` (libpq ``options``)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


def quote_identifier(identifier: str) -> str:
    """Any name as a quoted SQL identifier (for names read from the catalogue)."""
    return '"' + identifier.replace('"', '""') + '"'


def view_files(views_dir: Path = VIEWS_DIR) -> list[Path]:
    """The project's view files (one view per file in ``views/``), each after the views it reads."""
    files = {path.stem: path for path in sorted(views_dir.glob("*.sql"))}
    # as each engine runs it: a macro may name a view (read_model_select reads live_<view>)
    rendered = [_environment(engine) for engine in (POSTGRES, DUCKDB)]
    texts = {
        name: " ".join(
            _code_only(env.from_string(path.read_text(encoding="utf-8")).render()) for env in rendered
        )
        for name, path in files.items()
    }
    graph = {
        name: {other for other in files if other != name and re.search(rf"\b{other}\b", text)}
        for name, text in texts.items()
    }
    return [files[name] for name in TopologicalSorter(graph).static_order()]


def _code_only(sql: str) -> str:
    """The SQL without comments and string literals (a view named in a comment is no dependency)."""
    sql = re.sub(r"--[^\n]*", "", sql)
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


class DatabaseError(RuntimeError):
    """Raised when the database cannot be opened (missing file, server down, lock held)."""


class UsageError(DatabaseError):
    """A mistake the user can fix (wrong --db, a step not run yet): one line, exit code 2."""


def exit_code(exc: DatabaseError) -> int:
    """A command's exit code for ``exc``: 2 for a :class:`UsageError`, 1 for any other database error."""
    return 2 if isinstance(exc, UsageError) else 1


# what a built database has: the views the steps after the build read
BUILT_MARKERS = ("current_settings", "interaction_matrix", "user_segments")
BUILD_HINT = "run python -m scripts.build first (or python -m scripts.schema after a load)"


def require_built(db: Database) -> None:
    """Raise :class:`UsageError` unless the schema and its views exist (say what is missing and the fix)."""
    present = {
        name
        for (name,) in db.query(
            "select table_name from information_schema.tables where table_schema = current_schema()"
        )
    }
    missing = [name for name in BUILT_MARKERS if name not in present]
    if missing:
        what = "no schema" if "users" not in present else f"no views ({', '.join(missing)} missing)"
        raise UsageError(f"the database {describe(db.url)} has {what}: {BUILD_HINT}")


class Database:
    """A connection to PostgreSQL or DuckDB behind one small API.

    Parameters
    ----------
    url : str, optional
        A libpq URI or a DuckDB file path; defaults as in :func:`resolve_url`.
    read_only : bool
        Open DuckDB read-only (shared lock), or make the PostgreSQL session read-only.
    must_exist : bool
        For DuckDB, refuse to create a new file (the dashboard wants to say "build it first").
    lock_wait_seconds : float, optional
        For DuckDB, how long to retry while another process holds the file (one writer, or
        readers, at a time). Default: a writer waits ``DUCKDB_WRITER_LOCK_WAIT`` seconds (the
        dashboard's read-only connections last milliseconds), a reader does not wait (the page
        says "being rebuilt" at once).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        read_only: bool = False,
        must_exist: bool = False,
        lock_wait_seconds: float | None = None,
    ):
        self.url = resolve_url(url)
        self.engine = engine_of(self.url)
        self.read_only = read_only
        self._in_transaction = False
        if self.engine == POSTGRES:
            import psycopg2

            try:
                self._con = psycopg2.connect(self.url)
            except psycopg2.OperationalError as exc:
                raise DatabaseError(f"cannot connect to {describe(self.url)}: {exc}".strip()) from exc
            self._con.autocommit = True
            if read_only:
                self.execute("set session characteristics as transaction read only")
        else:
            path = Path(self.url)
            if self.url != ":memory:":
                if not path.exists() and (must_exist or read_only):
                    raise UsageError(f"no database at {path}: {BUILD_HINT}")
                path.parent.mkdir(parents=True, exist_ok=True)
            self._con = _open_duckdb(self.url, read_only, lock_wait_seconds)
        self._templates = _environment(self.engine)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def is_postgres(self) -> bool:
        return self.engine == POSTGRES

    @property
    def raw(self) -> Any:
        """The driver's own connection, for the rare engine-specific need (tests, COPY)."""
        return self._con

    # -- statements ------------------------------------------------------------------------
    def _sql(self, sql: str, params: Sequence[Any] | None) -> str:
        if self.is_postgres and params:
            return sql.replace("%", "%%").replace("?", "%s")
        return sql

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run one statement (or, without parameters, several separated by ``;``)."""
        if self.is_postgres:
            with self._con.cursor() as cur:
                cur.execute(self._sql(sql, params), tuple(params) if params else None)
        else:
            self._con.execute(sql, list(params) if params else None)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Rows of a query, as tuples."""
        if self.is_postgres:
            with self._con.cursor() as cur:
                cur.execute(self._sql(sql, params), tuple(params) if params else None)
                return cur.fetchall()
        return self._con.execute(sql, list(params) if params else None).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """A query's result as a DataFrame (column names from the query).

        On PostgreSQL a select whose columns are all of the types in ``_PG_COPY_TYPES`` is exported
        with ``COPY ... TO STDOUT`` and parsed by pyarrow; the frame is the one :meth:`fetch_df`
        gives (same values and dtypes), so callers never see which path ran.
        """
        if self.is_postgres:
            frame = self._copy_out_df(sql, params) if _SELECT.match(sql) else None
            return self.fetch_df(sql, params) if frame is None else frame
        return self._con.execute(sql, list(params) if params else None).df()

    def fetch_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """:meth:`query_df` through the driver's rows (``fetchall``): the reference the COPY path matches."""
        if self.is_postgres:
            with self._con.cursor() as cur:
                cur.execute(self._sql(sql, params), tuple(params) if params else None)
                columns = [d[0] for d in cur.description]
                return pd.DataFrame.from_records(cur.fetchall(), columns=columns)
        return self._con.execute(sql, list(params) if params else None).df()

    def _copy_out_df(self, sql: str, params: Sequence[Any] | None) -> pd.DataFrame | None:
        """The query exported by COPY and parsed by pyarrow, or None where the row path must run."""
        import psycopg2
        from pyarrow import ArrowInvalid

        sql = sql.strip().rstrip(";")
        with self._con.cursor() as cur:
            bound = cur.mogrify(self._sql(sql, params), tuple(params) if params else None).decode()
            # the result's columns and types, without running it (a limit 0 plan returns at once);
            # inside a transaction under a savepoint, so a statement that cannot be wrapped costs nothing
            probe = f"select * from ({bound}) as copied_query limit 0"
            try:
                if self._in_transaction:
                    cur.execute("savepoint copy_probe")
                cur.execute(probe)
                description = cur.description
                if self._in_transaction:
                    cur.execute("release savepoint copy_probe")
            except psycopg2.Error:
                if self._in_transaction:
                    cur.execute("rollback to savepoint copy_probe")
                return None
            names = [d.name for d in description]
            oids = [d.type_code for d in description]
            if not all(oid in _PG_COPY_TYPES for oid in oids):
                return None
            buffer = io.BytesIO()
            cur.copy_expert(f"copy ({bound}) to stdout with (format csv)", buffer)
        if buffer.tell() == 0:
            return None  # no rows: the row path gives the dtypes an empty result had before
        try:
            return _csv_frame(buffer.getbuffer(), names, oids)
        except (ArrowInvalid, ValueError):  # a value pyarrow does not parse ('infinity' dates, year 0)
            log.debug("COPY export not parsed, fetching rows instead", exc_info=True)
            return None

    def run_script(self, sql: str) -> None:
        """Run a script of several statements (no parameters)."""
        if self.is_postgres:
            with self._con.cursor() as cur:
                cur.execute(sql)
        else:
            self._con.execute(sql)

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, rollback: bool = False) -> Iterator[Database]:
        """All or nothing: commit when the block ends, roll back if it raises.

        With ``rollback=True`` the block is always rolled back: a "what if" that changes settings,
        reads what the views then say, and leaves the database exactly as it was.
        """
        if self._in_transaction:
            raise RuntimeError("transactions do not nest")
        self.execute("begin")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self.execute("rollback")
            raise
        else:
            self.execute("rollback" if rollback else "commit")
        finally:
            self._in_transaction = False

    # -- bulk writes -----------------------------------------------------------------------
    def insert_df(self, table: str, frame: pd.DataFrame) -> int:
        """Append a DataFrame's rows to ``table`` (columns matched by name); returns the row count.

        PostgreSQL gets ``COPY ... FROM STDIN`` in chunks: binary where every column holds exactly
        what its table column stores (``_binary_fields``), else CSV. DuckDB reads the frame directly.
        """
        table = _identifier(table)
        columns = [_identifier(c) for c in frame.columns]
        if frame.empty:
            return 0
        if self.is_postgres:
            fields = _binary_fields(frame, self._column_types(table))
            if fields is None:
                # numbers, booleans and timestamps: CSV written by pyarrow (10x pandas' to_csv)
                write_csv = _arrow_csv if _arrow_writable(frame) else _pandas_csv
                statement = _copy_statement(table, columns, "csv")
            else:  # every field as the server stores it: it parses no text
                statement = _copy_statement(table, _copy_order(fields), "binary")
            with self._con.cursor() as cur:
                for start in range(0, len(frame), _COPY_CHUNK_ROWS):
                    stop = min(start + _COPY_CHUNK_ROWS, len(frame))
                    if fields is None:
                        buffer = write_csv(frame.iloc[start:stop])
                    else:
                        buffer = io.BytesIO(
                            _BINARY_HEADER + _binary_rows(fields, start, stop) + _BINARY_TRAILER
                        )
                    cur.copy_expert(statement, buffer, size=1 << 20)
        else:
            listed = ", ".join(columns)
            self._con.register("__insert_frame", frame)
            try:
                self._con.execute(f"insert into {table} ({listed}) select {listed} from __insert_frame")
            finally:
                self._con.unregister("__insert_frame")
        return len(frame)

    def _column_types(self, table: str) -> dict[str, int]:
        """PostgreSQL: ``table``'s columns and their type oids (the table COPY resolves by the search path)."""
        rows = self.query(
            "select attname, atttypid from pg_attribute"
            " where attrelid = cast(? as regclass) and attnum > 0 and not attisdropped",
            [table],
        )
        return dict(rows)

    # -- SQL files -------------------------------------------------------------------------
    def render(self, sql: str, **variables: Any) -> str:
        """Render SQL text for this engine (the macros of ``sql/macros.sql`` are in scope).

        ``variables`` are for identifiers our own code chose (role and schema names); data never
        goes through a template: it is bound as a parameter.
        """
        return self._templates.from_string(sql).render(**variables)

    def render_file(self, path: Path, **variables: Any) -> str:
        return self.render(Path(path).read_text(encoding="utf-8"), **variables)

    def run_file(self, path: Path) -> None:
        """Render and run a SQL file."""
        log.debug("running %s", path)
        self.run_script(self.render_file(path))

    # -- catalogue -------------------------------------------------------------------------
    def relations(self, kind: str) -> set[str]:
        """Names of the tables (``kind='BASE TABLE'``) or views (``'VIEW'``) in the current schema."""
        rows = self.query(
            "select table_name from information_schema.tables"
            " where table_schema = current_schema() and table_type = ?",
            [kind],
        )
        return {name for (name,) in rows}

    @contextmanager
    def keys_built_after(self, table: str) -> Iterator[None]:
        """Drop ``table``'s foreign keys and secondary indexes for the block, build them again after it.

        PostgreSQL only (a no-op on DuckDB, which has no ``drop constraint``), and only when this
        session may alter the table (it owns it, or is a member of its owner). Inside a transaction
        no other session ever sees the table without them. The table is analysed after the rebuild,
        for the plans of the queries that follow.
        """
        foreign_keys, indexes = [], []
        if self.is_postgres:
            owned = "cast(? as regclass) in (select oid from pg_class where pg_has_role(relowner, 'USAGE'))"
            foreign_keys = self.query(
                "select conname, pg_get_constraintdef(oid) from pg_constraint"
                f" where conrelid = cast(? as regclass) and contype = 'f' and {owned}",
                [table, table],
            )
            indexes = self.query(
                "select schemas.nspname, classes.relname, pg_get_indexdef(classes.oid)"
                " from pg_index as indexes"
                " inner join pg_class as classes on classes.oid = indexes.indexrelid"
                " inner join pg_namespace as schemas on schemas.oid = classes.relnamespace"
                f" where indexes.indrelid = cast(? as regclass) and not indexes.indisunique and {owned}",
                [table, table],
            )
        for name, _ in foreign_keys:
            self.execute(f"alter table {table} drop constraint {quote_identifier(name)}")
        for schema, name, _ in indexes:
            self.execute(f"drop index {quote_identifier(schema)}.{quote_identifier(name)}")
        yield
        for _, _, definition in indexes:
            self.execute(definition)
        for name, definition in foreign_keys:
            self.execute(f"alter table {table} add constraint {quote_identifier(name)} {definition}")
        if foreign_keys or indexes:
            self.execute(f"analyze {table}")
            log.debug(
                "%s: %d foreign keys and %d indexes built again", table, len(foreign_keys), len(indexes)
            )

    # -- locks between processes -----------------------------------------------------------
    # PostgreSQL: advisory locks keyed by the lock's name and the current schema (steps on one
    # schema serialise, other schemas never wait). DuckDB needs none: one process at a time holds
    # the file for writing (a second writer waits for it, see DUCKDB_WRITER_LOCK_WAIT).
    _LOCK_KEY = "hashtext(?), hashtext(current_schema())"

    def lock_transaction(self, name: str) -> None:
        """Take the lock ``name`` until the current transaction ends, waiting while another session holds it."""
        if self.is_postgres:
            self.execute(f"select pg_advisory_xact_lock({self._LOCK_KEY})", [name])

    @contextmanager
    def session_lock(self, name: str) -> Iterator[None]:
        """Hold the lock ``name`` for the block, across its transactions (released if the process dies)."""
        if not self.is_postgres:
            yield
            return
        if not self.scalar(f"select pg_try_advisory_lock({self._LOCK_KEY})", [name]):
            log.info("waiting for %s: another process holds it", name)
            self.execute(f"select pg_advisory_lock({self._LOCK_KEY})", [name])
        try:
            yield
        finally:
            try:
                self.execute(f"select pg_advisory_unlock({self._LOCK_KEY})", [name])
            except Exception:  # the connection is gone: so is the lock
                log.debug("could not release %s", name, exc_info=True)


# -- the COPY fast paths (PostgreSQL) -------------------------------------------------------------
# PostgreSQL type oid -> the pyarrow type its COPY CSV text is parsed as, chosen so that the frame
# equals what psycopg2's rows give: integers as int64 (float64 where a null is), real and double as
# float64 (psycopg2 parses real's shortest text as a double too), booleans, text, dates as
# datetime.date objects, timestamps without time zone; numeric as text turned into Decimal objects.
# Any other type (timestamptz, json, arrays, intervals, bytea, ...) takes the row path.
_PG_NUMERIC = 1700
_PG_COPY_TYPES = {
    16: "bool",
    **dict.fromkeys((20, 21, 23), "int64"),  # bigint, smallint, integer
    **dict.fromkeys((700, 701), "float64"),  # real, double precision
    **dict.fromkeys((25, 1043, 1042, 19), "string"),  # text, varchar, char, name
    1082: "date32",
    1114: "timestamp[us]",
    _PG_NUMERIC: "string",
}


def _csv_frame(data: Any, names: list[str], oids: list[int]) -> pd.DataFrame:
    """Parse COPY's CSV (no header; NULL unquoted empty, '' quoted) into the row path's frame."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.csv as pacsv

    # positional names: a result may repeat a column name
    keys = [f"c{i}" for i in range(len(names))]
    types = {key: pa.type_for_alias(_PG_COPY_TYPES[oid]) for key, oid in zip(keys, oids, strict=True)}
    has_text = any(types[key] == pa.string() for key in keys)
    table = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(column_names=keys, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(newlines_in_values=has_text),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    frame = table.to_pandas()
    for key, oid, column in zip(keys, oids, table.columns, strict=True):
        if column.null_count == len(column):
            # the row path infers nothing from a column of None: object dtype
            frame[key] = pd.Series([None] * len(frame), dtype=object)
        elif oid == _PG_NUMERIC:
            frame[key] = pd.Series(
                [None if text is None else Decimal(text) for text in column.to_pylist()], dtype=object
            )
    frame.columns = names
    return frame


def _arrow_writable(frame: pd.DataFrame) -> bool:
    """True if pyarrow writes every column as the pandas path would: numbers, booleans, naive timestamps."""
    for dtype in frame.dtypes:
        if isinstance(dtype, pd.DatetimeTZDtype):
            return False
        if not (
            pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
            or pd.api.types.is_datetime64_dtype(dtype)
        ):
            return False
    return True


def _arrow_csv(frame: pd.DataFrame) -> io.BytesIO:
    """A frame as COPY CSV text, written by pyarrow (NaN and NA as NULL, floats in shortest form)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buffer = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)  # NaN -> null, as pandas writes it
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    buffer.seek(0)
    return buffer


def _pandas_csv(frame: pd.DataFrame) -> io.StringIO:
    """A frame as COPY CSV text, written by pandas (any dtype; text quoted as needed)."""
    buffer = io.StringIO()
    # "\r\n": the csv writer quotes a field holding any character of the line terminator, so a
    # text with a lone "\r" is quoted too (COPY refuses it bare)
    frame.to_csv(buffer, index=False, header=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    buffer.seek(0)
    return buffer


# -- binary COPY FROM (PostgreSQL) -----------------------------------------------------------------
# Each field as the server stores it, so the server parses no text and the client formats none: for
# the columns below, when the frame's column holds exactly the stored values (a float32 frame column
# for a double, integers out of the column's range, timestamps finer than microseconds, text, ...
# leave the frame to the CSV writers, which give the rows as before). Nulls as the CSV paths write
# them: NaN, NaT and pandas' NA.
_PG_BYTEA = 17
_PG_TIMESTAMP = 1114
_PG_BINARY_FIELDS = {  # type oid -> its field, big-endian
    16: "?",  # boolean: one byte
    21: ">i2",
    23: ">i4",
    20: ">i8",
    700: ">f4",
    701: ">f8",
    _PG_TIMESTAMP: ">i8",  # microseconds since 2000-01-01
}
_PG_FLOATS = {700: np.dtype(np.float32), 701: np.dtype(np.float64)}
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_BINARY_TRAILER = b"\xff\xff"
_NULL_FIELD = b"\xff\xff\xff\xff"
_PG_EPOCH = np.datetime64("2000-01-01", "us")


def _binary_fields(frame: pd.DataFrame, types: dict[str, int]) -> list[tuple[str, Any]] | None:
    """Each column's field for binary COPY into the table of ``types``, or None if one has none.

    A fixed-width column gives (field type, values, null mask or None); a bytea column ("blob") the
    list of its cells as bytes or None. A frame of both is copied with its blob columns last.
    """
    fields = []
    for name in frame.columns:
        oid = types.get(name)
        field = _fixed_field(frame[name], oid) if oid in _PG_BINARY_FIELDS else None
        if field is None and oid == _PG_BYTEA:
            field = _blob_field(frame[name])
        if field is None:
            return None
        fields.append((name, field))
    return fields


def _fixed_field(series: pd.Series, oid: int) -> tuple[str, np.ndarray, np.ndarray | None] | None:
    """(field type, values, null mask) of a column for a column of type ``oid``, or None."""
    kind, dtype = _PG_BINARY_FIELDS[oid], series.dtype
    extension = isinstance(dtype, pd.api.extensions.ExtensionDtype)
    mask = series.isna().to_numpy() if extension else None
    if kind.startswith(">i") and oid != _PG_TIMESTAMP:
        if not pd.api.types.is_integer_dtype(dtype):
            return None
        values = series.to_numpy(dtype=dtype.numpy_dtype, na_value=0) if extension else series.to_numpy()
        # out of the column's range: the CSV path, whose COPY refuses it as before
        bounds = np.iinfo(kind)
        if len(values) and (int(values.min()) < bounds.min or int(values.max()) > bounds.max):
            return None
    elif oid in _PG_FLOATS:
        if dtype != _PG_FLOATS[oid]:  # float32 text read as a double is another double
            return None
        values = series.to_numpy()
        mask = np.isnan(values)
    elif kind == "?":
        if dtype == np.bool_:
            values = series.to_numpy()
        elif isinstance(dtype, pd.BooleanDtype):
            values = series.to_numpy(dtype=bool, na_value=False)
        else:
            return None
    else:  # timestamp without time zone
        if extension or not pd.api.types.is_datetime64_dtype(dtype):
            return None
        values = series.to_numpy()
        mask = np.isnat(values)
        micros = np.where(mask, _PG_EPOCH, values).astype("datetime64[us]")
        if not np.array_equal(micros.astype(values.dtype), np.where(mask, _PG_EPOCH, values)):
            return None  # finer than microseconds (or beyond their range): PostgreSQL rounds the text
        values = (micros - _PG_EPOCH).astype(np.int64)
    if mask is not None and not mask.any():
        mask = None
    return kind, values, mask


def _blob_field(series: pd.Series) -> list[bytes | None] | None:
    """A bytea column's cells as bytes: bytes, or the hex text form ``\\x...``; None for any other value."""
    cells = []
    for value in series.tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            cells.append(None)
        elif isinstance(value, bytes | bytearray | memoryview):
            cells.append(bytes(value))
        elif isinstance(value, str) and value.startswith("\\x"):
            try:
                cells.append(bytes.fromhex(value[2:]))
            except ValueError:  # not hex: the CSV path, whose COPY refuses it as before
                return None
        else:
            return None
    return cells


def _binary_rows(fields: list[tuple[str, Any]], start: int, stop: int) -> bytes:
    """Rows ``start:stop`` in binary COPY: per row the field count, then each field's length (-1 = null) and bytes."""
    n = stop - start
    fixed = [field for _, field in fields if isinstance(field, tuple)]
    blobs = [field[start:stop] for _, field in fields if isinstance(field, list)]
    # the fixed-width fields as one record per row (packed), then the bytes of null values cut out
    layout = [("count", ">i2")]
    for j, (kind, _, _) in enumerate(fixed):
        layout += [(f"length{j}", ">i4"), (f"value{j}", kind)]
    rows = np.empty(n, dtype=np.dtype(layout))
    rows["count"] = len(fields)
    for j, (kind, values, mask) in enumerate(fixed):
        width = np.dtype(kind).itemsize
        rows[f"value{j}"] = values[start:stop]
        rows[f"length{j}"] = width if mask is None else np.where(mask[start:stop], -1, width)
    flat = rows.view(np.uint8).reshape(n, rows.itemsize)
    nulls = [(j, kind, mask[start:stop]) for j, (kind, _, mask) in enumerate(fixed) if mask is not None]
    keep = np.ones(flat.shape, dtype=bool) if nulls else None
    for j, kind, mask in nulls:
        offset = rows.dtype.fields[f"value{j}"][1]
        keep[mask, offset : offset + np.dtype(kind).itemsize] = False
    packed = (flat if keep is None else flat[keep]).tobytes()
    if not blobs:
        return packed
    # a row at a time: its fixed fields, then each blob (the model state: few rows, large cells)
    sizes = np.full(n, rows.itemsize) - sum(np.dtype(kind).itemsize * mask for _, kind, mask in nulls)
    ends = np.cumsum(sizes).tolist()
    out, begin = bytearray(), 0
    for i, end in enumerate(ends):
        out += packed[begin:end]
        begin = end
        for cells in blobs:
            cell = cells[i]
            out += _NULL_FIELD if cell is None else len(cell).to_bytes(4, "big") + cell
    return bytes(out)


def _copy_statement(table: str, columns: list[str], form: str) -> str:
    return f"copy {table} ({', '.join(columns)}) from stdin with (format {form})"


def _copy_order(fields: list[tuple[str, Any]]) -> list[str]:
    """The binary COPY's column list: the fixed-width fields in the frame's order, then the bytea ones."""
    return [name for name, field in fields if isinstance(field, tuple)] + [
        name for name, field in fields if isinstance(field, list)
    ]


def _open_duckdb(url: str, read_only: bool, lock_wait_seconds: float | None) -> Any:
    """duckdb.connect, retried with back-off while another process holds the file's lock."""
    import duckdb

    wait = (0.0 if read_only else DUCKDB_WRITER_LOCK_WAIT) if lock_wait_seconds is None else lock_wait_seconds
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return duckdb.connect(url, read_only=read_only)
        except duckdb.IOException as exc:
            locked = "lock" in str(exc).lower()
            if not locked or time.monotonic() + delay > deadline:
                raise DatabaseError(f"cannot open {url}: {exc}") from exc
            log.debug("%s is locked by another process; retrying in %.2f s", url, delay)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _environment(engine: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(SQL_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    macros = env.get_template("macros.sql").make_module({"engine": engine})
    env.globals.update({name: getattr(macros, name) for name in dir(macros) if not name.startswith("_")})
    env.globals["engine"] = engine
    return env
