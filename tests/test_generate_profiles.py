"""The real-log profile of the generator: data shaped like a public interaction log, not like the demo.

One run at the profile's default size (about 950 users, 1,700 shoes, 100k events; well under a
second) is shared by the module; each test checks one property of its shape, and the last ones
show that the signal is the one a real log has: collaborative, with weak side information.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from scripts.db import Database
from scripts.generate_data import INTERACTION_TYPES, PROFILES, generate, main
from scripts.load import load
from scripts.schema import create_schema

FILES = ("users.csv", "shoes.csv", "interactions.csv")
REAL_LOG = PROFILES["real-log"]
END = pd.Timestamp("2026-06-30 23:59:59", tz="UTC")
WEEK = pd.Timedelta(days=7)


@pytest.fixture(scope="module")
def real_log_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real_log")
    assert main(["--profile", "real-log", "--out", str(folder), "--no-progress"]) == 0
    return folder


@pytest.fixture(scope="module")
def real_log(real_log_dir):
    """(users, shoes, interactions) frames of the run, with parsed timestamps."""
    users = pd.read_csv(real_log_dir / "users.csv", dtype={"age": "Int64"}, keep_default_na=False)
    shoes = pd.read_csv(real_log_dir / "shoes.csv")
    interactions = pd.read_csv(real_log_dir / "interactions.csv")
    interactions["occurred_at"] = pd.to_datetime(interactions.timestamp, utc=True)
    return users, shoes, interactions


# ------------------------------------------------------------------------------------------------
# Sizes, contract, reproducibility
# ------------------------------------------------------------------------------------------------


def test_row_counts_near_the_profile_defaults(real_log):
    users, shoes, interactions = real_log
    assert len(users) == REAL_LOG.users == 950
    assert len(shoes) == REAL_LOG.shoes == 1700
    assert 95_000 <= len(interactions) <= 105_000
    # 7 months ending on the demo's end date
    assert interactions.occurred_at.max() <= END
    assert interactions.occurred_at.min() >= pd.Timestamp("2025-12-01", tz="UTC")
    assert interactions.occurred_at.dt.strftime("%Y-%m").nunique() == 7


def test_columns_are_the_demo_contract(real_log_dir):
    for name in FILES:
        header = (real_log_dir / name).read_text(encoding="utf-8").split("\n", 1)[0]
        assert (
            header
            == {
                "users.csv": "user_id,age,gender,primary_usage",
                "shoes.csv": "shoe_id,name,brand,type,material,color,price,care_instructions,lifespan_days",
                "interactions.csv": "user_id,shoe_id,interaction_type,timestamp",
            }[name]
        )


def test_files_load_with_the_loader(real_log_dir, tmp_path):
    with Database(str(tmp_path / "real_log.duckdb")) as db:
        create_schema(db)
        summary = load(db, real_log_dir)
        assert summary.rows_rejected == 0
        n_lines = len((real_log_dir / "interactions.csv").read_text(encoding="utf-8").splitlines())
        assert db.query_df("select count(*) as n from interactions").n.iloc[0] == n_lines - 1


def test_defaults_write_the_same_bytes_as_ever(real_log_dir):
    # no bundled copy (100k lines): the SHA-256 of each file the profile has always written at its
    # defaults, so that a change to the generator that moves one byte is seen
    expected = {
        "users.csv": "108bbaaa60191862d1b2ec1854c77b4f42c4d04a2e5094dfd831988033a04661",
        "shoes.csv": "59972201fc981d541858e9a32bd2a2d45a9c2aed5485bdeaf026b258c884adde",
        "interactions.csv": "6239b4cc4d8576348196abe47075d01acbba1a24bd17bcfebcfa2ac87e7dcbbf",
        "contacts.csv": "9e0eb3785712b93581b9c8eee3289df251d0c1dbd6c270cb4500c8310f0d25a9",
    }
    for name, digest in expected.items():
        assert hashlib.sha256((real_log_dir / name).read_bytes()).hexdigest() == digest, name


def test_same_seed_same_bytes_other_seed_other_bytes(real_log_dir, tmp_path):
    generate(tmp_path / "again", profile="real-log", progress=False)
    generate(tmp_path / "other", profile="real-log", seed=43, progress=False)
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (real_log_dir / name).read_bytes(), name
        assert (tmp_path / "other" / name).read_bytes() != (real_log_dir / name).read_bytes(), name


def test_options_override_the_profile_defaults(tmp_path):
    counts = generate(
        tmp_path, profile="real-log", users=300, shoes=200, interactions=6000, months=3, progress=False
    )
    assert (counts["users"], counts["shoes"]) == (300, 200)
    assert 0.9 * 6000 <= counts["interactions"] <= 1.1 * 6000
    at = pd.to_datetime(pd.read_csv(tmp_path / "interactions.csv").timestamp, utc=True)
    assert at.min() >= pd.Timestamp("2026-04-01", tz="UTC") and at.max() <= END


def test_unknown_profile_is_refused(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        generate(tmp_path, profile="nope", progress=False)
    with pytest.raises(SystemExit):
        main(["--profile", "nope", "--out", str(tmp_path)])


# ------------------------------------------------------------------------------------------------
# The shape of a real log
# ------------------------------------------------------------------------------------------------


def test_mostly_one_event_per_user_and_shoe(real_log):
    _, _, interactions = real_log
    per_pair = interactions.groupby(["user_id", "shoe_id"]).size()
    assert (per_pair == 1).mean() >= 0.95
    assert (per_pair > 1).any()  # a few pairs have a view before the wishlist or purchase


def test_activity_is_heavy_tailed(real_log):
    users, _, interactions = real_log
    per_user = interactions.groupby("user_id").size()
    assert per_user.median() < 60
    assert (per_user < 20).mean() >= 0.15  # many short histories
    assert 300 <= per_user.max() <= 1000  # a few with several hundred
    cold = 1 - len(per_user) / len(users)
    assert 0.005 <= cold <= 0.04  # about 2% without any event; everyone else has at least one


def test_popularity_is_concentrated_with_a_long_tail(real_log):
    users, shoes, interactions = real_log
    reach = interactions.groupby("shoe_id").user_id.nunique().reindex(shoes.shoe_id, fill_value=0)
    share = reach / len(users)
    assert 0.3 < share.max() < 0.8  # the top shoe reaches about half the users
    assert share.median() < 0.10  # the median shoe a few percent
    assert ((reach >= 1) & (reach <= 3)).sum() >= 0.03 * len(shoes)  # a tail of shoes nearly nobody saw


def _share_in_two_weeks(times: np.ndarray) -> float:
    """Largest share of sorted ``times`` (seconds) inside two windows of 7 days (greedy)."""
    inside = 0
    for _ in range(2):
        if len(times) == 0:
            break
        ends = np.searchsorted(times, times + 7 * 86_400, side="right")
        best = int(np.argmax(ends - np.arange(len(times))))
        inside += ends[best] - best
        times = np.concatenate((times[:best], times[ends[best] :]))
    return inside


def test_customers_are_active_in_one_or_two_bursts(real_log):
    _, _, interactions = real_log
    seconds = interactions.occurred_at.astype("int64") // 10**9
    in_bursts = [
        _share_in_two_weeks(np.sort(times.to_numpy())) / len(times)
        for _, times in seconds.groupby(interactions.user_id)
    ]
    assert (np.array(in_bursts) >= 0.9).mean() >= 0.8
    # ... at random points of the window, not all at its start or end
    first = interactions.groupby("user_id").occurred_at.min()
    start = interactions.occurred_at.min()
    assert 0.2 <= (first < start + (END - start) / 3).mean() <= 0.6


def test_types_near_the_target_shares_and_following_taste(real_log):
    _, _, interactions = real_log
    share = interactions.interaction_type.value_counts(normalize=True)
    for name, target in zip(INTERACTION_TYPES, (0.45, 0.30, 0.25), strict=True):
        assert abs(share[name] - target) <= 0.03, name
    # a shoe its buyers like: of the users who touched a shoe, the share who bought it varies by
    # shoe far more than independent types would make it vary
    per_shoe = interactions.assign(bought=interactions.interaction_type == "purchase").groupby("shoe_id")
    touched = per_shoe.size()
    bought = per_shoe.bought.mean()[touched >= 50]
    binomial_sd = np.sqrt(0.25 * 0.75 / touched[touched >= 50]).mean()
    assert bought.std() >= 2 * binomial_sd


def test_shoes_appear_over_time(real_log):
    _, _, interactions = real_log
    start = interactions.occurred_at.min()
    first = interactions.groupby("shoe_id").occurred_at.min()
    reach = interactions.groupby("shoe_id").user_id.nunique()
    late = first > start + pd.Timedelta(days=30)
    assert (late & (reach >= 30)).sum() >= 20  # popular shoes nobody touched in the first month
    third = (END - start) / 3
    early_top = interactions[interactions.occurred_at < start + third].shoe_id.value_counts().index[:20]
    late_top = interactions[interactions.occurred_at > END - third].shoe_id.value_counts().index[:20]
    assert len(set(early_top) & set(late_top)) <= 15  # popularity drifts


# ------------------------------------------------------------------------------------------------
# The signal: collaborative, with weak demographics and content
# ------------------------------------------------------------------------------------------------


def recall_at_10_of_simple_recommenders(
    users: pd.DataFrame, shoes: pd.DataFrame, interactions: pd.DataFrame
) -> dict[str, float]:
    """Recall@10 of simple recommenders on a per-user time split (last 20% of each history).

    Users with >= 20 events are tested; everyone's earlier events train. Recall@10 is the share of
    a user's held-out shoes among its top 10 (out of at most 10), averaged over users.
    """
    events = interactions.sort_values(["user_id", "occurred_at", "shoe_id"], kind="stable")
    position = events.groupby("user_id").cumcount()
    size = events.groupby("user_id").user_id.transform("size")
    held_out = (size >= 20) & (position >= np.floor(0.8 * size))
    user_ids = np.sort(events.user_id.unique())
    row = np.searchsorted(user_ids, events.user_id.to_numpy())
    col = np.searchsorted(shoes.shoe_id.to_numpy(), events.shoe_id.to_numpy())
    train = np.zeros((len(user_ids), len(shoes)))
    train[row[~held_out], col[~held_out]] = 1.0
    test = np.zeros_like(train)
    test[row[held_out], col[held_out]] = 1.0
    test[train > 0] = 0.0  # only shoes new to the user count
    tested = test.sum(axis=1) > 0

    # item-item co-occurrence, cosine-normalised
    counts = train.sum(axis=0)
    norm = np.sqrt(np.maximum(counts, 1.0))
    cooc = (train.T @ train) / norm[:, None] / norm[None, :]
    np.fill_diagonal(cooc, 0.0)
    # segment popularity: usage x gender of the user
    people = users.set_index("user_id").loc[user_ids]
    segment = pd.factorize(people.primary_usage + "/" + people.gender.astype(str))[0]
    segment_counts = np.stack([train[segment == s].sum(axis=0) for s in range(segment.max() + 1)])
    # content: the user's profile over brand, type, material and colour, cosine with each shoe's
    attributes = pd.get_dummies(shoes[["brand", "type", "material", "color"]]).to_numpy(float)
    attributes /= np.linalg.norm(attributes, axis=1, keepdims=True)
    scores = {
        "cooccurrence": train @ cooc,
        "popularity": np.broadcast_to(counts, train.shape).copy(),
        "segment": segment_counts[segment] + 1e-3 * counts,  # ties broken by global popularity
        "content": (train @ attributes) @ attributes.T + 1e-6 * counts,
    }
    result = {}
    for name, score in scores.items():
        score = np.where(train > 0, -np.inf, score)[tested]
        top = np.argpartition(-score, 10, axis=1)[:, :10]
        hits = np.take_along_axis(test[tested], top, axis=1).sum(axis=1)
        result[name] = float(np.mean(hits / np.minimum(test[tested].sum(axis=1), 10)))
    result["users"] = int(tested.sum())
    return result


@pytest.fixture(scope="module")
def recall_at_10(real_log):
    return recall_at_10_of_simple_recommenders(*real_log)


def test_collaborative_filtering_beats_popularity_clearly(recall_at_10):
    assert recall_at_10["users"] >= 500
    assert recall_at_10["cooccurrence"] >= 1.2 * recall_at_10["popularity"]
    assert recall_at_10["cooccurrence"] >= recall_at_10["popularity"] + 0.04


def test_demographics_and_content_are_weak(recall_at_10):
    # segment popularity within a small margin of global popularity, as on the real log
    assert abs(recall_at_10["segment"] - recall_at_10["popularity"]) <= 0.03
    # content alone clearly worse than collaborative filtering
    assert recall_at_10["content"] <= recall_at_10["cooccurrence"] - 0.05
