"""Load users.csv, shoes.csv and interactions.csv into the database: validated, all or nothing, idempotent.

    python -m scripts.load --data-dir DIR [--db ...] [--skip-invalid]

A file missing from DIR means "no change" to its table: a day's new events come as interactions.csv
alone, checked against the users and shoes already loaded. A folder with none of the three files is
refused. After every load the reference date in force is logged (today, or the date in settings, e.g.
the one the demo build set).

Each file is first staged by the engine's own reader (scripts/staging.py: DuckDB read_csv, or
PostgreSQL COPY into a text table, typed and checked in one insert ... select of
sql/load_fast_path.sql) when every cell is in the subset that SQL surely accepts. Any other file
(a problem, a rare shape, a quoted newline) is streamed with the csv module instead (physical line
numbers, also for quoted newlines), checked column by column in chunks (scripts/contract.py) with
the exact messages, and bulk-written into the same temporary staging tables (COPY on PostgreSQL).
Either way the staged rows are the same; they are checked again in SQL (duplicate ids, interactions naming users or
shoes that exist neither in the files nor in the database), and merged in ONE transaction:
users and shoes are upserted (only rows that really changed count as loaded), interactions are
appended (an event already stored, or repeated in the file, is stored once).

Strict by default: one invalid row and nothing at all is written; the problems are printed as
``file:line:column: column_name: 'value' reason`` (the first 50, then how many more) and the
exit code is 2. With --skip-invalid the valid rows load and every refused row is kept in
load_rejects (with the load_runs row of the load); rows that depend on a refused row are refused
too. Exit codes: 0 loaded, 2 invalid input, 1 anything else (database unreachable, ...).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import io
import logging
import os
import re
import sys
import time
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from scripts.cli import base_parser, setup_logging
from scripts.clock import utc_now
from scripts.contract import (
    CONTRACTS,
    INTERACTIONS,
    SHOES,
    USERS,
    FileContract,
    parse_column,
    quote,
    storable,
)
from scripts.db import ROOT, Database, DatabaseError, UsageError, exit_code, quote_identifier
from scripts.killpoints import kill_point
from scripts.schema import SCHEMA_LOCK, create_tables
from scripts.staging import engine_staging_enabled, stage_by_engine

log = logging.getLogger(__name__)

DATA_DIR = ROOT / "data"
CHUNK_ROWS = 100_000
REPORTED_PROBLEMS = 50  # printed by the CLI / str(LoadError)
KEPT_PROBLEMS = 10_000  # carried by LoadError.problems (the count covers all of them)
REPORTED_WARNINGS = 5  # per file and kind (extra columns): the first few, then how many more
BLOCK_LINES = 16_384  # lines read from a file at a time (kept until their records are done)
CHECK_ROWS = 1_000  # records parsed between checks for a multi-line record to read again
PROGRESS_MIN_BYTES = 1 << 20
BULK_ROWS = 100_000  # new events from which PostgreSQL builds the keys and indexes after the append
# DuckDB: the memory a load may use, set on its connection for the load (restored after); sorts and
# joins beyond it spill to the database's temporary directory. The interactions key is kept by the
# merge, not an index (sql/macros.sql, merge_enforced_key): 5M events peak at 1.55 GiB instead of
# 2.34 GiB, +0.3 GiB per 5M more (README, the benchmark). SHOEREC_LOAD_MEMORY_LIMIT overrides it.
ENV_LOAD_MEMORY_LIMIT = "SHOEREC_LOAD_MEMORY_LIMIT"
LOAD_MEMORY_LIMIT = "2GB"
TABLES = {"users", "shoes", "interactions", "interaction_types", "load_runs", "load_rejects"}
# Test hook: SHOEREC_LOAD_KILL_AT=<stage>[:<k>] kills this process with SIGKILL the k-th time (default:
# the first) it reaches that stage; CHECKPOINTS lists them in the order a load reaches them (chunk: after each
# chunk is staged; staged: after each file; merge: after each merge statement).
KILL_AT_ENV = "SHOEREC_LOAD_KILL_AT"
CHECKPOINTS = (
    "transaction_started",
    "chunk",
    "staged",
    "references_checked",
    "merge",
    "run_recorded",
    "before_commit",
    "committed",
)
_reached: Counter = Counter()  # checkpoints reached by this process, per stage
REJECT_COLUMNS = (
    "file_index",
    "file_name",
    "line_number",
    "column_number",
    "column_name",
    "raw_value",
    "shown_value",
    "reason",
)


# -- what a load reports -----------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (file, line, column) and why.

    ``line`` is the physical line where the record starts (header = 1); ``column`` the 1-based
    position in the file's header. Both are None for a whole-file problem; ``column`` is None for a
    whole-row problem (wrong number of fields, malformed quoting).
    """

    file: str
    line: int | None
    column: int | None
    column_name: str | None
    value: str | None
    reason: str
    shown: str | None = None  # the value as the message shows it (repr escaping, cut)

    def __str__(self) -> str:
        where = (
            self.file + (f":{self.line}" if self.line else "") + (f":{self.column}" if self.column else "")
        )
        if self.column_name is None:
            return f"{where}: {self.reason}"
        return f"{where}: {self.column_name}: {self.shown or quote(self.value)} {self.reason}"


class LoadError(Exception):
    """The input breaks the contract; nothing was written.

    Attributes
    ----------
    problems : list of Problem
        The problems in file order (the first ``KEPT_PROBLEMS`` of them).
    count : int
        How many problems there are in all.
    """

    def __init__(self, problems: list[Problem], count: int | None = None, data_dir: Path | str | None = None):
        self.problems = list(problems)
        self.count = len(self.problems) if count is None else count
        self.data_dir = data_dir
        super().__init__(self.problems)

    def __str__(self) -> str:
        if self.count == 1 and self.data_dir is not None and self.problems[0].file == str(self.data_dir):
            return f"{self.problems[0]}; nothing was loaded"  # the folder itself: one line
        where = f" in {self.data_dir}" if self.data_dir else ""
        noun = "problem" if self.count == 1 else "problems"
        lines = [f"{self.count} {noun}{where}; nothing was loaded:"]
        lines += [str(problem) for problem in self.problems[:REPORTED_PROBLEMS]]
        if self.count > REPORTED_PROBLEMS:
            lines.append(f"... and {self.count - REPORTED_PROBLEMS} more")
        return "\n".join(lines)


@dataclass
class FileCounts:
    """Rows of one file: read = loaded + unchanged + duplicates + rejected.

    ``lines`` counts the physical lines after the header: each is the first line of a record read,
    a blank line, or a line inside a quoted field of a well-formed record (quoted newlines).
    """

    read: int = 0
    lines: int = 0
    present: bool = True  # False: the file was not in the folder (its table unchanged)
    loaded: int = 0  # inserted, or (users, shoes) changed
    unchanged: int = 0  # identical to what the database held
    duplicates: int = 0  # interactions repeated within the file
    rejected: int = 0
    staged_by: str = field(default="", compare=False)  # "engine" or "python": the path that staged the file


@dataclass
class LoadSummary:
    """What a committed load did."""

    data_dir: str
    skip_invalid: bool
    load_id: int
    files: dict[str, FileCounts]
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(counts.read for counts in self.files.values())

    @property
    def rows_loaded(self) -> int:
        return sum(counts.loaded for counts in self.files.values())

    @property
    def rows_rejected(self) -> int:
        return sum(counts.rejected for counts in self.files.values())

    def __str__(self) -> str:
        per_file = ", ".join(
            f"{name.removesuffix('.csv')} {counts.loaded:,}/{counts.read:,}"
            if counts.present
            else f"{name.removesuffix('.csv')} absent (unchanged)"
            for name, counts in self.files.items()
        )
        unchanged = sum(counts.unchanged for counts in self.files.values())
        duplicates = sum(counts.duplicates for counts in self.files.values())
        return (
            f"load {self.load_id}: read {self.rows_read:,} rows, loaded {self.rows_loaded:,} ({per_file}),"
            f" unchanged {unchanged:,}, duplicates {duplicates:,}, rejected {self.rows_rejected:,}"
            f" in {self.seconds:.1f} s"
        )


# -- reading the files ---------------------------------------------------------------------------
@dataclass
class _Header:
    path: Path
    width: int  # fields in the header
    positions: dict[str, int]  # contract column -> 0-based field position
    end_line: int  # the line the header ends on


def _open(path: Path) -> io.TextIOWrapper:
    # utf-8-sig drops a BOM; surrogateescape keeps bad bytes so that a row, not the file, is refused
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _read_header(reader) -> list[str] | None:
    """The first non-blank record (the header), or None for an empty file."""
    for row in reader:
        if row:
            return row
    return None


def check_files(data_dir: Path | str) -> tuple[dict[str, _Header], list[str]]:
    """Check the files present in ``data_dir``: their headers name every contract column.

    A file that is absent is left out of the headers (its table stays as it is); at least one of the
    three must be there. Returns the headers and warnings (extra columns, ignored); raises
    :class:`LoadError` otherwise.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise LoadError(
            [Problem(str(data_dir), None, None, None, None, "data directory not found")], data_dir=data_dir
        )
    names = [contract.file_name for contract in CONTRACTS]
    if not any((data_dir / name).is_file() for name in names):
        reason = f"none of {', '.join(names)} is in this folder"
        raise LoadError([Problem(str(data_dir), None, None, None, None, reason)], data_dir=data_dir)
    headers, problems, warnings = {}, [], []
    for contract in CONTRACTS:
        name, path = contract.file_name, data_dir / contract.file_name
        expected = ",".join(contract.header_names)  # optional columns (may_be_absent) need not be named
        if not path.exists():
            continue  # not in this delivery: the table keeps what it holds
        if not path.is_file():
            problems.append(Problem(name, None, None, None, None, f"is not a file in {data_dir}"))
            continue
        with _open(path) as stream:
            reader = csv.reader(stream, strict=True)
            try:
                header = _read_header(reader)
            except csv.Error as exc:
                problems.append(Problem(name, reader.line_num, None, None, None, f"malformed header ({exc})"))
                continue
        if header is None:
            problems.append(
                Problem(name, None, None, None, None, f"file is empty; expected a header line: {expected}")
            )
            continue
        line = reader.line_num
        names = [cell.strip() for cell in header]
        if any(storable(cell) != cell for cell in names):
            problems.append(Problem(name, line, None, None, None, "header is not valid UTF-8 text"))
            continue
        positions: dict[str, int] = {}
        extra = 0
        for position, column in enumerate(names):
            if column in positions:
                problems.append(
                    Problem(name, line, position + 1, None, None, f"column {column!r} appears twice")
                )
            elif column in contract.names:
                positions[column] = position
            else:
                extra += 1
                if extra <= REPORTED_WARNINGS:
                    warnings.append(f"{name}:{line}:{position + 1}: extra column {quote(column)} is ignored")
        if extra > REPORTED_WARNINGS:
            warnings.append(
                f"{name}:{line}: ... and {extra - REPORTED_WARNINGS:,} more extra columns are ignored"
            )
        for column in contract.header_names:
            if column not in positions:
                problems.append(
                    Problem(name, line, None, None, None, f"missing column {column!r} (expected {expected})")
                )
        headers[name] = _Header(path, len(header), positions, line)
    if problems:
        raise LoadError(problems, data_dir=data_dir)
    return headers, warnings


class _Records:
    """The CSV records of a text stream with their physical line numbers, readable again from any line.

    The lines are read in blocks and kept until :meth:`forget`, so that a line's raw text can be
    shown and the records read again from it: a record with broken quoting or the wrong number of
    fields that ran over several lines (an unclosed quote swallows every line up to the next quote,
    or up to the csv module's field size limit) is refused by its first line alone, and the lines
    after it are read again as records of their own.
    """

    def __init__(self, stream, block_lines: int = BLOCK_LINES):
        self.stream = stream
        self._block_lines = block_lines
        self._blocks: deque[tuple[int, list[str]]] = deque()  # (number of the first line, lines)
        self._lines_read = 0
        self._source = self._fill()
        self.restart(1)

    def _fill(self):
        while block := list(islice(self.stream, self._block_lines)):
            self._blocks.append((self._lines_read + 1, block))
            self._lines_read += len(block)
            yield block

    def restart(self, line: int) -> None:
        """Read the records again from physical line ``line`` on (1 = the first line of the file)."""
        kept = [block[max(line - first, 0) :] for first, block in self._blocks if first + len(block) > line]
        self.offset = line - 1  # physical lines before the reader's first line
        self.reader = csv.reader(chain(*kept, chain.from_iterable(self._source)), strict=True)

    @property
    def line_num(self) -> int:
        """The physical line the last record read ends on."""
        return self.offset + self.reader.line_num

    @property
    def lines_read(self) -> int:
        """Physical lines read from the stream so far."""
        return self._lines_read

    def line(self, number: int) -> str:
        """The raw text of physical line ``number``, without its line end (it must not be forgotten)."""
        for first, block in self._blocks:
            if first <= number < first + len(block):
                return block[number - first].rstrip("\r\n")
        raise LookupError(f"line {number} is no longer kept")

    def forget(self, before: int) -> None:
        """Drop the blocks that hold only lines before ``before``."""
        while self._blocks and self._blocks[0][0] + len(self._blocks[0][1]) <= before:
            self._blocks.popleft()


def _first_line_refused(records: _Records, file_name: str, start: int, end: int, reason: str) -> Problem:
    """A malformed record of lines ``start``..``end``, refused by its first line (the others are read again)."""
    reason += f"; it ran on to line {end}: this line is refused, the lines after it are read again"
    return Problem(file_name, start, None, None, storable(records.line(start)), reason)


@dataclass
class _Chunk:
    lines: np.ndarray  # start line of each well-formed record
    rows: list[list[str]]  # the well-formed records
    malformed: list[Problem]  # records with a wrong field count or broken quoting
    records: int  # well-formed + malformed (blank lines are not records)


def _chunks(records: _Records, file_name: str, width: int, last_end: int, chunk_rows: int):
    """Chunks of records with their physical start lines (a record may span several lines).

    A malformed record (broken quoting, or the wrong number of fields) that spans several lines is
    refused by its first line, with that line's raw text; the records are read again from the next
    line, so that every line is loaded or refused on its own.
    """
    while True:
        rows: list[list[str]] = []
        ends: list[int] = []  # the line each record ends on
        broken: list[Problem] = []  # records refused by their first line (broken quoting, run-on rows)
        boundary = last_end  # the line the last record (or refused line) ends on
        with _gc_paused():  # a chunk is 100k new lists: the collector would scan them again and again
            while len(rows) < chunk_rows:
                reader, offset, done = records.reader, records.offset, len(rows)
                wanted = min(chunk_rows - done, CHECK_ROWS)
                error = None
                try:
                    rows.extend(
                        row for row in islice(reader, wanted) if not ends.append(offset + reader.line_num)
                    )
                except csv.Error as exc:
                    error = exc
                got = len(rows) - done
                if got and ends[-1] - boundary != got:  # a record spans several lines: a run-on row?
                    new_ends = np.array(ends[done:], dtype=np.int64)
                    new_starts = np.concatenate(([boundary], new_ends[:-1])) + 1
                    lengths = np.fromiter(map(len, rows[done:]), dtype=np.int64, count=got)
                    run_on = np.flatnonzero((lengths != width) & (lengths > 0) & (new_ends > new_starts))
                    if run_on.size:  # refuse its first line, read on from the next (an error after it: again)
                        i, start = int(run_on[0]), int(new_starts[run_on[0]])
                        reason = f"row has {lengths[i]} fields; the header has {width}"
                        broken.append(
                            _first_line_refused(records, file_name, start, int(new_ends[i]), reason)
                        )
                        del rows[done + i :], ends[done + i :]
                        records.restart(start + 1)
                        boundary = start
                        continue
                if got:
                    boundary = ends[-1]
                if error is not None:
                    start, here = boundary + 1, records.line_num
                    if here < start:  # nothing consumed: stop rather than spin
                        break
                    reason = f"malformed CSV record ({error})"
                    if here > start:
                        broken.append(_first_line_refused(records, file_name, start, here, reason))
                        records.restart(start + 1)
                    else:
                        broken.append(
                            Problem(file_name, start, None, None, storable(records.line(start)), reason)
                        )
                    boundary = start
                    continue
                if got < wanted:  # the end of the file
                    break
        if not rows and not broken:
            return
        # a record starts on the line after the previous record (or refused line) ends
        row_ends = np.array(ends, dtype=np.int64)
        boundaries = np.sort(np.array([last_end, *ends, *(p.line for p in broken)], dtype=np.int64))
        starts = boundaries[np.searchsorted(boundaries, row_ends) - 1] + 1
        last_end = int(boundaries[-1])
        records.forget(last_end + 1)

        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        good = lengths == width
        malformed = [
            Problem(
                file_name,
                int(starts[i]),
                None,
                None,
                storable(_record_text(rows[i])),
                f"row has {lengths[i]} fields; the header has {width}",
            )
            for i in np.flatnonzero(~good & (lengths > 0))  # an empty list is a blank line: skipped
        ]
        malformed += broken
        if not good.all():
            rows = [rows[i] for i in np.flatnonzero(good)]
        yield _Chunk(starts[good], rows, malformed, len(rows) + len(malformed))


def _checkpoint(stage: str) -> None:
    """Test hook: die here, as abruptly as possible, if ``$SHOEREC_LOAD_KILL_AT`` names this stage."""
    kill_point(KILL_AT_ENV, _reached, stage)


@contextmanager
def _step(name: str):
    """Log how long a step took (debug level: ``-v``)."""
    clock = time.perf_counter()
    yield
    log.debug("%s: %.2f s", name, time.perf_counter() - clock)


@contextmanager
def _gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _record_text(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()


# -- checking a chunk --------------------------------------------------------------------------
def _stage_name(contract: FileContract) -> str:
    return f"load_stage_{contract.table}"


def _validate(chunk: _Chunk, index: int, contract: FileContract, header: _Header, categories, now):
    """Split a chunk into staged rows, problems, and the keys of refused rows."""
    n = len(chunk.rows)
    refused = np.zeros(n, dtype=bool)
    values, problems = {}, []
    for column in contract.columns:
        position = header.positions.get(column.name)
        # a column the header leaves out (only a may_be_absent one gets here) is empty in every row
        raw = list(map(itemgetter(position), chunk.rows)) if position is not None else [""] * n
        parsed, reasons = parse_column(column, raw, categories=categories, now=now)
        bad = pd.notna(reasons)
        if bad.any():
            cells = [raw[i] for i in np.flatnonzero(bad)]
            problems.append(
                pd.DataFrame(
                    {
                        "file_index": index,
                        "file_name": contract.file_name,
                        "line_number": chunk.lines[bad],
                        "column_number": position + 1,
                        "column_name": column.name,
                        # an empty cell is stored as NULL: PostgreSQL's COPY cannot tell '' from NULL
                        "raw_value": pd.Series([storable(cell) or None for cell in cells], dtype="str"),
                        "shown_value": pd.Series([quote(cell) for cell in cells], dtype="str"),
                        "reason": pd.Series(reasons[bad], dtype="str"),
                    }
                )
            )
            refused |= bad
        values[column.column] = parsed
    if chunk.malformed:
        problems.append(
            pd.DataFrame(
                [(index, p.file, p.line, None, None, p.value, None, p.reason) for p in chunk.malformed],
                columns=list(REJECT_COLUMNS),
            ).astype(
                {"column_number": "Int64", "column_name": "str", "raw_value": "str", "shown_value": "str"}
            )
        )
    kept = ~refused
    if refused.any():
        staged = pd.DataFrame({name: series[kept].reset_index(drop=True) for name, series in values.items()})
    else:
        staged = pd.DataFrame(values)
    staged.insert(0, "line_number", chunk.lines[kept])
    keys = None
    if len(contract.key) == 1:
        # refused rows whose key is fine: interactions naming them are refused as dependants
        key = values[contract.key[0]]
        known = refused & key.notna().to_numpy()
        if known.any():
            keys = pd.DataFrame(
                {
                    "file_index": index,
                    "key_value": key[known].to_numpy(dtype=np.int64),
                    "line_number": chunk.lines[known],
                }
            )
    rejects = pd.concat(problems, ignore_index=True) if problems else None
    return staged, rejects, keys


# -- SQL ------------------------------------------------------------------------------------------
def _create_staging(db: Database) -> None:
    for contract in CONTRACTS:
        columns = ", ".join(f"{column.column} {column.sql_type}" for column in contract.columns)
        db.execute(f"create temp table {_stage_name(contract)} (line_number bigint not null, {columns})")
    db.execute(
        "create temp table load_stage_rejects (file_index integer not null, file_name text not null,"
        " line_number bigint, column_number integer, column_name text, raw_value text, shown_value text,"
        " reason text not null)"
    )
    db.execute(
        "create temp table load_stage_rejected_keys (file_index integer not null, key_value bigint not null,"
        " line_number bigint not null)"
    )


def _drop_staging(db: Database) -> None:
    names = [_stage_name(contract) for contract in CONTRACTS] + [
        "load_stage_rejects",
        "load_stage_rejected_keys",
    ]
    names += [f"load_changed_{contract.table}" for contract in CONTRACTS] + ["load_distinct_interactions"]
    for name in names:
        db.execute(f"drop table if exists {name}")


def _reject_duplicate_keys(db: Database, index: int, contract: FileContract, header: _Header) -> None:
    """Later rows repeating a user_id / shoe_id of the same file are refused (the first one stays)."""
    key, stage = contract.key[0], _stage_name(contract)
    db.execute(
        f"""
        insert into load_stage_rejects ({", ".join(REJECT_COLUMNS)})
        select ?, ?, line_number, ?, ?, cast({key} as text), '''' || cast({key} as text) || '''',
            'is a duplicate {key} (first on line ' || cast(first_line as text) || ')'
        from (
            select line_number, {key}, min(line_number) over (partition by {key}) as first_line
            from {stage}
        ) as keyed
        where line_number > first_line
        """,
        [index, contract.file_name, header.positions[key] + 1, key],
    )
    db.execute(
        f"delete from {stage} where line_number in"
        " (select line_number from load_stage_rejects where file_index = ? and line_number is not null)",
        [index],
    )


def _reject_unknown_references(db: Database, header: _Header) -> None:
    """Interactions naming a user or shoe that was refused, or that exists nowhere, are refused."""
    index = CONTRACTS.index(INTERACTIONS)
    for parent in (USERS, SHOES):
        key, parent_index, parent_stage = parent.key[0], CONTRACTS.index(parent), _stage_name(parent)
        where = [index, INTERACTIONS.file_name, header.positions[key] + 1, key]
        db.execute(
            f"""
            insert into load_stage_rejects ({", ".join(REJECT_COLUMNS)})
            select ?, ?, events.line_number, ?, ?, cast(events.{key} as text),
                '''' || cast(events.{key} as text) || '''',
                'refers to a rejected row of {parent.file_name} (line '
                    || cast(refused.first_line as text) || ')'
            from load_stage_interactions as events
            inner join (
                select key_value, min(line_number) as first_line
                from load_stage_rejected_keys
                where file_index = ?
                group by key_value
            ) as refused
                on refused.key_value = events.{key}
            where not exists (select 1 from {parent_stage} as staged where staged.{key} = events.{key})
            """,
            [*where, parent_index],
        )
        db.execute(
            f"""
            insert into load_stage_rejects ({", ".join(REJECT_COLUMNS)})
            select ?, ?, events.line_number, ?, ?, cast(events.{key} as text),
                '''' || cast(events.{key} as text) || '''',
                'is neither in {parent.file_name} nor in the database'
            from load_stage_interactions as events
            where not exists (select 1 from {parent_stage} as staged where staged.{key} = events.{key})
                and not exists (select 1 from {parent.table} as stored where stored.{key} = events.{key})
                and not exists (
                    select 1 from load_stage_rejected_keys as refused
                    where refused.file_index = ? and refused.key_value = events.{key}
                )
            """,
            [*where, parent_index],
        )
    if db.scalar("select count(*) from load_stage_rejects where file_index = ?", [index]):
        db.execute(
            "delete from load_stage_interactions where line_number in"
            " (select line_number from load_stage_rejects where file_index = ? and line_number is not null)",
            [index],
        )


def _upsert(db: Database, contract: FileContract) -> tuple[int, int]:
    """Insert new rows, update changed ones; returns (loaded, unchanged)."""
    table, key, stage = contract.table, contract.key[0], _stage_name(contract)
    columns = [column.column for column in contract.columns]
    others = [column for column in columns if column != key]
    changed = " or ".join(f"staged.{column} is distinct from stored.{column}" for column in others)
    db.execute(
        f"""
        create temp table load_changed_{table} as
        select {", ".join(f"staged.{column}" for column in columns)}
        from {stage} as staged
        left join {table} as stored
            on stored.{key} = staged.{key}
        where stored.{key} is null or {changed}
        """
    )
    _checkpoint("merge")
    db.execute(
        f"""
        insert into {table} ({", ".join(columns)})
        select {", ".join(columns)} from load_changed_{table}
        on conflict ({key}) do update set {", ".join(f"{column} = excluded.{column}" for column in others)}
        """
    )
    _checkpoint("merge")
    loaded = db.scalar(f"select count(*) from load_changed_{table}")
    return loaded, db.scalar(f"select count(*) from {stage}") - loaded


def _append_interactions(db: Database) -> tuple[int, int, int]:
    """Append events not stored yet; returns (loaded, unchanged, duplicates within the file).

    The staged events are made distinct once, each marked whether it is stored already (a left join
    on the key, which is unique in interactions): one sort of the staged rows gives both counts,
    where a count of the distinct events and then the new ones among them sorted them twice. On
    PostgreSQL in key order: the distinct is then a sort, not a hash aggregate spilling in 128
    batches at the default work_mem, and the append's sort finds its rows sorted (5M events: 17.9
    and 18.7 s against 22.8 and 21.8 s for the two statements and the key built again).
    """
    key = ", ".join(INTERACTIONS.key)
    same = " and ".join(f"stored.{column} = staged.{column}" for column in INTERACTIONS.key)
    staged = db.scalar("select count(*) from load_stage_interactions")
    db.execute(
        f"""
        create temp table load_distinct_interactions as
        select distinct {", ".join(f"staged.{column}" for column in INTERACTIONS.key)},
            stored.user_id is not null as is_stored
        from load_stage_interactions as staged
        left join interactions as stored
            on {same}
        {f"order by {key}" if db.is_postgres else ""}
        """
    )
    _checkpoint("merge")
    distinct, loaded = db.query(
        "select count(*), count(*) filter (where not is_stored) from load_distinct_interactions"
    )[0]
    with _bulk_append(db, INTERACTIONS.table, loaded):
        # in key order: the primary key index grows at its end (or, dropped, is built from sorted rows)
        db.execute(
            f"insert into interactions ({key}) select {key} from load_distinct_interactions"
            f" where not is_stored order by {key}"
        )
        _checkpoint("merge")  # on a PostgreSQL bulk append: keys and indexes still dropped
    return loaded, distinct - loaded, staged - distinct


@contextmanager
def _bulk_append(db: Database, table: str, rows: int):
    """For a bulk append: the keys and secondary indexes dropped for it and built after it.

    PostgreSQL checks a foreign key with one trigger call per inserted row (three per event here),
    and inserting rows in random order into large indexes thrashes the buffer cache; together they
    are most of the time of a large append. Adding a key back checks every row with one join and
    building an index sorts once (1M events: about 3x faster). The primary key goes too (5M new
    events in an empty table: the insert took 12.3 s with it, 5.3 s without, and building it
    2.2 s): the rows appended are distinct and none is stored (the merge made sure), so building it
    again cannot fail unless someone else wrote the same event meanwhile, and then the load fails as
    the insert would have. All of it happens in the load's transaction, so no one ever sees the
    table without them; the price is an exclusive lock on the table until the commit. It pays off
    for an append of at least ``BULK_ROWS`` rows that is also large next to what the table holds (a
    quarter of it); ``Database.keys_built_after`` does the foreign keys and indexes (nothing on
    DuckDB, nothing for a table that is not ours to alter), ``_primary_key_built_after`` the key.
    """
    if db.is_postgres and rows >= BULK_ROWS and rows * 4 >= db.scalar(f"select count(*) from {table}"):
        with db.keys_built_after(table), _primary_key_built_after(db, table):
            yield
    else:
        yield


@contextmanager
def _primary_key_built_after(db: Database, table: str):
    """PostgreSQL: drop ``table``'s primary key for the block and add it again after it.

    Only a key this session may alter (as ``Database.keys_built_after``) and that no foreign key of
    another table depends on (dropping it would need cascade); otherwise the key stays.
    """
    keys = db.query(
        "select keys.conname, pg_get_constraintdef(keys.oid) from pg_constraint as keys"
        " where keys.conrelid = cast(? as regclass) and keys.contype = 'p'"
        " and cast(? as regclass) in (select oid from pg_class where pg_has_role(relowner, 'USAGE'))"
        " and not exists (select 1 from pg_constraint as refs where refs.contype = 'f'"
        " and refs.confrelid = keys.conrelid)",
        [table, table],
    )
    for name, _ in keys:
        db.execute(f"alter table {table} drop constraint {quote_identifier(name)}")
    yield
    for name, definition in keys:
        db.execute(f"alter table {table} add constraint {quote_identifier(name)} {definition}")


def _fetch_problems(db: Database, limit: int) -> list[Problem]:
    rows = db.query(
        "select file_name, line_number, column_number, column_name, raw_value, shown_value, reason"
        " from load_stage_rejects order by file_index, line_number, column_number nulls first limit ?",
        [limit],
    )
    return [
        Problem(file, line, column, name, value, reason, shown)
        for file, line, column, name, value, shown, reason in rows
    ]


# -- the load ------------------------------------------------------------------------------------
def load(
    db: Database,
    data_dir: Path | str,
    skip_invalid: bool = False,
    *,
    progress: bool | None = None,
    chunk_rows: int = CHUNK_ROWS,
    engine_staging: bool | None = None,
) -> LoadSummary:
    """Validate the three files of ``data_dir`` and merge them into ``db`` in one transaction.

    Parameters
    ----------
    db : Database
        The target; the tables are created if missing.
    data_dir : path
        Holds users.csv, shoes.csv and interactions.csv (each may be header-only, or absent: its
        table is left as it is; at least one must be there).
    skip_invalid : bool
        Load the valid rows and keep the refused ones in ``load_rejects``, instead of refusing all.
    progress : bool, optional
        Show a progress bar per file (default: on a terminal, for files over 1 MiB).
    chunk_rows : int
        Records validated and staged at a time by the Python path (bounds memory).
    engine_staging : bool, optional
        Try the engine's fast path for each file first (scripts/staging.py; default: on, unless
        ``$SHOEREC_LOAD_ENGINE_STAGING`` is 0). False stages every file with the Python path, the
        reference the fast path is tested against; the result is the same either way.

    Returns
    -------
    LoadSummary

    Raises
    ------
    LoadError
        A file or column is missing, or (strict mode) any row is invalid; nothing was written.
    """
    clock = time.perf_counter()
    started_at = utc_now()
    data_dir = Path(data_dir)
    headers, warnings = check_files(data_dir)
    for warning in warnings:
        log.warning("%s", warning)
    now = datetime.now(UTC)
    if engine_staging is None:
        engine_staging = engine_staging_enabled()
    files = {contract.file_name: FileCounts(present=contract.file_name in headers) for contract in CONTRACTS}
    with _memory_bound(db), db.transaction():
        # one load (or schema build) at a time: concurrent first loads would create the same tables,
        # and a load's counts must not include rows another load is adding at the same time
        db.lock_transaction(SCHEMA_LOCK)
        if not db.relations("BASE TABLE") >= TABLES:
            create_tables(db)
        _checkpoint("transaction_started")
        categories = frozenset(
            value for (value,) in db.query("select interaction_type from interaction_types")
        )
        _create_staging(db)
        for index, contract in enumerate(CONTRACTS):
            header = headers.get(contract.file_name)
            if header is None:
                continue  # absent: its staging table stays empty, references check against the database
            with _step(f"staging {contract.file_name}"):
                counts = files[contract.file_name]
                counts.read, counts.lines, counts.staged_by = _stage_file(
                    db, index, contract, header, categories, now, progress, chunk_rows, engine_staging
                )
                db.execute(f"analyze {_stage_name(contract)}")  # temporary tables get no automatic statistics
            if contract is not INTERACTIONS:
                _reject_duplicate_keys(db, index, contract, header)
            _checkpoint("staged")
        if INTERACTIONS.file_name in headers:
            with _step("checking references"):
                _reject_unknown_references(db, headers[INTERACTIONS.file_name])
        _checkpoint("references_checked")
        problems = db.scalar("select count(*) from load_stage_rejects")
        if problems and not skip_invalid:
            raise LoadError(_fetch_problems(db, KEPT_PROBLEMS), problems, data_dir)
        for index, contract in enumerate(CONTRACTS):
            counts = files[contract.file_name]
            if not counts.present:
                continue
            counts.rejected = db.scalar(
                "select count(distinct line_number) from load_stage_rejects where file_index = ?",
                [index],
            )
            with _step(f"merging {contract.file_name}"):
                if contract is INTERACTIONS:
                    counts.loaded, counts.unchanged, counts.duplicates = _append_interactions(db)
                else:
                    counts.loaded, counts.unchanged = _upsert(db, contract)
        load_id = _record_run(db, data_dir, skip_invalid, started_at, files)
        _checkpoint("run_recorded")
        _drop_staging(db)
        _checkpoint("before_commit")
        committing = time.perf_counter()
    log.debug("committing: %.2f s", time.perf_counter() - committing)
    _checkpoint("committed")
    summary = LoadSummary(str(data_dir), skip_invalid, load_id, files, time.perf_counter() - clock, warnings)
    return summary


@contextmanager
def _memory_bound(db: Database):
    """On DuckDB, hold the connection's ``memory_limit`` at the load's bound while the block runs."""
    if db.is_postgres:
        yield
        return
    limit = os.environ.get(ENV_LOAD_MEMORY_LIMIT) or LOAD_MEMORY_LIMIT
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", limit, re.IGNORECASE):
        raise UsageError(f"{ENV_LOAD_MEMORY_LIMIT}={limit!r}: expected a size such as 4GB or 500MB")
    previous = db.scalar("select current_setting('memory_limit')")
    db.execute(f"set memory_limit = '{limit}'")
    try:
        yield
    finally:
        # the default back exactly (a size read as text comes back rounded), else the size read
        db.execute("reset memory_limit")
        if db.scalar("select current_setting('memory_limit')") != previous:
            db.execute(f"set memory_limit = '{previous}'")


def _stage_file(
    db, index, contract, header, categories, now, progress, chunk_rows, engine_staging=True
) -> tuple[int, int, str]:
    """Stage one file: by the engine where it can say the same, else by the Python path.

    Returns the records read, the physical lines after the header and which path staged the file
    ("engine" or "python"). The engine's path (scripts/staging.py) stages a file only when every
    cell is in the subset its SQL surely accepts and every line is one record; otherwise it leaves
    the staging table empty and the Python path stages the file, with the exact messages.
    """
    if engine_staging:
        staged = stage_by_engine(db, contract, header, _stage_name(contract), now)
        if staged is not None:
            # the kill points of the Python path: one per chunk of records staged (tests/test_crash_safety.py)
            for _ in range(-(-staged[0] // chunk_rows)):
                _checkpoint("chunk")
            return (*staged, "engine")
    return (*_stage_file_python(db, index, contract, header, categories, now, progress, chunk_rows), "python")


def _stage_file_python(db, index, contract, header, categories, now, progress, chunk_rows) -> tuple[int, int]:
    """Stream one file into its staging table (valid rows) and load_stage_rejects.

    Returns the records read and the physical lines after the header.
    """
    size = header.path.stat().st_size
    show = (sys.stderr.isatty() and size >= PROGRESS_MIN_BYTES) if progress is None else progress
    records = 0
    with (
        _open(header.path) as stream,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=contract.file_name,
            disable=not show,
            leave=False,
            file=sys.stderr,
        ) as bar,
    ):
        lines = _Records(stream)
        _read_header(lines.reader)
        for chunk in _chunks(lines, contract.file_name, header.width, header.end_line, chunk_rows):
            staged, rejects, keys = _validate(chunk, index, contract, header, categories, now)
            db.insert_df(_stage_name(contract), staged)
            if rejects is not None:
                db.insert_df("load_stage_rejects", rejects)
            if keys is not None:
                db.insert_df("load_stage_rejected_keys", keys)
            records += chunk.records
            bar.update(stream.buffer.tell() - bar.n)
            _checkpoint("chunk")
    log.debug("%s: %d records staged", contract.file_name, records)
    return records, lines.lines_read - header.end_line


def _record_run(db: Database, data_dir: Path, skip_invalid: bool, started_at: datetime, files) -> int:
    """The load_runs row, and the refused rows in load_rejects; returns the new load_id."""
    load_id = db.scalar("select coalesce(max(load_id), 0) + 1 from load_runs")
    db.execute(
        "insert into load_runs (load_id, started_at, finished_at, data_dir, is_skip_invalid,"
        " rows_read, rows_loaded, rows_rejected) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            load_id,
            started_at,
            utc_now(),
            str(data_dir.resolve()),
            skip_invalid,
            sum(counts.read for counts in files.values()),
            sum(counts.loaded for counts in files.values()),
            sum(counts.rejected for counts in files.values()),
        ],
    )
    db.execute(
        "insert into load_rejects (load_id, file_name, line_number, column_name, raw_value, reason)"
        " select ?, file_name, line_number, column_name, raw_value, reason from load_stage_rejects",
        [load_id],
    )
    return load_id


# -- command line -------------------------------------------------------------------------------
def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--skip-invalid``, for every command that loads the files (load, build)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DATA_DIR,
        help="folder with users.csv, shoes.csv, interactions.csv; a missing file changes nothing (default: data/)",
    )
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="load the valid rows and keep each rejected row, with its reason, in load_rejects"
        " (default: all or nothing)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    add_load_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        check_files(args.data_dir)  # before a database file is created for nothing
        with Database(args.db) as db:
            summary = load(db, args.data_dir, skip_invalid=args.skip_invalid)
            in_force = reference_date_in_force(db)
    except LoadError as exc:
        print(exc, file=sys.stderr)
        return 2
    except DatabaseError as exc:
        log.error("%s", _one_line(exc))
        return exit_code(exc)
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, not a traceback
        log.debug("load failed", exc_info=True)
        log.error("load failed: %s: %s", type(exc).__name__, _one_line(exc))
        return 1
    if summary.rows_rejected:
        log.warning(
            "%d rows rejected; see load_rejects where load_id = %d", summary.rows_rejected, summary.load_id
        )
    log.info("%s", summary)
    log.info("%s", in_force)
    return 0


def reference_date_in_force(db: Database) -> str:
    """One line: the reference date statuses are computed against now, and where it comes from."""
    # the settings table, not current_settings: a load may run before the views exist
    rows = db.query(
        "select coalesce(reference_date, current_date), reference_date is null from settings where settings_id = 1"
    )
    reference_date, is_today = rows[0] if rows else (dt.date.today(), True)
    if is_today:
        return f"reference date in force: {reference_date} (today)"
    line = f"reference date in force: {reference_date} (set by settings.reference_date"
    newest = db.scalar("select cast(max(occurred_at) as date) from interactions")
    if newest is not None and newest > reference_date:
        line += (
            f"; the newest interaction is {newest}: events after {reference_date} count once it moves:"
            " update settings set reference_date = 'YYYY-MM-DD', or = null to follow today)"
        )
    return line + ")"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    raise SystemExit(main())
