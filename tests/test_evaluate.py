"""Offline evaluation: the splits never leak, the command runs on both engines, tuning is stored.

Metric functions themselves are tested in test_metrics.py; the quality on the bundled data in
test_bundled.py, and on data shaped like a real log in test_quality.py.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from scripts import evaluate
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


def test_user_split_holds_out_each_customers_last_events_and_whole_cold_customers(loaded):
    db = loaded
    events = evaluate.read_events(db)
    dump_before = db.query("select * from interactions order by 1, 2, 3, 4")
    split = evaluate.user_split(db, events, evaluate.DEFAULT_RELEVANT, 0.2, 0.1, random_state=3)
    # the database is exactly as it was (the held-out events were deleted in a rolled-back transaction)
    assert db.query("select * from interactions order by 1, 2, 3, 4") == dump_before
    held_out, cold = evaluate.holdout(events, 0.2, 0.1, 3)
    inputs = split.inputs
    customers = events["user_id"].unique()
    assert len(cold) == round(0.1 * len(customers)) > 0
    # cold customers have no training row at all; everyone else keeps exactly the pairs of their kept events
    rows, cols = inputs.strength.nonzero()
    training_pairs = set(zip(inputs.user_ids[rows].tolist(), inputs.shoe_ids[cols].tolist(), strict=True))
    kept = events[~held_out]
    assert training_pairs == set(zip(kept["user_id"].tolist(), kept["shoe_id"].tolist(), strict=True))
    assert not training_pairs & {(u, s) for u, s in training_pairs if u in set(cold.tolist())}
    # each warm customer loses their last round(0.2 n) events, in time order
    for user, history in events[~events["user_id"].isin(cold)].groupby("user_id"):
        held = held_out[history.index.to_numpy()]
        n_held = int(np.floor(0.2 * len(history) + 0.5))
        assert held.sum() == n_held and (not n_held or held[-n_held:].all()), user
    # the groups: cold = the held-out customers with something relevant, warm = customers with history
    groups = split.groups()
    assert len(groups["cold"]) > 0 and len(groups["warm"]) > 0  # else the checks below pass on nothing
    assert set(inputs.user_ids[groups["cold"]].tolist()) <= set(cold.tolist())
    assert (np.diff(inputs.strength.indptr)[groups["warm"]] > 0).all()
    # relevant pairs are held-out wishlists/purchases, never shoes bought in training
    relevant_events = events[held_out & events["interaction_type"].isin(evaluate.DEFAULT_RELEVANT)]
    relevant_ids = set(
        zip(relevant_events["user_id"].tolist(), relevant_events["shoe_id"].tolist(), strict=True)
    )
    for user, shoes in split.relevant.items():
        for shoe in shoes:
            assert (inputs.user_ids[user], inputs.shoe_ids[shoe]) in relevant_ids
            assert inputs.purchased[user, shoe] == 0


def test_holdout_on_hand_values():
    events = pd.DataFrame({"user_id": [1] * 5 + [2] * 2 + [3] * 1 + [4] * 10})
    held_out, cold = evaluate.holdout(events, 0.2, 0.0, 0)
    # 5 events -> 1 held out, 2 -> 0 (0.4 rounds down), 1 -> 0, 10 -> 2; always the last ones
    assert held_out.tolist() == [False] * 4 + [True] + [False] * 3 + [False] * 8 + [True] * 2
    assert len(cold) == 0
    held_out, cold = evaluate.holdout(events, 0.2, 0.5, 0)
    assert len(cold) == 2 and held_out[events["user_id"].isin(cold).to_numpy()].all()


def test_split_never_puts_test_interactions_into_training(loaded):
    """The time protocol (one global cut-off), kept as an option."""
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
    after_only = (
        set(db.query("select distinct user_id, shoe_id from interactions where occurred_at >= ?", [end]))
        - before
    )
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


@pytest.mark.parametrize("protocol", evaluate.PROTOCOLS)
def test_evaluate_command_writes_every_row(loaded, engine, protocol, capsys):
    db = loaded
    assert evaluate.main(["--db", db.url, "--ks", "5,10", "--no-tune", "--protocol", protocol]) == 0
    n_metrics = len(evaluate.METRICS_WRITTEN)
    # every model x group, but no cold rows for a model without a cold start
    cells = len(evaluate.MODELS) * len(evaluate.GROUPS) - len(evaluate.NO_COLD_START)
    expected = cells * 2 * n_metrics
    assert db.scalar("select count(*) from evaluations") == expected
    assert db.scalar("select count(*) from model_evaluations") == expected
    assert db.scalar("select protocol from evaluation_runs") == protocol
    # the customer counts are printed
    assert "warm and" in capsys.readouterr().out
    # every mean sits inside its bootstrap interval
    outside = db.query(
        "select model, user_group, metric from model_evaluations where ci_low is not null"
        " and not (ci_low <= value + 1e-12 and value <= ci_high + 1e-12)"
    )
    assert not outside
    assert db.scalar("select count(*) from model_evaluations where metric = 'ndcg' and ci_low is null") == 0
    # user counts are consistent: warm + cold = all, for every model
    counts = dict(
        db.query("select user_group, max(n_users) from model_evaluations where k = 10 group by user_group")
    )
    # there are cold customers (else the cold checks below pass on nothing)
    assert counts["cold"] > 0
    assert counts["warm"] + counts["cold"] == counts["all"]
    # the hybrid has cold rows; CF and content alone have nothing for a cold user: no cold rows for them
    cold_models = {
        model for (model,) in db.query("select model from model_evaluations where user_group = 'cold'")
    }
    assert "hybrid" in cold_models and not cold_models & set(evaluate.NO_COLD_START)
    ndcg = db.query(
        "select value from model_evaluations where metric = 'ndcg' and value is not null and (value < 0 or value > 1)"
    )
    assert not ndcg


def test_peers_join_the_table(loaded, engine):
    db = loaded
    result = evaluate.evaluate(db, ks=(10,), do_tune=False, with_peers=True)
    models = {row["model"] for row in result["rows"]}
    assert {f"peer_{name}" for name in ("popularity", "puresvd", "ease", "als", "bm25_knn")} <= models
    # a peer without a cold start is reported for warm customers only; popularity for everyone
    groups = {(row["model"], row["user_group"]) for row in result["rows"]}
    assert ("peer_ease", "cold") not in groups and ("peer_popularity", "cold") in groups
    assert "peer: EASE" in evaluate.report(result["rows"], 10)
    # the peer popularity and ours count the same thing (customers per shoe): with the same
    # exclusion (every shoe of the history), the same lists
    split = evaluate.user_split(db, evaluate.read_events(db), evaluate.DEFAULT_RELEVANT, 0.2, 0.1, 42)
    users = split.groups()["warm"]
    params = {**evaluate.params_from(), "exclude_seen": True}
    fitted = evaluate.fit_model(split.inputs, params)
    ours = evaluate.recommend_lists("popularity", fitted, split.inputs, users, 10, params)
    theirs = evaluate.peer_lists("popularity", split.inputs, users, 10, params)
    counts = split.inputs.strength.getnnz(axis=0)
    # the same counts in the same order (ties may be broken differently)
    assert {u: [counts[i] for i in shoes] for u, shoes in ours.items()} == {
        u: [counts[i] for i in shoes] for u, shoes in theirs.items()
    }


def test_too_few_validation_customers_keep_the_defaults_and_say_so(loaded, caplog):
    db = loaded
    grid = {**TINY_GRID, "segment_prior_users": (3.0, 300.0)}
    result = evaluate.evaluate(db, ks=(10,), grid=grid, min_users=10_000)
    assert result["parameters"]["cf_k"] == evaluate.params_from()["cf_k"]
    assert "keeping the parameters" in caplog.text and "keeping the cold-start parameters" in caplog.text
    assert db.scalar("select count(*) from tuned_parameters") == 0 or all(
        json.loads(value) == evaluate.params_from()[name]
        for name, value in db.query("select parameter, value from tuned_parameters")
    )


def test_choose_prefers_the_simpler_value_within_one_standard_error():
    rng = np.random.default_rng(0)
    base = rng.random(2000)
    noise = rng.normal(0, 0.01, 2000)
    # the simpler first value is as good as the best up to noise: it is kept
    assert evaluate.choose([("simple", base + noise), ("complex", base + 0.0001)])[0] == "simple"
    # a clear gain beats simplicity
    assert evaluate.choose([("simple", base), ("complex", base + 0.05)])[0] == "complex"


def test_tuning_is_stored_and_used_by_score(loaded):
    db = loaded
    result = evaluate.evaluate(db, ks=(10,), grid=TINY_GRID, min_users=20)
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
    evaluate.evaluate(db, ks=(10,), grid={"half_life_days": (45.0,)}, store=False, min_users=20)
    assert db.scalar("select count(*) from tuned_parameters") == 0
    assert db.scalar("select half_life_days from settings") == half_life


def test_nothing_to_evaluate_is_a_clear_error(schema_db):
    db = schema_db  # create_schema's database (a copy: conftest.py)
    assert evaluate.main(["--db", db.url, "--no-tune"]) == 2
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


def test_a_sampled_split_keeps_each_groups_share(loaded):
    split = evaluate.user_split(loaded, evaluate.read_events(loaded), evaluate.DEFAULT_RELEVANT, 0.2, 0.1, 42)
    groups = split.groups()
    assert len(groups["cold"]) >= 4  # enough cold customers for their half to be told from none
    n = len(groups["all"])
    sample = split.sampled(n // 2, random_state=0)
    small = sample.groups()
    assert len(small["all"]) == pytest.approx(n // 2, abs=2)
    assert len(small["cold"]) == pytest.approx(len(groups["cold"]) / 2, abs=1)
    assert set(small["all"]) <= set(groups["all"])
    assert split.sampled(n, random_state=0) is split
