"""The scoring step on both engines: every user gets a list, and runs are published atomically.

A tiny known data set: running fans (users 1-6) and hikers (7-10) who view, wishlist and buy shoes
of their kind, user 11 (running) and 12 (hiking, no age, no gender) without any history.
"""

from __future__ import annotations

import json
import signal

import pytest
from helpers import TINY_PARAMS, TINY_SHOES, TINY_USERS, built_url, load_tiny, run_module

from scripts import score as score_module
from scripts.db import Database, UsageError
from scripts.schema import create_schema
from scripts.score import KILL_AT_ENV, KILL_STAGES, RUN_STAGES, params_from, score

KEYS = {
    "recommendations": "run_id, user_id, rank",
    "shoe_similarities": "run_id, shoe_id, rank",
    "segment_recommendations": "run_id, primary_usage, gender, age_band, rank",
}
SCORE_TABLES = tuple(KEYS)


def rows_of_run(db: Database, run_id: int) -> int:
    return sum(
        db.scalar(f"select count(*) from {table} where run_id = ?", [run_id]) for table in SCORE_TABLES
    )


def latest_complete(db: Database):
    return db.scalar("select max(run_id) from model_runs where status = 'complete'")


@pytest.fixture
def tiny_url(engine, request, tmp_path) -> str:
    """The tiny world (helpers.load_tiny) on each engine in turn: a copy of the session's (built_url)."""
    return built_url(engine, request, tmp_path, load_tiny)


@pytest.fixture
def tiny_db(tiny_url):
    with Database(tiny_url) as database:
        yield database


# ---------------------------------------------------------------------------------------------
# a run
# ---------------------------------------------------------------------------------------------


def test_every_user_gets_a_top_n_without_bought_shoes(tiny_db):
    db = tiny_db
    summary = score(db, **TINY_PARAMS)
    assert summary["status"] == "complete" and summary["n_users"] == 12 and summary["n_shoes"] == 8
    counts = db.query("select user_id, count(*), min(rank), max(rank) from recommendations group by user_id")
    assert sorted(counts) == [(user, 3, 1, 3) for user in range(1, 13)]
    bought = db.query(
        "select count(*) from recommendations as recs inner join interactions"
        " on recs.user_id = interactions.user_id and recs.shoe_id = interactions.shoe_id"
        " where interactions.interaction_type = 'purchase'"
    )
    assert bought == [(0,)]
    assert summary["n_recommendations"] == 36
    # the keys are unique (on DuckDB no index enforces it)
    for table, key in KEYS.items():
        duplicates = (
            f"select count(*) from (select {key} from {table} group by {key} having count(*) > 1) as d"
        )
        assert db.scalar(duplicates) == 0, table


def test_users_get_their_kind_and_new_users_their_segment(tiny_db):
    db = tiny_db
    score(db, **TINY_PARAMS)
    first = dict(db.query("select user_id, shoe_id from recommendations where rank = 1"))
    for user in range(1, 13):
        kind = "running" if user <= 6 or user == 11 else "hiking"
        assert (first[user] < 200) == (kind == "running"), f"user {user} got {first[user]}"
    # users without history: no CF part, no personal reason, weight 0
    rows = db.query(
        "select count(*) from recommendations where user_id in (11, 12)"
        " and cf_score is null and reason_shoe_id is null and cf_weight = 0"
    )
    assert rows == [(6,)]
    # users with history: every reason is a shoe they touched
    foreign = db.query(
        "select count(*) from recommendations as recs left join interactions"
        " on recs.user_id = interactions.user_id and recs.reason_shoe_id = interactions.shoe_id"
        " where recs.user_id <= 10 and (recs.reason_shoe_id is null or interactions.user_id is null)"
    )
    assert foreign == [(0,)]


def test_run_row_records_parameters_counts_and_timings(tiny_db):
    db = tiny_db
    summary = score(db, **TINY_PARAMS, cf_k=2.5, field_weights={"color": 0})
    status, params, n_interactions, timings, finished, reference = db.query(
        "select status, parameters, n_interactions, timings, finished_at, reference_date"
        " from model_runs where run_id = ?",
        [summary["run_id"]],
    )[0]
    assert status == "complete" and finished is not None and reference is not None
    params = json.loads(params)
    assert params["top_n"] == 3 and params["cf_k"] == 2.5 and params["field_weights"]["color"] == 0
    assert params["field_weights"]["type"] == params_from()["field_weights"]["type"]
    assert n_interactions == 30  # distinct (user, shoe) pairs
    assert {"read", "fit", "score", "write", "total"} <= set(json.loads(timings))
    assert set(json.loads(timings)) - {"total"} <= set(RUN_STAGES)  # the dashboard shows these, in order


def test_segment_grid_and_similarities(tiny_db):
    db = tiny_db
    score(db, **TINY_PARAMS)
    # usages {running, hiking} x genders {female, male, unknown} x 7 bands + unknown, 3 shoes each
    n_bands = db.scalar("select count(*) from age_bands") + 1
    assert db.scalar("select count(*) from segment_recommendations") == 2 * 3 * n_bands * 3
    first = dict(
        ((usage, gender, band), shoe)
        for usage, gender, band, shoe in db.query(
            "select primary_usage, gender, age_band, shoe_id from segment_recommendations where rank = 1"
        )
    )
    assert all((shoe < 200) == (usage == "running") for (usage, _, _), shoe in first.items())
    # two neighbours per shoe, never itself, of the same kind
    sims = db.query("select shoe_id, similar_shoe_id from shoe_similarities")
    assert len(sims) == 8 * 2
    assert all(shoe != other and (shoe < 200) == (other < 200) for shoe, other in sims)


def test_without_interactions_everyone_still_gets_a_list(db):
    create_schema(db)
    with pytest.raises(UsageError, match="nothing to score"):  # no empty run is published
        score(db, **TINY_PARAMS)
    assert db.scalar("select count(*) from model_runs") == 0
    db.insert_df("users", TINY_USERS.astype({"age": "Int64"}))
    db.insert_df("shoes", TINY_SHOES)
    summary = score(db, **TINY_PARAMS)
    assert summary["n_recommendations"] == 12 * 3
    assert (
        db.scalar(
            "select count(*) from recommendations where cf_score is not null or reason_shoe_id is not null"
        )
        == 0
    )


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="unknown scoring parameter"):
        params_from({"factorz": 3})
    with pytest.raises(ValueError, match="popularity_blend"):
        params_from({"popularity_blend": 2})
    with pytest.raises(ValueError, match="unknown field"):
        params_from({"field_weights": {"sole": 1}})
    assert params_from({"top_n": None})["top_n"] == params_from()["top_n"]


# ---------------------------------------------------------------------------------------------
# publication
# ---------------------------------------------------------------------------------------------


def test_keep_runs_prunes_older_runs_and_their_rows(tiny_db):
    db = tiny_db
    ids = [score(db, **TINY_PARAMS, keep_runs=2)["run_id"] for _ in range(3)]
    assert [row[0] for row in db.query("select run_id from model_runs order by run_id")] == ids[1:]
    assert rows_of_run(db, ids[0]) == 0
    assert rows_of_run(db, ids[1]) > 0 and rows_of_run(db, ids[2]) > 0
    assert latest_complete(db) == ids[2]


def test_a_run_that_raises_midway_leaves_the_previous_run(tiny_db, monkeypatch):
    db = tiny_db
    first = score(db, **TINY_PARAMS)["run_id"]
    before = rows_of_run(db, first)
    real_insert = Database.insert_df
    calls = []

    def failing_insert(self, table, frame):
        calls.append(table)
        if table == "recommendations" and calls.count(table) == 2:
            raise RuntimeError("disk full (simulated)")
        return real_insert(self, table, frame)

    monkeypatch.setattr(Database, "insert_df", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        score(db, **TINY_PARAMS)
    monkeypatch.undo()
    assert calls.count("recommendations") == 2, "the failure came after rows of the run were written"
    assert latest_complete(db) == first
    failed = first + 1
    status, error = db.query("select status, error from model_runs where run_id = ?", [failed])[0]
    assert status == "failed" and "disk full" in error
    assert rows_of_run(db, failed) == 0
    assert rows_of_run(db, first) == before
    # and the next run publishes
    assert score(db, **TINY_PARAMS)["run_id"] == failed + 1


@pytest.mark.parametrize("stage", KILL_STAGES)
def test_a_killed_run_leaves_the_previous_run(tiny_url, stage):
    db_url = tiny_url
    with Database(db_url) as db:
        first = score(db, **TINY_PARAMS)["run_id"]
        before = rows_of_run(db, first)
    done = run_module(
        "scripts.score",
        "--db",
        db_url,
        "--top-n",
        "3",
        "--factors",
        "2",
        "--batch-size",
        "4",
        env={KILL_AT_ENV: stage},
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    with Database(db_url) as db:
        killed = first + 1
        assert db.scalar("select status from model_runs where run_id = ?", [killed]) == "running"
        assert latest_complete(db) == first
        assert rows_of_run(db, killed) == 0
        assert rows_of_run(db, first) == before
        # the next run marks the dead one failed and publishes
        summary = score(db, **TINY_PARAMS)
        assert summary["run_id"] == killed + 1 and latest_complete(db) == killed + 1
        assert db.scalar("select status from model_runs where run_id = ?", [killed]) == "failed"


def test_command_line_runs_and_records_its_flags(tiny_url):
    db_url = tiny_url
    done = run_module(
        "scripts.score",
        "--db",
        db_url,
        "--top-n",
        "2",
        "--factors",
        "2",
        "--field-weights",
        "name=0,color=0.25",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "run 1 complete" in done.stderr
    with Database(db_url) as db:
        params = json.loads(db.scalar("select parameters from model_runs where status = 'complete'"))
        assert (
            params["top_n"] == 2
            and params["field_weights"]["name"] == 0
            and params["field_weights"]["color"] == 0.25
        )
        assert db.scalar("select max(rank) from recommendations") == 2


def test_module_exposes_defaults_for_later_tuning():
    # the evaluation step will store tuned values and pass them through params_from
    tuned = params_from({"factors": 16, "cf_k": 1.0})
    assert tuned["factors"] == 16 and tuned["cf_k"] == 1.0
    assert score_module.DEFAULT_PARAMS["factors"] != 16 or score_module.DEFAULT_PARAMS["cf_k"] != 1.0


def test_the_matrix_is_exported_with_more_work_mem_on_postgres(request, tmp_path, monkeypatch):
    """PostgreSQL: the export of interaction_matrix runs at READ_WORK_MEM (its aggregation spilled to disk at
    the default), and the session's own setting is back afterwards; the other queries run at that setting."""
    with Database(built_url("postgres", request, tmp_path, load_tiny)) as db:
        db.execute("set work_mem = '5MB'")
        seen = []  # (reads the matrix, work_mem at the time) per export
        query_df = db.query_df

        def recording(sql, *args, **kwargs):
            seen.append(("interaction_matrix" in sql, db.scalar("select current_setting('work_mem')")))
            return query_df(sql, *args, **kwargs)

        monkeypatch.setattr(db, "query_df", recording)
        inputs = score_module.read_inputs(db)
        assert inputs.strength.nnz > 0
        assert {setting for is_matrix, setting in seen if is_matrix} == {score_module.READ_WORK_MEM}
        assert {setting for is_matrix, setting in seen if not is_matrix} == {"5MB"}
        assert db.scalar("select current_setting('work_mem')") == "5MB"
