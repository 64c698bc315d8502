"""Fresh lists between runs and the assortment, on both engines (issue 12).

- A customer loaded after the latest run sees their segment's list at once (SQL only, no Python).
- ``python -m scripts.score --refresh`` folds new customers and new events into the run's stored model
  (PureSVD alone, and the blended EASE operator): their lists equal what the run's model gives them
  (scripts.model.recommend on their current rows), everyone else keeps the run's rows.
- An out-of-stock or discontinued shoe leaves every list, suggestion and message at once and comes back.
- A refresh killed at any of its checkpoints leaves the previous state; the next one succeeds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import signal

import numpy as np
import pytest
import tqdm
from helpers import assert_every_kill_point_passes, differences, fresh_url, run_killed, snapshot

from scripts import model, refresh
from scripts import score as score_module
from scripts.db import Database
from scripts.generate_data import generate
from scripts.load import load
from scripts.schema import create_schema
from scripts.score import fit_model, params_from, read_inputs, recommendation_frame, score

USERS, SHOES, EVENTS = 80, 30, 900
BASE = {"top_n": 12, "factors": 4, "similar_n": 5, "batch_size": 25, "workers": 1, "keep_runs": 2}
MODELS = {
    "puresvd": {**BASE, "ease_weight": 0.0},
    "ease_blend": {**BASE, "ease_weight": 1.0, "ease_l2": 2.0},
}
NEW_USER = 10_001
VIEWS = ("user_recommendations", "new_customer_recommendations", "replacement_suggestions", "user_messages")


@pytest.fixture(autouse=True)
def _no_tqdm_monitor(monkeypatch):
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)  # the kill test forks


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("refresh_data")
    generate(out, users=USERS, shoes=SHOES, interactions=EVENTS, seed=3, progress=False)
    return out


def build(url: str, data_dir, params: dict) -> None:
    with Database(url) as db:
        create_schema(db)
        load(db, data_dir, progress=False)
        newest = db.scalar("select cast(max(occurred_at) as date) from interactions")
        db.execute("update settings set reference_date = ?", [newest])
        score(db, **params)


def add_customer(db: Database, user_id: int, like: int, events: list[tuple[int, str]]) -> None:
    """A customer with the attributes of ``like`` (same segment) and ``events`` (shoe_id, type) today."""
    db.execute(
        "insert into users (user_id, age, gender, primary_usage) select ?, age, gender, primary_usage"
        " from users where user_id = ?",
        [user_id, like],
    )
    add_events(db, user_id, events)


def add_events(db: Database, user_id: int, events: list[tuple[int, str]]) -> None:
    when = db.scalar("select max(occurred_at) from interactions")
    for k, (shoe_id, kind) in enumerate(events):
        db.execute(
            "insert into interactions (user_id, shoe_id, interaction_type, occurred_at) values (?, ?, ?, ?)",
            [user_id, shoe_id, kind, when - dt.timedelta(minutes=10 + k)],
        )


def expected_rows(fitted: model.HybridModel, run_inputs, current, params: dict, user_ids: list[int]):
    """What the run's model (fitted in-process on the run's inputs) gives these customers on their rows now."""
    assert (current.shoe_ids == run_inputs.shoe_ids).all()
    rows = np.searchsorted(current.user_ids, user_ids)
    columns = ["primary_usage", "gender", "age_band"]
    grid = {tuple(values): code for code, values in enumerate(run_inputs.segments[columns].values)}
    segment = np.array([grid[tuple(current.segments[columns].iloc[current.user_segment[r]])] for r in rows])
    recs = model.recommend(
        fitted, current.strength[rows], segment, params["top_n"], exclude=current.purchased[rows]
    )
    return recommendation_frame(0, np.array(user_ids, np.int64), run_inputs.shoe_ids, recs)


def listed(db: Database, user_id: int) -> list[tuple]:
    return db.query(
        "select rank, shoe_id, list_source, reason from user_recommendations where user_id = ? order by rank",
        [user_id],
    )


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_new_customer_listed_at_once_then_personal_after_refresh(engine, request, tmp_path, data_dir, kind):

    url = fresh_url(engine, request, tmp_path)
    build(url, data_dir, MODELS[kind])
    with Database(url) as db:
        run_id = db.scalar("select run_id from latest_model_run")
        params = params_from({**score_module.stored_params(db), **MODELS[kind]})
        run_inputs = read_inputs(db)
        fitted = fit_model(run_inputs, params)
        assert (fitted.cf_operator is None) == (kind == "puresvd")
        before_other = listed(db, 1)

        # a new customer who bought one shoe and viewed two: listed at once, from their segment, minus the purchase
        add_customer(db, NEW_USER, like=2, events=[(1003, "purchase"), (1005, "view"), (1007, "view")])
        rows = listed(db, NEW_USER)
        assert len(rows) == 10 and {source for _, _, source, _ in rows} == {"segment"}
        assert all(reason.startswith("new since the last run: popular with ") for *_, reason in rows)
        assert 1003 not in {shoe for _, shoe, _, _ in rows}
        segment_list = db.query(
            "select shoe_id from new_customer_recommendations as lists inner join user_segments as segments"
            " on lists.segment = segments.segment where segments.user_id = ? and lists.shoe_id <> 1003 order by lists.rank",
            [NEW_USER],
        )
        assert [shoe for _, shoe, _, _ in rows] == [shoe for (shoe,) in segment_list][:10]
        # and an existing customer with a new wishlist
        add_events(db, 4, [(1011, "add_to_wishlist")])

        summary = refresh.refresh(db)
        assert summary["status"] == "complete" and summary["n_users"] == 2 and summary["run_id"] == run_id
        want = expected_rows(fitted, run_inputs, read_inputs(db), params, [4, NEW_USER])
        got = db.query_df(
            "select user_id, rank, shoe_id, score, cf_score, content_score, cf_weight, popularity_share,"
            " reason_shoe_id from refreshed_recommendations where refresh_id = ? order by user_id, rank",
            [summary["refresh_id"]],
        )
        assert (
            got[["user_id", "rank", "shoe_id"]].values.tolist()
            == want[["user_id", "rank", "shoe_id"]].values.tolist()
        )
        assert np.allclose(got["score"], want["score"], atol=1e-6)
        assert got["reason_shoe_id"].fillna(-1).tolist() == want["reason_shoe_id"].fillna(-1).tolist()
        assert np.allclose(got["popularity_share"], want["popularity_share"], atol=1e-6)

        rows = listed(db, NEW_USER)
        assert {source for _, _, source, _ in rows} == {"refresh"} and len(rows) == 10
        assert any(not reason.startswith("popular with") for *_, reason in rows)  # personal reasons now
        assert listed(db, 1) == before_other  # everyone else: the run's rows, unchanged
        assert db.scalar("select count(distinct user_id) from user_recommendations") == USERS + 1
        # nothing new: a refresh scores nobody and changes no list
        assert refresh.refresh(db)["n_users"] == 0
        assert {source for _, _, source, _ in listed(db, NEW_USER)} == {"refresh"}
        # a full run takes over: the refresh rows of the older run are gone
        score(db, **MODELS[kind])
        assert {source for _, _, source, _ in listed(db, NEW_USER)} == {"run"}
        assert db.scalar("select count(*) from refreshed_recommendations") == 0
        assert db.scalar("select count(distinct run_id) from model_run_shoes") == 1


def test_refresh_from_the_command_line(engine, request, tmp_path, data_dir):

    url = fresh_url(engine, request, tmp_path)
    build(url, data_dir, MODELS["puresvd"])
    with Database(url) as db:
        add_customer(db, NEW_USER, like=2, events=[(1003, "view")])
    assert score_module.main(["--db", url, "--refresh"]) == 0
    with Database(url) as db:
        assert {source for _, _, source, _ in listed(db, NEW_USER)} == {"refresh"}
        assert db.scalar("select status from model_refreshes") == "complete"


def shown_with(db: Database, shoe_id: int) -> dict[str, int]:
    counts = {
        view: db.scalar(f"select count(*) from {view} where {column} = ?", [shoe_id])
        for view, column in (
            ("user_recommendations", "shoe_id"),
            ("new_customer_recommendations", "shoe_id"),
            ("replacement_suggestions", "suggested_shoe_id"),
        )
    }
    name = db.scalar("select name from shoes where shoe_id = ?", [shoe_id])
    counts["user_messages"] = db.scalar(
        "select count(*) from user_messages where kind = 'replacement' and body like ?",
        [f"%You might like:%{name} by%"],
    )
    return counts


def view_checksums(db: Database) -> dict[str, str]:
    return {
        view: hashlib.sha256(
            "\n".join(sorted(map(repr, db.query(f"select * from {view}")))).encode()
        ).hexdigest()
        for view in VIEWS
    }


def test_an_unavailable_shoe_leaves_every_list_at_once_and_comes_back(engine, request, tmp_path, data_dir):

    url = fresh_url(engine, request, tmp_path)
    build(url, data_dir, MODELS["puresvd"])
    with Database(url) as db:
        # far enough ahead that pairs are past their end of life: replacement suggestions and messages
        db.execute("update settings set reference_date = reference_date + 900")
        popular = db.query(
            "select suggested_shoe_id from replacement_suggestions group by suggested_shoe_id order by count(*) desc, 1 limit 1"
        )[0][0]
        before = shown_with(db, popular)
        assert all(count > 0 for count in before.values()), before
        checksums = view_checksums(db)
        lengths = db.query("select user_id, count(*) from user_recommendations group by user_id order by 1")
        assert {n for _, n in lengths} == {10}
        for change, value in (("availability", "'out_of_stock'"), ("discontinued_on", "date '2000-01-01'")):
            db.execute(f"update shoes set {change} = {value} where shoe_id = ?", [popular])
            assert shown_with(db, popular) == dict.fromkeys(before, 0), change
            # every list stays full: the run stored more than it shows
            assert (
                db.query("select user_id, count(*) from user_recommendations group by user_id order by 1")
                == lengths
            )
            db.execute(f"update shoes set {change} = null where shoe_id = ?", [popular])
            assert shown_with(db, popular) == before and view_checksums(db) == checksums
        # preorder and backorder can be ordered: still shown
        db.execute("update shoes set availability = 'backorder' where shoe_id = ?", [popular])
        assert shown_with(db, popular) == before


def _refresh_job(url: str) -> None:
    with Database(url) as db:
        refresh.refresh(db)


REFRESH_KILL_POINTS = (
    "refresh_after_running_row",
    "refresh_after_read",
    "refresh_mid_write:1",
    "refresh_mid_write:2",
    "refresh_before_commit",
    "refresh_committed",
)


def test_a_killed_refresh_leaves_the_previous_state(engine, request, tmp_path, data_dir):

    url = fresh_url(engine, request, tmp_path)
    build(url, data_dir, {**MODELS["ease_blend"], "batch_size": 1})

    def check(point: str) -> list[str]:
        k = REFRESH_KILL_POINTS.index(point)
        with Database(url) as db:
            add_customer(db, NEW_USER + k, like=2, events=[(1003, "view")])
            add_events(db, 5 + k, [(1009, "add_to_wishlist")])
            before = snapshot(db)
            seen = view_checksums(db)
            refresh_id = db.scalar("select coalesce(max(refresh_id), 0) + 1 from model_refreshes")
        code = run_killed(score_module.KILL_AT_ENV, point, _refresh_job, url)
        problems = [] if code == -signal.SIGKILL else [f"exit code {code}, not killed"]
        with Database(url) as db:
            status = db.scalar("select status from model_refreshes where refresh_id = ?", [refresh_id])
            if point == "refresh_committed":
                if status != "complete" or listed(db, NEW_USER + k)[0][2] != "refresh":
                    problems.append(f"the committed refresh is {status!r}, not shown")
            else:
                if status != "running":
                    problems.append(f"refresh {refresh_id} is {status!r}, not 'running'")
                after = snapshot(db)
                changed = [t for t in differences(before, after) if t != "model_refreshes"]
                if changed:
                    problems.append(f"tables changed: {changed}")
                if view_checksums(db) != seen:
                    problems.append("what readers see changed")
            summary = refresh.refresh(db)
            if summary["status"] != "complete" or listed(db, NEW_USER + k)[0][2] != "refresh":
                problems.append("the next refresh did not publish")
            if (
                point != "refresh_committed"
                and db.scalar("select status from model_refreshes where refresh_id = ?", [refresh_id])
                != "failed"
            ):
                problems.append("the killed refresh was not marked failed")
        return problems

    assert_every_kill_point_passes(f"refresh on {engine}", REFRESH_KILL_POINTS, check)


def test_the_dashboard_says_a_new_customer_sees_their_segment_list(
    engine, request, tmp_path, data_dir, monkeypatch
):
    from helpers import assert_no_failure, recommendation_cards, run_page, texts

    url = fresh_url(engine, request, tmp_path)
    build(url, data_dir, MODELS["puresvd"])
    with Database(url) as db:
        add_customer(db, NEW_USER, like=2, events=[(1003, "purchase")])
        db.execute(
            "insert into merchandising_rules (rule_id, action, attribute, value, max_shoes, is_active)"
            " values (1, 'cap', 'type', null, 2, true)"
        )
    page = run_page(monkeypatch, url, user_id=NEW_USER)
    assert_no_failure(page)
    assert len(recommendation_cards(page)) == 10
    shown = texts(page)
    assert "New since the last run: showing your segment's list." in shown
    assert "at most 2 shoes of any one type in a list of 10" in shown
    with Database(url) as db:
        refresh.refresh(db)
    import streamlit

    streamlit.cache_data.clear()  # the page caches its queries for a while
    page = run_page(monkeypatch, url, user_id=NEW_USER)
    assert "refreshed with the run's model" in texts(page)
