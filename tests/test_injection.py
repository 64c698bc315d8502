"""Injection payloads through every path that takes outside text, on both engines.

CSV fields (every text column of users.csv and shoes.csv), CLI arguments (``--data-dir`` with odd
names, a DuckDB ``--db`` path with quotes) and the dashboard's inputs. Nothing may execute: the list
of tables and views and their row counts stay what the load intends, and every payload reads back
verbatim (so it never went through SQL text, the jinja renderer or the ``?`` -> ``%s`` translation).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from helpers import DASHBOARD, ENGINES, HEADERS, csv_text, fresh_url
from streamlit.testing.v1 import AppTest

from scripts import score
from scripts.db import Database
from scripts.load import LoadError, load, main
from scripts.schema import create_schema

PAYLOADS = [
    "'",
    "''",
    '"',
    "'; drop table users; --",
    "'); drop table users;--",
    "Robert'); DROP TABLE shoes;--",
    "1; delete from interactions",
    "-- a comment",
    "/* comment */ select 1",
    "' or '1'='1",
    '" or ""="',
    "$$",
    "$body$ drop table users $body$",
    "\\",
    "\\'",
    "\\x27",
    "\\N",
    "NULL",
    "\uff07 or 1=1 --",  # fullwidth apostrophe
    "\u02bc; drop table users;--",  # modifier letter apostrophe
    "\u202egnp.exe",  # right-to-left override
    "a\u200bb",  # zero-width space
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "{{ 7*7 }}",
    "{% for x in range(3) %}x{% endfor %}",
    "{# comment #}",
    "{{ config.__class__.__init__.__globals__ }}",
    "%s",
    "%(x)s",
    "?",
    "%%",
    "? %s ? %(user_id)s",
    ":name",
    "$1",
    "a,b",
    "line one\nline two",
    "carriage\rreturn",
    "tab\there",
    ";",
    "'; copy users to '/tmp/pwned'; --",
    "'; select pg_sleep(5); --",
    "\U0001f45f\U0001f525",
    "  padded  ",
    "'" * 500,
]
FIRST_ID = 1000
IDS = {payload: FIRST_ID + i for i, payload in enumerate(PAYLOADS)}
SHOE_TEXT = ("name", "brand", "type", "material", "color", "care_instructions")

BASE = Path(__file__).resolve().parent / "bad_input" / "base"


def payload_files(folder: Path, payloads: list[str]) -> Path:
    """users and shoes with a payload in every text column; each user views two shoes, buys one."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [FIRST_ID + i for i in range(len(payloads))]
    users = [HEADERS["users.csv"]]
    users += [[i, 30 + n % 50, text, text] for n, (i, text) in enumerate(zip(ids, payloads, strict=True))]
    shoes = [HEADERS["shoes.csv"]]
    shoes += [
        [i, text, text, text, text, text, "19.99", text, 400] for i, text in zip(ids, payloads, strict=True)
    ]
    events = [HEADERS["interactions.csv"]]
    for n, i in enumerate(ids):
        other = ids[(n + 1) % len(ids)]
        events += [[i, i, "view", "2024-03-01T10:00:00Z"], [i, other, "view", "2024-03-02T10:00:00Z"]]
        events += [[i, i, "purchase", "2024-03-03T10:00:00Z"]]
    for name, rows in (("users.csv", users), ("shoes.csv", shoes), ("interactions.csv", events)):
        (folder / name).write_text(csv_text(rows), encoding="utf-8", newline="")
    return folder


def relations(db: Database) -> tuple[list[str], list[str]]:
    return sorted(db.relations("BASE TABLE")), sorted(db.relations("VIEW"))


@pytest.fixture(scope="module", params=ENGINES)
def payload_db(request, tmp_path_factory):
    """Per engine: the schema, the payload files loaded, and one scoring run; (url, relations before)."""
    url = fresh_url(request.param, request, tmp_path_factory.mktemp("injection"))
    with Database(url) as db:
        create_schema(db)
        before = relations(db)
        load(db, payload_files(tmp_path_factory.mktemp("payloads"), PAYLOADS))
        score.score(db)
    return url, before


# -- CSV fields ------------------------------------------------------------------------------------
def test_nothing_executed_and_only_the_intended_rows_exist(payload_db):
    url, before = payload_db
    with Database(url, read_only=True) as db:
        assert relations(db) == before
        n = len(PAYLOADS)
        counts = {
            table: db.scalar(f"select count(*) from {table}") for table in ("users", "shoes", "interactions")
        }
        assert counts == {"users": n, "shoes": n, "interactions": 3 * n}
        assert db.query("select rows_loaded, rows_rejected from load_runs") == [(5 * n, 0)]


@pytest.mark.parametrize("payload", PAYLOADS, ids=[f"p{i:02d}" for i in range(len(PAYLOADS))])
def test_a_payload_is_stored_verbatim_in_every_text_column(payload_db, payload):
    url, _ = payload_db
    key = IDS[payload]
    with Database(url, read_only=True) as db:
        assert db.query("select gender, primary_usage from users where user_id = ?", [key]) == [
            (payload, payload)
        ]
        assert db.query(f"select {', '.join(SHOE_TEXT)} from shoes where shoe_id = ?", [key]) == [
            (payload,) * 6
        ]
        # and it binds as a parameter: the view finds the user by the payload itself
        assert db.query(
            "select user_id from users where primary_usage = ? and gender = ?", [payload, payload]
        ) == [(key,)]


def test_a_nul_byte_is_refused_with_a_clear_reason(engine, request, tmp_path):
    url = fresh_url(engine, request, tmp_path)
    folder = payload_files(tmp_path / "nul", ["fine", "a\x00b"])
    with Database(url) as db:
        with pytest.raises(LoadError) as caught:
            load(db, folder)
        reasons = {
            (problem.file, problem.line, problem.column_name, problem.reason)
            for problem in caught.value.problems
        }
        assert ("users.csv", 3, "gender", "contains a NUL character") in reasons
        assert ("shoes.csv", 3, "name", "contains a NUL character") in reasons
        assert "'a\\x00b' contains a NUL character" in str(caught.value)
        assert db.relations("BASE TABLE") == set()  # nothing created
        # with --skip-invalid the row is kept, its NUL written as \x00
        load(db, folder, skip_invalid=True)
        assert db.scalar("select count(*) from users") == 1
        assert ("gender", "a\\x00b") in db.query("select column_name, raw_value from load_rejects")


# -- CLI arguments ---------------------------------------------------------------------------------
ODD_DIR_NAMES = [
    "it's",
    'say "hi"',
    "a; drop table users; --",
    "{{ 7*7 }} {% raw %}",
    "%s %(x)s ? $$",
    "\\ \uff07 \u202e \U0001f45f",
]


def test_odd_data_dir_names_load_and_are_recorded_verbatim(engine, request, tmp_path):
    url = fresh_url(engine, request, tmp_path)
    for name in ODD_DIR_NAMES:
        folder = tmp_path / name
        shutil.copytree(BASE, folder)
        assert main(["--db", url, "--data-dir", str(folder)]) == 0, name
    with Database(url, read_only=True) as db:
        recorded = [row[0] for row in db.query("select data_dir from load_runs order by load_id")]
        assert recorded == [str((tmp_path / name).resolve()) for name in ODD_DIR_NAMES]
        assert db.relations("BASE TABLE") >= {"interactions", "load_rejects", "load_runs", "shoes", "users"}
        assert db.scalar("select count(*) from users") == 3


def test_a_missing_odd_data_dir_is_named_in_the_error(engine, request, tmp_path, capsys):
    url = fresh_url(engine, request, tmp_path)
    odd = tmp_path / "'); drop table users;-- {{ x }} %s"
    assert main(["--db", url, "--data-dir", str(odd)]) == 2
    assert f"{odd}: data directory not found" in capsys.readouterr().err


def test_a_duckdb_path_with_quotes_works(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    path = folder / 'it\'s "quoted"; drop table users; --.duckdb'
    assert main(["--db", str(path), "--data-dir", str(BASE)]) == 0
    assert path.is_file()
    with Database(str(path), read_only=True) as db:
        assert db.scalar("select count(*) from users") == 3


# -- the dashboard ---------------------------------------------------------------------------------
DASHBOARD_PAYLOADS = ["'); drop table users;--", "{{ 7*7 }}", "%(x)s", "?", "\\N", "\uff07 or 1=1 --"]


def selectbox(page: AppTest, label: str):
    return next(box for box in page.selectbox if box.label == label)


def test_dashboard_shows_and_queries_payload_segments(monkeypatch, payload_db):
    url, before = payload_db
    monkeypatch.setenv("SHOEREC_DASHBOARD_DB", url)
    page = AppTest.from_file(str(DASHBOARD), default_timeout=60)
    page.session_state["user_id"] = IDS["'); drop table users;--"]
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    usage, gender = selectbox(page, "Primary usage"), selectbox(page, "Gender")
    assert set(PAYLOADS) <= set(usage.options)  # every payload usage is offered, verbatim
    assert set(PAYLOADS) <= set(gender.options)
    for payload in DASHBOARD_PAYLOADS:
        usage.set_value(payload)
        gender.set_value(payload)
        page.date_input[0].set_value(dt.date(2024, 6, 1))
        page.run()
        assert not page.exception, (payload, [e.value for e in page.exception])
        assert not page.error, (payload, [e.value for e in page.error])
        frame = [f.value for f in page.dataframe if "score" in f.value.columns][-1]
        assert len(frame) > 0, payload  # the segment of the payload user has recommendations
        usage, gender = selectbox(page, "Primary usage"), selectbox(page, "Gender")
        assert (usage.value, gender.value) == (payload, payload)
    with Database(url, read_only=True) as db:
        assert relations(db) == before
        assert db.scalar("select count(*) from users") == len(PAYLOADS)
