"""The bundled data set end to end: the main job, and every view identical on both engines.

The databases come from the session fixtures of conftest.py: DuckDB built by the main command itself,
PostgreSQL loaded the same way with the DuckDB run's score tables copied over.
"""

from __future__ import annotations

import json

import pytest
from helpers import canonical_rows, column_kinds, fetch

from scripts import build, evaluate
from scripts.db import Database, view_files


@pytest.fixture(scope="module")
def duckdb_bundled(bundled_duckdb_url):
    with Database(bundled_duckdb_url, read_only=True) as db:
        yield db


@pytest.fixture(scope="module")
def postgres_bundled(bundled_postgres_url):
    with Database(bundled_postgres_url) as db:
        yield db


def rows_of(db: Database, relation: str) -> list[tuple]:
    names, rows = fetch(db, f"select * from {relation}")
    return canonical_rows(rows, column_kinds(rows, len(names)))


def test_main_job_leaves_a_scored_database(duckdb_bundled):
    db = duckdb_bundled
    n_users = db.scalar("select count(*) from users")
    assert n_users == 2000
    assert db.scalar("select count(*) from latest_model_run") == 1
    # a top-N for every user, those without history included
    assert db.scalar("select count(distinct user_id) from user_recommendations") == n_users
    cold = db.scalar("select count(*) from user_profiles where has_no_history")
    assert cold > 0
    assert (
        db.scalar(
            "select count(distinct user_id) from user_recommendations"
            " where user_id in (select user_id from user_profiles where has_no_history)"
        )
        == cold
    )
    # the demo is viewed as of its own last day
    assert db.scalar("select reference_date from settings") == db.scalar(
        "select cast(max(occurred_at) as date) from interactions"
    )


def test_main_job_twice_changes_no_data(duckdb_bundled, tmp_path):
    path = str(tmp_path / "twice.duckdb")
    assert build.main(["--db", path, "--no-score"]) == 0
    with Database(path) as db:
        before = {
            table: db.scalar(f"select count(*) from {table}") for table in ("users", "shoes", "interactions")
        }
    assert build.main(["--db", path, "--no-score"]) == 0
    with Database(path) as db:
        after = {
            table: db.scalar(f"select count(*) from {table}") for table in ("users", "shoes", "interactions")
        }
    assert before == after


def test_same_row_counts_on_both_engines(duckdb_bundled, postgres_bundled):
    for table in ("users", "shoes", "interactions"):
        assert duckdb_bundled.scalar(f"select count(*) from {table}") == postgres_bundled.scalar(
            f"select count(*) from {table}"
        ), table


@pytest.mark.parametrize("view", [path.stem for path in view_files()])
def test_view_parity_on_bundled_data(view, duckdb_bundled, postgres_bundled):
    on_duckdb = rows_of(duckdb_bundled, view)
    on_postgres = rows_of(postgres_bundled, view)
    assert len(on_duckdb) == len(on_postgres), view
    differing = [pair for pair in zip(on_duckdb, on_postgres, strict=True) if pair[0] != pair[1]]
    assert not differing, f"{view}: {len(differing)} rows differ, first: {differing[:2]}"


@pytest.mark.parametrize("engine_fixture", ["duckdb_bundled", "postgres_bundled"])
def test_service_mix_is_realistic(engine_fixture, request):
    db = request.getfixturevalue(engine_fixture)
    care = dict(db.query("select status, count(*) from care_notifications group by status"))
    windows = dict(db.query("select status, count(*) from replacement_windows group by status"))
    for status in ("upcoming", "due", "overdue"):
        assert care.get(status, 0) > 0, (status, care)
    for status in ("ok", "nearing_end_of_life", "past_end_of_life"):
        assert windows.get(status, 0) > 0, (status, windows)
    assert db.scalar("select count(*) from replacement_suggestions") > 0
    kinds = dict(db.query("select kind, count(*) from user_messages group by kind"))
    assert kinds.get("care_reminder", 0) > 0 and kinds.get("replacement", 0) > 0, kinds


def ndcg_at_10(db: Database, model: str, group: str) -> tuple[float, float, float]:
    """NDCG@10 of a model for a group in the latest evaluation: (value, ci_low, ci_high)."""
    return tuple(
        db.query(
            "select value, ci_low, ci_high from model_evaluations"
            " where model = ? and user_group = ? and k = 10 and metric = 'ndcg'",
            [model, group],
        )[0]
    )


def test_hybrid_beats_its_parts_and_popularity(duckdb_bundled):
    """The evaluation the main job ran (per-customer hold-out, tuned on a validation split of training)."""
    db = duckdb_bundled
    assert db.scalar("select count(distinct model) from model_evaluations") == len(evaluate.MODELS)
    assert db.scalar("select protocol from model_evaluations limit 1") == "user"
    hybrid, _, _ = ndcg_at_10(db, "hybrid", "warm")
    # warm: at least the best single component, within that component's bootstrap interval
    for part in ("svd", "ease", "knn", "content", "segment_popularity"):
        _, low, _ = ndcg_at_10(db, part, "warm")
        assert hybrid >= low, (part, hybrid, low)
    # cold: at least popularity within its interval (here: clearly above it)
    cold, cold_low, _ = ndcg_at_10(db, "hybrid", "cold")
    _, _, popularity_high = ndcg_at_10(db, "popularity", "cold")
    assert cold_low > popularity_high, (cold, popularity_high)
    # enough customers in each group for the intervals to mean something
    counts = dict(db.query("select user_group, max(n_users) from model_evaluations group by user_group"))
    assert counts["warm"] >= 200 and counts["cold"] >= 100, counts
    # and the published run uses the tuned parameters
    tuned = dict(db.query("select parameter, value from tuned_parameters"))
    assert tuned, "the main job stores what it tuned"
    params = json.loads(db.scalar("select parameters from latest_model_run"))
    for name, value in tuned.items():
        assert params[name] == json.loads(value), name
