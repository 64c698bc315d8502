"""The daily routine as a retailer runs it, each command a real subprocess on both engines:
load the day's interactions.csv alone, score (then score --refresh), notify; every load says which reference date is in force.

A day's delivery without users.csv and shoes.csv changes neither table: its events are checked against
the users and shoes already loaded. A folder with none of the three files is refused in one line.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from helpers import run_module

from scripts.db import ROOT, Database

BUNDLED = ROOT / "data"
HEADER = "user_id,shoe_id,interaction_type,timestamp\n"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_module(*args, cwd=cwd, timeout=600)  # a build of the bundled data takes a while


def lines_with(result: subprocess.CompletedProcess, text: str) -> list[str]:
    return [line for line in (result.stderr + result.stdout).splitlines() if text in line]


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


def demo_database(db_url: str, tmp_path: Path) -> None:
    """What `make demo` leaves (schema, the bundled data, its reference date 2026-06-30), without scoring."""
    result = run("scripts.build", "--db", db_url, "--no-score", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def day_folder(tmp_path: Path, rows: str) -> Path:
    day = tmp_path / "day"
    day.mkdir(exist_ok=True)
    (day / "interactions.csv").write_text(HEADER + rows, encoding="utf-8")
    return day


def test_a_day_of_interactions_alone_loads_scores_and_notifies(db_url, tmp_path):
    demo_database(db_url, tmp_path)
    with Database(db_url) as db:
        counts = db.query("select (select count(*) from users), (select count(*) from shoes)")[0]
    day = day_folder(tmp_path, "127,1261,view,2026-06-30T09:00:00Z\n127,1262,purchase,2026-06-30T09:05:00Z\n")

    loaded = run("scripts.load", "--db", db_url, "--data-dir", str(day), cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert_no_traceback(loaded)
    assert "users absent (unchanged), shoes absent (unchanged), interactions 2/2" in loaded.stderr
    [line] = lines_with(loaded, "reference date in force:")
    assert line.endswith("reference date in force: 2026-06-30 (set by settings.reference_date)")
    with Database(db_url) as db:
        assert db.query("select (select count(*) from users), (select count(*) from shoes)")[0] == counts
        assert (
            db.scalar(
                "select count(*) from interactions where user_id = 127 and occurred_at >= '2026-06-30 09:00:00'"
            )
            == 2
        )

    scored = run("scripts.score", "--db", db_url, cwd=tmp_path)  # the first run: a full fit
    assert scored.returncode == 0, scored.stderr
    assert_no_traceback(scored)

    # the next day: its events alone, folded into the latest run
    day = day_folder(tmp_path, "128,1261,add_to_wishlist,2026-06-30T11:00:00Z\n")
    loaded = run("scripts.load", "--db", db_url, "--data-dir", str(day), cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert len(lines_with(loaded, "reference date in force: 2026-06-30")) == 1
    refreshed = run("scripts.score", "--db", db_url, "--refresh", cwd=tmp_path)
    assert refreshed.returncode == 0, refreshed.stderr
    assert_no_traceback(refreshed)
    notified = run("scripts.notify", "--db", db_url, "--sink", f"file:{tmp_path / 'out.jsonl'}", cwd=tmp_path)
    assert notified.returncode == 0, notified.stderr
    assert_no_traceback(notified)
    with Database(db_url) as db:
        assert db.scalar("select count(*) from user_recommendations where user_id = 127") > 0
        assert db.scalar("select count(*) from notifications") > 0


def test_events_after_the_demo_reference_date_are_named_in_the_line(db_url, tmp_path):
    demo_database(db_url, tmp_path)
    day = day_folder(tmp_path, "127,1261,view,2026-07-09T10:00:00Z\n")
    loaded = run("scripts.load", "--db", db_url, "--data-dir", str(day), cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert_no_traceback(loaded)
    [line] = lines_with(loaded, "reference date in force:")
    assert "reference date in force: 2026-06-30 (set by settings.reference_date;" in line
    assert "the newest interaction is 2026-07-09" in line and "or = null to follow today" in line


def test_a_fresh_database_follows_today(db_url, tmp_path):
    loaded = run("scripts.load", "--db", db_url, "--data-dir", str(BUNDLED), cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert_no_traceback(loaded)
    [line] = lines_with(loaded, "reference date in force:")
    with Database(db_url) as db:
        today = db.scalar("select current_date")
    assert line.endswith(f"reference date in force: {today} (today)")
    assert abs((today - dt.date.today()).days) <= 1


def test_an_event_of_a_customer_never_loaded_is_refused(db_url, tmp_path):
    demo_database(db_url, tmp_path)
    day = day_folder(tmp_path, "999999,1261,view,2026-06-30T10:00:00Z\n")
    loaded = run("scripts.load", "--db", db_url, "--data-dir", str(day), cwd=tmp_path)
    assert loaded.returncode == 2, loaded.stderr
    assert_no_traceback(loaded)
    assert (
        "interactions.csv:2:1: user_id: '999999' is neither in users.csv nor in the database" in loaded.stderr
    )
    with Database(db_url) as db:
        assert db.scalar("select count(*) from interactions where user_id = 999999") == 0


def test_a_folder_with_none_of_the_files_is_refused_in_one_line(engine, db_url, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a data file\n")
    loaded = run("scripts.load", "--db", db_url, "--data-dir", str(empty), cwd=tmp_path)
    assert loaded.returncode == 2, loaded.stderr
    assert_no_traceback(loaded)
    output = [line for line in (loaded.stderr + loaded.stdout).splitlines() if line.strip()]
    assert output == [
        f"{empty}: none of users.csv, shoes.csv, interactions.csv is in this folder; nothing was loaded"
    ]
    if engine == "duckdb":
        assert not Path(db_url).exists()  # refused before a database file is made
