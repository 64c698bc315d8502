"""Offline evaluation: does the hybrid beat its parts, the popular baseline and real peers?

    python -m scripts.evaluate [--db ...] [--protocol user|time] [--k 10] [--ks 5,10,20]
                               [--test-share 0.2] [--cold-share 0.1] [--no-tune] [--peers]

Two protocols split the interactions into training and test:

  user (default)  per customer in time: each customer's last --test-share of events is held out,
                  and a random --cold-share of the customers is held out entirely (the cold
                  customers: no history at all in training). This fits real logs, where most
                  customers are active in one or two bursts at different times.
  time            one global cut-off: training up to the day at (1 - --test-share) of the span,
                  test after it (cold = customers without training history).

The wishlists and purchases held out (--relevant) are what each customer should have been shown;
shoes bought in training are never shown, so they never count. Every model recommends on the same
split with the same exclusions:

  popularity          the shoes most customers interacted with (count of customers)
  segment_popularity  the hybrid's cold-start prior alone (segment -> usage, gender, age -> all)
  svd, ease, knn      each collaborative component alone (PureSVD, EASE, item-kNN)
  cf                  the blended collaborative part alone
  content             TF-IDF alone (no list for a cold customer: no profile)
  hybrid              what scripts.score publishes

With --peers, peers fitted on the same training rows join the table (popularity, PureSVD with 32
factors, EASE with lambda 300, implicit's ALS with 64 factors and BM25 item-kNN), so anyone can see
where the hybrid stands. Every mean comes with a 95% bootstrap interval over customers, and the
number of customers of each group is printed and stored.

Training data comes from the views themselves: inside a transaction that is rolled back, the held-out
events are deleted (and, for the time protocol, the reference date set to the cut-off), so
`interaction_matrix` holds only what training may see. Before testing, the parameters are tuned on a
validation split carved from the training rows with the same protocol (cold-start parameters on
every training customer in turn held out as cold, in folds); a group with fewer than --min-users
validation customers keeps its defaults, and among the values within one standard error of the best
(a paired bootstrap interval over the validation customers) the simplest is kept, the first of its
grid. The chosen values are stored (table tuned_parameters;
the decay half-life in settings) and become what scripts.score uses by default. Results go to
evaluation_runs / evaluations (view model_evaluations) and stdout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

from scripts import model, peers
from scripts.cli import base_parser, reports_database_errors, setup_logging
from scripts.clock import utc_now
from scripts.db import Database, require_built
from scripts.metrics import (
    METRICS,
    bootstrap_interval,
    catalog_coverage,
    paired_bootstrap_interval,
    per_user_metric,
)
from scripts.score import (
    Inputs,
    exclusions,
    fit_model,
    params_from,
    popularity_votes,
    read_inputs,
    segment_features,
    stored_params,
)

log = logging.getLogger(__name__)

PROTOCOLS = ("user", "time")
MODELS = ("popularity", "segment_popularity", "svd", "ease", "knn", "cf", "content", "hybrid")
# what each model is, for the report and the dashboard
MODEL_NAMES = {
    "popularity": "popularity (count of customers)",
    "segment_popularity": "segment popularity (shrunk prior)",
    "svd": "PureSVD (ours)",
    "ease": "EASE (ours)",
    "knn": "item-kNN (ours)",
    "cf": "CF blend",
    "content": "content (TF-IDF)",
    "hybrid": "hybrid",
    "peer_popularity": "peer: popularity",
    "peer_puresvd": "peer: PureSVD, 32 factors",
    "peer_ease": "peer: EASE, lambda 300",
    "peer_als": "peer: implicit ALS, 64 factors",
    "peer_bm25_knn": "peer: implicit BM25 item-kNN",
}
PEER_OPTIONS = {
    "puresvd": {"factors": 32},
    "ease": {"lam": 300.0},
    "als": {"factors": 64},
    "bm25_knn": {"K": 100},
}
GROUPS = ("warm", "cold", "all")
# what the hybrid is judged against (the report and the dashboard): popularity and every peer
BASELINE_MODELS = ("popularity", *(f"peer_{name}" for name in peers.PEERS))
# models with nothing for a customer without history (their "all" rows count those customers as misses)
NO_COLD_START = ("svd", "ease", "knn", "cf", "content")
METRICS_WRITTEN = (*METRICS, "coverage", "cold_item_share")
DEFAULT_RELEVANT = ("add_to_wishlist", "purchase")
MIN_VALIDATION_USERS = 200
# customers evaluated at most (a seeded sample beyond): tuning fits dozens of settings, the test 8 models
MAX_TUNING_USERS = 5_000
MAX_TEST_USERS = 20_000
# a simpler value is kept when it is within one standard error of the best (paired, over customers)
SIMPLER_WITHIN = 0.683
COLD_FOLDS = 5
# The grids, searched one parameter at a time from the current values (two passes), each ordered
# simplest first: the simplest value within one standard error of the best is kept. Cold-start
# parameters are tuned on cold customers, the rest on warm ones.
COLD_GRID: dict[str, tuple] = {
    "popularity_votes": ("strength", "positive"),
    "vote_exponent": (1.0, 0.5, 0.0),
    "segment_prior_users": (1000.0, 100.0, 30.0, 10.0, 3.0),
    "feature_prior_users": (1000.0, 100.0, 30.0, 10.0, 3.0),
    "popularity_blend": (1.0, 0.75, 0.5),
}
WARM_GRID: dict[str, tuple] = {
    "exclude_seen": (False, True),
    "half_life_days": (36500.0, 365.0, 180.0, 60.0),
    "factors": (16, 32, 64, 128),
    "ease_weight": (0.0, 1.0, 2.0),
    "svd_weight": (0.0, 1.0),
    "knn_weight": (0.0, 1.0),
    "ease_l2": (1.0, 0.25, 0.5, 2.0, 4.0),
    "knn_neighbours": (100, 30, 300),
    "cf_k": (0.0, 1.0, 3.0, 10.0, 30.0),
    "prior_k": (0.0, 3.0, 10.0, 30.0),
}
DEFAULT_GRID: dict[str, tuple] = {**COLD_GRID, **WARM_GRID}
# parameters that change nothing while another one is 0
_INERT_WHEN = {"ease_l2": "ease_weight", "knn_neighbours": "knn_weight", "factors": "svd_weight"}
# parameters that only re-weigh a fitted model (no refit)
_REWEIGHT = ("cf_k", "prior_k", "exclude_seen")
MODEL_PARAMS = (
    "factors",
    "svd_iterations",
    "cf_k",
    "prior_k",
    "field_weights",
    "popularity_blend",
    "segment_prior_users",
    "feature_prior_users",
    "vote_exponent",
    "popularity_votes",
    "svd_weight",
    "ease_weight",
    "knn_weight",
    "ease_l2",
    "knn_neighbours",
    "exclude_seen",
    "seed",
)


# ---------------------------------------------------------------------------------------------
# The split
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Split:
    """Training inputs and the relevant (user, shoe) pairs held out from them."""

    protocol: str
    cutoff: dt.date  # last training day (user protocol: the newest training event's day)
    inputs: Inputs
    relevant: dict[int, set[int]]  # user position -> shoe positions
    n_test_interactions: int
    cold_users: frozenset[int] = frozenset()  # positions held out entirely (user protocol)

    def groups(self) -> dict[str, np.ndarray]:
        """User positions with relevant pairs: warm (training history), cold (none) and all."""
        users = np.array(sorted(self.relevant), dtype=np.int64)
        history = np.diff(self.inputs.strength.indptr)[users] > 0
        return {"warm": users[history], "cold": users[~history], "all": users}

    def sampled(self, max_users: int, random_state: int) -> Split:
        """The same split with at most ``max_users`` evaluated customers (a seeded sample of each group)."""
        groups = self.groups()
        if len(groups["all"]) <= max_users:
            return self
        rng = np.random.default_rng(random_state)
        share = max_users / len(groups["all"])
        kept = [
            rng.choice(members, int(round(share * len(members))), replace=False)
            for members in (groups["warm"], groups["cold"])
        ]
        keep = set(np.concatenate(kept).tolist())
        log.info("evaluating a sample of %d of %d customers", len(keep), len(groups["all"]))
        return dataclasses.replace(self, relevant={u: s for u, s in self.relevant.items() if u in keep})


def time_span(db: Database) -> tuple[dt.datetime, dt.datetime]:
    first, last = db.query("select min(occurred_at), max(occurred_at) from interactions")[0]
    if first is None:
        raise ValueError("there are no interactions to evaluate on")
    return first, last


def cutoff_date(first: dt.datetime, last: dt.datetime, test_share: float) -> dt.date:
    """The last training day: the day at (1 - test_share) of the span from first to last."""
    return (first + (last - first) * (1 - test_share)).date()


def read_events(db: Database) -> pd.DataFrame:
    """Every interaction the views count (up to the end of the reference date), in time order per user."""
    return db.query_df(
        "select user_id, shoe_id, interaction_type, occurred_at from interactions"
        " where occurred_at < (select cast(reference_date + 1 as timestamp) from current_settings)"
        " order by user_id, occurred_at, shoe_id, interaction_type"
    )


def holdout(
    events: pd.DataFrame, test_share: float, cold_share: float, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """The per-customer protocol: which events are held out, and which customers are cold.

    Each customer's last ``round(test_share * n)`` events (of n, in time order as given) are held
    out; ``round(cold_share * customers)`` customers drawn at random have all their events held out.

    Parameters
    ----------
    events : DataFrame with user_id, sorted by user and time
    test_share, cold_share : float in [0, 1)
    random_state : int

    Returns
    -------
    held_out : ndarray of bool, one per event
    cold_users : ndarray of user ids held out entirely (sorted)
    """
    users = events["user_id"].to_numpy(np.int64)
    if len(users) == 0:
        return np.zeros(0, bool), np.zeros(0, np.int64)
    customers = np.unique(users)
    # the cold customers: a seeded random share of everyone with events
    rng = np.random.default_rng(random_state)
    n_cold = int(math.floor(cold_share * len(customers) + 0.5))
    cold = np.sort(rng.choice(customers, n_cold, replace=False)) if n_cold else np.zeros(0, np.int64)
    # position of each event in its customer's history, and the history's length
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    lengths = np.diff(np.r_[starts, len(users)])
    position = np.arange(len(users)) - np.repeat(starts, lengths)
    length = np.repeat(lengths, lengths)
    held_count = np.floor(test_share * length + 0.5)
    held_out = (position >= length - held_count) | np.isin(users, cold)
    return held_out, cold


def inputs_without(db: Database, removed: pd.DataFrame, half_life_days: float | None = None) -> Inputs:
    """The model's inputs as the views see them without the ``removed`` events (rolled back after)."""
    with db.transaction(rollback=True):
        if half_life_days is not None:
            db.execute("update settings set half_life_days = ?", [half_life_days])
        if len(removed):
            db.execute(
                "create temporary table evaluation_held_out"
                " (user_id bigint, shoe_id bigint, interaction_type text, occurred_at timestamp)"
            )
            db.insert_df(
                "evaluation_held_out", removed[["user_id", "shoe_id", "interaction_type", "occurred_at"]]
            )
            db.execute(
                "delete from interactions where exists (select 1 from evaluation_held_out as held"
                " where held.user_id = interactions.user_id and held.shoe_id = interactions.shoe_id"
                " and held.interaction_type = interactions.interaction_type"
                " and held.occurred_at = interactions.occurred_at)"
            )
        return read_inputs(db)


def inputs_as_of(db: Database, cutoff: dt.date, half_life_days: float | None = None) -> Inputs:
    """The model's inputs as the views saw them at the end of ``cutoff`` (nothing later).

    The reference date (and the half-life, if given) are set inside a transaction that is always
    rolled back: the database is left exactly as it was.
    """
    with db.transaction(rollback=True):
        db.execute("update settings set reference_date = ?", [cutoff])
        if half_life_days is not None:
            db.execute("update settings set half_life_days = ?", [half_life_days])
        inputs = read_inputs(db)
        latest = db.scalar("select max(last_interaction_at) from interaction_matrix")
    # no leak: the training matrix ends with the cut-off day
    if latest is not None and latest >= dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time()):
        raise AssertionError(f"training data reaches {latest}, after the cut-off {cutoff}")
    return inputs


def relevant_pairs(inputs: Inputs, test: pd.DataFrame, relevant_types: Sequence[str]) -> dict[int, set[int]]:
    """User position -> shoe positions of the test events of a relevant type, minus shoes bought in training."""
    test = test[test["interaction_type"].isin(list(relevant_types))]
    users = np.searchsorted(inputs.user_ids, test["user_id"].to_numpy(np.int64))
    shoes = np.searchsorted(inputs.shoe_ids, test["shoe_id"].to_numpy(np.int64))
    # what the product may not recommend (bought in training) can't count as a miss either
    bought = inputs.purchased.tocsr()
    relevant: dict[int, set[int]] = {}
    for user, shoe in zip(users.tolist(), shoes.tolist(), strict=True):
        if bought[user, shoe] == 0:
            relevant.setdefault(user, set()).add(shoe)
    return relevant


def user_split(
    db: Database,
    events: pd.DataFrame,
    relevant_types: Sequence[str],
    test_share: float,
    cold_share: float,
    random_state: int,
    half_life_days: float | None = None,
) -> Split:
    """The per-customer protocol on ``events`` (all of them, or training rows for a validation split)."""
    held_out, cold = holdout(events, test_share, cold_share, random_state)
    all_events = read_events(db)
    # what the views must not see: the held-out events, plus every event not in `events` at all
    keep = events[~held_out]
    removed = _anti_join(all_events, keep)
    inputs = inputs_without(db, removed, half_life_days)
    test = events[held_out]
    relevant = relevant_pairs(inputs, test, relevant_types)
    cold_positions = frozenset(np.searchsorted(inputs.user_ids, cold).tolist())
    newest = keep["occurred_at"].max() if len(keep) else None
    cutoff = newest.date() if newest is not None and not pd.isna(newest) else dt.date.today()
    return Split("user", cutoff, inputs, relevant, len(test), cold_positions)


def _anti_join(events: pd.DataFrame, keep: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``events`` that are not in ``keep`` (by every column)."""
    key = ["user_id", "shoe_id", "interaction_type", "occurred_at"]
    merged = events[key].merge(keep[key].drop_duplicates(), on=key, how="left", indicator=True)
    return merged.loc[merged["_merge"] == "left_only", key]


def make_split(
    db: Database,
    cutoff: dt.date,
    until: dt.datetime | None,
    relevant_types: Sequence[str],
    half_life_days: float | None = None,
) -> Split:
    """The time protocol: training as of the end of ``cutoff``; relevant pairs from the next day up to ``until``."""
    inputs = inputs_as_of(db, cutoff, half_life_days)
    start = dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time())
    marks = ", ".join("?" for _ in relevant_types)
    sql = (
        "select user_id, shoe_id, interaction_type from interactions"
        f" where occurred_at >= ? and interaction_type in ({marks})"
    )
    params: list[Any] = [start, *relevant_types]
    if until is not None:
        sql += " and occurred_at < ?"
        params.append(until)
    test = db.query_df(sql, params)
    return Split("time", cutoff, inputs, relevant_pairs(inputs, test, relevant_types), len(test))


# ---------------------------------------------------------------------------------------------
# Recommending on a split
# ---------------------------------------------------------------------------------------------

# CF-only and content-only variants of the fitted hybrid, and each CF component alone
_VARIANTS: dict[str, dict[str, Any]] = {
    "cf": {"cf_k": 0.0},
    "content": {"cf_k": math.inf, "prior_k": 0.0},
    "hybrid": {},
}
_COMPONENTS = {
    "svd": {"svd_weight": 1.0, "ease_weight": 0.0, "knn_weight": 0.0},
    "ease": {"svd_weight": 0.0, "ease_weight": 1.0, "knn_weight": 0.0},
    "knn": {"svd_weight": 0.0, "ease_weight": 0.0, "knn_weight": 1.0},
}


def recommend_lists(
    name: str,
    fitted: model.HybridModel,
    inputs: Inputs,
    users: np.ndarray,
    k: int,
    params: dict[str, Any],
) -> dict[int, list[int]]:
    """Top-k shoe positions per user position for one of :data:`MODELS` (``fitted`` is the hybrid)."""
    if len(users) == 0:
        return {}
    exclude = exclusions(inputs, params)[users]
    if name == "popularity":
        counts = peers.popularity_counts(inputs.strength).astype(np.float32)
        index, _ = model.top_n(np.repeat(counts[None, :], len(users), axis=0), k, exclude)
    elif name == "segment_popularity":
        prior = segment_prior(inputs, {**params, "popularity_blend": 1.0})
        index, _ = model.top_n(prior[inputs.user_segment[users]].copy(), k, exclude)
    else:
        if name in _COMPONENTS:
            fitted = fit_model(inputs, {**params, **_COMPONENTS[name]})
            name = "cf"
        recs = model.recommend(
            dataclasses.replace(fitted, **_VARIANTS[name]),
            inputs.strength[users],
            inputs.user_segment[users],
            k,
            exclude=exclude,
        )
        index = recs.index
        if name != "hybrid":
            # CF alone or content alone has nothing to offer a user without history
            has_history = np.diff(inputs.strength[users].indptr) > 0
            index = np.where(has_history[:, None], index, -1)
    return {int(user): [int(i) for i in row if i >= 0] for user, row in zip(users, index, strict=True)}


def peer_lists(
    name: str, inputs: Inputs, users: np.ndarray, k: int, params: Mapping[str, Any]
) -> dict[int, list[int]]:
    """Top-k of one of :data:`scripts.peers.PEERS`, fitted on the training matrix (as implicit feedback),
    with the hybrid's exclusions (bought shoes, or every shoe of the history with ``exclude_seen``)."""
    top = peers.peer_top_n(
        name,
        inputs.strength,
        users,
        k,
        exclude=exclusions(inputs, params),
        random_state=int(params["seed"]),
        **PEER_OPTIONS.get(name, {}),
    )
    return {int(user): [int(i) for i in row if i >= 0] for user, row in zip(users, top, strict=True)}


def segment_prior(inputs: Inputs, params: dict[str, Any], voters: np.ndarray | None = None) -> np.ndarray:
    """The cold-start score of every segment (what a customer without history gets).

    ``voters``, if given, is a boolean per user: only those vote (the cold-start folds leave the
    others out, as if they were new).
    """
    features = model.item_features(inputs.shoe_fields, params["field_weights"])
    votes = popularity_votes(inputs, params)
    if voters is not None:
        votes = sp.csr_matrix(sp.diags(np.asarray(voters, dtype=np.float32)) @ votes)
        votes.eliminate_zeros()
    popularity = model.segment_popularity(
        votes,
        inputs.user_segment,
        inputs.segments["usage_code"].to_numpy(),
        params["segment_prior_users"],
        segment_features=segment_features(inputs),
        feature_prior_users=params["feature_prior_users"],
        vote_exponent=params["vote_exponent"],
    )
    scores, _, _ = model.cold_start_scores(popularity, features, params["popularity_blend"])
    return scores


def metric_rows(
    name: str,
    lists: Mapping[int, list[int]],
    split: Split,
    groups: Mapping[str, np.ndarray],
    ks: Sequence[int],
    random_state: int = 0,
) -> list[dict[str, Any]]:
    """Rows (model, user_group, k, metric, value, ci_low, ci_high, n_users) of one model's lists."""
    n_shoes = len(split.inputs.shoe_ids)
    cold_items = np.asarray(split.inputs.strength.getnnz(axis=0) == 0)
    rows = []
    for group, members in groups.items():
        for k in ks:
            shown = [lists.get(int(u), [])[:k] for u in members]
            n_shown = sum(len(items) for items in shown)
            for metric in METRICS:
                values = per_user_metric(lists, split.relevant, members.tolist(), k, metric)
                low, high = bootstrap_interval(values, random_state=random_state)
                mean = float(values.mean()) if len(values) else float("nan")
                rows.append(_row(name, group, k, metric, mean, low, high, len(members)))
            coverage = catalog_coverage(shown, k, n_shoes) if len(members) else float("nan")
            cold_share = (
                sum(int(cold_items[i]) for items in shown for i in items) / n_shown
                if n_shown
                else float("nan")
            )
            rows.append(_row(name, group, k, "coverage", coverage, None, None, len(members)))
            rows.append(_row(name, group, k, "cold_item_share", cold_share, None, None, len(members)))
    return rows


def _row(model_name, group, k, metric, value, low, high, n_users) -> dict[str, Any]:
    return {
        "model": model_name,
        "user_group": group,
        "k": k,
        "metric": metric,
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "n_users": n_users,
    }


def evaluate_split(
    split: Split,
    params: dict[str, Any],
    ks: Sequence[int],
    models: Iterable[str] = MODELS,
    peer_names: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Metric rows for every model (and peer) on a split."""
    inputs = split.inputs
    groups = split.groups()
    users = groups["all"]
    fitted = fit_model(inputs, params)
    k_max = max(ks)
    rows = []
    for name in models:
        lists = recommend_lists(name, fitted, inputs, users, k_max, params)
        # a model without a cold start (CF or content alone) is not reported for cold customers
        model_groups = {g: m for g, m in groups.items() if g != "cold" or name not in NO_COLD_START}
        rows += metric_rows(name, lists, split, model_groups, ks)
    for name in peer_names:
        lists = peer_lists(name, inputs, users, k_max, params)
        # a peer other than popularity has nothing for a customer without history
        peer_groups = groups if name == "popularity" else {"warm": groups["warm"]}
        rows += metric_rows(f"peer_{name}", lists, split, peer_groups, ks)
    return rows


def ndcg_of(rows: list[dict[str, Any]], model_name: str, group: str, k: int) -> float:
    return next(
        r["value"]
        for r in rows
        if r["model"] == model_name and r["user_group"] == group and r["k"] == k and r["metric"] == "ndcg"
    )


# ---------------------------------------------------------------------------------------------
# Tuning on a validation split carved from the training rows
# ---------------------------------------------------------------------------------------------


def choose(
    candidates: Sequence[tuple[Any, np.ndarray]], confidence: float = SIMPLER_WITHIN, random_state: int = 0
) -> tuple[Any, float]:
    """The one-standard-error rule: the simplest candidate whose paired interval with the best holds 0.

    The interval is the paired bootstrap interval of ``mean(candidate - best)`` over the same
    customers, at ``confidence`` (0.683: one standard error, the classic rule for preferring the
    simpler model within the noise of the best).

    Parameters
    ----------
    candidates : sequence of (value, per-user metric array over the same users), simplest first
    confidence : float

    Returns
    -------
    (value, mean) of the chosen candidate.
    """
    means = [float(values.mean()) for _, values in candidates]
    best = int(np.argmax(means))
    for position, (value, values) in enumerate(candidates):
        if position == best:
            break
        _, high = paired_bootstrap_interval(
            values, candidates[best][1], confidence=confidence, random_state=random_state
        )
        if high >= 0:
            return value, means[position]
    return candidates[best][0], means[best]


def _ordered(name: str, grid: Sequence, current: Any) -> list:
    """The grid (simplest first), then the current value if the grid does not hold it."""
    return [*grid, *([] if current in grid else [current])]


def tune_cold(
    inputs: Inputs,
    params: dict[str, Any],
    k: int,
    relevant_types: Sequence[str],
    grid: Mapping[str, Sequence],
    folds: int = COLD_FOLDS,
    min_users: int = MIN_VALIDATION_USERS,
    passes: int = 2,
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Cold-start parameters: every training customer, in folds, held out as if new; NDCG@k of their lists.

    Returns the chosen parameters, the settings tried, and the number of validation customers.
    """
    relevant_matrix = _relevant_matrix(inputs, relevant_types)
    users = np.flatnonzero(np.diff(relevant_matrix.indptr) > 0)
    relevant = {int(u): set(relevant_matrix[u].indices.tolist()) for u in users}
    names = [name for name in grid if name in COLD_GRID]
    if len(users) < min_users or not names:
        if names:
            log.warning(
                "tuning: only %d cold validation customers (< %d): keeping the cold-start parameters %s",
                len(users),
                min_users,
                {name: params[name] for name in names},
            )
        return params, [], len(users)
    fold_of = np.random.default_rng(params["seed"]).integers(0, folds, len(users))
    history: list[dict[str, Any]] = []
    cache: dict[str, np.ndarray] = {}

    def per_user(candidate: dict[str, Any]) -> np.ndarray:
        key = json.dumps({name: candidate[name] for name in names}, sort_keys=True)
        if key not in cache:
            lists: dict[int, list[int]] = {}
            for fold in range(folds):
                members = users[fold_of == fold]
                # the fold's customers leave the training matrix: they are new to the model
                voters = np.ones(inputs.strength.shape[0], bool)
                voters[members] = False
                prior = segment_prior(inputs, candidate, voters)
                # a new customer's list is their segment's: one top-k per segment
                by_segment, _ = model.top_n(prior.copy(), k)
                index = by_segment[inputs.user_segment[members]]
                lists.update(
                    {int(u): [int(i) for i in row if i >= 0] for u, row in zip(members, index, strict=True)}
                )
            cache[key] = per_user_metric(lists, relevant, users.tolist(), k, "ndcg")
            history.append({"group": "cold", **json.loads(key), "ndcg": float(cache[key].mean())})
        return cache[key]

    best = dict(params)
    for _ in range(passes):
        for name in names:
            options = _ordered(name, grid[name], best[name])
            value, _ = choose([(v, per_user({**best, name: v})) for v in options])
            best[name] = value
    log.info(
        "tuned the cold start on %d customers held out in %d folds: %s -> NDCG@%d %.4f",
        len(users),
        folds,
        {name: best[name] for name in names},
        k,
        per_user(best).mean(),
    )
    return best, history, len(users)


def _relevant_matrix(inputs: Inputs, relevant_types: Sequence[str]) -> sp.csr_matrix:
    """Pairs of a relevant type in the inputs (purchase and/or wishlist; any interaction for view)."""
    parts = []
    if "purchase" in relevant_types:
        parts.append(inputs.purchased)
    if "add_to_wishlist" in relevant_types:
        parts.append(inputs.wishlisted)
    if "view" in relevant_types or not parts:
        parts.append(inputs.strength)
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    total = sp.csr_matrix(total)
    total.data[:] = 1
    total.eliminate_zeros()
    return total


def tune_warm(
    make: Callable[[float], Split],
    params: dict[str, Any],
    k: int,
    grid: Mapping[str, Sequence],
    min_users: int = MIN_VALIDATION_USERS,
    passes: int = 2,
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Warm parameters on the validation split (``make(half_life)`` builds it per half-life).

    Returns the chosen parameters, the settings tried, and the number of validation customers.
    """
    names = [name for name in grid if name in WARM_GRID]
    split = make(float(params["half_life_days"]))
    n_users = len(split.groups()["warm"])
    if n_users < min_users or not names:
        if names:
            log.warning(
                "tuning: only %d warm validation customers (< %d): keeping the parameters %s",
                n_users,
                min_users,
                {name: params[name] for name in names},
            )
        return params, [], n_users
    history: list[dict[str, Any]] = []
    fits: dict[str, model.HybridModel] = {}
    scores: dict[str, np.ndarray] = {}

    def per_user(candidate: dict[str, Any]) -> np.ndarray:
        key = json.dumps({name: candidate[name] for name in names}, sort_keys=True)
        if key not in scores:
            split = make(float(candidate["half_life_days"]))
            warm = split.groups()["warm"]
            # a refit only when something other than the blend changed
            fit_key = json.dumps({n: candidate[n] for n in names if n not in _REWEIGHT}, sort_keys=True)
            if fit_key not in fits:
                # keep the last two fits only: each holds shoes x shoes matrices
                while len(fits) >= 2:
                    fits.pop(next(iter(fits)))
                fits[fit_key] = fit_model(split.inputs, candidate)
            fitted = dataclasses.replace(
                fits[fit_key], cf_k=float(candidate["cf_k"]), prior_k=float(candidate["prior_k"])
            )
            lists = recommend_lists("hybrid", fitted, split.inputs, warm, k, candidate)
            scores[key] = per_user_metric(lists, split.relevant, warm.tolist(), k, "ndcg")
            history.append({"group": "warm", **json.loads(key), "ndcg": float(scores[key].mean())})
        return scores[key]

    best = dict(params)
    steps = passes * sum(len(grid[name]) for name in names)
    with tqdm(total=steps, desc="tuning", unit="setting", leave=False) as progress:
        for _ in range(passes):
            for name in names:
                inert = _INERT_WHEN.get(name)
                options = _ordered(name, grid[name], best[name])
                if inert and not best[inert]:
                    progress.update(len(grid[name]))
                    continue
                candidates = [{**best, name: v} for v in options]
                valid = [c for c in candidates if c["svd_weight"] + c["ease_weight"] + c["knn_weight"] > 0]
                value, _ = choose([(c[name], per_user(c)) for c in valid])
                best[name] = value
                progress.update(len(grid[name]))
    log.info(
        "tuned on %d warm validation customers: %s -> NDCG@%d %.4f",
        n_users,
        {name: best[name] for name in names},
        k,
        per_user(best).mean(),
    )
    return best, history, n_users


def store_tuned(db: Database, evaluation_id: int, params: dict[str, Any], names: Iterable[str]) -> None:
    """Make the tuned values the defaults: model parameters in tuned_parameters, half-life in settings."""
    now = utc_now()
    for name in names:
        if name == "half_life_days":
            db.execute("update settings set half_life_days = ?", [float(params[name])])
            continue
        db.execute("delete from tuned_parameters where parameter = ?", [name])
        db.execute(
            "insert into tuned_parameters (parameter, value, evaluation_id, tuned_at) values (?, ?, ?, ?)",
            [name, json.dumps(params[name]), evaluation_id, now],
        )


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def evaluate(
    db: Database,
    ks: Sequence[int] = (10,),
    test_share: float = 0.2,
    cutoff: dt.date | None = None,
    relevant_types: Sequence[str] = DEFAULT_RELEVANT,
    do_tune: bool = True,
    store: bool = True,
    grid: Mapping[str, Sequence] = DEFAULT_GRID,
    protocol: str = "user",
    cold_share: float = 0.1,
    with_peers: bool = False,
    min_users: int = MIN_VALIDATION_USERS,
) -> dict[str, Any]:
    """Split, tune (optionally), evaluate every model, write the results; returns a summary."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
    started_at = utc_now()
    clock = time.perf_counter()
    first, last = time_span(db)
    current_half_life = float(db.scalar("select half_life_days from settings"))
    params = {**params_from(stored_params(db)), "half_life_days": current_half_life}
    seed = int(params["seed"])
    history: list[dict[str, Any]] = []
    validation_users = {"warm": 0, "cold": 0}

    if protocol == "user":
        events = read_events(db)
        held_out, _ = holdout(events, test_share, cold_share, seed)
        training_events = events[~held_out]

        test_cache: dict[float, Split] = {}

        def make_test(half_life: float) -> Split:
            if half_life not in test_cache:
                test_cache[half_life] = user_split(
                    db, events, relevant_types, test_share, cold_share, seed, half_life
                )
            return test_cache[half_life]

        validation_cache: dict[float, Split] = {}

        def make_validation(half_life: float) -> Split:
            if half_life not in validation_cache:
                validation_cache[half_life] = user_split(
                    db, training_events, relevant_types, test_share, cold_share, seed + 1, half_life
                ).sampled(MAX_TUNING_USERS, seed)
            return validation_cache[half_life]

        training_inputs = lambda half_life: make_test(half_life).inputs  # noqa: E731
    else:
        cutoff = cutoff or cutoff_date(first, last, test_share)
        training_end = dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time())
        validation_cutoff = cutoff_date(first, training_end, test_share)

        def make_test(half_life: float) -> Split:
            return make_split(db, cutoff, None, relevant_types, half_life)

        validation_cache = {}

        def make_validation(half_life: float) -> Split:
            if half_life not in validation_cache:
                validation_cache[half_life] = make_split(
                    db, validation_cutoff, training_end, relevant_types, half_life
                ).sampled(MAX_TUNING_USERS, seed)
            return validation_cache[half_life]

        training_inputs = lambda half_life: inputs_as_of(db, cutoff, half_life)  # noqa: E731

    if do_tune:
        # cold start first (on the training rows), then the warm side given it
        params, cold_history, validation_users["cold"] = tune_cold(
            training_inputs(float(params["half_life_days"])),
            params,
            max(ks),
            relevant_types,
            grid,
            min_users=min_users,
        )
        params, warm_history, validation_users["warm"] = tune_warm(
            make_validation, params, max(ks), grid, min_users=min_users
        )
        history = cold_history + warm_history
    split = make_test(float(params["half_life_days"])).sampled(MAX_TEST_USERS, seed)
    if not split.relevant:
        raise ValueError(f"no {' or '.join(relevant_types)} held out: nothing to evaluate")
    peer_names = peers.available_peers() if with_peers else ()
    rows = evaluate_split(split, params, ks, peer_names=peer_names)
    chosen = {name: params[name] for name in (*MODEL_PARAMS, "half_life_days")}
    groups = {group: len(members) for group, members in split.groups().items()}
    with db.transaction():
        evaluation_id = int(db.scalar("select coalesce(max(evaluation_id), 0) + 1 from evaluation_runs"))
        db.execute(
            "insert into evaluation_runs (evaluation_id, started_at, finished_at, cutoff_date, test_share,"
            " relevant_types, parameters, tuning, n_train_interactions, n_test_interactions, protocol,"
            " cold_share, n_validation_warm_users, n_validation_cold_users)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                evaluation_id,
                started_at,
                utc_now(),
                split.cutoff,
                test_share,
                ",".join(relevant_types),
                json.dumps(chosen, sort_keys=True),
                json.dumps(history),
                int(split.inputs.strength.nnz),
                split.n_test_interactions,
                protocol,
                cold_share if protocol == "user" else None,
                validation_users["warm"],
                validation_users["cold"],
            ],
        )
        frame = pd.DataFrame(rows)
        frame.insert(0, "evaluation_id", evaluation_id)
        db.insert_df("evaluations", frame)
        if do_tune and store:
            store_tuned(db, evaluation_id, params, grid)
    seconds = time.perf_counter() - clock
    log.info(
        "evaluation %d done in %.1f s (%s protocol: %d warm and %d cold test customers, %d test interactions)",
        evaluation_id,
        seconds,
        protocol,
        groups["warm"],
        groups["cold"],
        split.n_test_interactions,
    )
    return {
        "evaluation_id": evaluation_id,
        "protocol": protocol,
        "cutoff": split.cutoff,
        "parameters": chosen,
        "rows": rows,
        "groups": groups,
        "validation_users": validation_users,
        "seconds": seconds,
    }


def report(rows: list[dict[str, Any]], k: int) -> str:
    """A readable table: one line per user group and model, NDCG with its interval, then the other metrics."""
    frame = pd.DataFrame([r for r in rows if r["k"] == k])
    table = frame.pivot_table(index=["user_group", "model"], columns="metric", values="value", sort=False)
    users = frame.groupby(["user_group", "model"], sort=False)["n_users"].first()
    table.insert(0, "users", users)
    if "ci_low" in frame:
        ndcg = frame[frame["metric"] == "ndcg"].set_index(["user_group", "model"])
        table.insert(
            2,
            "ndcg 95% interval",
            [
                f"{ndcg.loc[key, 'ci_low']:.4f}-{ndcg.loc[key, 'ci_high']:.4f}"
                if key in ndcg.index and not pd.isna(ndcg.loc[key, "ci_low"])
                else ""
                for key in table.index
            ],
        )
    columns = ["users", "ndcg", "ndcg 95% interval", *[m for m in METRICS_WRITTEN if m != "ndcg"]]
    table = table[[c for c in columns if c in table.columns]]
    table.index = pd.MultiIndex.from_tuples(
        [(group, MODEL_NAMES.get(name, name)) for group, name in table.index], names=["group", "model"]
    )
    return table.to_string(float_format=lambda v: f"{v:.4f}")


def parse_ks(text: str) -> list[int]:
    values = sorted({int(part) for part in text.split(",") if part.strip()})
    if not values or values[0] < 1:
        raise ValueError("--ks: whole numbers >= 1, comma-separated")
    return values


@reports_database_errors
def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--protocol", choices=PROTOCOLS, default="user", help="how to split (default: user)")
    parser.add_argument("--k", type=int, default=10, help="the k of the printed table (default 10)")
    parser.add_argument("--ks", type=parse_ks, default=None, help="more cut-offs to compute, e.g. 5,10,20")
    parser.add_argument(
        "--test-share",
        type=float,
        default=0.2,
        help="user protocol: each customer's last share of events held out; time: the last share of the span (0.2)",
    )
    parser.add_argument(
        "--cold-share",
        type=float,
        default=0.1,
        help="user protocol: share of customers held out entirely (0.1)",
    )
    parser.add_argument(
        "--cutoff",
        type=dt.date.fromisoformat,
        default=None,
        help="time protocol: last training day (overrides --test-share)",
    )
    parser.add_argument(
        "--relevant",
        default=",".join(DEFAULT_RELEVANT),
        help="interaction types that count as relevant when held out (default add_to_wishlist,purchase)",
    )
    parser.add_argument(
        "--no-tune", action="store_true", help="evaluate the current parameters, tune nothing"
    )
    parser.add_argument(
        "--no-store", action="store_true", help="tune, but do not make the tuned values the defaults"
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also fit popularity, PureSVD, EASE, implicit ALS and BM25 item-kNN on the same split",
    )
    parser.add_argument(
        "--min-users",
        type=int,
        default=MIN_VALIDATION_USERS,
        help="a group with fewer validation customers keeps its default parameters (default 200)",
    )
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not 0 < args.test_share < 1:
        parser.error("--test-share must be between 0 and 1")
    if not 0 <= args.cold_share < 1:
        parser.error("--cold-share must be at least 0 and below 1")
    if args.cutoff is not None and args.protocol != "time":
        parser.error("--cutoff needs --protocol time")
    ks = sorted(set(args.ks or []) | {args.k})
    relevant = [part.strip() for part in args.relevant.split(",") if part.strip()]
    try:
        with Database(args.db, must_exist=True) as db:
            require_built(db)
            result = evaluate(
                db,
                ks=ks,
                test_share=args.test_share,
                cutoff=args.cutoff,
                relevant_types=relevant,
                do_tune=not args.no_tune,
                store=not args.no_store,
                protocol=args.protocol,
                cold_share=args.cold_share,
                with_peers=args.peers,
                min_users=args.min_users,
            )
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    groups = result["groups"]
    print(
        f"\nEvaluation {result['evaluation_id']} ({result['protocol']} protocol): {groups['warm']} warm and"
        f" {groups['cold']} cold test customers; tuned on {result['validation_users']['warm']} warm and"
        f" {result['validation_users']['cold']} cold validation customers; metrics at k={args.k}\n"
    )
    print(report(result["rows"], args.k))
    print(f"\nparameters: {json.dumps(result['parameters'], sort_keys=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
