"""Quality end to end: the main job on held-out events, against the peers (scripts/holdout.py).

First the split on tiny files whose answer is known; then, once per module and profile, the whole
check a retailer would run: the real-log profile of the generator at its default size, and the demo
profile (the bundled data/). Each run builds and tunes (about 30 s); ``pytest -s`` shows the tables.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from scripts import holdout
from scripts.build import BUNDLED_DATA_DIR
from scripts.generate_data import generate

PROFILES = ("real-log", "demo")
MIN_WARM, MIN_COLD = 200, 50
SAME_LISTS_SHARE = 0.99


def _frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


USERS = _frame("user_id,age,gender,primary_usage\n1,7,,running\n2,34,female,walking\n3,,male,casual\n")
SHOES = _frame(
    "shoe_id,name,brand,type,material,color,price,care_instructions,lifespan_days\n"
    + "".join(f"{shoe},S{shoe},B,running,mesh,blue,10.00,,365\n" for shoe in range(10, 20))
)


def test_split_holds_out_each_customers_latest_fifth_in_time_order_ties_in_file_order():
    # user 1: 5 events out of file order, the two latest tied (file order breaks the tie);
    # user 2: 3 events (floor(0.6 + 0.5) = 1 held out); user 3: 2 events (floor(0.4 + 0.5) = 0)
    interactions = _frame(
        "user_id,shoe_id,interaction_type,timestamp\n"
        "1,14,purchase,2025-01-05T00:00:00Z\n"
        "1,10,view,2025-01-01T00:00:00Z\n"
        "2,10,view,2025-01-01\n"
        "1,15,add_to_wishlist,2025-01-05T01:00:00+01:00\n"
        "1,11,view,2025-01-02T00:00:00Z\n"
        "2,11,purchase,2025-01-03T00:00:00Z\n"
        "3,12,view,2025-02-01T00:00:00Z\n"
        "1,12,view,2025-01-03T00:00:00Z\n"
        "2,12,purchase,2025-01-02T23:00:00-02:00\n"
        "3,13,view,2025-02-02T00:00:00Z\n"
    )
    train, test, cold = holdout.split_files(USERS, SHOES, interactions, 0.2, 0.0, seed=7)
    assert cold.tolist() == []
    # user 1: 2025-01-05T00:00Z (purchase of 14, file row 0) and 01:00+01:00 (= 00:00Z, row 3) tie;
    # the later in file order, shoe 15, is the last event and held out
    assert test[["user_id", "shoe_id"]].values.tolist() == [["1", "15"], ["2", "12"]]
    assert len(train) + len(test) == len(interactions)
    # cells unchanged and file order kept
    assert train.index.is_monotonic_increasing
    assert train.loc[2, "timestamp"] == "2025-01-01"


def test_split_holds_cold_customers_out_entirely_and_relevant_drops_bought_shoes():
    interactions = _frame(
        "user_id,shoe_id,interaction_type,timestamp\n"
        + "".join(
            f"{user},{10 + i},view,2025-01-0{i + 1}T00:00:00Z\n" for user in (1, 2, 3) for i in range(5)
        )
        + "1,10,purchase,2025-01-01T12:00:00Z\n"
        + "1,10,purchase,2025-02-01T00:00:00Z\n"
        + "1,19,add_to_wishlist,2025-02-02T00:00:00Z\n"
    )
    train, test, cold = holdout.split_files(USERS, SHOES, interactions, 0.2, 0.34, seed=1)
    # floor(0.34 * 3 + 0.5) = 1 cold customer, all of whose events are held out
    assert len(cold) == 1
    assert not train["user_id"].astype(int).isin(cold).any()
    assert (test["user_id"].astype(int).isin(cold)).sum() == (
        interactions["user_id"].astype(int).isin(cold)
    ).sum()
    # the same seed draws the same customers
    assert holdout.split_files(USERS, SHOES, interactions, 0.2, 0.34, seed=1)[2].tolist() == cold.tolist()
    # without cold customers, user 1 (8 events, 2 held out): the re-purchase of 10, bought in
    # training, is not relevant; the wishlisted 19 is
    train, test, _ = holdout.split_files(USERS, SHOES, interactions, 0.2, 0.0, seed=1)
    assert holdout.relevant_items(train, test) == {1: {19}}


def test_split_refuses_unknown_ids_and_bad_shares():
    interactions = _frame("user_id,shoe_id,interaction_type,timestamp\n9,10,view,2025-01-01T00:00:00Z\n")
    with pytest.raises(ValueError, match="unknown user"):
        holdout.split_files(USERS, SHOES, interactions)
    with pytest.raises(ValueError, match="test_share"):
        holdout.split_files(USERS, SHOES, interactions, test_share=1.0)


@pytest.fixture(scope="module")
def checks(tmp_path_factory) -> dict[str, dict]:
    """The hold-out check of each profile, and its training rows rebuilt as of today."""
    results = {}
    for profile in PROFILES:
        root = tmp_path_factory.mktemp(profile)
        if profile == "demo":
            data_dir = BUNDLED_DATA_DIR
        else:
            data_dir = root / "source"
            generate(data_dir, profile=profile, progress=False)
        result = holdout.run(data_dir, db=root / "last.duckdb", keep_dir=root / "train")
        result["today"], _ = holdout.build_recommendations(root / "today.duckdb", root / "train", "today")
        seconds = result["build"]["seconds"]
        print(f"\n{profile} (reference date {result['reference_date']}, build {seconds:.0f} s):")
        print(result["table"])
        results[profile] = result
    return results


def _ndcg(result: dict, model: str, group: str) -> float:
    [row] = [row for row in result["rows"] if row["model"] == model and row["group"] == group]
    return row["ndcg"]


@pytest.mark.parametrize("profile", PROFILES)
def test_enough_customers_are_evaluated(checks, profile):
    groups = checks[profile]["groups"]
    assert len(groups["warm"]) >= MIN_WARM
    assert len(groups["cold"]) >= MIN_COLD


@pytest.mark.parametrize("profile", PROFILES)
def test_ours_is_at_least_the_best_peer_on_warm_customers(checks, profile):
    result = checks[profile]
    peer_ndcg = {
        row["model"]: row["ndcg"]
        for row in result["rows"]
        if row["group"] == "warm" and row["model"] != "ours"
    }
    assert set(peer_ndcg) == set(holdout.PEER_OPTIONS), "every peer must run (is implicit installed?)"
    best = max(peer_ndcg, key=peer_ndcg.get)
    assert _ndcg(result, "ours", "warm") >= peer_ndcg[best], result["table"]


@pytest.mark.parametrize("profile", PROFILES)
def test_ours_is_at_least_popularity_on_cold_customers(checks, profile):
    result = checks[profile]
    assert _ndcg(result, "ours", "cold") >= _ndcg(result, "popularity", "cold"), result["table"]


@pytest.mark.parametrize("profile", PROFILES)
def test_old_data_viewed_as_of_today_gets_the_same_recommendations(checks, profile):
    last, today = checks[profile]["lists"]["ours"], checks[profile]["today"]
    customers = set(last) | set(today)
    same = sum(last.get(user) == today.get(user) for user in customers)
    assert customers
    print(f"\n{profile}: {same} of {len(customers)} customers keep their top 10 as of today")
    assert same / len(customers) >= SAME_LISTS_SHARE, (
        f"{same} of {len(customers)} customers keep their top 10"
    )
