"""Truthful explanations on the bundled data, on both engines: each reason names what carries the pick.

``user_recommendations`` gives a pick the kind of reason its largest share calls for (behaviour,
content or popularity), and a reason shoe explains at most 3 of a customer's picks with a behaviour
reason; the picks it would explain beyond those take the larger of their content and popularity shares.
Checked here on each customer's top 10, from the rows the view returns (shares included).
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import ENGINES

from scripts.db import Database

TOP_N = 10
MAX_PICKS_PER_REASON_SHOE = 3
TOLERANCE = 1e-9  # shares are doubles: a tie must not fail on the last bit
KINDS = {"behaviour", "content", "popularity"}


@pytest.fixture(scope="module", params=ENGINES)
def top_picks(request) -> pd.DataFrame:
    """Every customer's top 10 with its shares and reason, from the bundled database of one engine."""
    with Database(request.getfixturevalue(f"bundled_{request.param}_url"), read_only=True) as db:
        picks = db.query_df(
            "select user_id, rank, shoe_id, behaviour_share, content_share, popularity_share,"
            " reason, reason_kind, reason_shoe_id"
            f" from user_recommendations where rank <= {TOP_N} order by user_id, rank"
        )
    for share in ("behaviour_share", "content_share", "popularity_share"):
        picks[share] = picks[share].astype(float)
    # behaviour-led: behaviour is at least each other share (ties go to behaviour)
    picks["is_behaviour_led"] = (picks["behaviour_share"] >= picks["content_share"] - TOLERANCE) & (
        picks["behaviour_share"] >= picks["popularity_share"] - TOLERANCE
    )
    # behaviour reasons naming the same shoe at better ranks
    behaviour = picks["reason_kind"].eq("behaviour")
    named = behaviour.astype(int).groupby([picks["user_id"], picks["reason_shoe_id"]], dropna=False).cumsum()
    picks["named_before"] = named - behaviour.astype(int)
    return picks


def test_shares_are_known_and_add_up(top_picks):
    assert len(top_picks) > 0
    assert top_picks["popularity_share"].notna().all(), "the bundled run records popularity_share"
    total = top_picks[["behaviour_share", "content_share", "popularity_share"]].sum(axis=1)
    assert ((total - 1).abs() < 1e-4).all(), top_picks[(total - 1).abs() >= 1e-4].head()


def test_all_three_kinds_occur(top_picks):
    counts = top_picks["reason_kind"].value_counts().to_dict()
    assert set(counts) == KINDS, counts


def test_a_reason_shoe_explains_at_most_three_picks(top_picks):
    behaviour = top_picks[top_picks["reason_kind"] == "behaviour"]
    per_shoe = behaviour.groupby(["user_id", "reason_shoe_id"]).size()
    assert per_shoe.max() <= MAX_PICKS_PER_REASON_SHOE, per_shoe[per_shoe > MAX_PICKS_PER_REASON_SHOE].head()
    # and the limit is at work: without it some reason shoe would explain more than 3 picks
    led = top_picks[top_picks["is_behaviour_led"] & top_picks["reason_shoe_id"].notna()]
    assert led.groupby(["user_id", "reason_shoe_id"]).size().max() > MAX_PICKS_PER_REASON_SHOE


def test_behaviour_reasons_are_led_by_behaviour(top_picks):
    behaviour = top_picks[top_picks["reason_kind"] == "behaviour"]
    assert len(behaviour) > 0
    not_led = behaviour[~behaviour["is_behaviour_led"]]
    assert not_led.empty, not_led.head()
    assert behaviour["reason"].str.startswith(("because you ", "on your wishlist", "you looked at it")).all()


def test_popularity_reasons_are_led_by_popularity(top_picks):
    popularity = top_picks[top_picks["reason_kind"] == "popularity"]
    assert len(popularity) > 0
    assert popularity["reason"].str.startswith("popular with ").all()
    largest = popularity[["behaviour_share", "content_share"]].max(axis=1)
    not_led = popularity[popularity["popularity_share"] < largest - TOLERANCE]
    assert not_led.empty, not_led.head()


def test_content_reasons_have_more_content_than_popularity(top_picks):
    """A content reason is led by content, or a behaviour-led pick whose reason shoe already explains 3
    better-ranked picks (then content is at least popularity)."""
    content = top_picks[top_picks["reason_kind"] == "content"]
    assert len(content) > 0
    assert content["reason"].str.startswith("similar to ").all()
    assert (content["content_share"] >= content["popularity_share"] - TOLERANCE).all()
    displaced = content[content["is_behaviour_led"]]
    assert (displaced["named_before"] >= MAX_PICKS_PER_REASON_SHOE).all(), displaced.head()
    led = content[~content["is_behaviour_led"]]
    assert (led["content_share"] >= led["behaviour_share"] - TOLERANCE).all(), led.head()
