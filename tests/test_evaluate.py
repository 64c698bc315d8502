"""Offline evaluation: the split never leaks, the command runs on both engines, tuning is stored.

Metric functions themselves are tested in test_metrics.py; the quality on the bundled data in
test_bundled.py.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from scripts import evaluate
from scripts.db import Database
from scripts.generate_data import generate
from scripts.load import load
from scripts.schema import create_schema
from scripts.score import score

SMALL = {"users": 300, "shoes": 60, "seed": 7}
TINY_GRID = {"cf_k": (1.0, 30.0), "half_life_days": (90.0, 180.0)}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    generate(out, progress=False, **SMALL)
    return out


@pytest.fixture
def loaded(db, small_data):
    create_schema(db)
    load(db, small_data, progress=False)
    return db


def test_split_never_puts_test_interactions_into_training(loaded):
    db = loaded
    first, last = evaluate.time_span(db)
    cutoff = evaluate.cutoff_date(first, last, 0.2)
    settings_before = db.query("select * from settings")
    split = evaluate.make_split(db, cutoff, None, evaluate.DEFAULT_RELEVANT)
    # the database is exactly as it was (the what-if was rolled back)
    assert db.query("select * from settings") == settings_before
    end = dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time())
    inputs = split.inputs
    rows, cols = inputs.strength.nonzero()
    training_pairs = set(zip(inputs.user_ids[rows].tolist(), inputs.shoe_ids[cols].tolist(), strict=True))
    before = set(db.query("select distinct user_id, shoe_id from interactions where occurred_at < ?", [end]))
    after_only = set(db.query("select distinct user_id, shoe_id from interactions where occurred_at >= ?", [end])) - before
    # training holds exactly the pairs seen up to the cut-off, none seen only later
    assert training_pairs == before
    assert not training_pairs & after_only
    assert after_only, "the test period should hold new pairs"
    # relevant items are test-period wishlists/purchases, never shoes bought in training
    bought = inputs.purchased
    for user, shoes in split.relevant.items():
        for shoe in shoes:
            assert bought[user, shoe] == 0


def test_cutoff_day_is_training():
    first = dt.datetime(2025, 1, 1)
    last = dt.datetime(2025, 1, 11)
    assert evaluate.cutoff_date(first, last, 0.2) == dt.date(2025, 1, 9)


def test_evaluate_command_writes_every_row(loaded, engine):
    db = loaded
    assert evaluate.main(["--db", db.url, "--ks", "5,10", "--no-tune"]) == 0
    n_metrics = len(evaluate.METRICS_WRITTEN)
    expected = len(evaluate.MODELS) * len(evaluate.GROUPS) * 2 * n_metrics
    assert db.scalar("select count(*) from evaluations") == expected
    assert db.scalar("select count(*) from model_evaluations") == expected
    # user counts are consistent: warm + cold = all, for every model
    counts = dict(
        db.query("select user_group, max(n_users) from model_evaluations where k = 10 group by user_group")
    )
    assert counts["warm"] + counts["cold"] == counts["all"] > 0
    # CF and content alone have nothing for a cold user
    cold_cf = db.scalar(
        "select value from model_evaluations where model = 'cf' and user_group = 'cold' and k = 10 and metric = 'ndcg'"
    )
    assert cold_cf == 0 or counts["cold"] == 0
    ndcg = db.query(
        "select value from model_evaluations where metric = 'ndcg' and value is not null and (value < 0 or value > 1)"
    )
    assert not ndcg


def test_tuning_is_stored_and_used_by_score(loaded):
    db = loaded
    result = evaluate.evaluate(db, ks=(10,), grid=TINY_GRID)
    chosen = result["parameters"]
    stored = dict(db.query("select parameter, value from tuned_parameters"))
    assert json.loads(stored["cf_k"]) == chosen["cf_k"]
    assert "half_life_days" not in stored  # it lives in settings, where the view reads it
    assert db.scalar("select half_life_days from settings") == chosen["half_life_days"]
    tuning = json.loads(db.scalar("select tuning from evaluation_runs"))
    assert len(tuning) >= 3 and all("ndcg" in step for step in tuning)
    # the next scoring run uses the tuned value by default; a given value still wins
    run = score(db)
    assert run["parameters"]["cf_k"] == chosen["cf_k"]
    assert score(db, cf_k=123.0)["parameters"]["cf_k"] == 123.0


def test_no_store_leaves_defaults_alone(loaded):
    db = loaded
    half_life = db.scalar("select half_life_days from settings")
    evaluate.evaluate(db, ks=(10,), grid={"half_life_days": (45.0,)}, store=False)
    assert db.scalar("select count(*) from tuned_parameters") == 0
    assert db.scalar("select half_life_days from settings") == half_life


def test_nothing_to_evaluate_is_a_clear_error(db):
    create_schema(db)
    assert evaluate.main(["--db", db.url, "--no-tune"]) == 1
    assert db.scalar("select count(*) from evaluation_runs") == 0


def test_report_is_a_table():
    rows = [
        {"model": model, "user_group": group, "k": 10, "metric": metric, "value": 0.5, "n_users": 3}
        for model in evaluate.MODELS
        for group in evaluate.GROUPS
        for metric in evaluate.METRICS_WRITTEN
    ]
    text = evaluate.report(rows, 10)
    assert "hybrid" in text and "ndcg" in text and "cold" in text
