"""The dashboard, run headless by Streamlit's AppTest on both engines, and what it may read.

Each test points the page at a database through SHOEREC_DASHBOARD_DB, as an operator would.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import logging
import re
from collections.abc import Iterator

import pandas as pd
import pytest
from helpers import DASHBOARD, PAGE_TIMEOUT, assert_no_failure, recommendation_cards, run_page, texts
from streamlit.testing.v1 import AppTest

from scripts.db import Database
from scripts.evaluate import MODEL_NAMES
from scripts.schema import create_tables, view_files

# where Streamlit says a call is deprecated: a log line (and a notice in the page), never a warning
STREAMLIT_DEPRECATIONS = "streamlit.deprecation_util"

# a deprecation warning raised while the page runs becomes an exception in the page (page.exception)
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning", "error::FutureWarning")


@pytest.fixture(autouse=True)
def deprecations() -> Iterator[list[str]]:
    """What Streamlit says is deprecated during a test; any of it fails the test (a test that calls a
    deprecated function on purpose clears the list)."""
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logger = logging.getLogger(STREAMLIT_DEPRECATIONS)
    logger.addHandler(handler)
    try:
        yield said
    finally:
        logger.removeHandler(handler)
    assert not said, f"the page calls what Streamlit has deprecated: {said}"


def test_page_runs_and_shows_a_customer(monkeypatch, bundled_url):
    page = run_page(monkeypatch, bundled_url)
    assert_no_failure(page)
    assert len(recommendation_cards(page)) == 10
    assert "Business overview" in texts(page)


def test_the_page_calls_nothing_streamlit_has_deprecated(monkeypatch, bundled_url, deprecations):
    page = run_page(monkeypatch, bundled_url)
    page.button[0].click().run()  # every widget the page has, used once
    page.date_input[0].set_value(dt.date(2025, 7, 9)).run()
    for box in page.selectbox:
        box.set_value(box.options[-1]).run()
    for choice in page.multiselect:
        choice.set_value(choice.options[:1]).run()
    assert_no_failure(page)
    assert deprecations == []


def deprecated_page() -> None:
    import pandas as pd
    import streamlit as st

    st.dataframe(pd.DataFrame({"a": [1]}), use_container_width=True)  # deprecated since Streamlit 1.49


def warning_page() -> None:
    import warnings

    warnings.warn("this call is deprecated", DeprecationWarning, stacklevel=1)


def test_the_deprecation_checks_see_a_deprecated_call(deprecations):
    AppTest.from_function(deprecated_page, default_timeout=PAGE_TIMEOUT).run()
    assert any("use_container_width" in notice for notice in deprecations)
    deprecations.clear()  # said on purpose: this test passes
    page = AppTest.from_function(warning_page, default_timeout=PAGE_TIMEOUT).run()
    assert page.exception  # the message itself is redacted in the page (it is in the log)


def test_picking_a_user_changes_the_recommendations(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        first, second = (
            row[0]
            for row in db.query(
                "select user_id from user_profiles where not has_no_history order by user_id limit 2"
            )
        )
        expected = db.query_df(
            "select name from user_recommendations where user_id = ? and rank <= 10 order by rank", [second]
        )["name"].tolist()
    page = run_page(monkeypatch, bundled_url, user_id=first)
    before = recommendation_cards(page)
    page.selectbox(key="user_id").set_value(second).run()
    assert_no_failure(page)
    after = recommendation_cards(page)
    assert after != before
    # the cards show the view's rows, in rank order
    assert after == expected


def test_random_button_picks_a_customer(monkeypatch, bundled_url):
    page = run_page(monkeypatch, bundled_url)
    seen = set()
    for _ in range(4):
        page.button[0].click().run()
        assert_no_failure(page)
        seen.add(page.session_state["user_id"])
    assert len(seen) > 1


def test_customer_with_purchases_sees_services(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        user_id = db.scalar(
            "select min(user_id) from user_messages where kind = 'replacement'"
            " and user_id in (select user_id from user_messages where kind = 'care_reminder')"
        )
        titles = {
            title for (title,) in db.query("select title from user_messages where user_id = ?", [user_id])
        }
    page = run_page(monkeypatch, bundled_url, user_id=user_id)
    assert_no_failure(page)
    shown = texts(page)
    assert all(title.split()[0] in shown for title in titles)
    assert "Suggested replacements" in shown
    frames = [frame.value for frame in page.dataframe]
    assert any("life_used_percent" in frame.columns for frame in frames)


def frame_with(page: AppTest, column: str) -> pd.DataFrame:
    return next(frame.value for frame in page.dataframe if column in frame.value.columns)


def column_labels(page: AppTest) -> dict[str, str]:
    """Every dataframe column's label as the page shows it (column_config), by column name."""
    labels = {}
    for frame in page.dataframe:
        for name, config in json.loads(frame.proto.columns or "{}").items():
            if "label" in config:
                labels.setdefault(name, set()).add(config["label"])
    return labels


def test_every_table_labels_every_column_the_same_way(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        user_id = db.scalar(  # shoes, suggestions, care reminders, history and messages: every table
            "select min(user_id) from user_messages where kind = 'replacement'"
            " and user_id in (select user_id from user_messages where kind = 'care_reminder')"
        )
    page = run_page(monkeypatch, bundled_url, user_id=user_id)
    assert_no_failure(page)
    assert len(page.dataframe) >= 6
    for frame in page.dataframe:
        config = json.loads(frame.proto.columns or "{}")
        unlabelled = [name for name in frame.value.columns if "label" not in config.get(name, {})]
        assert not unlabelled, f"a table shows columns by their view names: {unlabelled}"
    labels = column_labels(page)
    assert labels["name"] == {"Shoe"} and labels["due_on"] == {"Due"}  # one label a column, every table
    assert "Reminder" in labels["title"]  # a table's own on top of the shared "Title"


def test_as_of_date_moves_the_service_status(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        user_id, bought_on = db.query(
            "select user_id, purchased_on from replacement_windows where status = 'past_end_of_life'"
            " order by user_id limit 1"
        )[0]
    page = run_page(monkeypatch, bundled_url, user_id=user_id)
    now = frame_with(page, "life_used_percent")
    page.date_input[0].set_value(bought_on).run()
    assert_no_failure(page)
    then = frame_with(page, "life_used_percent")
    assert then["life_used_percent"].max() <= now["life_used_percent"].max()
    assert (
        then["status"].str.contains("past end of life").sum()
        < now["status"].str.contains("past end of life").sum()
    )


def test_as_of_date_shows_the_pair_in_use_between_two_purchases(monkeypatch, bundled_url):
    """Customer 127 bought shoe 1261 on 2025-04-06 and again on 2025-10-12: on 2025-07-09 the first pair."""
    with Database(bundled_url, read_only=True) as db:
        # every shoe bought twice, looked up the day before its repurchase: exactly the earlier pair
        rows = db.query(
            "select purchases.user_id, purchases.shoe_id, purchases.purchased_at, count(pair_statuses.status)"
            " from purchases left join pair_statuses"
            " on purchases.user_id = pair_statuses.user_id and purchases.shoe_id = pair_statuses.shoe_id"
            " and pair_statuses.valid_from_on <= purchases.next_purchase_on - 1"
            " and (pair_statuses.valid_until_on is null or purchases.next_purchase_on - 1 < pair_statuses.valid_until_on)"
            " and pair_statuses.purchased_at = purchases.purchased_at"
            " where purchases.next_purchase_on > purchases.purchased_on"
            " group by purchases.user_id, purchases.shoe_id, purchases.purchased_at"
        )
        assert len(rows) >= 50 and all(count == 1 for *_, count in rows)
        [(name, first_on, second_on)] = db.query(
            "select name, purchased_on, next_purchase_on from purchases"
            " where user_id = 127 and shoe_id = 1261 and next_purchase_on is not null"
        )
    assert (first_on, second_on) == (dt.date(2025, 4, 6), dt.date(2025, 10, 12))
    page = run_page(monkeypatch, bundled_url, user_id=127)
    page.date_input[0].set_value(dt.date(2025, 7, 9)).run()
    assert_no_failure(page)
    shoes = frame_with(page, "life_used_percent")
    [pair] = shoes[shoes["name"] == name].to_dict("records")
    assert pd.Timestamp(pair["purchased_on"]).date() == first_on
    assert pair["life_used_percent"] == pytest.approx(
        100 * (dt.date(2025, 7, 9) - first_on).days / pair["personal_lifespan_days"]
    )
    assert "ok" in pair["status"]


def test_each_section_names_the_date_it_uses(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        reference = db.scalar("select reference_date from current_settings")
        user_id = db.scalar("select min(user_id) from replacement_suggestions")
    page = run_page(monkeypatch, bundled_url, user_id=user_id)
    as_of = reference - dt.timedelta(days=40)
    page.date_input[0].set_value(as_of).run()
    assert_no_failure(page)
    shown = texts(page)
    assert f"Their shoes as of {as_of:%d %b %Y}" in shown
    assert f"Care reminders around {as_of:%d %b %Y}" in shown
    assert f"Messages for them on {reference:%d %b %Y}" in shown  # the reference date, said so
    assert f"Suggested replacements for shoes near the end of their life ({reference:%d %b %Y})" in shown
    assert f"Business overview as of {reference:%d %b %Y}" in shown
    assert f"Today's messages as of {reference:%d %b %Y}" in shown
    assert "Messages for them today" not in shown
    assert page.date_input[0].label == "Their shoes and care reminders as of"


def test_life_used_is_shown_past_its_end_uncapped(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        user_id, shoe, share = db.query(
            "select user_id, name, wear_share from replacement_windows where wear_share > 1.6"
            " order by wear_share desc, user_id limit 1"
        )[0]
    page = run_page(monkeypatch, bundled_url, user_id=user_id)
    assert_no_failure(page)
    shoes = frame_with(page, "life_used_percent")
    assert shoes.loc[shoes["name"] == shoe, "life_used_percent"].max() == pytest.approx(100 * share)
    config = next(
        json.loads(frame.proto.columns)["life_used_percent"]
        for frame in page.dataframe
        if "life_used_percent" in frame.value.columns
    )
    assert config["label"] == "Life used" and config["type_config"]["format"] == "%.0f%%"  # 135%, not 134.67%


def test_prices_carry_the_currency(monkeypatch, bundled_url, schema_db_url):
    page = run_page(monkeypatch, bundled_url)
    assert_no_failure(page)
    assert re.search(r"· \d[\d,]*\.\d\d EUR$", texts(page), flags=re.MULTILINE)  # on the cards
    assert {"Price (EUR)"} == column_labels(page)["price"]
    with Database(schema_db_url) as db:
        db.execute("update settings set currency = 'JPY'")
        db.insert_df(
            "users",
            pd.DataFrame({"user_id": [1], "age": [30], "gender": ["f"], "primary_usage": ["running"]}),
        )
        db.insert_df("shoes", pd.DataFrame({
            "shoe_id": [1], "name": ["Tabi"], "brand": ["B"], "type": ["running"], "material": ["mesh"],
            "color": ["red"], "price": [12800.0], "care_instructions": [None], "lifespan_days": [300],
        }))  # fmt: skip
        db.insert_df("interactions", pd.DataFrame({
            "user_id": [1, 1], "shoe_id": [1, 1], "interaction_type": ["view", "add_to_wishlist"],
            "occurred_at": [pd.Timestamp("2024-01-01 10:00:00"), pd.Timestamp("2024-01-02 10:00:00")],
        }))  # fmt: skip
    page = run_page(monkeypatch, schema_db_url)
    assert_no_failure(page)
    assert column_labels(page)["price"] == {"Price (JPY)"}


def test_history_says_what_the_customer_did_in_words(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        user_id = db.scalar(
            "select user_id from user_history group by user_id"
            " having count(distinct interaction_type) = 3 order by user_id limit 1"
        )
    page = run_page(monkeypatch, bundled_url, user_id=user_id)
    assert_no_failure(page)
    history = frame_with(page, "interaction_type")
    assert set(history["interaction_type"]) == {"viewed", "added to wishlist", "bought"}


def test_a_superseded_care_reminder_is_not_shown_overdue(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        user_id = 127
        told = sorted(
            (name, status)
            for name, status in db.query(
                "select shoes.name, user_messages.status from user_messages"
                " inner join shoes on user_messages.shoe_id = shoes.shoe_id"
                " where user_messages.user_id = ? and user_messages.kind = 'care_reminder'",
                [user_id],
            )
        )
    page = run_page(monkeypatch, bundled_url, user_id=user_id)
    assert_no_failure(page)
    care = frame_with(page, "instructions")
    assert care["status"].str.contains("superseded by a later reminder").any()
    # on the reference date the due and overdue rows are exactly the reminders the customer is told
    pressing = care[care["status"].str.contains("overdue|due$", regex=True)]
    shown = sorted((row.name, row.status.split(" ", 1)[1]) for row in pressing.itertuples())
    assert shown == told and len(told) >= 2


def test_overview_counts_end_of_life_ahead_and_nearing(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        overview = db.query_df("select * from business_overview").iloc[0]
        ahead = db.scalar(
            "select count(*) from replacement_windows cross join current_settings"
            " where end_of_life_on > current_settings.reference_date"
            " and end_of_life_on <= current_settings.reference_date + 30"
        )
        nearing = db.scalar("select count(*) from replacement_windows where status = 'nearing_end_of_life'")
    page = run_page(monkeypatch, bundled_url)
    assert_no_failure(page)
    metrics = {metric.label: metric.value for metric in page.metric}
    assert (
        metrics["End of life in the next 30 days"]
        == f"{ahead:,}"
        == f"{int(overview['end_of_life_next_30_days_count']):,}"
    )
    assert metrics["Shoes nearing end of life"] == f"{nearing:,}"
    assert ahead > 0 and nearing > 0
    assert not any("this month" in label for label in metrics)


def test_brand_new_customer_tab(monkeypatch, bundled_url):
    page = run_page(monkeypatch, bundled_url)
    usage = next(box for box in page.selectbox if box.label == "Primary usage")
    options = usage.options
    assert len(options) > 1
    usage.set_value(options[-1]).run()
    assert_no_failure(page)
    frame = [f.value for f in page.dataframe if "score" in f.value.columns][-1]
    assert len(frame) == 10


def test_missing_database_says_how_to_build_it(monkeypatch, tmp_path):
    page = run_page(monkeypatch, str(tmp_path / "nothing-here.duckdb"))
    assert not page.exception
    assert "python -m scripts.build" in texts(page)
    assert not (tmp_path / "nothing-here.duckdb").exists()  # the page never creates a database


def test_empty_database(monkeypatch, schema_db_url):
    page = run_page(monkeypatch, schema_db_url)
    assert_no_failure(page)
    shown = texts(page)
    assert "No customers yet" in shown
    assert "No scoring run" in shown


def test_tables_without_views_get_a_message_not_a_traceback(monkeypatch, db_url):
    with Database(db_url) as db:
        create_tables(db)
    page = run_page(monkeypatch, db_url)
    assert not page.exception
    assert "scripts.build" in texts(page)


def test_loaded_but_not_scored(monkeypatch, schema_db_url):
    with Database(schema_db_url) as db:
        db.insert_df(
            "users",
            pd.DataFrame({"user_id": [1], "age": [30], "gender": [None], "primary_usage": ["running"]}),
        )
    page = run_page(monkeypatch, schema_db_url)
    assert_no_failure(page)
    shown = texts(page)
    assert "No recommendations yet" in shown
    assert "No views, wishlists or purchases yet" in shown


def test_user_supplied_markup_is_shown_as_text(monkeypatch, schema_db_url):
    evil = "<script>alert(1)</script> **bold** [link](http://x)"
    with Database(schema_db_url) as db:
        db.insert_df(
            "users",
            pd.DataFrame({"user_id": [1], "age": [30], "gender": ["f"], "primary_usage": ["running"]}),
        )
        db.insert_df(
            "shoes",
            pd.DataFrame(
                {
                    "shoe_id": [1],
                    "name": [evil],
                    "brand": ["B"],
                    "type": ["running"],
                    "material": ["mesh"],
                    "color": ["red"],
                    "price": [10.0],
                    "care_instructions": [evil],
                    "lifespan_days": [300],
                }
            ),
        )
        db.insert_df(
            "interactions",
            pd.DataFrame(
                {
                    "user_id": [1],
                    "shoe_id": [1],
                    "interaction_type": ["view"],
                    "occurred_at": [pd.Timestamp("2024-01-01 10:00:00")],
                }
            ),
        )
    page = run_page(monkeypatch, schema_db_url)
    assert_no_failure(page)
    history = next(frame.value for frame in page.dataframe if "interaction_type" in frame.value.columns)
    assert history["name"].tolist() == [evil]
    # markdown-rendered text never carries the raw markup
    for element in page.markdown:
        assert "<script>" not in element.value and "**bold**" not in element.value


# -- what the page may read ---------------------------------------------------------------------
def sql_strings(source: str) -> list[str]:
    """The string constants of a Python source that are SQL (they start with `select`)."""
    return [
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.lstrip().lower().startswith("select")
    ]


def relations_named(source: str) -> set[str]:
    """Names following `from` or `join` in the SQL strings of a Python source."""
    return {
        name
        for sql in sql_strings(source)
        for name in re.findall(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)", sql, flags=re.IGNORECASE)
    }


def test_dashboard_reads_views_only():
    source = DASHBOARD.read_text(encoding="utf-8")
    views = {path.stem for path in view_files()}
    named = relations_named(source)
    assert len(sql_strings(source)) >= 10, "found too few queries: is the check still reading them?"
    assert named <= views, f"dashboard.py names relations that are not views: {sorted(named - views)}"


def test_dashboard_binds_parameters():
    source = DASHBOARD.read_text(encoding="utf-8")
    # no f-string or %-formatting builds SQL
    assert not re.search(r"\bf\"[^\"]*\b(select|where)\b", source, flags=re.IGNORECASE)
    assert "unsafe_allow_html" not in source


@pytest.mark.parametrize("base_table", ["users", "interactions", "recommendations", "model_runs"])
def test_view_check_catches_a_base_table(base_table):
    assert base_table in relations_named(f'query("select * from {base_table} where x = ?", 1)')


def charts(page: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    """Each chart's Vega-Lite spec and its data."""
    import pyarrow as pa

    found = []
    for chart in page.get("vega_lite_chart"):
        data = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()
        found.append((json.loads(chart.proto.spec), data))
    return found


def test_business_overview_shows_model_quality(monkeypatch, bundled_url):
    page = run_page(monkeypatch, bundled_url)
    assert_no_failure(page)
    assert "How good is the model?" in texts(page)
    metric = next(box for box in page.selectbox if box.label == "Metric")
    assert "ndcg" in metric.options and metric.value == "ndcg"
    metric.set_value("recall").run()
    assert_no_failure(page)


def test_model_quality_reads_like_a_verdict(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        figures = {
            (model, group): (value, low, high, n)
            for model, group, value, low, high, n in db.query(
                "select model, user_group, value, ci_low, ci_high, n_users from model_evaluations"
                " where metric = 'ndcg' and k = 10 and model in ('hybrid', 'popularity')"
            )
        }
    page = run_page(monkeypatch, bundled_url)
    assert_no_failure(page)
    spec, data = next((spec, data) for spec, data in charts(page) if "model" in data.columns)
    assert set(data["model"]) <= set(MODEL_NAMES.values()) and "hybrid" in set(data["model"])
    assert "popularity (count of customers)" in set(data["model"])
    titles = {spec["encoding"]["x"]["title"], spec["encoding"]["y"]["title"]}
    assert titles == {"model", "ndcg@10 (higher is better)"}
    shown = texts(page)
    for group in ("warm", "cold"):
        value, low, high, n = figures[("hybrid", group)]
        base = figures[("popularity", group)]
        sentence = (
            f"**{group.capitalize()} customers** ({n:,}): the hybrid's ndcg@10 is {value:.3f} (95% interval"
            f" {low:.3f} to {high:.3f}), better than the best baseline, popularity \\(count of customers\\), at"
            f" {base[0]:.3f} (95% interval {base[1]:.3f} to {base[2]:.3f}) on {base[3]:,} customers."
        )
        assert sentence in shown


def test_model_quality_trend_over_evaluation_runs(monkeypatch, schema_db_url):
    with Database(schema_db_url) as db:
        runs, results = [], []
        for evaluation_id, hybrid in ((1, 0.20), (2, 0.25), (3, 0.31)):
            runs.append({
                "evaluation_id": evaluation_id, "started_at": pd.Timestamp(f"2024-06-0{evaluation_id} 10:00"),
                "finished_at": pd.Timestamp(f"2024-06-0{evaluation_id} 10:05"), "cutoff_date": dt.date(2024, 5, 1),
                "test_share": 0.2, "relevant_types": "purchase", "parameters": "{}", "tuning": None,
                "n_train_interactions": 100, "n_test_interactions": 20, "protocol": "user",
            })  # fmt: skip
            for model, group, value in (("hybrid", "warm", hybrid), ("hybrid", "cold", hybrid / 2),
                                        ("popularity", "warm", 0.1), ("popularity", "cold", 0.1)):  # fmt: skip
                results.append({
                    "evaluation_id": evaluation_id, "model": model, "user_group": group, "k": 10, "metric": "ndcg",
                    "value": value, "n_users": 300, "ci_low": value - 0.02, "ci_high": value + 0.02,
                })  # fmt: skip
        db.insert_df("evaluation_runs", pd.DataFrame(runs))
        db.insert_df("evaluations", pd.DataFrame(results))
    page = run_page(monkeypatch, schema_db_url)
    assert_no_failure(page)
    shown = texts(page)
    assert "The hybrid's ndcg@10 over 3 evaluation runs" in shown
    assert (
        "**Warm customers** (300): the hybrid's ndcg@10 is 0.310 (95% interval 0.290 to 0.330), better than"
        in shown
    )
    assert (
        "**Cold customers** (300): the hybrid's ndcg@10 is 0.155 (95% interval 0.135 to 0.175), better than"
        in shown
    )
    spec, trend = next((spec, data) for spec, data in charts(page) if "run_number" in data.columns)
    values = next(column for column in trend.columns if column.startswith("value"))  # melted by Streamlit
    assert sorted(trend[values].round(3)) == [0.1, 0.125, 0.155, 0.2, 0.25, 0.31]
    encoding = spec["layer"][0]["encoding"]  # a line chart is layered (line, hover points)
    assert (encoding["x"]["title"], encoding["y"]["title"]) == ("evaluation run (1 = oldest)", "ndcg@10")


def test_a_postgres_database_that_does_not_exist_is_named(monkeypatch, pg_database_url):
    head, _, _ = pg_database_url.partition("?")
    missing = head.rpartition("/")[0] + "/shoerec_no_such_database"
    page = run_page(monkeypatch, missing)
    assert not page.exception
    shown = texts(page)
    assert "does not exist" in shown and "createdb shoerec_no_such_database" in shown
    assert "being rebuilt" not in shown


def test_todays_messages_across_customers(monkeypatch, bundled_url):
    page = run_page(monkeypatch, bundled_url)
    assert_no_failure(page)
    shown = texts(page)
    assert "Today's messages as of" in shown
    assert "Nothing recorded yet" in shown  # the bundled build has an empty outbox
    labels = {metric.label for metric in page.metric}
    assert {"To send", "Suppressed", "Expired", "Deferred"} <= labels
