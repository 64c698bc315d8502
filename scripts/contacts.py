"""Consent: the optional contacts.csv of the contract, and one-click unsubscribes.

    python -m scripts.contacts [--db ...] [--data-dir data]
    python -m scripts.contacts [--db ...] --unsubscribe TOKEN

``contacts.csv`` (optional; without it nobody has consent, so no marketing message goes out):

    user_id      integer   a customer already loaded (users.csv)
    channel      text      a row of table ``channels`` (email, sms)
    address      text      the address on that channel (an email address for email); may be empty
    opted_in     boolean   true/false (also 1/0, yes/no): consent to messages of ``purpose``
    updated_at   ISO 8601  when the customer gave or withdrew it (as interactions.timestamp)
    purpose      text      optional column: marketing (default when empty) or transactional
    time_zone    text      optional column: the customer's IANA time zone (Europe/Berlin); may be empty

The file is validated like the three others (file:line:column: reason; strict: any invalid row and
nothing is written, exit code 2). Rows are appended to ``contact_preferences``, a history that is
never updated: loading the same file again adds nothing, a changed preference needs a newer
``updated_at``, and the latest row per (customer, channel, purpose) is the one in force. An
unsubscribe appends an opt-out row dated now, so it wins over any older row of the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import sys
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scripts.cli import base_parser, reports_database_errors, setup_logging
from scripts.clock import utc_now
from scripts.contract import Column, FileContract, parse_column, quote
from scripts.db import Database
from scripts.load import DATA_DIR, LoadError, Problem

log = logging.getLogger(__name__)

CONTACTS = FileContract(
    "contacts.csv",
    "contact_preferences",
    (
        Column("user_id", "id", "bigint"),
        Column("channel", "category", "text"),
        Column("address", "text", "text", required=False),
        Column("opted_in", "boolean", "boolean", target="is_opted_in"),
        Column("updated_at", "timestamp", "timestamp"),
        Column("purpose", "category", "text", required=False),
        Column("time_zone", "text", "text", required=False),
    ),
    key=("user_id", "channel", "purpose", "updated_at"),
)
OPTIONAL_COLUMNS = ("purpose", "time_zone")
PURPOSES = frozenset({"marketing", "transactional"})
TRUE_WORDS, FALSE_WORDS = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f"}
SOURCE_FILE, SOURCE_UNSUBSCRIBE = "contacts.csv", "unsubscribe"


@dataclass(frozen=True)
class ContactsSummary:
    """What a contacts load did: rows read and rows new to the history."""

    rows_read: int
    rows_loaded: int

    def __str__(self) -> str:
        return f"contacts.csv: {self.rows_read} rows read, {self.rows_loaded} new preferences"


def read_contacts(path: Path, channels: frozenset[str], *, now: dt.datetime | None = None) -> pd.DataFrame:
    """Validate ``contacts.csv`` and return its rows typed for ``contact_preferences``.

    Parameters
    ----------
    path : Path
        The file.
    channels : frozenset of str
        The accepted channels (table ``channels``).
    now : datetime, optional
        Aware "now" for the future check of ``updated_at``.

    Returns
    -------
    pandas.DataFrame
        Columns user_id, channel, address, is_opted_in, updated_at, purpose, time_zone.

    Raises
    ------
    LoadError
        With every problem (file, line, column, reason) when any row breaks the contract.
    """
    name = CONTACTS.file_name
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as stream:
        reader = csv.reader(stream, strict=True)
        try:
            header = next((row for row in reader if row), None)
            if header is None:
                raise LoadError(
                    [Problem(name, None, None, None, None, "file is empty; expected a header line")]
                )
            header_line = reader.line_num
            records, lines = [], []
            for row in reader:
                if row:
                    records.append(row)
                    lines.append(reader.line_num)
        except csv.Error as exc:
            raise LoadError(
                [Problem(name, reader.line_num, None, None, None, f"malformed CSV ({exc})")]
            ) from exc
    names = [cell.strip() for cell in header]
    positions = {column: names.index(column) for column in CONTACTS.names if column in names}
    problems = [
        Problem(name, header_line, None, None, None, f"missing column {column!r}")
        for column in CONTACTS.names
        if column not in positions and column not in OPTIONAL_COLUMNS
    ]
    problems += [
        Problem(name, line, None, None, None, f"has {len(row)} fields; the header has {len(header)}")
        for row, line in zip(records, lines, strict=True)
        if len(row) != len(header)
    ]
    if problems:
        raise LoadError(problems)
    frame, reasons = {}, {}
    for column in CONTACTS.columns:
        if column.name not in positions:
            frame[column.column], reasons[column.name] = pd.Series([None] * len(records), dtype=object), None
            continue
        raw = [row[positions[column.name]] for row in records]
        if column.kind == "boolean":
            values, found = _parse_boolean(raw)
        else:
            categories = channels if column.name == "channel" else PURPOSES
            values, found = parse_column(column, raw, categories=categories, now=now)
            if column.name == "time_zone":
                found = np.where(pd.isna(found), [_time_zone_reason(value) for value in raw], found)
        frame[column.column], reasons[column.name] = values, found
        for index in np.flatnonzero(pd.notna(found)):
            problems.append(
                Problem(name, lines[index], positions[column.name] + 1, column.name, raw[index], found[index])
            )
    contacts = pd.DataFrame(frame)
    contacts["purpose"] = contacts["purpose"].where(contacts["purpose"].notna(), "marketing")
    if "address" in positions:
        is_email = contacts["channel"] == "email"
        bad = (
            is_email
            & contacts["address"].notna()
            & ~contacts["address"].astype(str).str.fullmatch(r"[^@\s]+@[^@\s]+")
        )
        for index in np.flatnonzero(bad.to_numpy()):
            if reasons["address"] is None or pd.isna(reasons["address"][index]):
                value = records[index][positions["address"]]
                problems.append(
                    Problem(
                        name,
                        lines[index],
                        positions["address"] + 1,
                        "address",
                        value,
                        "is not an email address",
                    )
                )
    duplicated = contacts.duplicated(["user_id", "channel", "purpose", "updated_at"], keep="first")
    for index in np.flatnonzero(duplicated.to_numpy() & ~contacts["updated_at"].isna().to_numpy()):
        problems.append(
            Problem(
                name,
                lines[index],
                None,
                None,
                None,
                "repeats the key (user_id, channel, purpose, updated_at)",
            )
        )
    if problems:
        problems.sort(key=lambda problem: (problem.line or 0, problem.column or 0))
        raise LoadError(problems)
    return contacts


def _parse_boolean(raw: list[str]) -> tuple[pd.Series, np.ndarray]:
    """true/false, 1/0, yes/no (any case, surrounding whitespace ignored); anything else is refused."""
    words = [value.strip().lower() for value in raw]
    values = pd.Series(
        [True if w in TRUE_WORDS else False if w in FALSE_WORDS else None for w in words], dtype=object
    )
    reasons = np.array(
        [None if w in TRUE_WORDS or w in FALSE_WORDS else "is not a boolean (true/false)" for w in words],
        dtype=object,
    )
    return values, reasons


def _time_zone_reason(value: str) -> str | None:
    """None for an empty cell or an IANA time zone name, else the reason."""
    if not value.strip():
        return None
    try:
        zoneinfo.ZoneInfo(value.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "is not an IANA time zone (such as Europe/Berlin)"
    return None


def load_contacts(
    db: Database, data_dir: Path | str, *, now: dt.datetime | None = None
) -> ContactsSummary | None:
    """Append the new rows of ``data_dir/contacts.csv`` to ``contact_preferences``, all or nothing.

    Returns None when there is no contacts.csv (optional file); raises :class:`LoadError` when it
    breaks the contract (nothing written).
    """
    path = Path(data_dir) / CONTACTS.file_name
    if not path.is_file():
        log.info("no %s in %s: nobody has consent to marketing messages", CONTACTS.file_name, data_dir)
        return None
    channels = frozenset(channel for (channel,) in db.query("select channel from channels"))
    contacts = read_contacts(path, channels, now=now)
    contacts["time_zone"] = contacts["time_zone"].map(
        lambda value: value.strip() if isinstance(value, str) else None
    )
    known = {user_id for (user_id,) in db.query("select user_id from users")}
    orphans = [index for index, user_id in enumerate(contacts["user_id"]) if int(user_id) not in known]
    if orphans:
        raise LoadError(
            [
                Problem(
                    CONTACTS.file_name,
                    None,
                    1,
                    "user_id",
                    str(contacts["user_id"].iloc[i]),
                    "is not a loaded user",
                )
                for i in orphans
            ]
        )
    contacts["source"] = SOURCE_FILE
    contacts["recorded_at"] = utc_now()
    contacts["updated_at"] = pd.to_datetime(contacts["updated_at"]).dt.tz_localize(None)
    with db.transaction():
        before = db.scalar("select count(*) from contact_preferences")
        db.execute(
            "create temporary table if not exists contacts_stage as"
            " select * from contact_preferences where 1 = 0"
        )
        db.execute("delete from contacts_stage")
        db.insert_df("contacts_stage", contacts)
        db.execute(
            "insert into contact_preferences select contacts_stage.* from contacts_stage"
            " left join contact_preferences as stored"
            " on contacts_stage.user_id = stored.user_id and contacts_stage.channel = stored.channel"
            " and contacts_stage.purpose = stored.purpose and contacts_stage.updated_at = stored.updated_at"
            " where stored.user_id is null"
        )
        db.execute("drop table contacts_stage")
        loaded = db.scalar("select count(*) from contact_preferences") - before
    return ContactsSummary(len(contacts), int(loaded))


def unsubscribe(db: Database, token: str, *, now: dt.datetime | None = None) -> tuple[int, str, str] | None:
    """One-click unsubscribe (RFC 8058): record an opt-out for the token's customer, channel and purpose.

    Returns (user_id, channel, purpose), or None for an unknown token. Using a token twice is harmless.
    """
    rows = db.query("select user_id, channel, purpose from unsubscribe_tokens where token = ?", [token])
    if not rows:
        return None
    user_id, channel, purpose = rows[0]
    at = now or utc_now()
    with db.transaction():
        address = db.scalar(
            "select address from contact_preferences where user_id = ? and channel = ? and purpose = ?"
            " order by updated_at desc limit 1",
            [user_id, channel, purpose],
        )
        db.execute(
            "insert into contact_preferences (user_id, channel, purpose, address, is_opted_in, time_zone,"
            " updated_at, source, recorded_at) values (?, ?, ?, ?, false, null, ?, ?, ?)"
            " on conflict do nothing",
            [user_id, channel, purpose, address, at, SOURCE_UNSUBSCRIBE, at],
        )
        db.execute(
            "update unsubscribe_tokens set used_at = coalesce(used_at, ?) where token = ?", [at, token]
        )
    return user_id, channel, purpose


@reports_database_errors
def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument(
        "--data-dir", type=Path, default=DATA_DIR, help="folder with contacts.csv (default: data/)"
    )
    parser.add_argument("--unsubscribe", metavar="TOKEN", default=None, help="record a one-click unsubscribe")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        with Database(args.db) as db:
            if args.unsubscribe is not None:
                done = unsubscribe(db, args.unsubscribe)
                if done is None:
                    print(f"unknown token {quote(args.unsubscribe)}", file=sys.stderr)
                    return 2
                print(f"customer {done[0]} unsubscribed from {done[2]} on {done[1]}")
                return 0
            summary = load_contacts(db, args.data_dir)
    except LoadError as exc:
        print(exc, file=sys.stderr)
        return 2
    if summary is not None:
        log.info("%s", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
