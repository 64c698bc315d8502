"""Offline evaluation on a split in time: does the hybrid beat its parts and the popular baseline?

    python -m scripts.evaluate [--db ...] [--k 10] [--ks 5,10,20] [--test-share 0.2] [--no-tune]

Everything up to the end of the cut-off day is training; the wishlists and purchases after it are
what each user should have been shown (--relevant). Users with no training interaction are the
cold users, shoes with none the cold shoes. Five models recommend on the same split, with the same
exclusion the product uses (shoes bought in training are never shown):

  popularity          the most popular shoes overall
  segment_popularity  the most popular shoes in the user's segment (usage x gender x age band)
  cf                  truncated SVD alone (no list for a cold user: it has nothing to project)
  content             TF-IDF alone (no list for a cold user: it has no profile)
  hybrid              what scripts.score publishes

Training data comes from the views themselves: inside a transaction that is rolled back, the
reference date is set to the cut-off, so `interaction_matrix` holds (and decays) only what was
known then. Before testing, a small grid, searched one parameter at a time, tunes the hybrid on a
validation cut taken from the training period only (its last --test-share); the chosen values are
stored (table tuned_parameters; the decay half-life in settings) and become what scripts.score
uses by default. Results go to evaluation_runs / evaluations (view model_evaluations) and stdout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

from scripts import model
from scripts.cli import base_parser, setup_logging
from scripts.db import Database, DatabaseError
from scripts.metrics import METRICS, catalog_coverage, mean_metrics
from scripts.score import Inputs, fit_model, params_from, read_inputs, stored_params

log = logging.getLogger(__name__)

MODELS = ("popularity", "segment_popularity", "cf", "content", "hybrid")
GROUPS = ("warm", "cold", "all")
METRICS_WRITTEN = (*METRICS, "coverage", "cold_item_share")
DEFAULT_RELEVANT = ("add_to_wishlist", "purchase")
# The grid, searched one parameter at a time from the current values (two passes).
DEFAULT_GRID: dict[str, tuple] = {
    "cf_k": (1.0, 3.0, 10.0, 30.0),
    "prior_k": (0.0, 3.0, 10.0, 30.0),
    "factors": (16, 32, 64),
    "half_life_days": (60.0, 180.0, 365.0),
    "popularity_blend": (0.25, 0.5, 0.75, 1.0),
}
MODEL_PARAMS = ("factors", "svd_iterations", "cf_k", "prior_k", "field_weights", "popularity_blend", "segment_prior_users", "seed")


# ---------------------------------------------------------------------------------------------
# The split
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Split:
    """Training inputs as of ``cutoff`` and the relevant (user, shoe) pairs after it."""

    cutoff: dt.date
    inputs: Inputs
    relevant: dict[int, set[int]]  # user position -> shoe positions
    n_test_interactions: int


def time_span(db: Database) -> tuple[dt.datetime, dt.datetime]:
    first, last = db.query("select min(occurred_at), max(occurred_at) from interactions")[0]
    if first is None:
        raise ValueError("there are no interactions to evaluate on")
    return first, last


def cutoff_date(first: dt.datetime, last: dt.datetime, test_share: float) -> dt.date:
    """The last training day: the day at (1 - test_share) of the span from first to last."""
    return (first + (last - first) * (1 - test_share)).date()


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


def make_split(
    db: Database,
    cutoff: dt.date,
    until: dt.datetime | None,
    relevant_types: Sequence[str],
    half_life_days: float | None = None,
) -> Split:
    """Training as of the end of ``cutoff``; relevant pairs from the next day up to ``until``."""
    inputs = inputs_as_of(db, cutoff, half_life_days)
    start = dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time())
    marks = ", ".join("?" for _ in relevant_types)
    sql = f"select user_id, shoe_id from interactions where occurred_at >= ? and interaction_type in ({marks})"
    params: list[Any] = [start, *relevant_types]
    if until is not None:
        sql += " and occurred_at < ?"
        params.append(until)
    test = db.query_df(sql, params)
    # ids -> positions (users and shoes are the whole tables: everyone is in the inputs)
    users = np.searchsorted(inputs.user_ids, test["user_id"].to_numpy(np.int64))
    shoes = np.searchsorted(inputs.shoe_ids, test["shoe_id"].to_numpy(np.int64))
    # what the product may not recommend (bought in training) can't count as a miss either
    bought = inputs.purchased.tocsr()
    relevant: dict[int, set[int]] = {}
    for user, shoe in zip(users.tolist(), shoes.tolist(), strict=True):
        if bought[user, shoe] == 0:
            relevant.setdefault(user, set()).add(shoe)
    return Split(cutoff=cutoff, inputs=inputs, relevant=relevant, n_test_interactions=len(test))


# ---------------------------------------------------------------------------------------------
# Recommending on a split
# ---------------------------------------------------------------------------------------------


def recommend_lists(
    name: str, fitted: model.HybridModel, inputs: Inputs, users: np.ndarray, k: int, params: dict[str, Any]
) -> dict[int, list[int]]:
    """Top-k shoe positions per user position for one of :data:`MODELS`."""
    if len(users) == 0:
        return {}
    R = inputs.strength[users]
    exclude = inputs.purchased[users]
    has_history = np.diff(R.indptr) > 0
    if name in ("popularity", "segment_popularity"):
        if name == "popularity":
            # one vote per user with history, as the segment popularity counts them
            popularity = model.segment_popularity(
                inputs.strength, np.zeros(inputs.strength.shape[0], np.int64), np.zeros(1, np.int64), 0.0
            )
            scores = np.repeat(popularity.astype(np.float32), len(users), axis=0)
        else:
            popularity = model.segment_popularity(
                inputs.strength,
                inputs.user_segment,
                inputs.segments["usage_code"].to_numpy(),
                params["segment_prior_users"],
            )
            scores = popularity[inputs.user_segment[users]].astype(np.float32)
        index, _ = model.top_n(scores, k, exclude)
    else:
        # CF alone: all weight on behaviour; content alone: none on behaviour and no segment prior
        parts = {"cf": {"cf_k": 0.0}, "content": {"cf_k": math.inf, "prior_k": 0.0}, "hybrid": {}}[name]
        recs = model.recommend(
            dataclasses.replace(fitted, **parts), R, inputs.user_segment[users], k, exclude=exclude
        )
        index = recs.index
        if name != "hybrid":
            # CF alone or content alone has nothing to offer a user without history
            index = np.where(has_history[:, None], index, -1)
    return {int(user): [int(i) for i in row if i >= 0] for user, row in zip(users, index, strict=True)}


def evaluate_split(
    split: Split, params: dict[str, Any], ks: Sequence[int], models: Iterable[str] = MODELS
) -> list[dict[str, Any]]:
    """Metric rows (model, user_group, k, metric, value, n_users) for every model on a split."""
    inputs = split.inputs
    n_shoes = len(inputs.shoe_ids)
    users = np.array(sorted(split.relevant), dtype=np.int64)
    history = np.diff(inputs.strength.indptr)
    warm = users[history[users] > 0]
    cold_items = np.asarray(inputs.strength.getnnz(axis=0) == 0)
    groups = {"warm": warm, "cold": users[history[users] == 0], "all": users}
    fitted = fit_model(inputs, params)
    k_max = max(ks)
    rows = []
    for name in models:
        lists = recommend_lists(name, fitted, inputs, users, k_max, params)
        for group, members in groups.items():
            for k in ks:
                means = mean_metrics(lists, split.relevant, members.tolist(), k)
                shown = [lists.get(int(u), [])[:k] for u in members]
                n_shown = sum(len(items) for items in shown)
                extra = {
                    "coverage": catalog_coverage(shown, k, n_shoes) if len(members) else float("nan"),
                    "cold_item_share": (
                        sum(int(cold_items[i]) for items in shown for i in items) / n_shown if n_shown else float("nan")
                    ),
                }
                for metric, value in {**means, **extra}.items():
                    rows.append(
                        {"model": name, "user_group": group, "k": k, "metric": metric,
                         "value": value, "n_users": len(members)}
                    )
    return rows


def ndcg_of(rows: list[dict[str, Any]], model_name: str, group: str, k: int) -> float:
    return next(
        r["value"] for r in rows
        if r["model"] == model_name and r["user_group"] == group and r["k"] == k and r["metric"] == "ndcg"
    )


# ---------------------------------------------------------------------------------------------
# Tuning on a validation cut inside the training period
# ---------------------------------------------------------------------------------------------


def tune(
    db: Database,
    first: dt.datetime,
    cutoff: dt.date,
    test_share: float,
    relevant_types: Sequence[str],
    start: dict[str, Any],
    k: int,
    grid: dict[str, Sequence] = DEFAULT_GRID,
    passes: int = 2,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Coordinate search of ``grid`` maximising hybrid NDCG@k (all users) on the validation cut.

    The validation cut is the last ``test_share`` of the training period; its "test" ends where
    the real test starts, so tuning never sees the test period.
    """
    training_end = dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time())
    validation_cutoff = cutoff_date(first, training_end, test_share)
    best = dict(start)
    splits: dict[float, Split] = {}
    tried: dict[str, float] = {}
    history = []

    def objective(candidate: dict[str, Any]) -> float:
        key = json.dumps({name: candidate[name] for name in grid}, sort_keys=True)
        if key not in tried:
            half_life = float(candidate["half_life_days"])
            if half_life not in splits:
                splits[half_life] = make_split(db, validation_cutoff, training_end, relevant_types, half_life)
            rows = evaluate_split(splits[half_life], candidate, [k], models=("hybrid",))
            tried[key] = ndcg_of(rows, "hybrid", "all", k)
            history.append({**{name: candidate[name] for name in grid}, "ndcg": tried[key]})
        return tried[key]

    best_value = objective(best)
    steps = passes * sum(len(values) for values in grid.values())
    with tqdm(total=steps, desc="tuning", unit="fit", leave=False) as progress:
        for _ in range(passes):
            for name, values in grid.items():
                for value in values:
                    candidate = {**best, name: value}
                    score = objective(candidate)
                    if score > best_value + 1e-9:
                        best, best_value = candidate, score
                    progress.update()
    log.info(
        "tuned on the validation cut %s (%d settings tried): %s -> NDCG@%d %.4f",
        validation_cutoff, len(tried), {name: best[name] for name in grid}, k, best_value,
    )
    return best, history


def store_tuned(db: Database, evaluation_id: int, params: dict[str, Any], names: Iterable[str]) -> None:
    """Make the tuned values the defaults: model parameters in tuned_parameters, half-life in settings."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
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
    grid: dict[str, Sequence] = DEFAULT_GRID,
) -> dict[str, Any]:
    """Split, tune (optionally), evaluate every model, write the results; returns a summary."""
    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    clock = time.perf_counter()
    first, last = time_span(db)
    cutoff = cutoff or cutoff_date(first, last, test_share)
    current_half_life = float(db.scalar("select half_life_days from settings"))
    params = {**params_from(stored_params(db)), "half_life_days": current_half_life}
    history: list[dict[str, Any]] = []
    if do_tune:
        params, history = tune(db, first, cutoff, test_share, relevant_types, params, max(ks), grid)
    split = make_split(db, cutoff, None, relevant_types, params["half_life_days"])
    if not split.relevant:
        raise ValueError(f"no {' or '.join(relevant_types)} after the cut-off {cutoff}: nothing to evaluate")
    rows = evaluate_split(split, params, ks)
    chosen = {name: params[name] for name in (*MODEL_PARAMS, "half_life_days")}
    with db.transaction():
        evaluation_id = int(db.scalar("select coalesce(max(evaluation_id), 0) + 1 from evaluation_runs"))
        db.execute(
            "insert into evaluation_runs (evaluation_id, started_at, finished_at, cutoff_date, test_share,"
            " relevant_types, parameters, tuning, n_train_interactions, n_test_interactions)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                evaluation_id, started_at, dt.datetime.now(dt.UTC).replace(tzinfo=None), cutoff, test_share,
                ",".join(relevant_types), json.dumps(chosen, sort_keys=True), json.dumps(history),
                int(split.inputs.strength.nnz), split.n_test_interactions,
            ],
        )
        frame = pd.DataFrame(rows)
        frame.insert(0, "evaluation_id", evaluation_id)
        db.insert_df("evaluations", frame)
        if do_tune and store:
            store_tuned(db, evaluation_id, params, grid)
    seconds = time.perf_counter() - clock
    log.info("evaluation %d done in %.1f s (cut-off %s, %d test interactions)", evaluation_id, seconds, cutoff,
             split.n_test_interactions)
    return {"evaluation_id": evaluation_id, "cutoff": cutoff, "parameters": chosen, "rows": rows, "seconds": seconds}


def report(rows: list[dict[str, Any]], k: int) -> str:
    """A readable table: one line per model and user group, the metrics at k as columns."""
    frame = pd.DataFrame([r for r in rows if r["k"] == k])
    table = frame.pivot_table(index=["user_group", "model"], columns="metric", values="value", sort=False)
    users = frame.groupby(["user_group", "model"], sort=False)["n_users"].first()
    table.insert(0, "users", users)
    columns = ["users", *METRICS_WRITTEN]
    return table[columns].to_string(float_format=lambda v: f"{v:.4f}")


def parse_ks(text: str) -> list[int]:
    values = sorted({int(part) for part in text.split(",") if part.strip()})
    if not values or values[0] < 1:
        raise ValueError("--ks: whole numbers >= 1, comma-separated")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--k", type=int, default=10, help="the k of the printed table (default 10)")
    parser.add_argument("--ks", type=parse_ks, default=None, help="more cut-offs to compute, e.g. 5,10,20")
    parser.add_argument("--test-share", type=float, default=0.2, help="last share of the time span for testing (0.2)")
    parser.add_argument("--cutoff", type=dt.date.fromisoformat, default=None, help="last training day (overrides --test-share)")
    parser.add_argument(
        "--relevant", default=",".join(DEFAULT_RELEVANT),
        help="interaction types that count as relevant in the test period (default add_to_wishlist,purchase)",
    )
    parser.add_argument("--no-tune", action="store_true", help="evaluate the current parameters, tune nothing")
    parser.add_argument("--no-store", action="store_true", help="tune, but do not make the tuned values the defaults")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not 0 < args.test_share < 1:
        parser.error("--test-share must be between 0 and 1")
    ks = sorted(set(args.ks or []) | {args.k})
    relevant = [part.strip() for part in args.relevant.split(",") if part.strip()]
    try:
        with Database(args.db) as db:
            result = evaluate(
                db, ks=ks, test_share=args.test_share, cutoff=args.cutoff, relevant_types=relevant,
                do_tune=not args.no_tune, store=not args.no_store,
            )
    except (DatabaseError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    print(f"\nEvaluation {result['evaluation_id']}: train up to {result['cutoff']}, metrics at k={args.k}\n")
    print(report(result["rows"], args.k))
    print(f"\nparameters: {json.dumps(result['parameters'], sort_keys=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
