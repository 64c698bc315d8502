"""Time decay does not depend on how far the reference date lies past the data.

``interaction_matrix`` counts ages to the end of the day of the newest event up to the reference date,
so the bundled data shifted 30 years into the past and built as of today must give the strengths,
and the recommendations, of the unshifted data built as of its own last day. And nothing underflows:
an event a thousand half-lives old still weighs 2^-100, a normal float32.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import fresh_url

from scripts import build
from scripts.db import Database

SHIFT = dt.timedelta(days=10_957)  # 30 years (7 leap days), whole days: every age stays the same
TOP_K = 10
STALE_WARNING = "days older than the reference date"


def shift_back(source: Path, target: Path, shift: dt.timedelta) -> Path:
    """A copy of the data folder ``source`` with every interaction ``shift`` earlier."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("users.csv", "shoes.csv"):
        shutil.copyfile(source / name, target / name)
    interactions = pd.read_csv(source / "interactions.csv", dtype=str, keep_default_na=False)
    stamps = pd.to_datetime(interactions["timestamp"], utc=True, format="ISO8601") - shift
    interactions["timestamp"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    interactions.to_csv(target / "interactions.csv", index=False)
    return target


def last_day(data_dir: Path) -> str:
    """The UTC date of the newest interaction in ``data_dir``, as YYYY-MM-DD."""
    stamps = pd.read_csv(data_dir / "interactions.csv")["timestamp"]
    return pd.to_datetime(stamps, utc=True, format="ISO8601").max().date().isoformat()


def strengths(db: Database) -> pd.Series:
    """interaction_matrix.strength by (user_id, shoe_id)."""
    frame = db.query_df("select user_id, shoe_id, strength from interaction_matrix")
    return frame.set_index(["user_id", "shoe_id"])["strength"].astype(float).sort_index()


def top_lists(db: Database) -> dict[int, list[int]]:
    """Each customer's top-``TOP_K`` shoes, in rank order."""
    frame = db.query_df(
        "select user_id, rank, shoe_id from user_recommendations"
        f" where rank <= {TOP_K} order by user_id, rank"
    )
    return {int(user): group["shoe_id"].astype(int).tolist() for user, group in frame.groupby("user_id")}


def assert_same_strengths(shifted: pd.Series, unshifted: pd.Series) -> None:
    assert len(unshifted) > 1000
    assert shifted.index.equals(unshifted.index)
    assert (unshifted > 0).all()
    np.testing.assert_allclose(shifted.to_numpy(), unshifted.to_numpy(), rtol=1e-9, atol=0)


@pytest.fixture(scope="module")
def shifted_dir(tmp_path_factory) -> Path:
    return shift_back(build.BUNDLED_DATA_DIR, tmp_path_factory.mktemp("shifted"), SHIFT)


def test_shifted_data_built_today_matches_its_last_day_on_duckdb(shifted_dir, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="scripts.build")
    unshifted_day = last_day(build.BUNDLED_DATA_DIR)
    assert last_day(shifted_dir) == (dt.date.fromisoformat(unshifted_day) - SHIFT).isoformat()

    with Database(str(tmp_path / "unshifted.duckdb")) as db:
        build.build(db, build.BUNDLED_DATA_DIR, unshifted_day, do_evaluate=False)
        unshifted, unshifted_top = strengths(db), top_lists(db)
        n_users = db.scalar("select count(*) from users")
    assert STALE_WARNING not in caplog.text
    assert f"reference date in force: {unshifted_day}" in caplog.text
    caplog.clear()

    with Database(str(tmp_path / "shifted.duckdb")) as db:
        build.build(db, shifted_dir, "today", do_evaluate=False)
        assert db.scalar("select is_reference_date_today from current_settings")
        shifted, shifted_top = strengths(db), top_lists(db)

    assert_same_strengths(shifted, unshifted)
    assert len(unshifted_top) == n_users
    assert shifted_top == unshifted_top

    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and STALE_WARNING in warnings[0].getMessage()
    message = warnings[0].getMessage()
    shifted_day = last_day(shifted_dir)
    assert shifted_day in message and dt.date.today().isoformat() in message
    assert f"--reference-date {shifted_day}" in message
    assert "(today)" in caplog.text


def test_shifted_data_built_today_matches_its_last_day_on_postgres(shifted_dir, request, tmp_path):
    unshifted_day = last_day(build.BUNDLED_DATA_DIR)
    with Database(fresh_url("postgres", request, tmp_path)) as db:
        build.build(db, build.BUNDLED_DATA_DIR, unshifted_day, do_score=False)
        unshifted = strengths(db)
    with Database(fresh_url("postgres", request, tmp_path)) as db:
        build.build(db, shifted_dir, "today", do_score=False)
        shifted = strengths(db)
    assert_same_strengths(shifted, unshifted)


def test_data_viewed_as_of_its_last_day_gives_no_warning(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="scripts.build")
    with Database(str(tmp_path / "bundled.duckdb")) as db:
        build.build(db, build.BUNDLED_DATA_DIR, "auto", do_score=False)
    assert "reference date in force" in caplog.text
    assert STALE_WARNING not in caplog.text


def test_an_event_a_thousand_half_lives_old_still_counts(schema_db):
    """A half-life of one day and an event 1,001 days before the anchor: 2^-100, not 0."""
    db = schema_db  # create_schema's database (a copy: conftest.py)
    db.execute("update settings set reference_date = ?, half_life_days = 1", [dt.date(2024, 1, 1)])
    db.execute("insert into users (user_id, age, gender, primary_usage) values (1, 30, 'female', 'running')")
    db.execute(
        "insert into shoes (shoe_id, name, brand, type, material, color, price, lifespan_days)"
        " values (10, 'Aero', 'Stride', 'running', 'mesh', 'blue', 120, 300),"
        " (11, 'Bolt', 'Stride', 'running', 'knit', 'black', 130, 300)"
    )
    db.execute(
        "insert into interactions (user_id, shoe_id, interaction_type, occurred_at) values"
        " (1, 10, 'purchase', ?), (1, 11, 'view', ?)",
        [dt.datetime(2021, 4, 6), dt.datetime(2024, 1, 1, 12)],
    )
    rows = dict(db.query("select shoe_id, cast(strength as real) from interaction_matrix"))
    assert rows[11] == pytest.approx(0.5**0.5, rel=1e-6)
    # 1,001 days (half-lives) to the anchor, the end of 2024-01-01: capped at 100
    assert (dt.datetime(2024, 1, 2) - dt.datetime(2021, 4, 6)).days == 1001
    assert rows[10] == pytest.approx(5 * 2.0**-100, rel=1e-6)
    assert np.float32(rows[10]) > np.finfo(np.float32).tiny
