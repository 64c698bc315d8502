"""The loader's engine fast path: a file staged by the engine's own CSV reader, checked in SQL.

:func:`stage_by_engine` reads a file with DuckDB's ``read_csv`` or PostgreSQL's ``COPY ... FROM
STDIN (format csv)``, every field as text, numbers the records in file order, and inserts the typed rows into
the file's staging table (``load_stage_<table>``, as the Python path of scripts/load.py fills it)
with one ``insert ... select`` whose ``where`` accepts only cells the data contract surely accepts
(sql/load_fast_path.sql; on DuckDB the rows are first typed into a table by every thread, then
numbered by their rowid). It stages a file only when the result is exactly the Python path's:

- the bytes first (:func:`scan`): valid UTF-8 without NUL, one kind of line end (``\\n`` or
  ``\\r\\n``, no bare ``\\r``), every quote part of a field quoted from its first character to its
  last (the readers differ from Python's csv module on a quote anywhere else), no line that is
  ``\\.`` alone (PostgreSQL's end of data), and the header on the first line;
- then every physical line after the header must have become one staged row: a record spanning
  several lines (a quoted newline), a blank line, a row of the wrong width or any cell outside the
  accepted subset leaves fewer rows than lines. The ordinal + 1 is then the physical line.

Anything else returns None with the staging table emptied, and the loader stages the file with its
Python path, which gives the exact messages (line, column, the value as it was quoted). Nothing
here ever reports a problem: the fast path either stages what Python would, or steps aside.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from scripts.contract import FUTURE_TOLERANCE, PRICE_MAX, FileContract
from scripts.db import SQL_DIR, Database

log = logging.getLogger(__name__)

# Test hook and escape hatch: SHOEREC_LOAD_ENGINE_STAGING=0 stages every file with the Python path
ENV_ENGINE_STAGING = "SHOEREC_LOAD_ENGINE_STAGING"
TEMPLATE = SQL_DIR / "load_fast_path.sql"
SCAN_BLOCK = 1 << 24  # bytes read at a time by the scan
COPY_BLOCK = 1 << 20  # bytes handed to COPY at a time
MAX_FIELDS = 100  # a wider header (extra columns) is left to the Python path: one SQL term per field
# a line whose every quote belongs to a field quoted from its first character to its last
_FIELD = rb'(?:[^",\r\n]*|"(?:[^"\r\n]|"")*")'
_QUOTED_LINE = re.compile(rb"%s(?:,%s)*\r?" % (_FIELD, _FIELD))
_LINE_WITH_QUOTE = re.compile(rb'[^\n]*"[^\n]*')
_END_OF_DATA = re.compile(rb"^\\\.\r?$", re.MULTILINE)


def _masks() -> dict[str, list[str]]:
    """The shapes the fast path accepts per kind, as masks: each digit 9, any other character itself.

    A subset of what the contract accepts (scripts/contract.py): ids of 1-18 digits and integers of
    1-9 (a sign allowed), prices of at most 7 digits and 2 decimals (a plus sign allowed), dates
    YYYY-MM-DD, timestamps YYYY-MM-DD[(T| )HH:MM[:SS[.f{1,6}]][Z|+HH|+HHMM|+HH:MM]] (or -).
    """

    def signed(digits: int, signs: tuple[str, ...]) -> list[str]:
        return [sign + "9" * n for n in range(1, digits + 1) for sign in signs]

    decimals = [
        sign + "9" * n + part for sign in ("", "+") for n in range(1, 8) for part in ("", ".", ".9", ".99")
    ]
    decimals += [sign + part for sign in ("", "+") for part in (".9", ".99")]
    date = "9999-99-99"
    times = ["99:99", "99:99:99"] + ["99:99:99." + "9" * n for n in range(1, 7)]
    offsets = ["", "Z"] + [sign + part for part in ("99", "9999", "99:99") for sign in "+-"]
    timestamps = [date] + [date + sep + time + offset for sep in "T " for time in times for offset in offsets]
    return {
        "id": signed(18, ("", "+", "-")),
        "integer": signed(9, ("", "+", "-")),
        "decimal": decimals,
        "date": [date],
        "timestamp": timestamps,
    }


MASKS = _masks()
# the same shapes as one regular expression each, which DuckDB matches (its RE2 builds one automaton
# of the alternatives): each digit [0-9], any other character in brackets, so no '?' (a parameter)
PATTERNS = {
    kind: "("
    + "|".join("".join("[0-9]" if char == "9" else f"[{char}]" for char in mask) for mask in masks)
    + ")"
    for kind, masks in MASKS.items()
}


def _ranged_patterns() -> dict[str, str]:
    """DuckDB's patterns of dates and timestamps: the shapes of ``MASKS`` with the ranges in them.

    The ranges PostgreSQL checks on the text (sql/load_fast_path.sql: valid_day, valid_time): the
    years from 1900 (a date) or 1800 (a timestamp) to 2999, months 01-12, days 01-31, hours to 23,
    minutes and seconds to 59, an offset to 14:59; try_cast then refuses a day its month lacks.
    RE2 matches them in the same one pass over the text, where testing each range took 2.3 of 7 s
    for 5M events. Written without '?' (the parameter): an optional part is ``(part|)``;
    tests/test_engine_staging.py checks that, its ranges widened to [0-9], each is ``MASKS``' shapes.
    """
    day = "[-](0[1-9]|1[0-2])[-](0[1-9]|[12][0-9]|3[01])"
    minutes = "[0-5][0-9]"
    fraction = "|".join("[.]" + "[0-9]" * digits for digits in range(1, 7))
    time = f"([01][0-9]|2[0-3])[:]{minutes}([:]{minutes}({fraction}|)|)"
    offset = f"(Z|[+-](0[0-9]|1[0-4])({minutes}|[:]{minutes}|)|)"
    return {
        "date": f"((19[0-9][0-9]|2[0-9][0-9][0-9]){day})",
        "timestamp": f"((1[89][0-9][0-9]|2[0-9][0-9][0-9]){day}([T ]{time}{offset}|))",
    }


PATTERNS.update(_ranged_patterns())
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"  # a choice's shape: these and spaces
# the whitespace of Python's str.strip: a text cell is blank when it holds nothing else
WHITESPACE = "".join(chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace())


def engine_staging_enabled() -> bool:
    """The default of ``load(engine_staging=...)``: on, unless ``$SHOEREC_LOAD_ENGINE_STAGING`` is 0."""
    return os.environ.get(ENV_ENGINE_STAGING, "1").strip().lower() not in {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Scan:
    """What the bytes of a file say: where its data starts, and its physical lines after the header."""

    data_start: int  # the offset of the first byte after the header line
    lines: int


def scan(path: Path) -> Scan | str:
    """The bytes of ``path`` checked for the fast path: a :class:`Scan`, or why the file is deferred.

    A line is counted as Python's csv module counts it: each ``\\n`` (or ``\\r\\n``) ends one, and a
    last line without one counts too.
    """
    with path.open("rb") as handle:
        first = handle.readline()
        if first.count(b"\r") != first.count(b"\r\n"):
            return "a carriage return inside the header line"
        if not first.endswith(b"\n"):
            return Scan(len(first), 0)
        crlf = first.endswith(b"\r\n")
        lines, carry = 0, b""
        while block := handle.read(SCAN_BLOCK):
            data = carry + block if carry else block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            part, carry = (data[:cut], data[cut:]) if cut < len(data) else (data, b"")
            reason = _deferral(part, crlf)
            if reason:
                return reason
            lines += part.count(b"\n")
        if carry:
            reason = _deferral(carry, crlf)
            if reason:
                return reason
            lines += 1
    return Scan(len(first), lines)


def _deferral(part: bytes, crlf: bool) -> str | None:
    """Why whole lines ``part`` need the Python path, or None."""
    if b"\x00" in part:
        return "a NUL byte"
    carriage_returns = part.count(b"\r")
    if carriage_returns:
        line_ends = part.count(b"\r\n")
        if carriage_returns != line_ends:
            return "a carriage return that does not end a line"
        if not crlf or line_ends != part.count(b"\n"):
            return "lines ending in \\n and in \\r\\n"
    elif crlf and b"\n" in part:
        return "lines ending in \\n and in \\r\\n"
    if not part.isascii():
        try:
            part.decode("utf-8")
        except UnicodeDecodeError:
            return "bytes that are not UTF-8"
    if b'"' in part:
        for line in _LINE_WITH_QUOTE.finditer(part):
            if not _QUOTED_LINE.fullmatch(line.group()):
                return "a quote inside a field, or a quoted line end"
    if b"\\." in part and _END_OF_DATA.search(part):
        return "a line holding only \\."
    # Python's csv module refuses a field longer than its field_size_limit; a line no longer than
    # that (in bytes, so in characters too) cannot hold one
    line_ends = np.flatnonzero(np.frombuffer(part, dtype=np.uint8) == ord("\n"))
    lengths = np.diff(np.concatenate(([-1], line_ends, [len(part)]))) - 1  # \r\n counts a byte more
    if lengths.max() > csv.field_size_limit():
        return f"a line longer than {csv.field_size_limit():,} bytes"
    return None


def stage_by_engine(
    db: Database, contract: FileContract, header, stage: str, now: datetime
) -> tuple[int, int] | None:
    """Stage ``header.path`` into ``stage`` by the engine: (records, physical lines), or None.

    ``header`` is the loader's header of the file (its path, width, field positions, end line).
    None means the file needs the Python path; ``stage`` is then empty again (it was empty before).
    """
    if header.end_line != 1:
        return _deferred(contract, "the header is not the first line")
    if header.width > MAX_FIELDS:
        return _deferred(contract, f"{header.width:,} fields in the header")
    scanned = scan(header.path)
    if isinstance(scanned, str):
        return _deferred(contract, scanned)
    names = [f"c{position + 1}" for position in range(header.width)]
    columns = [
        {
            "column": column.column,
            "kind": column.kind,
            "required": column.required,
            "low": column.low,
            "high": column.high,
            "choices": column.choices,
            # a column the header leaves out (may_be_absent) is empty in every row
            "cell": f"coalesce({names[header.positions[column.name]]}, '')"
            if column.name in header.positions
            else "''",
        }
        for column in contract.columns
    ]
    latest = (now + FUTURE_TOLERANCE).replace(tzinfo=None)  # naive UTC, as the staging table stores it
    params = [latest for column in contract.columns if column.kind == "timestamp"]
    if db.is_postgres:
        source = f"load_text_{contract.table}"
        staged = _copy_text(db, header.path, scanned, source, names)
        if staged is None:
            return _deferred(contract, "COPY refused the file")
    else:
        if not db.scalar("select current_setting('preserve_insertion_order')"):
            return _deferred(
                contract, "preserve_insertion_order is off (the ordinals would not be file order)"
            )
        source = _read_csv(header.path, names)
    typed_table = f"load_typed_{contract.table}"  # DuckDB: the typed rows, numbered by their rowid
    render = dict(
        stage=stage,
        columns=columns,
        source=source,
        numbered=db.is_postgres,  # COPY numbered the rows as it read them; DuckDB numbers them after typing
        typed_table=typed_table,
        masks=MASKS,
        patterns=PATTERNS,
        letters=LETTERS,
        whitespace=WHITESPACE,
        price_max=f"{PRICE_MAX:.2f}",
    )
    # PostgreSQL plans it without JIT: compiling the long expressions took 4 of 16 s for 2M events
    jit = db.scalar("select current_setting('jit')") if db.is_postgres else None
    try:
        if db.is_postgres:
            db.execute("select set_config('jit', 'off', true)")
        else:
            first = _type_rows(db, render)
            if first is None:
                return _deferred(contract, "the typed rows' rowids are not one run")
            render["first_rowid"] = first
        db.execute(db.render_file(TEMPLATE, step="insert", **render), params)
        inserted = db.scalar(f"select count(*) from {stage}")
    finally:
        if db.is_postgres:
            db.execute("select set_config('jit', ?, true)", [jit])
        db.execute(f"drop table if exists {source if db.is_postgres else typed_table}")
    if inserted != scanned.lines:
        db.execute(f"delete from {stage}")
        reason = (
            f"{scanned.lines - inserted:,} of {scanned.lines:,} lines are not rows of the accepted subset"
        )
        return _deferred(contract, reason)
    log.debug("%s: %d records staged by the engine", contract.file_name, inserted)
    return inserted, scanned.lines


def _type_rows(db: Database, render: dict) -> int | None:
    """DuckDB: the file's rows typed into ``render['typed_table']``; the rowid of its first, or None.

    A create table ... as select keeps the order of its source (preserve_insertion_order, checked
    by the caller) while every thread types rows, so the rows' rowids follow the file's records;
    within the load's transaction they start at a large base, not 0 (hence the first one). Rowids
    that are not one run (never seen) leave the file to the Python path.
    """
    table = render["typed_table"]
    db.execute(db.render_file(TEMPLATE, step="type", **render))
    first, last, rows = db.query(f"select min(rowid), max(rowid), count(*) from {table}")[0]
    if rows and last - first + 1 != rows:
        return None
    return first or 0


def _deferred(contract: FileContract, reason: str) -> None:
    log.debug("%s: staged by the Python path: %s", contract.file_name, reason)


def _read_csv(path: Path, names: list[str]) -> str:
    """DuckDB: the file's fields after the header as text, in file order; a row it cannot read is dropped."""
    listed = ", ".join(f"'{name}': 'VARCHAR'" for name in names)
    return (
        f"read_csv({_literal(str(path))}, header = false, skip = 1, auto_detect = false, delim = ',',"
        " quote = '\"', escape = '\"', strict_mode = true, null_padding = false, ignore_errors = true,"
        f" max_line_size = {1 << 21}, columns = {{{listed}}})"
    )


def _copy_text(db: Database, path: Path, scanned: Scan, table: str, names: list[str]) -> int | None:
    """PostgreSQL: the file's fields after the header into the temp table ``table``; its rows, or None.

    The COPY runs under a savepoint, so that one it refuses (a row of the wrong width, ...) leaves
    the load's transaction as it was; ``record`` numbers the rows in the order COPY read them.
    """
    import psycopg2

    listed = ", ".join(f"{name} text" for name in names)
    db.execute(f"create temp table {table} (record bigint generated always as identity, {listed})")
    with db.raw.cursor() as cur:
        cur.execute("savepoint load_copy_text")
        try:
            with path.open("rb") as handle:
                handle.seek(scanned.data_start)
                cur.copy_expert(
                    f"copy {table} ({', '.join(names)}) from stdin with (format csv)", handle, size=COPY_BLOCK
                )
        except psycopg2.Error as exc:
            cur.execute("rollback to savepoint load_copy_text")
            log.debug("COPY of %s: %s", path.name, str(exc).strip().splitlines()[0])
            db.execute(f"drop table if exists {table}")
            return None
        cur.execute("release savepoint load_copy_text")
    return db.scalar(f"select count(*) from {table}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
