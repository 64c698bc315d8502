"""The loader's engine fast path (scripts/staging.py) against its reference, the Python path, on both engines.

``load(engine_staging=True)`` stages a file by the engine (DuckDB ``read_csv``, PostgreSQL ``COPY``,
every cell typed and checked in SQL) only when that gives exactly what ``engine_staging=False`` gives;
otherwise it steps aside and the Python path stages the file. Each test loads the same folder once
with each setting, into two fresh databases of the same engine, and checks:

- parity on accepted cells: every column kind of the contract, with many shapes of each (ids,
  bounded integers, prices, text with unicode, whitespace, quotes and commas, the ``availability``
  choice, dates, timestamps of every separator, precision and offset), stores the same rows and
  counts, and the files of the fast path's subset really were staged by the engine;
- deferral: a file with a cell or a byte shape outside the subset (a 19-digit id, ``12.500``, a tab or
  a no-break space around a number, a 7-digit fraction, a quoted newline, mixed line ends, blank
  lines, a line of only ``\\.``, a header after a blank line) is staged by the Python path, with
  the same result;
- refusals: an invalid cell gives the same LoadError text either way and leaves the database as it
  was;
- a property: random interaction timestamps and ids, built from a strategy of shapes, are stored
  (or refused) alike by both paths.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import (
    BASE_INTERACTIONS,
    BASE_SHOES,
    BASE_USERS,
    ENGINES,
    built_url,
    dump,
    fresh_url,
    write_files,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from scripts.db import Database
from scripts.load import LoadError, load

U, S, E = "users.csv", "shoes.csv", "interactions.csv"
USER_HEADER = "user_id,age,gender,primary_usage"
SHOE_HEADER = "shoe_id,name,brand,type,material,color,price,care_instructions,lifespan_days"
FULL_SHOE_HEADER = SHOE_HEADER + ",availability,discontinued_on"
EVENT_HEADER = "user_id,shoe_id,interaction_type,timestamp"
CONTENT_TABLES = ("users", "shoes", "interactions", "load_rejects")
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a load takes long: report as found
)


def q(value: str) -> str:
    """A CSV field quoted (its quotes doubled)."""
    return '"' + value.replace('"', '""') + '"'


def lines(header: str, rows: list[list[str]], end: str = "\n") -> str:
    return "".join(line + end for line in [header, *(",".join(row) for row in rows)])


def contents(db: Database) -> dict[str, list[str]]:
    """The loaded tables (dump of every data table but load_runs, whose times and ids differ) and
    load_runs' counts."""
    state = {name: rows for name, rows in dump(db).items() if name != "load_runs"}
    state["load_runs:counts"] = sorted(
        map(repr, db.query("select is_skip_invalid, rows_read, rows_loaded, rows_rejected from load_runs"))
    )
    return state


def outcome(db: Database, folder: Path, engine_staging: bool, skip_invalid: bool = False):
    """("ok", per-file counts, staged_by per file) or ("error", LoadError text), and the contents."""
    try:
        summary = load(db, folder, skip_invalid, engine_staging=engine_staging)
    except LoadError as exc:
        return ("error", str(exc), None), contents(db)
    staged_by = {name: counts.staged_by for name, counts in summary.files.items() if counts.present}
    return ("ok", summary.files, staged_by), contents(db)


def both_paths(engine, request, tmp_path, files: dict[str, str | bytes | None], skip_invalid=False):
    """Load the folder ``files`` into two fresh databases: engine_staging on, then off."""
    folder = write_files(tmp_path / "data", files)
    results = []
    for engine_staging in (True, False):
        with Database(built_url(engine, request, tmp_path)) as db:
            results.append(outcome(db, folder, engine_staging, skip_invalid))
    return results


def assert_parity(on, off) -> None:
    (result_on, state_on), (result_off, state_off) = on, off
    assert result_on[:2] == result_off[:2]  # the same counts (FileCounts ignores staged_by), or error text
    assert state_on == state_off
    if result_off[0] == "ok":
        assert set(result_off[2].values()) == {"python"}  # engine_staging=False is the Python path


# -- 1. parity on accepted cells -----------------------------------------------------------------
IDS = [
    "1",
    " 2 ",
    "+3",
    "000000000000000004",
    "999999999999999999",
    "-5",
    "  6",
    "7  ",
    "+000000000000000008",
]
AGES = ["", "0", "120", " 7 ", "+8", "-0", "007", "  ", "34", "119"]
TEXTS_OPTIONAL = [
    "",
    "   ",
    "female",
    " spaced ",
    "Zoë",
    "日本語",
    "a, b",
    'say "hi"',
    "👟 emoji",
    "\u00a0",
    "\u2003\t",
    "\t",
    "\u3000",
    "x\u00a0",
    "Ünïcödé ,\"'",
]
TEXTS_REQUIRED = ["running", " walking ", "ünïcödé", "a,b", '"quoted"', "tab\tinside", "  lead", "trail  "]


def parity_users() -> str:
    rows = []
    for i, uid in enumerate(IDS):
        rows.append(
            [q(uid), q(AGES[i % len(AGES)]), q(TEXTS_OPTIONAL[i % len(TEXTS_OPTIONAL)]), TEXTS_REQUIRED[0]]
        )
    for i, text in enumerate(TEXTS_OPTIONAL):
        rows.append(
            [str(100 + i), AGES[(i + 3) % len(AGES)], q(text), q(TEXTS_REQUIRED[i % len(TEXTS_REQUIRED)])]
        )
    return lines(USER_HEADER, rows)


PRICES = [
    "0",
    "0.00",
    "12",
    "12.5",
    "12.50",
    ".99",
    "+5.25",
    "1000000",
    "1000000.00",
    " 7.1 ",
    "129.",
    "+.5",
    ".5",
]
LIFESPANS = ["1", "3650", " 400 ", "+12", "0400", "730"]
AVAILABILITY = [
    "",
    " In Stock ",
    "in_stock",
    "PREORDER",
    "Out Of Stock",
    "out of  stock",
    "BackOrder",
    "  ",
    "IN_STOCK",
    "out_of_stock",
]
DATES = [
    "",
    "2024-02-29",
    " 2030-01-01 ",
    "1900-01-01",
    "2999-12-31",
    "2000-02-29",
    "2023-12-31",
    "  ",
    "2024-04-30",
    "2400-02-29",
    "1904-02-29",
]


def parity_shoes() -> str:
    rows = []
    for i, price in enumerate(PRICES):
        text = TEXTS_REQUIRED[i % len(TEXTS_REQUIRED)]
        rows.append(
            [
                str(10 + i),
                q(text),
                q("Acme, Inc."),
                "running",
                q(TEXTS_REQUIRED[(i + 1) % len(TEXTS_REQUIRED)]),
                "blue",
                q(price),
                q(TEXTS_OPTIONAL[i % len(TEXTS_OPTIONAL)]),
                q(LIFESPANS[i % len(LIFESPANS)]),
                q(AVAILABILITY[i % len(AVAILABILITY)]),
                q(DATES[i % len(DATES)]),
            ]
        )
    return lines(FULL_SHOE_HEADER, rows)


def past_timestamps() -> list[str]:
    """Timestamps of every accepted shape, in the past (2024-2025), plus two near the future bound."""
    stamps = [
        "2024-02-29",
        "2025-01-02",
        " 2024-03-01 ",
        "2024-03-01T10:00",
        "2024-03-01 10:00",
        "2024-03-01T10:00:59",
        "2024-03-01 23:59:59",
        "2024-02-29T00:00:00",
    ]
    for digits in range(1, 7):
        fraction = "123456"[:digits]
        stamps += [f"2024-05-06T07:08:09.{fraction}", f"2024-05-06 07:08:09.{fraction}Z"]
    for offset in [
        "Z",
        "+02",
        "+0230",
        "-02:30",
        "+14:00",
        "-14:00",
        "+00:00",
        "-00",
        "+05:45",
        "-0930",
        "+14",
    ]:
        stamps += [
            f"2024-03-01T10:00{offset}",
            f"2024-12-31 23:30:00{offset}",
            f"2025-01-01T00:00:00.5{offset}",
        ]
    # edges of the ranges the fast path checks (DuckDB: in its patterns, the calendar by try_cast)
    stamps += [
        "2000-02-29T12:00Z",
        "2024-02-29 23:59",
        "1900-01-01T00:00:00Z",
        "1900-01-01 00:00",
        "1900-01-01T00:00-00:00",
        "2024-12-31T23:59:59.999999+14:59",
        "2024-01-01T00:00:00-14:59",
        "2024-01-01T00:00:00+1459",
        "2024-04-30T00:00:59",
        "2024-01-31T09:59:09.9-0000",
    ]
    stamps += [
        "  2024-06-01T12:00:00Z  ",
        " 2024-06-01 12:00:00.000001+01:00",
        "2024-02-29T23:59:59.999999-02:00",
    ]
    now = datetime.now(UTC)
    stamps.append((now + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ"))  # within the tolerance
    stamps.append((now - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f"))
    return stamps


def parity_events() -> str:
    kinds = ["view", "add_to_wishlist", "purchase"]
    rows = [
        [q(IDS[i % len(IDS)]), str(10 + i % len(PRICES)), kinds[i % 3], q(stamp)]
        for i, stamp in enumerate(past_timestamps())
    ]
    rows.append(["1", "10", "view", "2024-03-01T10:00:00Z"])  # the same moment as 2024-03-01 12:00+02
    rows.append(["1", "10", "view", "2024-03-01 12:00+02"])
    return lines(EVENT_HEADER, rows)


PARITY_FILES = {U: parity_users(), S: parity_shoes(), E: parity_events()}


def test_every_accepted_shape_is_staged_by_the_engine_and_stored_as_by_python(engine, request, tmp_path):
    on, off = both_paths(engine, request, tmp_path, PARITY_FILES)
    assert on[0][0] == "ok", on[0][1]
    assert on[0][2] == {U: "engine", S: "engine", E: "engine"}  # the fast path really ran
    assert_parity(on, off)
    assert len(on[1]["interactions"]) > 40 and len(on[1]["shoes"]) == len(PRICES)


def test_the_base_files_and_their_crlf_form_are_staged_by_the_engine(engine, request, tmp_path):
    crlf = {name: text.replace("\n", "\r\n") for name, text in PARITY_FILES.items()}
    on, off = both_paths(engine, request, tmp_path, crlf)
    assert on[0][2] == {U: "engine", S: "engine", E: "engine"}
    assert_parity(on, off)
    base_on, base_off = both_paths(engine, request, tmp_path / "base", {})
    assert base_on[0][2] == {U: "engine", S: "engine", E: "engine"}
    assert_parity(base_on, base_off)


def test_a_file_without_the_optional_columns_is_staged_by_the_engine(engine, request, tmp_path):
    shoes = BASE_SHOES + '12,"Zoë, ""the"" shoe",Acme,running,mesh,red,+.5,"  ",1\n'
    on, off = both_paths(engine, request, tmp_path, {S: shoes})
    assert on[0][2][S] == "engine"
    assert_parity(on, off)


def test_duckdbs_ranged_patterns_have_the_shapes_of_the_masks():
    """DuckDB's date and timestamp patterns hold the ranges (scripts/staging.py: _ranged_patterns);
    with every range widened to a digit they accept exactly the masks PostgreSQL matches: each mask,
    and none of the texts one character away from a mask (changed, left out or added)."""
    import re

    from scripts.staging import MASKS, PATTERNS

    for kind in ("date", "timestamp"):
        widened = re.sub(r"\[[0-9](?:-?[0-9])*\]", "D", PATTERNS[kind])
        widened = re.sub(r"[0-9]", "9", widened.replace("D", "9"))
        masks = set(MASKS[kind])
        alphabet = sorted(set("".join(masks)))
        near = set()
        for mask in masks:
            for i in range(len(mask) + 1):
                near.add(mask[:i] + mask[i + 1 :])
                for char in alphabet:
                    near |= {mask[:i] + char + mask[i + 1 :], mask[:i] + char + mask[i:]}
        for text in masks | near:
            assert bool(re.fullmatch(widened, text)) == (text in masks), (kind, text)


# -- 2. deferral ---------------------------------------------------------------------------------
# each: files that Python accepts, with something outside the fast path's subset in one file
DEFERRED = {
    "19-digit id": (U, BASE_USERS + "0000000000000000009,40,,running\n"),
    "19-digit id in interactions": (E, BASE_INTERACTIONS + "0000000000000000001,10,view,2024-03-04\n"),
    "price with three decimals": (S, BASE_SHOES + "12,A,B,C,D,E,12.500,,10\n"),
    "price minus zero": (S, BASE_SHOES + "12,A,B,C,D,E,-0.00,,10\n"),
    "tab around an age": (U, BASE_USERS + '4,"\t34\t",,running\n'),
    "tab around an id": (U, BASE_USERS + '"\t4",34,,running\n'),
    "7-digit fraction": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04T10:00:00.1234567Z\n"),
    "9-digit fraction": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04T10:00:00.123456789+01:00\n"),
    "comma fraction": (E, BASE_INTERACTIONS + '1,11,view,"2024-03-04T10:00:00,5"\n'),
    "quoted newline": (S, BASE_SHOES + '12,A,B,C,D,E,5,"line one\nline two",10\n'),
    "quoted line of only \\.": (S, BASE_SHOES + '12,A,B,C,D,E,5,"before\n\\.\nafter",10\n'),
    "quoted CRLF": (S, BASE_SHOES + '12,A,B,C,D,E,5,"line one\r\nline two",10\n'),
    "mixed line ends": (U, BASE_USERS + "4,40,,running\r\n5,41,,walking\n"),
    "blank line in the middle": (U, BASE_USERS.replace("\n2,", "\n\n2,")),
    "blank line at the end": (U, BASE_USERS + "\n"),
    "header after a blank line": (U, "\n" + BASE_USERS),
    "quote inside a field": (S, BASE_SHOES + '12,A 12" wide,B,C,D,E,5,,10\n'),
    "19-digit id with a sign": (U, BASE_USERS + "+0000000000000000004,40,,running\n"),
    "offset of 15 hours": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04T10:00:00+15:00\n"),
    "offset of 15 hours without a colon": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04T10:00+1500\n"),
    # Python reads an offset's minutes beyond 59 (+14:60 is +15:00); the fast path does not
    "offset minutes 60": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04T10:00:00+14:60\n"),
    "offset minutes 99": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04T10:00-0999\n"),
    # a line longer than the csv module's field limit (131,072) may hold a field that long: the scan
    # sends it to Python, which accepts these two fields of 70,000 characters
    "line beyond the field limit": (S, BASE_SHOES + f"12,{'A' * 70_000},{'B' * 70_000},C,D,E,5,,10\n"),
}
MAY_DEFER = {  # outside what the fast path documents either way: only parity is claimed
    "BOM": (U, "\ufeff" + BASE_USERS),
    "BOM and CRLF": (E, ("\ufeff" + BASE_INTERACTIONS).replace("\n", "\r\n")),
    "no final line end": (U, BASE_USERS.rstrip("\n")),
    # DuckDB's trim also takes away the other Unicode spaces (each of which Python's strip takes away
    # too), so DuckDB stages these by the engine and PostgreSQL (whose trim takes spaces only) does not
    "no-break space around an age": (U, BASE_USERS + "4,\u00a034,,running\n"),
    "no-break space around a timestamp": (E, BASE_INTERACTIONS + "1,11,view,\u00a02024-03-04T10:00Z\n"),
}


@pytest.mark.parametrize("case", sorted(DEFERRED))
def test_a_file_outside_the_subset_is_staged_by_python_alike(engine, request, tmp_path, case):
    name, text = DEFERRED[case]
    on, off = both_paths(engine, request, tmp_path, {name: text})
    assert on[0][0] == "ok", on[0][1]
    assert on[0][2][name] == "python"
    assert_parity(on, off)


@pytest.mark.parametrize("case", sorted(MAY_DEFER))
def test_a_file_of_another_byte_shape_loads_alike(engine, request, tmp_path, case):
    name, text = MAY_DEFER[case]
    on, off = both_paths(engine, request, tmp_path, {name: text})
    assert on[0][0] == "ok", on[0][1]
    assert_parity(on, off)


# -- 3. refusals ---------------------------------------------------------------------------------
REFUSED = {
    "field beyond the csv module's limit": (S, BASE_SHOES + f"12,A,B,C,D,E,5,{'x' * 131_073},10\n"),
    "bad id": (U, BASE_USERS + "x,40,,running\n"),
    "empty id": (U, BASE_USERS + ",40,,running\n"),
    "id beyond bigint": (U, BASE_USERS + "9223372036854775808,40,,running\n"),
    "age 121": (U, BASE_USERS + "4,121,,running\n"),
    "age -1": (U, BASE_USERS + "4,-1,,running\n"),
    "blank required text": (U, BASE_USERS + '4,40,,"\u00a0 "\n'),
    "unknown interaction_type": (E, BASE_INTERACTIONS + "1,11,like,2024-03-04\n"),
    "padded interaction_type": (E, BASE_INTERACTIONS + "1,11, view,2024-03-04\n"),
    "month 13": (E, BASE_INTERACTIONS + "1,11,view,2024-13-01\n"),
    "February 30": (E, BASE_INTERACTIONS + "1,11,view,2024-02-30T10:00:00\n"),
    "February 29 of 2023": (E, BASE_INTERACTIONS + "1,11,view,2023-02-29\n"),
    "hour 24": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04T24:00\n"),
    "hour 24 with seconds and Z": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04T24:00:00Z\n"),
    "minute 60": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04T10:60\n"),
    "second 60 with an offset": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04 10:00:60+01:00\n"),
    "February 29 of 1900": (E, BASE_INTERACTIONS + "1,11,view,1900-02-29T10:00Z\n"),
    "April 31": (E, BASE_INTERACTIONS + "1,11,view,2024-04-31\n"),
    "day 00": (E, BASE_INTERACTIONS + "1,11,view,2024-04-00T10:00\n"),
    "year 0000": (E, BASE_INTERACTIONS + "1,11,view,0000-01-01T00:00Z\n"),
    "year 9999": (E, BASE_INTERACTIONS + "1,11,view,9999-12-31\n"),
    "just before 1900 by its offset": (E, BASE_INTERACTIONS + "1,11,view,1900-01-01T10:00+10:01\n"),
    "leap second": (E, BASE_INTERACTIONS + "1,11,view,2024-03-04T23:59:60Z\n"),
    "future timestamp": (E, BASE_INTERACTIONS + "1,11,view,2099-01-01T00:00:00Z\n"),
    "timestamp before 1900": (E, BASE_INTERACTIONS + "1,11,view,1899-12-31T23:59:59Z\n"),
    "date with an offset": (E, BASE_INTERACTIONS + "1,11,view,2024-03-05+05:30\n"),
    "negative price": (S, BASE_SHOES + "12,A,B,C,D,E,-1.00,,10\n"),
    "third decimal": (S, BASE_SHOES + "12,A,B,C,D,E,1.005,,10\n"),
    "price too large": (S, BASE_SHOES + "12,A,B,C,D,E,1000000.01,,10\n"),
    "lifespan 0": (S, BASE_SHOES + "12,A,B,C,D,E,5,,0\n"),
    "unknown availability": (S, FULL_SHOE_HEADER + "\n12,A,B,C,D,E,5,,10,back order,\n"),
    "discontinued on 2024-02-30": (S, FULL_SHOE_HEADER + "\n12,A,B,C,D,E,5,,10,,2024-02-30\n"),
    "discontinued before 1900": (S, FULL_SHOE_HEADER + "\n12,A,B,C,D,E,5,,10,,1899-12-31\n"),
    "discontinued on 1900-02-29": (S, FULL_SHOE_HEADER + "\n12,A,B,C,D,E,5,,10,,1900-02-29\n"),
    "discontinued on 2023-02-29": (S, FULL_SHOE_HEADER + "\n12,A,B,C,D,E,5,,10,,2023-02-29\n"),
    "discontinued on 3000-01-01": (S, FULL_SHOE_HEADER + "\n12,A,B,C,D,E,5,,10,,3000-01-01\n"),
    "discontinued on month 00": (S, FULL_SHOE_HEADER + "\n12,A,B,C,D,E,5,,10,,2024-00-10\n"),
    "wrong field count": (U, BASE_USERS + "4,40,running\n"),
    "too many fields": (U, BASE_USERS + "4,40,,running,extra\n"),
    "bare line of only \\.": (U, BASE_USERS + "\\.\n5,40,,running\n"),
    "unknown user": (E, BASE_INTERACTIONS + "99,11,view,2024-03-04\n"),
    "duplicate user": (U, BASE_USERS + "3,50,,walking\n"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_invalid_cell_is_refused_alike_and_changes_nothing(engine, request, tmp_path, case):
    name, text = REFUSED[case]
    folder = write_files(tmp_path / "bad", {name: text})
    base = write_files(tmp_path / "base", {})
    results = []
    for engine_staging in (True, False):
        with Database(built_url(engine, request, tmp_path)) as db:
            load(db, base, engine_staging=False)
            before = dump(db)
            with pytest.raises(LoadError) as caught:
                load(db, folder, engine_staging=engine_staging)
            assert dump(db) == before
            results.append(str(caught.value))
    assert results[0] == results[1]


@pytest.mark.parametrize("case", ["age 121", "February 30", "discontinued before 1900", "wrong field count"])
def test_skip_invalid_keeps_and_rejects_the_same_rows(engine, request, tmp_path, case):
    name, text = REFUSED[case]
    on, off = both_paths(engine, request, tmp_path, {name: text}, skip_invalid=True)
    assert on[0][0] == "ok", on[0][1]
    assert_parity(on, off)
    assert on[1]["load_rejects"]


# -- 4. a property: timestamps and ids of random shapes ---------------------------------------------
def _timestamp(draw) -> tuple[str, bool]:
    """A timestamp in the past and whether the fast path's subset holds its shape."""
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2025, 12, 31)))
    in_subset = True
    text = moment.strftime("%Y-%m-%d")
    precision = draw(st.sampled_from(["date", "minutes", "seconds", "fraction"]))
    if precision != "date":
        text += draw(st.sampled_from("T ")) + moment.strftime("%H:%M")
        if precision in ("seconds", "fraction"):
            text += moment.strftime(":%S")
        if precision == "fraction":
            digits = draw(st.integers(1, 9))
            text += (
                draw(st.sampled_from(".,"))
                + f"{moment.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
            )
            in_subset &= digits <= 6 and "," not in text
        offset = draw(st.sampled_from(["", "Z", "+HH", "+HHMM", "+HH:MM"]))
        if offset not in ("", "Z"):
            hours, minutes = draw(st.integers(0, 15)), draw(st.sampled_from([0, 30, 45, 59]))
            sign = draw(st.sampled_from("+-"))
            offset = offset.replace("+", sign).replace("HH", f"{hours:02d}").replace("MM", f"{minutes:02d}")
            in_subset &= hours <= 14
        text += offset
    before, after = draw(st.sampled_from(["", " ", "  ", "\t"])), draw(st.sampled_from(["", " ", "\t"]))
    in_subset &= "\t" not in before + after
    return before + text + after, in_subset


@st.composite
def timestamps(draw) -> tuple[str, bool]:
    return _timestamp(draw)


@st.composite
def ids(draw, choices: tuple[int, ...]) -> tuple[str, bool]:
    """An id of ``choices`` written with a random sign, zeros and padding; in the subset or not."""
    value = draw(st.sampled_from(choices))
    zeros = draw(st.integers(0, 20))
    sign = draw(st.sampled_from(["", "+"]))
    digits = "0" * zeros + str(value)
    pad = draw(st.sampled_from(["", " ", "  "]))
    return pad + sign + digits + pad, len(digits) <= 18


@pytest.fixture(scope="module", params=ENGINES)
def path_dbs(request, tmp_path_factory):
    """Two databases of one engine, holding the base users and shoes: one per path."""
    base = write_files(tmp_path_factory.mktemp("base"), {E: EVENT_HEADER + "\n"})
    databases = []
    for _ in range(2):
        db = Database(fresh_url(request.param, request, tmp_path_factory.mktemp("db")))
        load(db, base, engine_staging=False)
        databases.append(db)
    yield databases
    for db in databases:
        db.close()


@PROPERTY
@given(
    events=st.lists(
        st.tuples(ids((1, 2, 3)), ids((10, 11)), st.sampled_from(["view", "purchase"]), timestamps()),
        min_size=1,
        max_size=12,
    )
)
def test_random_timestamps_and_ids_are_stored_alike(path_dbs, tmp_path_factory, events):
    rows = [[q(user), q(shoe), kind, q(stamp)] for (user, _), (shoe, _), kind, (stamp, _) in events]
    folder = write_files(tmp_path_factory.mktemp("events"), {U: None, S: None, E: lines(EVENT_HEADER, rows)})
    in_subset = all(a and b and c for (_, a), (_, b), _, (_, c) in events)
    results = []
    for db, engine_staging in zip(path_dbs, (True, False), strict=True):
        for table in ("load_rejects", "load_runs", "interactions"):
            db.execute(f"delete from {table}")
        results.append(outcome(db, folder, engine_staging))
    (on, state_on), (off, state_off) = results
    assert (on[:2], state_on["interactions"]) == (off[:2], state_off["interactions"]), rows
    if in_subset:
        assert on[0] == "ok" and on[2] == {E: "engine"}, rows


# -- 5. line numbers of a file read by several threads ---------------------------------------------
def test_a_large_file_read_by_several_threads_reports_the_exact_lines(request, tmp_path, caplog):
    """DuckDB types a file's rows in parallel and numbers them by their order in the typed table
    (scripts/staging.py): 1.3M events (40 MB, several blocks of its CSV reader) read with 4 threads,
    with unknown users near the start, in the middle and 3 lines before the end, must be refused
    with exactly those lines (the Python path's message: test_an_invalid_cell_is_refused_alike)."""
    rows = 1_300_000
    row = b"1,10,view,2024-03-01T10:00:00Z\n"
    unknown = {2: b"91,10,view,2024-03-01T10:00:00Z\n", rows // 2: b"92,11,view,2024-03-02 10:00\n"}
    unknown[rows - 3] = b"93,10,purchase,2024-03-03T10:00:00.5+01:00\n"
    body, start = [], 1
    for line in sorted(unknown):  # physical lines: the header is line 1
        body += [row * (line - start - 1), unknown[line]]
        start = line
    body.append(row * (rows + 1 - start))
    data = (EVENT_HEADER + "\n").encode() + b"".join(body)
    assert data.count(b"\n") == rows + 1 and len(data) > 40_000_000
    folder = write_files(tmp_path / "data", {E: data})
    with Database(built_url("duckdb", request, tmp_path)) as db:
        db.execute("set threads = 4")
        with caplog.at_level("DEBUG", logger="scripts.staging"), pytest.raises(LoadError) as caught:
            load(db, folder, engine_staging=True)
    assert f"interactions.csv: {rows} records staged by the engine" in caplog.text  # the fast path ran
    for line, user in zip(sorted(unknown), (91, 92, 93), strict=True):
        assert f"interactions.csv:{line}:1: user_id: '{user}' " in str(caught.value)
