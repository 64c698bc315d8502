"""The data contract of the three CSV files, and the vectorized per-column checks.

Each file is a :class:`FileContract`: its columns in order, the table it feeds and its key. Each
column has a kind, and :func:`parse_column` turns a chunk of raw CSV strings of that column into
typed values and, for every cell that breaks the contract, a reason (``None`` where the cell is
fine). Reasons are phrases that follow the quoted value in a problem report::

    interactions.csv:1742:4: timestamp: '2024-13-01' is not a valid ISO 8601 timestamp

This module is the contract; the README's "The data contract" tells a retailer the same per column
(tests/test_readme.py fails when it names other columns, ranges, choices or reasons). How each kind
is checked:

- ``id``: an integer within PostgreSQL's ``bigint``; surrounding whitespace is ignored.
- ``integer``: an integer within ``[low, high]``; empty means NULL where the column is optional.
  Any number of digits gets a value or a reason (a 5,000-digit cell is out of range, never an error).
- ``decimal``: a plain decimal (``12``, ``12.5``, ``.99``) from 0 to ``PRICE_MAX`` with at most two
  significant decimals (``12.50`` and ``12.500`` are fine, ``12.505`` is not); no exponent, no NaN/inf.
- The ranges are the business's (each column's ``low`` and ``high``, ``PRICE_MAX``), so that every
  accepted value is one the views can compute with: a lifespan of ``LIFESPAN_DAYS_MAX`` days at the
  lowest seeded wear factor, 0.5, is a personal lifespan of 20 years and at most 7,300 care
  reminders a pair.
- ``text``: any text; blank (empty or only whitespace) means NULL where optional and is refused where
  required; stored verbatim, surrounding whitespace included.
- ``category``: one of a set read from the database (``interaction_types``), matched exactly.
- ``choice``: one of the column's own ``choices``, matched after trimming, lowercasing and turning
  spaces into underscores (``In Stock`` -> ``in_stock``); stored in that normal form.
- ``date``: ``YYYY-MM-DD``, from 1900-01-01 to 2999-12-31 (may be in the future).
- A column with ``may_be_absent`` may be missing from the header altogether: every row is then NULL.
- ``timestamp``: ISO 8601 extended format, ``YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z|+HH[:MM]]``;
  without an offset it is UTC; stored as UTC; from 1900-01-01 up to now plus a small tolerance.
- every cell: valid UTF-8 (read with ``surrogateescape``, so a bad byte shows up as a lone
  surrogate) and no NUL character (PostgreSQL text cannot hold one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
INTEGER_MAX = 2**31 - 1
BIGINT_DIGITS = 19  # digits of the largest bigint: a longer integer (leading zeros aside) is out of range
PRICE_MAX = 1_000_000.00  # a shop's price in any currency (numeric(12, 2) would hold 9,999,999,999.99)
LIFESPAN_DAYS_MAX = 3650  # ten years: the longest life a pair is rated for
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_DATE = "2999-12-31"  # the last accepted date of a ``date`` column
AVAILABILITY = ("in_stock", "out_of_stock", "preorder", "backorder")  # Google Merchant Center values
FUTURE_TOLERANCE = timedelta(days=1)  # clock skew, and local times written without an offset

_INTEGER = r"[+-]?[0-9]+"
_DECIMAL = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_THIRD_DECIMAL = r"\.[0-9]{2}[0-9]*[1-9]"  # a non-zero digit after the second decimal
_NON_FINITE = {"nan", "inf", "infinity"}
_ISO_8601 = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # date
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?"  # time
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"  # offset, only after a time (a date alone is UTC midnight)
)
_SURROGATE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Column:
    """One column of a file: its CSV name, kind, whether it may be empty, and its range."""

    name: str
    kind: str  # id | integer | decimal | text | category | choice | date | timestamp
    sql_type: str
    required: bool = True
    low: int | None = None
    high: int | None = None
    target: str | None = None  # the table column, when it is named differently
    choices: tuple[str, ...] = ()  # the accepted values of a ``choice`` column
    may_be_absent: bool = False  # the header may leave the column out (all NULL then)

    @property
    def column(self) -> str:
        return self.target or self.name


@dataclass(frozen=True)
class FileContract:
    """A CSV file of the contract: the table it feeds, its columns and the columns of its key."""

    file_name: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def header_names(self) -> list[str]:
        """The columns every header must name (the others may be absent)."""
        return [column.name for column in self.columns if not column.may_be_absent]

    def __getitem__(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


USERS = FileContract(
    "users.csv",
    "users",
    (
        Column("user_id", "id", "bigint"),
        Column("age", "integer", "integer", required=False, low=0, high=120),
        Column("gender", "text", "text", required=False),
        Column("primary_usage", "text", "text"),
    ),
    key=("user_id",),
)
SHOES = FileContract(
    "shoes.csv",
    "shoes",
    (
        Column("shoe_id", "id", "bigint"),
        Column("name", "text", "text"),
        Column("brand", "text", "text"),
        Column("type", "text", "text"),
        Column("material", "text", "text"),
        Column("color", "text", "text"),
        Column("price", "decimal", "numeric(12, 2)"),
        Column("care_instructions", "text", "text", required=False),
        Column("lifespan_days", "integer", "integer", low=1, high=LIFESPAN_DAYS_MAX),
        # the assortment (optional columns): Google Merchant Center availability, empty = in_stock
        Column("availability", "choice", "text", required=False, choices=AVAILABILITY, may_be_absent=True),
        Column("discontinued_on", "date", "date", required=False, may_be_absent=True),
    ),
    key=("shoe_id",),
)
INTERACTIONS = FileContract(
    "interactions.csv",
    "interactions",
    (
        Column("user_id", "id", "bigint"),
        Column("shoe_id", "id", "bigint"),
        Column("interaction_type", "category", "text"),
        Column("timestamp", "timestamp", "timestamp", target="occurred_at"),
    ),
    key=("user_id", "shoe_id", "interaction_type", "occurred_at"),
)
CONTRACTS = (USERS, SHOES, INTERACTIONS)


# -- presenting values -------------------------------------------------------------------------
def quote(value: str | None, limit: int = 80) -> str:
    """A value as it appears in a message: ``repr`` escaping, bad bytes as ``\\xNN``, cut at ``limit``."""
    if value is None:
        return "None"
    text = value if len(value) <= limit else value[:limit]
    shown = re.sub(r"\\udc([89a-f][0-9a-f])", r"\\x\1", repr(text))
    return shown if text is value else shown + "..."


def storable(value: str) -> str:
    """A raw value that any text column can hold: undecodable bytes as ``\\xNN``, NUL as ``\\x00``."""
    if _SURROGATE.search(value) or "\x00" in value:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return value.replace("\x00", "\\x00")
    return value


def _storable_text(text: str) -> bool:
    """True when ``text`` is valid UTF-8 without NUL (encoding is the fastest check for surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def encoding_reason(value: str) -> str | None:
    """Why a cell's text cannot be stored (bad UTF-8, NUL), or None."""
    if _SURROGATE.search(value):
        return "is not valid UTF-8"
    if "\x00" in value:
        return "contains a NUL character"
    return None


# -- parsing a chunk of one column ---------------------------------------------------------------
def parse_column(
    column: Column,
    raw: tuple[str, ...] | list[str],
    *,
    categories: frozenset[str] = frozenset(),
    now: datetime | None = None,
) -> tuple[pd.Series, np.ndarray]:
    """Parse a chunk of one column.

    Parameters
    ----------
    column : Column
        The rule.
    raw : sequence of str
        The cells as read (``surrogateescape`` text).
    categories : frozenset of str
        The accepted values of a ``category`` column.
    now : datetime, optional
        Aware "now" for the future check of timestamps (default: the clock).

    Returns
    -------
    values : pandas.Series
        Typed values (NA where empty or invalid), positionally aligned with ``raw``.
    reasons : numpy.ndarray of object
        ``None`` for a valid cell, else the reason it is refused.
    """
    n = len(raw)
    reasons = np.full(n, None, dtype=object)
    # text that is not UTF-8 or holds NUL: refuse it and parse an empty cell in its place
    if not _storable_text("\x1f".join(raw)):
        raw = list(raw)
        for i, value in enumerate(raw):
            reason = encoding_reason(value)
            if reason:
                reasons[i] = reason
                raw[i] = ""
    text = pd.Series(raw, dtype="str", index=pd.RangeIndex(n))
    parser = _PARSERS[column.kind]
    values, found = parser(column, text, categories=categories, now=now)
    # an encoding problem wins over what the empty stand-in would say
    fill = pd.isna(reasons) & pd.notna(found)
    reasons[fill] = found[fill]
    return values, reasons


def _mask(flags: pd.Series) -> np.ndarray:
    """A writable boolean array (NA counts as False)."""
    return np.array(flags.to_numpy(dtype=bool, na_value=False), dtype=bool)


def _blank(text: pd.Series) -> np.ndarray:
    return _mask(text.str.strip() == "")


def _required(column: Column, blank: np.ndarray, reasons: np.ndarray) -> None:
    if column.required:
        reasons[blank] = "is empty; a value is required"


def _parse_integer(column: Column, text: pd.Series, **_) -> tuple[pd.Series, np.ndarray]:
    n = len(text)
    reasons = np.full(n, None, dtype=object)
    stripped = text.str.strip()
    blank = _mask(stripped == "")
    is_integer = _mask(stripped.str.fullmatch(_INTEGER))
    reasons[~blank & ~is_integer] = "is not an integer"
    _required(column, blank, reasons)
    # up to 18 characters fits int64 for sure; longer ones (rare) are checked exactly in Python
    long = is_integer & (stripped.str.len().to_numpy(dtype=np.int64, na_value=0) > 18)
    fast = is_integer & ~long
    values = np.zeros(n, dtype=np.int64)
    values[fast] = stripped[fast].astype("int64").to_numpy()
    low = BIGINT_MIN if column.low is None else column.low
    high = BIGINT_MAX if column.high is None else column.high
    in_range = np.zeros(n, dtype=bool)
    in_range[fast] = (values[fast] >= low) & (values[fast] <= high)
    for i in np.flatnonzero(long):
        # int() refuses more than 4,300 digits: a number that long is out of any range anyway
        cell = stripped.iat[i]
        digits = cell.lstrip("+-").lstrip("0")
        if len(digits) > BIGINT_DIGITS:
            continue
        number = -int(digits or "0") if cell.startswith("-") else int(digits or "0")
        if low <= number <= high:
            values[i], in_range[i] = number, True
    out_of_range = is_integer & ~in_range
    if column.kind == "id":
        reasons[out_of_range] = "is beyond the 64-bit integer range"
    else:
        reasons[out_of_range] = f"is out of range ({low}..{high})"
    ok = is_integer & in_range
    result = pd.Series(values, dtype="Int64").where(ok, pd.NA)
    return result, reasons


def _parse_decimal(column: Column, text: pd.Series, **_) -> tuple[pd.Series, np.ndarray]:
    n = len(text)
    reasons = np.full(n, None, dtype=object)
    stripped = text.str.strip()
    blank = _mask(stripped == "")
    is_decimal = _mask(stripped.str.fullmatch(_DECIMAL))
    non_finite = _mask(stripped.str.lower().str.lstrip("+-").isin(_NON_FINITE))
    reasons[~blank & ~is_decimal] = "is not a decimal number"
    reasons[non_finite] = "is not a finite number"
    _required(column, blank, reasons)
    numbers = np.full(n, np.nan)
    numbers[is_decimal] = stripped[is_decimal].astype("float64").to_numpy()
    negative = is_decimal & (numbers < 0)
    too_precise = is_decimal & _mask(stripped.str.contains(_THIRD_DECIMAL))
    too_large = is_decimal & (np.abs(numbers) > PRICE_MAX)
    reasons[too_precise] = "has more than 2 decimal places"
    reasons[too_large] = f"is too large (at most {PRICE_MAX:.2f})"
    reasons[negative] = "is negative; it must be >= 0"
    ok = is_decimal & ~negative & ~too_precise & ~too_large
    # two decimals, exact: the input has at most two significant decimals and 12 digits
    formatted = np.full(n, None, dtype=object)
    formatted[ok] = np.char.mod("%.2f", np.abs(numbers[ok])).astype(object)
    return pd.Series(formatted, dtype="str"), reasons


def _parse_text(column: Column, text: pd.Series, **_) -> tuple[pd.Series, np.ndarray]:
    reasons = np.full(len(text), None, dtype=object)
    blank = _blank(text)
    _required(column, blank, reasons)
    return text.where(~blank, None), reasons


def _parse_category(
    column: Column, text: pd.Series, *, categories: frozenset[str], **_
) -> tuple[pd.Series, np.ndarray]:
    reasons = np.full(len(text), None, dtype=object)
    blank = _blank(text)
    known = _mask(text.isin(categories))
    reasons[~known & ~blank] = f"is not a known {column.name} ({', '.join(sorted(categories))})"
    _required(column, blank, reasons)
    return text.where(known, None), reasons


def _parse_choice(column: Column, text: pd.Series, **_) -> tuple[pd.Series, np.ndarray]:
    reasons = np.full(len(text), None, dtype=object)
    blank = _blank(text)
    normal = text.str.strip().str.lower().str.replace(r"\s+", "_", regex=True)
    known = _mask(normal.isin(column.choices))
    reasons[~known & ~blank] = f"is not one of {', '.join(column.choices)}"
    _required(column, blank, reasons)
    return normal.where(known, None), reasons


def _parse_date(column: Column, text: pd.Series, **_) -> tuple[pd.Series, np.ndarray]:
    n = len(text)
    reasons = np.full(n, None, dtype=object)
    values = np.full(n, None, dtype=object)
    stripped = text.str.strip()
    blank = _mask(stripped == "")
    shaped = _mask(stripped.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"))
    # in Python: pandas' timestamps end in 2262
    for i in np.flatnonzero(shaped):
        try:
            values[i] = date.fromisoformat(stripped.iat[i])
        except ValueError:
            shaped[i] = False
    reasons[~blank & ~shaped] = "is not a valid date (YYYY-MM-DD)"
    # as text: an ISO date is within range exactly when it sorts within it
    out_of_range = shaped & _mask((stripped < "1900-01-01") | (stripped > LATEST_DATE))
    reasons[out_of_range] = f"is out of range (1900-01-01..{LATEST_DATE})"
    values[out_of_range] = None
    _required(column, blank, reasons)
    return pd.Series(values, dtype=object), reasons


def _parse_timestamp(
    column: Column, text: pd.Series, *, now: datetime | None, **_
) -> tuple[pd.Series, np.ndarray]:
    n = len(text)
    reasons = np.full(n, None, dtype=object)
    stripped = text.str.strip()
    blank = _mask(stripped == "")
    shaped = _mask(stripped.str.fullmatch(_ISO_8601))
    parsed = pd.to_datetime(stripped.where(shaped, None), format="ISO8601", utc=True, errors="coerce")
    parsed = parsed.dt.as_unit("us")
    latest = pd.Timestamp((now or datetime.now(UTC)) + FUTURE_TOLERANCE)
    # what pandas refuses (outside its 1677..2262 range, or a form it does not know) gets a
    # second chance in Python, so that the message can say "before 1900" or "in the future"
    for i in np.flatnonzero(shaped & parsed.isna().to_numpy()):
        moment = _python_timestamp(stripped.iat[i])
        if moment is None:
            shaped[i] = False
        elif EARLIEST <= moment <= latest:
            parsed.iat[i] = pd.Timestamp(moment)
        elif moment < EARLIEST:
            reasons[i] = "is before 1900-01-01"
        else:
            reasons[i] = f"is in the future (after {latest:%Y-%m-%d %H:%M} UTC)"
    reasons[~blank & ~shaped] = "is not a valid ISO 8601 timestamp"
    _required(column, blank, reasons)
    valid = shaped & pd.isna(reasons)
    early = valid & _mask(parsed < pd.Timestamp(EARLIEST))
    late = valid & _mask(parsed > latest)
    reasons[early] = "is before 1900-01-01"
    reasons[late] = f"is in the future (after {latest:%Y-%m-%d %H:%M} UTC)"
    ok = valid & ~early & ~late
    return parsed.dt.tz_convert(None).where(ok), reasons


def _python_timestamp(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace(",", "."))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_PARSERS = {
    "id": _parse_integer,
    "integer": _parse_integer,
    "decimal": _parse_decimal,
    "text": _parse_text,
    "category": _parse_category,
    "choice": _parse_choice,
    "date": _parse_date,
    "timestamp": _parse_timestamp,
}
