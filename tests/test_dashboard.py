"""The dashboard, run headless by Streamlit's AppTest on both engines, and what it may read.

Each test points the page at a database through SHOEREC_DASHBOARD_DB, as an operator would.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from scripts.db import Database
from scripts.schema import create_schema, create_tables, view_files

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard.py"
TIMEOUT = 60


def run_page(monkeypatch, url: str, **state) -> AppTest:
    monkeypatch.setenv("SHOEREC_DASHBOARD_DB", url)
    page = AppTest.from_file(str(DASHBOARD), default_timeout=TIMEOUT)
    for key, value in state.items():
        page.session_state[key] = value
    return page.run()


def texts(page: AppTest) -> str:
    """Everything the page wrote as text, markdown, captions and notices, in one string."""
    parts = []
    for kind in ("markdown", "caption", "text", "info", "warning", "error", "subheader", "metric"):
        for element in getattr(page, kind):
            parts.append(str(getattr(element, "value", "")))
    return "\n".join(parts)


def recommendation_cards(page: AppTest) -> list[str]:
    """The names on the recommendation cards ("**1. Name**"), in rank order, markdown escapes undone."""
    cards = []
    for element in page.markdown:
        match = re.match(r"^\*\*(\d+)\. (.*)\*\*$", element.value, flags=re.DOTALL)
        if match:
            cards.append((int(match.group(1)), re.sub(r"\\(.)", r"\1", match.group(2))))
    return [name for _, name in sorted(cards)]


def assert_no_failure(page: AppTest) -> None:
    assert not page.exception, [e.value for e in page.exception]
    assert not page.error, [e.value for e in page.error]


def test_page_runs_and_shows_a_customer(monkeypatch, bundled_url):
    page = run_page(monkeypatch, bundled_url)
    assert_no_failure(page)
    assert len(recommendation_cards(page)) == 10
    assert "Business overview" in texts(page)


def test_picking_a_user_changes_the_recommendations(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        first, second = (row[0] for row in db.query(
            "select user_id from user_profiles where not has_no_history order by user_id limit 2"
        ))
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
        titles = {title for (title,) in db.query("select title from user_messages where user_id = ?", [user_id])}
    page = run_page(monkeypatch, bundled_url, user_id=user_id)
    assert_no_failure(page)
    shown = texts(page)
    assert all(title.split()[0] in shown for title in titles)
    assert "Suggested replacements" in shown
    frames = [frame.value for frame in page.dataframe]
    assert any("wear_share" in frame.columns for frame in frames)


def test_as_of_date_moves_the_service_status(monkeypatch, bundled_url):
    with Database(bundled_url, read_only=True) as db:
        user_id, bought_on = db.query(
            "select user_id, purchased_on from replacement_windows where status = 'past_end_of_life'"
            " order by user_id limit 1"
        )[0]
    page = run_page(monkeypatch, bundled_url, user_id=user_id)
    now = next(frame.value for frame in page.dataframe if "wear_share" in frame.value.columns)
    page.date_input[0].set_value(bought_on).run()
    assert_no_failure(page)
    then = next(frame.value for frame in page.dataframe if "wear_share" in frame.value.columns)
    assert (then["wear_share"] <= now["wear_share"]).all()
    assert then["status"].str.contains("past end of life").sum() < now["status"].str.contains("past end of life").sum()


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


def test_empty_database(monkeypatch, db_url):
    with Database(db_url) as db:
        create_schema(db)
    page = run_page(monkeypatch, db_url)
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


def test_loaded_but_not_scored(monkeypatch, db_url):
    with Database(db_url) as db:
        create_schema(db)
        db.insert_df("users", pd.DataFrame({"user_id": [1], "age": [30], "gender": [None], "primary_usage": ["running"]}))
    page = run_page(monkeypatch, db_url)
    assert_no_failure(page)
    shown = texts(page)
    assert "No recommendations yet" in shown
    assert "No views, wishlists or purchases yet" in shown


def test_user_supplied_markup_is_shown_as_text(monkeypatch, db_url):
    evil = "<script>alert(1)</script> **bold** [link](http://x)"
    with Database(db_url) as db:
        create_schema(db)
        db.insert_df("users", pd.DataFrame({"user_id": [1], "age": [30], "gender": ["f"], "primary_usage": ["running"]}))
        db.insert_df(
            "shoes",
            pd.DataFrame(
                {"shoe_id": [1], "name": [evil], "brand": ["B"], "type": ["running"], "material": ["mesh"],
                 "color": ["red"], "price": [10.0], "care_instructions": [evil], "lifespan_days": [300]}
            ),
        )
        db.insert_df("interactions", pd.DataFrame(
            {"user_id": [1], "shoe_id": [1], "interaction_type": ["view"],
             "occurred_at": [pd.Timestamp("2024-01-01 10:00:00")]}
        ))
    page = run_page(monkeypatch, db_url)
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
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
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
    assert not re.search(r"f\"[^\"]*\b(select|where)\b", source, flags=re.IGNORECASE)
    assert "unsafe_allow_html" not in source


@pytest.mark.parametrize("base_table", ["users", "interactions", "recommendations", "model_runs"])
def test_view_check_catches_a_base_table(base_table):
    assert base_table in relations_named(f'query("select * from {base_table} where x = ?", 1)')


def test_business_overview_shows_model_quality(monkeypatch, bundled_url):
    page = run_page(monkeypatch, bundled_url)
    assert_no_failure(page)
    assert "How good is the model?" in texts(page)
    metric = next(box for box in page.selectbox if box.label == "Metric")
    assert "ndcg" in metric.options and metric.value == "ndcg"
    metric.set_value("recall").run()
    assert_no_failure(page)


def test_todays_messages_across_customers(monkeypatch, bundled_url):
    page = run_page(monkeypatch, bundled_url)
    assert_no_failure(page)
    shown = texts(page)
    assert "Today's messages as of" in shown
    assert "Nothing recorded yet" in shown  # the bundled build has an empty outbox
    labels = {metric.label for metric in page.metric}
    assert {"To send", "Suppressed", "Expired", "Deferred"} <= labels
