"""Files an adversary would write, through the whole loader on both engines (issue 17, items 2-4).

- Broken quoting in the middle of a file: in --skip-invalid mode every line ends up loaded or in
  load_rejects (with its line number and raw text), and the summary adds up to the file's lines.
  An unclosed quote once swallowed the 3,662 events after it (up to the csv module's field size
  limit) into one reject without raw text.
- A 5,000-digit integer in any integer column gets a reason in both modes (it once crashed the
  parser with Python's "Exceeds the limit (4300 digits)").
- A header with 100,000 extra columns gives a bounded number of warnings (the first five, then a
  count), not one line per column.
"""

from __future__ import annotations

import logging

import pytest

from scripts.db import Database
from scripts.load import REPORTED_WARNINGS, LoadError, load, main

USERS_HEADER = "user_id,age,gender,primary_usage\n"
SHOES_HEADER = "shoe_id,name,brand,type,material,color,price,care_instructions,lifespan_days\n"
EVENTS_HEADER = "user_id,shoe_id,interaction_type,timestamp\n"
N_USERS, N_SHOES = 50, 20


def users_text() -> str:
    return USERS_HEADER + "".join(f"{u},{20 + u % 50},,running\n" for u in range(1, N_USERS + 1))


def shoes_text() -> str:
    return SHOES_HEADER + "".join(
        f"{s},Shoe {s},Acme,running,mesh,blue,{50 + s}.99,,{300 + s}\n" for s in range(1, N_SHOES + 1)
    )


def event_line(i: int) -> str:
    """A valid, unique event (i >= 0)."""
    day, second = divmod(i, 86_400)
    return (
        f"{1 + i % N_USERS},{1 + (i // N_USERS) % N_SHOES},view,"
        f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
    )


def write(folder, users=None, shoes=None, events=EVENTS_HEADER):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("users.csv", users or users_text()),
        ("shoes.csv", shoes or shoes_text()),
        ("interactions.csv", events),
    ):
        (folder / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    return folder


def rejects(db: Database, load_id: int) -> list[tuple]:
    return db.query(
        "select file_name, line_number, column_name, raw_value, reason from load_rejects"
        " where load_id = ? order by file_name, line_number, column_name",
        [load_id],
    )


def assert_every_line_accounted_for(summary, db: Database, file_name: str, data_lines: int) -> None:
    """Each line after the header is one record (no quoted newlines here): loaded, unchanged, a
    duplicate or rejected, and every rejected one is in load_rejects with its raw text."""
    counts = summary.files[file_name]
    assert counts.lines == data_lines
    assert counts.read == data_lines
    assert counts.loaded + counts.unchanged + counts.duplicates + counts.rejected == data_lines
    refused = {
        line
        for file, line, _, raw, _ in rejects(db, summary.load_id)
        if file == file_name and (raw is not None or line is None)
    }
    assert len(refused) == counts.rejected


# -- item 2: an unclosed quote in the middle of a file -------------------------------------------
EVENTS = 5_000
BROKEN_LINE = 1_000  # physical line (header = 1)


def unclosed_quote_events() -> str:
    lines = [event_line(i) for i in range(EVENTS)]
    user, shoe, kind, stamp = lines[BROKEN_LINE - 2].split(",")
    lines[BROKEN_LINE - 2] = f'{user},{shoe},"{kind},{stamp}'  # the quote is never closed
    return EVENTS_HEADER + "\n".join(lines) + "\n"


def test_an_unclosed_quote_mid_file_refuses_its_line_alone(db, tmp_path):
    folder = write(tmp_path, events=unclosed_quote_events())
    raw = unclosed_quote_events().splitlines()[BROKEN_LINE - 1]
    # strict: one problem, on its line
    with pytest.raises(LoadError) as refused:
        load(db, folder)
    assert [(p.line, p.column) for p in refused.value.problems] == [(BROKEN_LINE, None)]
    assert refused.value.problems[0].reason.startswith("malformed CSV record (")
    # skip mode: every other event loads, the broken line is kept with its raw text
    summary = load(db, folder, skip_invalid=True)
    events = summary.files["interactions.csv"]
    assert (events.read, events.loaded, events.rejected) == (EVENTS, EVENTS - 1, 1)
    assert db.scalar("select count(*) from interactions") == EVENTS - 1
    [(file, line, column, stored, reason)] = rejects(db, summary.load_id)
    assert (file, line, column, stored) == ("interactions.csv", BROKEN_LINE, None, raw)
    assert "malformed CSV record" in reason and "ran on to line" in reason
    assert_every_line_accounted_for(summary, db, "interactions.csv", EVENTS)


def test_every_line_of_a_file_with_broken_quoting_is_loaded_or_rejected(db, tmp_path):
    good = [event_line(i) for i in range(400)]
    broken = {
        50: '1,1,"view,2024-05-01T00:00:00Z',  # unclosed: runs on to the next quote (line 120)
        120: '2,2,view,"2024-05-01T00:00:00Z"x',  # text after a closing quote
        200: '3,3,"view",2024-05-01T00:00:00Z,"',  # a quote opened at the end of a line
        210: "4,4,view,2024-05-01T00:00:00Z,extra",  # one field too many
        300: '5,"5',  # unclosed, running on to the end of the file
    }
    lines = [broken.get(number, good[number - 2]) for number in range(2, 402)]
    folder = write(tmp_path, events=EVENTS_HEADER + "\n".join(lines) + "\n")
    summary = load(db, folder, skip_invalid=True)
    assert_every_line_accounted_for(summary, db, "interactions.csv", 400)
    refused = {line: raw for _, line, _, raw, _ in rejects(db, summary.load_id)}
    assert refused == {number: text for number, text in broken.items()}
    assert db.scalar("select count(*) from interactions") == 400 - len(broken)


# -- item 3: integers of any length --------------------------------------------------------------
LONG = "9" * 5_000


@pytest.mark.parametrize(
    "file, row, column",
    [
        ("users.csv", f"{LONG},30,,running", "user_id"),
        ("users.csv", f"51,-{LONG},,running", "age"),
        ("shoes.csv", f"21,X,Acme,running,mesh,blue,1.00,,{LONG}", "lifespan_days"),
        ("shoes.csv", f"21,X,Acme,running,mesh,blue,{LONG},,300", "price"),
        ("interactions.csv", f"1,{LONG},view,2024-01-01", "shoe_id"),
    ],
)
def test_a_5000_digit_number_gets_a_reason_in_both_modes(db_url, tmp_path, capsys, file, row, column):
    texts = {"users.csv": users_text(), "shoes.csv": shoes_text(), "interactions.csv": EVENTS_HEADER}
    texts[file] += row + "\n"
    folder = write(tmp_path, texts["users.csv"], texts["shoes.csv"], texts["interactions.csv"])
    assert main(["--data-dir", str(folder), "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert f"{file}:{texts[file].count(chr(10))}:" in err and column in err and "Traceback" not in err
    assert len(err) < 2_000  # the value is shown cut
    assert main(["--data-dir", str(folder), "--db", db_url, "--skip-invalid"]) == 0
    with Database(db_url) as db:
        [(name, stored, reason)] = db.query("select column_name, raw_value, reason from load_rejects")
        assert name == column and stored in (LONG, f"-{LONG}") and reason


# -- item 4: a very wide header ------------------------------------------------------------------
def test_a_header_with_100000_extra_columns_gives_a_bounded_number_of_warnings(db, tmp_path, caplog):
    extra = 100_000
    header = USERS_HEADER.rstrip("\n") + "".join(f",x{i}" for i in range(extra)) + "\n"
    rows = "".join(f"{u},30,,running" + "," * extra + "\n" for u in (1, 2))
    folder = write(tmp_path, users=header + rows)
    caplog.set_level(logging.WARNING, logger="scripts.load")
    summary = load(db, folder)
    assert summary.files["users.csv"].loaded == 2
    assert len(summary.warnings) == REPORTED_WARNINGS + 1
    assert (
        summary.warnings[-1]
        == f"users.csv:1: ... and {extra - REPORTED_WARNINGS:,} more extra columns are ignored"
    )
    assert len([r for r in caplog.records if r.name == "scripts.load"]) == REPORTED_WARNINGS + 1
