"""Property-based tests of the CSV contract (hypothesis).

Most examples go straight to :func:`scripts.contract.parse_column` (no database): each test draws
cells together with an independent oracle (what the contract says the cell means) and checks that
the parser agrees, value for value, and never raises. A smaller number of generated files goes
through the whole loader on both engines: valid rows round-trip exactly (text verbatim, numbers,
timestamps normalised to UTC); files with arbitrary cells raise :class:`LoadError` or load, never
anything else, and a refused load writes nothing.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from helpers import ENGINES, csv_text, fresh_url
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from scripts.contract import (
    EARLIEST,
    FUTURE_TOLERANCE,
    INTERACTIONS,
    LIFESPAN_DAYS_MAX,
    PRICE_MAX,
    SHOES,
    USERS,
    parse_column,
)
from scripts.db import Database, view_files
from scripts.load import LoadError, load
from scripts.schema import create_schema

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
FAST = settings(max_examples=100, deadline=None)
END_TO_END = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a load takes minutes: report as found
)

# any text a UTF-8 file can hold, NUL aside (unicode, quotes, commas, CR/LF, RTL marks, ...)
storable_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
filled_text = storable_text.filter(lambda text: text.strip() != "")
# what a file read with surrogateescape can hand the parser: also lone surrogates and NUL
any_cell = st.text(st.characters(exclude_categories=("Cs",)), max_size=30) | st.binary(max_size=20).map(
    lambda raw: raw.decode("utf-8", "surrogateescape")
)
padding = st.sampled_from(["", " ", "  ", "\t"])


def parse_one(column, cell: str, **options):
    values, reasons = parse_column(column, [cell], now=NOW, **options)
    return values.iloc[0], reasons[0]


# -- text ----------------------------------------------------------------------------------------
@FAST
@given(
    cell=any_cell,
    column=st.sampled_from(
        [USERS["gender"], USERS["primary_usage"], SHOES["name"], SHOES["care_instructions"]]
    ),
)
def test_text_is_kept_verbatim_or_refused_for_a_stated_reason(cell, column):
    value, reason = parse_one(column, cell)
    if any("\udc80" <= char <= "\udcff" for char in cell):
        assert reason == "is not valid UTF-8"
    elif "\x00" in cell:
        assert reason == "contains a NUL character"
    elif cell.strip() == "":
        assert reason == ("is empty; a value is required" if column.required else None)
        assert pd.isna(value)
    else:
        assert reason is None
        assert value == cell  # verbatim, surrounding whitespace included


# -- integers ------------------------------------------------------------------------------------
@FAST
@given(
    number=st.integers(min_value=-(2**70), max_value=2**70) | st.integers(min_value=-5, max_value=200),
    sign=st.sampled_from(["", "+"]),
    before=padding,
    after=padding,
    column=st.sampled_from([USERS["user_id"], USERS["age"], SHOES["lifespan_days"]]),
)
def test_integers_parse_exactly_within_their_range(number, sign, before, after, column):
    text = f"{before}{sign if number >= 0 else ''}{number}{after}"
    value, reason = parse_one(column, text)
    low = -(2**63) if column.low is None else column.low
    high = 2**63 - 1 if column.high is None else column.high
    if low <= number <= high:
        assert reason is None
        assert value == number
    else:
        assert reason in {"is beyond the 64-bit integer range", f"is out of range ({low}..{high})"}
        assert pd.isna(value)


# -- prices --------------------------------------------------------------------------------------
@FAST
@given(
    cents=st.integers(min_value=-(10**13), max_value=10**13) | st.integers(min_value=-100, max_value=100_000),
    form=st.sampled_from(["fixed", "trimmed", "padded_zeros", "leading_dot"]),
)
def test_prices_keep_two_decimals_exactly(cents, form):
    amount = Decimal(cents).scaleb(-2)
    text = f"{amount:.2f}"
    if form == "trimmed" and "." in text:
        text = text.rstrip("0").rstrip(".") or "0"
    elif form == "padded_zeros":
        text += "000"
    elif form == "leading_dot" and text.startswith("0."):
        text = text[1:]
    value, reason = parse_one(SHOES["price"], text)
    if amount < 0:
        assert reason == "is negative; it must be >= 0"
    elif amount > Decimal(str(PRICE_MAX)):
        assert reason.startswith("is too large")
    else:
        assert reason is None
        assert value == f"{amount:.2f}"


@FAST
@given(cents=st.integers(min_value=0, max_value=10**6), digit=st.integers(min_value=1, max_value=9))
def test_a_third_decimal_is_refused(cents, digit):
    _, reason = parse_one(SHOES["price"], f"{Decimal(cents).scaleb(-2):.2f}{digit}")
    assert reason == "has more than 2 decimal places"


# -- timestamps ----------------------------------------------------------------------------------
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timedelta(minutes=m))


@st.composite
def timestamps(draw, low=datetime(1800, 1, 1), high=datetime(2300, 1, 1)):
    """(text, the UTC moment it means): ISO 8601 in the forms of the contract."""
    moment = draw(st.datetimes(min_value=low, max_value=high))
    spec = draw(st.sampled_from(["date", "minutes", "seconds", "microseconds"]))
    offset = draw(st.none() | offsets)
    if spec == "date":
        offset = None  # an offset needs a time of day: a date with one is refused (test below)
        moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        text = moment.date().isoformat()
    else:
        moment = {
            "minutes": moment.replace(second=0, microsecond=0),
            "seconds": moment.replace(microsecond=0),
            "microseconds": moment,
        }[spec]
        text = moment.isoformat(sep=draw(st.sampled_from(["T", " "])), timespec=spec)
    if offset is not None:
        minutes = int(offset.total_seconds() // 60)
        sign, minutes = ("-", -minutes) if minutes < 0 else ("+", minutes)
        hours, rest = divmod(minutes, 60)
        if minutes == 0:
            text += draw(st.sampled_from(["Z", "+00:00", "-00:00", "+0000", "+00"]))
        else:
            text += draw(st.sampled_from([f"{sign}{hours:02d}:{rest:02d}", f"{sign}{hours:02d}{rest:02d}"]))
        moment -= offset  # to UTC
    return text, moment


@FAST
@given(case=timestamps())
def test_timestamps_are_normalised_to_utc_within_the_bounds(case):
    text, utc = case
    value, reason = parse_one(INTERACTIONS["timestamp"], text)
    aware = utc.replace(tzinfo=UTC)
    if aware < EARLIEST:
        assert reason == "is before 1900-01-01"
    elif aware > NOW + FUTURE_TOLERANCE:
        assert reason.startswith("is in the future")
    else:
        assert reason is None, text
        assert value == pd.Timestamp(utc), text


@pytest.mark.parametrize("text", ["2024-03-05+05:30", "2024-03-05+01:00", "2024-03-05-02:00", "2024-03-05Z"])
def test_a_date_with_an_offset_is_refused(text):
    # an offset belongs to a time of day; pandas once read '+05:30' after a date as 05:30
    value, reason = parse_one(INTERACTIONS["timestamp"], text)
    assert reason == "is not a valid ISO 8601 timestamp" and pd.isna(value)


# -- anything at all -----------------------------------------------------------------------------
ALL_COLUMNS = [column for contract in (USERS, SHOES, INTERACTIONS) for column in contract.columns]


@FAST
@given(cells=st.lists(any_cell, min_size=1, max_size=8), column=st.sampled_from(ALL_COLUMNS))
def test_any_cell_gets_a_value_or_a_reason_and_never_an_exception(cells, column):
    values, reasons = parse_column(column, cells, categories=frozenset({"view", "purchase"}), now=NOW)
    assert len(values) == len(reasons) == len(cells)
    for value, reason, cell in zip(values, reasons, cells, strict=True):
        assert reason is None or (isinstance(reason, str) and reason)
        if reason is not None:
            assert pd.isna(value)
        elif cell.strip() == "":
            assert pd.isna(value) and not column.required


# -- end to end, both engines --------------------------------------------------------------------
USER_FIELDS = [column.name for column in USERS.columns]
SHOE_FIELDS = (
    SHOES.header_names
)  # the optional assortment columns (may_be_absent) left out: they load as NULL


def write_files(folder, users: str, shoes: str, interactions: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("users.csv", users), ("shoes.csv", shoes), ("interactions.csv", interactions)):
        (folder / name).write_bytes(text.encode("utf-8", "surrogateescape"))


def empty_tables(db: Database) -> None:
    for table in ("load_rejects", "load_runs", "interactions", "shoes", "users"):
        db.execute(f"delete from {table}")


@pytest.fixture(scope="module", params=ENGINES)
def module_db(request, tmp_path_factory):
    url = fresh_url(request.param, request, tmp_path_factory.mktemp("properties"))
    with Database(url) as db:
        load(db, write_folder(tmp_path_factory.mktemp("empty")))  # creates the tables
        yield db


def write_folder(folder):
    write_files(
        folder,
        "user_id,age,gender,primary_usage\n",
        csv_text([SHOE_FIELDS]),
        "user_id,shoe_id,interaction_type,timestamp\n",
    )
    return folder


users_rows = st.lists(
    st.tuples(st.integers(1, 10**12), st.none() | st.integers(0, 120), st.none() | filled_text, filled_text),
    min_size=1,
    max_size=5,
    unique_by=lambda row: row[0],
)
shoe_rows = st.lists(
    st.tuples(
        st.integers(1, 10**12),
        filled_text,
        filled_text,
        filled_text,
        filled_text,
        filled_text,
        st.integers(0, round(PRICE_MAX * 100)).map(lambda cents: Decimal(cents).scaleb(-2)),
        st.none() | filled_text,
        st.integers(1, LIFESPAN_DAYS_MAX),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda row: row[0],
)


@END_TO_END
@given(
    users=users_rows,
    shoes=shoe_rows,
    events=st.lists(
        st.tuples(
            st.integers(0, 99),
            st.integers(0, 99),
            st.sampled_from(["view", "add_to_wishlist", "purchase"]),
            timestamps(low=datetime(1901, 1, 1), high=datetime(2025, 1, 1)),
        ),
        max_size=5,
    ),
    lineterminator=st.sampled_from(["\n", "\r\n"]),
)
def test_valid_rows_round_trip_exactly(module_db, tmp_path_factory, users, shoes, events, lineterminator):
    db = module_db
    empty_tables(db)
    blank = lambda value: "" if value is None else value  # noqa: E731
    user_text = csv_text(
        [USER_FIELDS, *([uid, blank(age), blank(g), usage] for uid, age, g, usage in users)], lineterminator
    )
    shoe_text = csv_text([SHOE_FIELDS, *([*row[:7], blank(row[7]), row[8]] for row in shoes)], lineterminator)
    picked = {}
    for u, s, kind, (stamp, utc) in events:
        key = (
            users[u % len(users)][0],
            shoes[s % len(shoes)][0],
            kind,
            utc,
        )
        picked[key] = stamp
    event_text = csv_text(
        [
            INTERACTIONS.names,
            *([user_id, shoe_id, kind, stamp] for (user_id, shoe_id, kind, _), stamp in picked.items()),
        ],
        lineterminator,
    )
    folder = tmp_path_factory.mktemp("round_trip")
    write_files(folder, user_text, shoe_text, event_text)
    summary = load(db, folder)
    assert summary.rows_rejected == 0
    assert db.query("select user_id, age, gender, primary_usage from users order by user_id") == sorted(
        tuple(row) for row in users
    )
    stored = db.query(f"select {', '.join(SHOE_FIELDS)} from shoes order by shoe_id")
    assert stored == sorted(tuple(row) for row in shoes)
    got = db.query("select user_id, shoe_id, interaction_type, occurred_at from interactions")
    assert sorted(got) == sorted(picked)


cells_of = {
    "users.csv": st.lists(
        st.lists(any_cell | st.sampled_from(["1", "30", "running", ""]), min_size=3, max_size=5), max_size=4
    ),
    "shoes.csv": st.lists(
        st.lists(any_cell | st.sampled_from(["12", "9.99", "x", ""]), min_size=8, max_size=10), max_size=3
    ),
    "interactions.csv": st.lists(
        st.lists(any_cell | st.sampled_from(["1", "12", "view", "2024-01-01"]), min_size=3, max_size=5),
        max_size=4,
    ),
}
HEADERS = {
    "users.csv": USER_FIELDS,
    "shoes.csv": SHOE_FIELDS,
    "interactions.csv": [column.name for column in INTERACTIONS.columns],
}


@END_TO_END
@given(files=st.fixed_dictionaries(cells_of))
def test_arbitrary_cells_load_or_raise_load_error_only(module_db, tmp_path_factory, files):
    db = module_db
    empty_tables(db)
    assume(any(files.values()))
    folder = tmp_path_factory.mktemp("arbitrary")
    texts = {}
    for name, rows in files.items():
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows([HEADERS[name], *rows])
        texts[name] = buffer.getvalue()
    write_files(folder, texts["users.csv"], texts["shoes.csv"], texts["interactions.csv"])
    try:
        summary = load(db, folder)
    except LoadError as error:
        assert error.problems and all(problem.reason for problem in error.problems)
        assert db.scalar("select count(*) from users") + db.scalar("select count(*) from load_runs") == 0
    else:
        assert summary.rows_rejected == 0
        assert db.scalar("select count(*) from load_runs") == 1


# -- any length, any magnitude (issue 17) --------------------------------------------------------
digits = st.text(alphabet="0123456789", min_size=1, max_size=6_000)
huge_cell = st.one_of(
    st.tuples(st.sampled_from(["", "+", "-"]), digits).map("".join),  # integers of any magnitude
    st.tuples(digits, digits).map(".".join),  # decimals with any number of digits on either side
    st.integers(1, 6_000).map(lambda n: "9" * n),
    st.integers(1, 6_000).map(lambda n: "0" * n + "1"),
    st.text(max_size=20_000),  # text of any length
)


@FAST
@given(cells=st.lists(huge_cell | any_cell, min_size=1, max_size=4), column=st.sampled_from(ALL_COLUMNS))
def test_cells_of_any_length_and_magnitude_get_a_value_or_a_reason(cells, column):
    values, reasons = parse_column(column, cells, categories=frozenset({"view", "purchase"}), now=NOW)
    for value, reason, cell in zip(values, reasons, cells, strict=True):
        assert reason is None or (isinstance(reason, str) and reason)
        if reason is not None:
            assert pd.isna(value)
        elif column.kind in ("id", "integer") and cell.strip():
            # an accepted integer is within its column's range, whatever its length
            assert (column.low or -(2**63)) <= value <= (column.high or 2**63 - 1)


@pytest.fixture(scope="module", params=ENGINES)
def built_db(request, tmp_path_factory):
    """Tables and views, for the check that every accepted file leaves every view computable."""
    url = fresh_url(request.param, request, tmp_path_factory.mktemp("built"))
    with Database(url) as db:
        create_schema(db)
        yield db


VIEWS = [path.stem for path in view_files()]
USAGES = ["running", "walking", "casual", "hiking", "formal", "training", "odd usage"]
MATERIALS = ["leather", "suede", "mesh", "canvas", "rubber", "cork", "odd material"]
# anywhere in the contract's ranges, the bounds included
contract_users = st.lists(
    st.tuples(
        st.integers(-(2**63), 2**63 - 1) | st.sampled_from([-(2**63), 2**63 - 1]),
        st.none() | st.integers(0, 120) | st.sampled_from([0, 120]),
        st.none() | filled_text,
        st.sampled_from(USAGES),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda row: row[0],
)
contract_shoes = st.lists(
    st.tuples(
        st.integers(-(2**63), 2**63 - 1),
        st.integers(0, round(PRICE_MAX * 100)) | st.sampled_from([0, round(PRICE_MAX * 100)]),
        st.sampled_from(MATERIALS),
        st.integers(1, LIFESPAN_DAYS_MAX) | st.sampled_from([1, LIFESPAN_DAYS_MAX]),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda row: row[0],
)
contract_moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime.now().replace(microsecond=0)
)


@END_TO_END
@given(
    users=contract_users,
    shoes=contract_shoes,
    events=st.lists(
        st.tuples(
            st.integers(0, 99),
            st.integers(0, 99),
            st.sampled_from(["view", "add_to_wishlist", "purchase", "purchase"]),
            contract_moments | st.sampled_from([datetime(1900, 1, 1)]),
        ),
        max_size=8,
    ),
)
def test_every_accepted_file_leaves_every_view_computable(built_db, tmp_path_factory, users, shoes, events):
    db = built_db
    empty_tables(db)
    user_text = csv_text(
        [
            USER_FIELDS,
            *([uid, "" if age is None else age, gender or "", usage] for uid, age, gender, usage in users),
        ]
    )
    shoe_rows = [
        {"shoe_id": sid, "name": "Shoe", "brand": "Acme", "type": "boot", "material": material, "color": "red",
         "price": f"{Decimal(cents).scaleb(-2):.2f}", "lifespan_days": days}
        for sid, cents, material, days in shoes
    ]  # fmt: skip
    shoe_text = csv_text([SHOE_FIELDS, *([row.get(name, "") for name in SHOE_FIELDS] for row in shoe_rows)])
    event_rows = {
        (users[u % len(users)][0], shoes[s % len(shoes)][0], kind, moment.isoformat() + "Z")
        for u, s, kind, moment in events
    }
    event_text = csv_text([INTERACTIONS.names, *sorted(event_rows)])
    folder = tmp_path_factory.mktemp("contract_bounds")
    write_files(folder, user_text, shoe_text, event_text)
    assert load(db, folder).rows_rejected == 0
    for view in VIEWS:
        db.scalar(f"select count(*) from {view}")  # raises if the view cannot be computed
    # care reminders stay within each pair's personal lifespan (the shortest schedule: every 45 days)
    purchases = db.scalar("select count(*) from purchases")
    assert db.scalar("select count(*) from care_notifications") <= purchases * (
        2 * LIFESPAN_DAYS_MAX // 45 + 1
    )
