"""Score every user and every shoe, and publish the results as one new model run.

    python -m scripts.score [--db ...] [--top-n N] [--factors K] [--cf-k K] [--seed S] ...  (--db ... --help: what runs there)

Reads the views interaction_matrix and user_segments and the tables shoes and age_bands, fits the
hybrid recommender of scripts/model.py (truncated SVD + TF-IDF content, cold start by segment) and
writes, keyed by a new row of model_runs:
  recommendations          top-N shoes per user (shoes they bought are never recommended),
  shoe_similarities        the most similar shoes of each shoe (replacement suggestions),
  segment_recommendations  top-N for a brand-new customer of every usage x gender x age band.

Publication is atomic: the run row is committed as 'running' first; then one transaction writes
every row, marks the run 'complete', prunes runs older than the newest --keep-runs complete ones
and commits. Readers only ever see complete runs, so a run that fails or is killed at any point
leaves the previous one in place; a run that raises is marked 'failed', one that was killed is
marked 'failed' by the next run. Runs are serialised: a second run waits for the first (PostgreSQL:
an advisory lock per schema; DuckDB: the file lock).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import logging
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from scripts import model, refresh, serving
from scripts.cli import base_parser, reports_database_errors, setup_logging
from scripts.clock import Stopwatch, utc_now
from scripts.db import Database, UsageError, describe, require_built
from scripts.killpoints import kill_point

log = logging.getLogger(__name__)

# Every parameter of a run, with its default; recorded with the run as JSON. Model parameters
# (factors ... similarity_content_weight) are what an evaluation tunes: params_from() merges
# stored or command-line overrides over these.
DEFAULT_PARAMS: dict[str, Any] = {
    "top_n": 50,
    "factors": 64,
    "svd_iterations": 5,
    "cf_k": 5.0,
    "prior_k": 10.0,
    "field_weights": {"brand": 1.0, "type": 2.0, "material": 1.0, "color": 0.5, "name": 0.5},
    "popularity_blend": 0.75,
    "segment_prior_users": 30.0,
    "feature_prior_users": 30.0,
    "vote_exponent": 1.0,
    "popularity_votes": "strength",
    "svd_weight": 1.0,
    "ease_weight": 1.0,
    "knn_weight": 0.0,
    "ease_l2": 2.0,
    "knn_neighbours": 100,
    "exclude_seen": False,
    "similar_n": 20,
    "similarity_content_weight": 0.5,
    "batch_size": 1000,
    "workers": 2,
    "seed": 42,
    "keep_runs": 3,
}

PARAM_HELP = {
    "top_n": "recommendations kept per user and per segment",
    "factors": "SVD factors k (at most min(users, shoes) are used)",
    "svd_iterations": "power iterations of the randomized SVD",
    "cf_k": "CF weight of a user with n shoes is n / (n + cf_k); 0 trusts any history fully",
    "prior_k": "the segment's cold-start score fades from a user's content side as m / (n + m); 0 = only for users without history",
    "field_weights": "TF-IDF weight per shoe field (brand, type, material, color, name): field=weight,...",
    "popularity_blend": "cold start: share of segment popularity vs. the content of popular shoes (0..1)",
    "segment_prior_users": "a segment's popularity is shrunk towards its usage, gender and age by this many pseudo-users",
    "feature_prior_users": "each usage, gender and age band's popularity is shrunk towards everyone's by this many pseudo-users",
    "vote_exponent": "popularity votes: a user's strengths / (their total)^e; 1 = one vote per user, 0 = every interaction counts",
    "popularity_votes": "what popularity counts: strength (every interaction, weighted and decayed) or positive (wishlists and purchases, 1 each)",
    "svd_weight": "CF blend: weight of PureSVD (r Q Q^T)",
    "ease_weight": "CF blend: weight of EASE (closed-form item-item regression; 0 skips it)",
    "knn_weight": "CF blend: weight of item-kNN (cosine, knn_neighbours per shoe; 0 skips it)",
    "ease_l2": "EASE ridge strength, relative to the mean diagonal of the shoes' Gram matrix",
    "knn_neighbours": "item-kNN: neighbours kept per shoe",
    "exclude_seen": "never recommend a shoe the user has interacted with (not only bought ones)",
    "similar_n": "similar shoes kept per shoe",
    "similarity_content_weight": "shoe similarity: share of TF-IDF cosine vs. SVD item-factor cosine (0..1)",
    "batch_size": "users scored at a time (memory is about 100 bytes x batch x shoes)",
    "workers": "threads scoring batches at once (the result does not depend on it)",
    "seed": "random_state of the randomized SVD",
    "keep_runs": "complete runs kept (with their rows); older ones are deleted on publication",
}

# the stages a run times (model_runs.timings, beside "total"), in run order; a run on Spark starts one first
RUN_STAGES = ("spark_start", "read", "fit", "similarities", "segments", "score", "write", "publish", "commit")
POPULARITY_VOTES = ("strength", "positive")
SHOE_FIELDS = ("brand", "type", "material", "color", "name")
UNKNOWN = "unknown"

# Test hook: SHOEREC_SCORE_KILL_AT=<stage>[:<k>] kills this process with SIGKILL the k-th time (default:
# the first) it reaches that stage; CHECKPOINTS lists them in the order a run reaches them
# (mid_recommendations: after each batch is written; prune: after each statement of the pruning).
KILL_AT_ENV = "SHOEREC_SCORE_KILL_AT"
KILL_STAGES = ("after_running_row", "mid_recommendations", "before_commit")  # one per phase
CHECKPOINTS = (
    "after_running_row",
    "after_read",
    "after_fit",
    "after_similarities",
    "after_segments",
    "similarities_written",
    "segments_written",
    "mid_recommendations",
    "run_marked_complete",
    "prune",
    "before_commit",
    "committed",
)
_reached: Counter = Counter()  # checkpoints reached by this process, per stage
RUN_LOCK = "shoerec.score"  # held by a scoring run from its start to its end (Database.session_lock)


def params_from(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The defaults with ``overrides`` merged over them, validated.

    Parameters
    ----------
    overrides : mapping, optional
        Any subset of :data:`DEFAULT_PARAMS`; None values are ignored; ``field_weights`` may name
        only some fields (the others keep their default).

    Returns
    -------
    dict
        A complete, independent parameter set.
    """
    params = copy.deepcopy(DEFAULT_PARAMS)
    for key, value in (overrides or {}).items():
        if key not in params:
            raise ValueError(f"unknown scoring parameter {key!r} (known: {', '.join(params)})")
        if value is None:
            continue
        if key == "field_weights":
            unknown = set(value) - set(SHOE_FIELDS)
            if unknown:
                raise ValueError(f"field_weights: unknown field(s) {sorted(unknown)} (known: {SHOE_FIELDS})")
            params[key].update({field: float(weight) for field, weight in value.items()})
        elif isinstance(DEFAULT_PARAMS[key], bool):
            params[key] = parse_bool(value) if isinstance(value, str) else bool(value)
        else:
            params[key] = type(DEFAULT_PARAMS[key])(value)
    _validate(params)
    return params


def stored_params(db: Database) -> dict[str, Any]:
    """The parameters the last tuning chose (table ``tuned_parameters``), as overrides.

    A stored name that is no longer a parameter is ignored with a warning.
    """
    stored = {}
    for name, value in db.query("select parameter, value from tuned_parameters order by parameter"):
        if name not in DEFAULT_PARAMS:
            log.warning("ignoring tuned parameter %r: not a scoring parameter", name)
            continue
        stored[name] = json.loads(value)
    return stored


def _validate(params: dict[str, Any]) -> None:
    problems = [
        f"{key} must be >= {low}"
        for key, low in (
            ("top_n", 1),
            ("factors", 1),
            ("svd_iterations", 0),
            ("cf_k", 0),
            ("prior_k", 0),
            ("segment_prior_users", 0),
            ("feature_prior_users", 0),
            ("svd_weight", 0),
            ("ease_weight", 0),
            ("knn_weight", 0),
            ("knn_neighbours", 1),
            ("similar_n", 1),
            ("batch_size", 1),
            ("workers", 1),
            ("keep_runs", 1),
        )
        if params[key] < low
    ]
    problems += [
        f"{key} must be between 0 and 1"
        for key in ("popularity_blend", "similarity_content_weight", "vote_exponent")
        if not 0 <= params[key] <= 1
    ]
    if params["popularity_votes"] not in POPULARITY_VOTES:
        problems.append(f"popularity_votes must be one of {', '.join(POPULARITY_VOTES)}")
    if params["ease_l2"] <= 0:
        problems.append("ease_l2 must be > 0")
    if params["svd_weight"] + params["ease_weight"] + params["knn_weight"] <= 0:
        problems.append("svd_weight, ease_weight and knn_weight must not all be 0")
    problems += [f"field_weights.{f} must be >= 0" for f, w in params["field_weights"].items() if w < 0]
    if problems:
        raise ValueError("; ".join(problems))


def parse_bool(text: str) -> bool:
    """``true``/``yes``/``1`` or ``false``/``no``/``0`` (for the command line)."""
    value = str(text).strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_field_weights(text: str) -> dict[str, float]:
    """``brand=1,type=2`` -> ``{'brand': 1.0, 'type': 2.0}`` (for the command line)."""
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        field, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"expected field=weight, got {item!r}")
        weights[field.strip()] = float(value)
    return weights


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    """What the model needs, as arrays; rows and columns follow ``user_ids`` and ``shoe_ids``."""

    user_ids: np.ndarray
    shoe_ids: np.ndarray
    strength: sp.csr_matrix
    purchased: sp.csr_matrix
    wishlisted: sp.csr_matrix
    user_segment: np.ndarray
    segments: pd.DataFrame  # one row per segment code: primary_usage, gender, age_band and their *_code
    shoe_fields: dict[str, list]
    reference_date: Any


# what a run reads from the two large views (also what scripts.export writes and Spark reads over JDBC)
INPUT_QUERIES = {
    "interaction_matrix": (
        "select user_id, shoe_id, cast(strength as real) as strength, purchase_count > 0 as is_purchased,"
        " wishlist_count > 0 as is_wishlisted from interaction_matrix"
    ),
    "user_segments": "select user_id, primary_usage, gender, age_band from user_segments",
}


# PostgreSQL: the memory the export of the matrix may use per sort or hash (interaction_matrix groups every event
# by user and shoe: at the default 4 MB its hash table went to disk in 145 batches; at 100,000 customers the
# export took 10.2 s, 7.4 s with this)
READ_WORK_MEM = "256MB"


@contextmanager
def _read_work_mem(db: Database) -> Iterator[None]:
    """On PostgreSQL, ``work_mem`` at READ_WORK_MEM for the block, then as it was."""
    if not db.is_postgres:
        yield
        return
    previous = db.scalar("select current_setting('work_mem')")
    db.execute(f"set work_mem = '{READ_WORK_MEM}'")
    try:
        yield
    finally:
        try:
            db.execute("select set_config('work_mem', ?, false)", [previous])
        except Exception:  # an aborted transaction: its rollback restores the setting anyway
            log.debug("work_mem not restored", exc_info=True)


def read_inputs(db: Database) -> Inputs:
    """Export the interaction matrix, the users' segments and the shoes' attributes."""
    users = db.query_df(INPUT_QUERIES["user_segments"] + " order by user_id")
    shoes = db.query_df(f"select shoe_id, {', '.join(SHOE_FIELDS)} from shoes order by shoe_id")
    with _read_work_mem(db):
        matrix = db.query_df(INPUT_QUERIES["interaction_matrix"])
    bands = [band for (band,) in db.query("select age_band from age_bands order by min_age, age_band")]
    reference_date = db.scalar("select reference_date from current_settings")

    user_ids = users["user_id"].to_numpy(np.int64)
    shoe_ids = shoes["shoe_id"].to_numpy(np.int64)
    # ids -> row / column positions (both sorted); drop pairs whose user or shoe is unknown
    rows = np.searchsorted(user_ids, matrix["user_id"].to_numpy(np.int64))
    cols = np.searchsorted(shoe_ids, matrix["shoe_id"].to_numpy(np.int64))
    known = (rows < len(user_ids)) & (cols < len(shoe_ids))
    known[known] &= (user_ids[rows[known]] == matrix["user_id"].to_numpy(np.int64)[known]) & (
        shoe_ids[cols[known]] == matrix["shoe_id"].to_numpy(np.int64)[known]
    )
    if not known.all():
        log.warning("ignoring %d interaction_matrix rows of unknown users or shoes", int((~known).sum()))
    rows, cols = rows[known], cols[known]
    shape = (len(user_ids), len(shoe_ids))
    strength = matrix["strength"].to_numpy(np.float32)[known]
    bought = matrix["is_purchased"].to_numpy(bool)[known]
    positive = strength > 0
    R = sp.csr_matrix((strength[positive], (rows[positive], cols[positive])), shape=shape)
    purchased = sp.csr_matrix(
        (np.ones(int(bought.sum()), np.float32), (rows[bought], cols[bought])), shape=shape
    )
    wished = matrix["is_wishlisted"].to_numpy(bool)[known]
    wishlisted = sp.csr_matrix(
        (np.ones(int(wished.sum()), np.float32), (rows[wished], cols[wished])), shape=shape
    )

    # the full segment grid: every usage x gender (+ unknown) x age band (+ unknown)
    usages = sorted(users["primary_usage"].unique())
    genders = sorted(set(users["gender"]) | {UNKNOWN})
    bands = [band for band in bands if band != UNKNOWN] + [UNKNOWN]
    grid = pd.MultiIndex.from_product([usages, genders, bands], names=["primary_usage", "gender", "age_band"])
    segments = grid.to_frame(index=False)
    segments["usage_code"] = (
        segments["primary_usage"].map({u: i for i, u in enumerate(usages)}).astype(np.int64)
    )
    segments["gender_code"] = segments["gender"].map({g: i for i, g in enumerate(genders)}).astype(np.int64)
    segments["age_band_code"] = segments["age_band"].map({b: i for i, b in enumerate(bands)}).astype(np.int64)
    user_segment = grid.get_indexer(pd.MultiIndex.from_frame(users[["primary_usage", "gender", "age_band"]]))
    if (user_segment < 0).any():
        raise ValueError("a user's segment is missing from the segment grid (age band not in age_bands?)")

    return Inputs(
        user_ids=user_ids,
        shoe_ids=shoe_ids,
        strength=R,
        purchased=purchased,
        wishlisted=wishlisted,
        user_segment=user_segment.astype(np.int64),
        segments=segments,
        shoe_fields={field: shoes[field].tolist() for field in SHOE_FIELDS},
        reference_date=reference_date,
    )


# ---------------------------------------------------------------------------------------------
# Frames written back
# ---------------------------------------------------------------------------------------------


def _round(values: np.ndarray) -> np.ndarray:
    return np.round(values.astype(np.float64), 6)


def _ranked(index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The filled cells of a top-N index matrix (padding -1): the mask, each cell's row, its rank (1 = best)."""
    valid = index >= 0
    row, column = np.nonzero(valid)
    return valid, row, (column + 1).astype(np.int32)


def recommendation_frame(
    run_id: int, user_ids: np.ndarray, shoe_ids: np.ndarray, recs: model.Recommendations
) -> pd.DataFrame:
    """Rows of ``recommendations`` for one batch (padding dropped; rank 1 = best)."""
    valid, user_pos, rank = _ranked(recs.index)
    reason = recs.reason[valid]
    # null reason = "popular with their segment"
    reason_shoe_id = pd.array(shoe_ids[np.maximum(reason, 0)], dtype="Int64")
    reason_shoe_id[reason < 0] = pd.NA
    return pd.DataFrame(
        {
            "run_id": np.int64(run_id),
            "user_id": user_ids[user_pos],
            "rank": rank,
            "shoe_id": shoe_ids[recs.index[valid]],
            "score": _round(recs.score[valid]),
            "cf_score": _round(recs.cf[valid]),  # NaN (-> null) for users without history
            "content_score": _round(recs.content[valid]),
            "cf_weight": _round(recs.cf_weight[user_pos]),
            "popularity_share": _round(recs.popularity_share[valid]),
            "reason_shoe_id": reason_shoe_id,
        }
    )


def similarity_frame(run_id: int, shoe_ids: np.ndarray, sims: model.Similarities) -> pd.DataFrame:
    """Rows of ``shoe_similarities`` (rank 1 = most similar)."""
    valid, shoe_pos, rank = _ranked(sims.index)
    return pd.DataFrame(
        {
            "run_id": np.int64(run_id),
            "shoe_id": shoe_ids[shoe_pos],
            "rank": rank,
            "similar_shoe_id": shoe_ids[sims.index[valid]],
            "similarity": _round(sims.similarity[valid]),
            "content_similarity": _round(sims.content[valid]),
            "cf_similarity": _round(sims.cf[valid]),
        }
    )


def segment_frame(
    run_id: int, segments: pd.DataFrame, shoe_ids: np.ndarray, index: np.ndarray, value: np.ndarray
) -> pd.DataFrame:
    """Rows of ``segment_recommendations`` (rank 1 = best)."""
    valid, segment_pos, rank = _ranked(index)
    chosen = segments.iloc[segment_pos]
    return pd.DataFrame(
        {
            "run_id": np.int64(run_id),
            "primary_usage": chosen["primary_usage"].to_numpy(),
            "gender": chosen["gender"].to_numpy(),
            "age_band": chosen["age_band"].to_numpy(),
            "rank": rank,
            "shoe_id": shoe_ids[index[valid]],
            "score": _round(value[valid]),
        }
    )


def recommendation_batches(
    fitted: model.HybridModel, inputs: Inputs, params: dict[str, Any], run_id: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    """(number of users, rows of ``recommendations``) for each batch of users, in user order.

    ``params['workers']`` threads score batches ahead of the consumer (at most workers + 1 batches
    in memory); numpy and BLAS release the GIL, and each thread gets one BLAS thread. The result
    does not depend on the number of workers.
    """
    n_users = inputs.strength.shape[0]
    size, workers = params["batch_size"], params["workers"]
    excluded = exclusions(inputs, params)

    def job(start: int) -> tuple[int, pd.DataFrame]:
        stop = min(start + size, n_users)
        recs = model.recommend(
            fitted,
            inputs.strength[start:stop],
            inputs.user_segment[start:stop],
            params["top_n"],
            exclude=excluded[start:stop],
        )
        return stop - start, recommendation_frame(run_id, inputs.user_ids[start:stop], inputs.shoe_ids, recs)

    starts = iter(range(0, n_users, size))
    with threadpool_limits(1 if workers > 1 else None), ThreadPoolExecutor(workers) as pool:
        pending = deque(pool.submit(job, start) for start in itertools.islice(starts, workers + 1))
        try:
            while pending:
                done = pending.popleft().result()
                pending.extend(pool.submit(job, start) for start in itertools.islice(starts, 1))
                yield done
        finally:
            for future in pending:
                future.cancel()


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _checkpoint(stage: str) -> None:
    """Test hook: die here, as abruptly as possible, if ``$SHOEREC_SCORE_KILL_AT`` names this stage."""
    kill_point(KILL_AT_ENV, _reached, stage)


def fail_abandoned(db: Database, table: str = "model_runs") -> int:
    """Mark the rows of ``table`` (``model_runs`` or ``model_refreshes``) left 'running' by a process
    that died as failed; returns how many.

    Called with the run lock held (:data:`RUN_LOCK`): a live run or refresh holds it too, so every
    'running' row then belongs to a process that is gone (its session, and with it the lock, ended).
    """
    count = db.scalar(f"select count(*) from {table} where status = 'running'")
    if count:
        db.execute(
            f"update {table} set status = 'failed', finished_at = ?,"
            " error = 'abandoned: the process stopped before publishing' where status = 'running'",
            [utc_now(seconds=True)],
        )
        log.warning("%s: marked %d abandoned 'running' row(s) failed", table, count)
    return int(count or 0)


def refuse_empty(db: Database) -> None:
    """Raise :class:`UsageError` when there is nothing to score (no customers or no shoes): no empty run is published."""
    n_users, n_shoes = db.query("select (select count(*) from users), (select count(*) from shoes)")[0]
    if not n_users or not n_shoes:
        raise UsageError(
            f"nothing to score: the database has {n_users} customers and {n_shoes} shoes;"
            " load data first (python -m scripts.load --data-dir DIR, or python -m scripts.build)"
        )


def _start_run(db: Database, params: dict[str, Any]) -> int:
    """Insert and commit the 'running' row of a new run; returns its id.

    max(run_id) + 1 is safe under the run lock (no other run starts meanwhile); it needs no
    sequence, so databases built before work unchanged.
    """
    run_id = int(db.scalar("select coalesce(max(run_id), 0) + 1 from model_runs"))
    db.execute(
        "insert into model_runs (run_id, status, started_at, reference_date, parameters)"
        " select ?, 'running', ?, reference_date, ? from current_settings",
        [run_id, utc_now(seconds=True), json.dumps(params, sort_keys=True)],
    )
    return run_id


def _mark_failed(db: Database, run_id: int, error: BaseException) -> None:
    try:
        db.execute(
            "update model_runs set status = 'failed', finished_at = ?, error = ? where run_id = ?",
            [utc_now(seconds=True), f"{type(error).__name__}: {error}"[:2000], run_id],
        )
    except Exception:  # the connection itself may be gone; the next run marks it failed
        log.exception("could not mark run %d failed", run_id)


def _prune(db: Database, keep_runs: int) -> int:
    """Delete runs (and their rows) older than the oldest of the newest ``keep_runs`` complete runs."""
    kept = db.query(
        "select run_id from model_runs where status = 'complete' order by run_id desc limit ?", [keep_runs]
    )
    if not kept:
        return 0
    oldest = min(run_id for (run_id,) in kept)
    pruned = int(
        db.scalar("select count(*) from model_runs where run_id < ? and status <> 'running'", [oldest])
    )
    # never the rows of a run in progress (under the run lock only this one, and it is the newest)
    for table in ("recommendations", "shoe_similarities", "segment_recommendations"):
        db.execute(
            f"delete from {table} where run_id < ?"
            " and run_id not in (select run_id from model_runs where status = 'running')",
            [oldest],
        )
        _checkpoint("prune")
    db.execute("delete from model_runs where run_id < ? and status <> 'running'", [oldest])
    _checkpoint("prune")
    return pruned


def score(db: Database, **overrides: Any) -> dict[str, Any]:
    """Fit, score everyone and publish a new complete run (atomically); returns the run summary.

    Parameters
    ----------
    db : Database
        An open connection; the schema must exist.
    **overrides
        Any of :data:`DEFAULT_PARAMS`; they win over the values stored by the last tuning
        (:func:`stored_params`), which win over the defaults.

    Returns
    -------
    dict
        run_id, status, counts (n_users, n_shoes, n_interactions, n_recommendations,
        n_similarities, n_segment_recommendations, n_pruned_runs), parameters and timings (seconds).
    """
    params = params_from({**stored_params(db), **{k: v for k, v in overrides.items() if v is not None}})
    refuse_empty(db)
    # one run at a time (PostgreSQL: an advisory lock; DuckDB: the file lock), so that a run never
    # marks a live run abandoned, never takes the id of another, and never prunes one in progress
    with db.session_lock(RUN_LOCK):
        clock = Stopwatch()
        fail_abandoned(db)
        run_id = _start_run(db, params)
        _checkpoint("after_running_row")
        try:
            summary = _score_run(db, run_id, params, clock)
        except BaseException as exc:
            _mark_failed(db, run_id, exc)
            raise
    log_complete(summary)
    # PostgreSQL: the customer views' read model, for the run now published (served live until then); its
    # seconds beside the run's own, after the commit (the run row's timings end before it)
    rebuild = Stopwatch()
    serving.refresh(db)
    summary["timings"]["read_model"] = rebuild.total()
    return summary


def fit_model(inputs: Inputs, params: dict[str, Any]) -> model.HybridModel:
    """The hybrid fitted on ``inputs`` with ``params`` (what a run, the evaluation and the benchmark fit)."""
    features = model.item_features(inputs.shoe_fields, params["field_weights"])
    return model.fit(
        inputs.strength,
        features,
        inputs.user_segment,
        inputs.segments["usage_code"].to_numpy(),
        factors=params["factors"],
        n_iter=params["svd_iterations"],
        cf_k=params["cf_k"],
        prior_k=params["prior_k"],
        popularity_blend=params["popularity_blend"],
        segment_prior_users=params["segment_prior_users"],
        segment_features=segment_features(inputs),
        feature_prior_users=params["feature_prior_users"],
        vote_exponent=params["vote_exponent"],
        votes=popularity_votes(inputs, params),
        svd_weight=params["svd_weight"],
        ease_weight=params["ease_weight"],
        knn_weight=params["knn_weight"],
        ease_l2=params["ease_l2"],
        knn_neighbours=params["knn_neighbours"],
        random_state=params["seed"],
    )


def segment_features(inputs: Inputs) -> np.ndarray:
    """Codes of each segment's usage, gender and age band: (n_segments, 3), the additive prior's levels."""
    return inputs.segments[["usage_code", "gender_code", "age_band_code"]].to_numpy(np.int64)


def popularity_votes(inputs: Inputs, params: dict[str, Any]) -> sp.csr_matrix:
    """What segment popularity counts: the strengths, or 1 per wishlisted or purchased shoe."""
    if params["popularity_votes"] == "strength":
        return inputs.strength
    positive = sp.csr_matrix(inputs.purchased + inputs.wishlisted)
    positive.data[:] = 1
    return positive


def exclusions(inputs: Inputs, params: dict[str, Any]) -> sp.csr_matrix:
    """What may not be recommended: bought shoes, or every shoe interacted with (``exclude_seen``)."""
    if params["exclude_seen"]:
        return inputs.strength
    return inputs.purchased


def mark_complete(
    db: Database, run_id: int, parameters: dict[str, Any], counts: dict[str, int], clock: Stopwatch
) -> None:
    """Mark the run complete with its parameters, counts and timings (inside the publishing transaction)."""
    timings = {**clock.seconds, "total": clock.total()}
    db.execute(
        "update model_runs set status = 'complete', finished_at = ?, parameters = ?, n_users = ?,"
        " n_shoes = ?, n_interactions = ?, n_recommendations = ?, timings = ? where run_id = ?",
        [
            utc_now(seconds=True),
            json.dumps(parameters, sort_keys=True),
            counts["n_users"],
            counts["n_shoes"],
            counts["n_interactions"],
            counts["n_recommendations"],
            json.dumps(timings, sort_keys=True),
            run_id,
        ],
    )


def run_summary(
    run_id: int,
    counts: dict[str, int],
    n_similarities: int,
    n_segment_recommendations: int,
    pruned: int,
    reference_date: Any,
    parameters: dict[str, Any],
    clock: Stopwatch,
    commit_started: float,
) -> dict[str, Any]:
    """What :func:`score` returns for a published run (the run row's timings end before the commit)."""
    timings = {
        **clock.seconds,
        "commit": round(time.perf_counter() - commit_started, 3),
        "total": clock.total(),
    }
    return {
        "run_id": run_id,
        "status": "complete",
        **counts,
        "n_similarities": n_similarities,
        "n_segment_recommendations": n_segment_recommendations,
        "n_pruned_runs": pruned,
        "reference_date": reference_date,
        "parameters": parameters,
        "timings": timings,
    }


def log_complete(summary: dict[str, Any], where: str = "") -> None:
    """The line a published run logs (``where``: how it ran, e.g. ``on Spark (local[2])``)."""
    log.info(
        "run %d complete%s: %d users x %d shoes (%d interactions) -> %d recommendations, %d similarities,"
        " %d segment rows in %.1f s (%s)",
        summary["run_id"],
        f" {where}" if where else "",
        summary["n_users"],
        summary["n_shoes"],
        summary["n_interactions"],
        summary["n_recommendations"],
        summary["n_similarities"],
        summary["n_segment_recommendations"],
        summary["timings"]["total"],
        ", ".join(f"{k} {v:.1f}" for k, v in summary["timings"].items() if k != "total"),
    )


def _score_run(db: Database, run_id: int, params: dict[str, Any], clock: Stopwatch) -> dict[str, Any]:
    with clock.stage("read"):
        # before the inputs: a load landing in between makes its customers look changed to a refresh
        events = refresh.event_counts(db)
        inputs = read_inputs(db)
    _checkpoint("after_read")
    n_users, n_shoes = inputs.strength.shape

    with clock.stage("fit"):
        fitted = fit_model(inputs, params)
    _checkpoint("after_fit")
    with clock.stage("similarities"):
        sims = model.similar_items(fitted, params["similar_n"], params["similarity_content_weight"])
        similarities = similarity_frame(run_id, inputs.shoe_ids, sims)
    _checkpoint("after_similarities")
    with clock.stage("segments"):
        segment_index, segment_value = model.top_n(fitted.segment_scores.copy(), params["top_n"])
        segment_rows = segment_frame(run_id, inputs.segments, inputs.shoe_ids, segment_index, segment_value)
    _checkpoint("after_segments")

    n_recommendations = 0
    with db.transaction():
        with clock.stage("write"):
            db.insert_df("shoe_similarities", similarities)
            _checkpoint("similarities_written")
            db.insert_df("segment_recommendations", segment_rows)
            _checkpoint("segments_written")
            # what a refresh (--refresh) needs to fold customers into this run's model
            refresh.write_model_state(
                db, run_id, fitted, inputs.shoe_ids, inputs.segments, inputs.user_ids, events
            )
        progress = tqdm(total=n_users, unit="user", desc=f"scoring run {run_id}", leave=False)
        batches = recommendation_batches(fitted, inputs, params, run_id)
        try:
            while True:
                with clock.stage("score"):  # waiting for the workers, beyond the time spent writing
                    batch = next(batches, None)
                if batch is None:
                    break
                n_batch_users, frame = batch
                with clock.stage("write"):
                    n_recommendations += db.insert_df("recommendations", frame)
                progress.update(n_batch_users)
                _checkpoint("mid_recommendations")
        finally:
            batches.close()
            progress.close()
        with clock.stage("publish"):
            parameters = {**params, "factors_used": int(fitted.item_factors.shape[1])}
            counts = {
                "n_users": n_users,
                "n_shoes": n_shoes,
                "n_interactions": int(inputs.strength.nnz),
                "n_recommendations": n_recommendations,
            }
            mark_complete(db, run_id, parameters, counts, clock)
            _checkpoint("run_marked_complete")
            pruned = _prune(db, params["keep_runs"])
            refresh.prune_model_state(db, run_id)
            _checkpoint("before_commit")
        commit_started = time.perf_counter()
    _checkpoint("committed")
    return run_summary(
        run_id,
        counts,
        len(similarities),
        len(segment_rows),
        pruned,
        inputs.reference_date,
        parameters,
        clock,
        commit_started,
    )


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _shown(key: str, value: Any) -> str:
    if key == "field_weights":
        return ",".join(f"{f}={w:g}" for f, w in value.items())
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def build_parser(stored: Mapping[str, Any] | None = None, source: str | None = None):
    """The command line; with ``stored`` (the database's tuned values) the help shows what will run."""
    parser = base_parser(__doc__)
    stored = stored or {}
    for key, default in DEFAULT_PARAMS.items():
        flag = "--" + key.replace("_", "-")
        if key in stored and stored[key] != default:
            shown = f"runs: {_shown(key, stored[key])}, tuned in {source}; built-in default {_shown(key, default)}"
        elif key in stored:
            shown = f"runs: {_shown(key, default)}, tuned in {source}"
        else:
            shown = f"default: {_shown(key, default)}" + (", not tuned" if source else "")
        kind = {"field_weights": (parse_field_weights, "F=W,..."), bool: (parse_bool, "BOOL")}
        convert, metavar = (
            kind.get(key) or kind.get(type(default)) or (type(default), type(default).__name__.upper())
        )
        parser.add_argument(
            flag, type=convert, default=None, metavar=metavar, help=f"{PARAM_HELP[key]} ({shown})"
        )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="no refit: score only the customers with new events, or new, since the latest complete run, with"
        " that run's stored model, and publish them over it (see scripts/refresh.py)",
    )
    parser.add_argument(
        "--spark",
        metavar="MASTER",
        default=None,
        help="compute the run on Apache Spark at MASTER (local[2], spark://host:7077; pip install -r"
        " requirements-spark.txt): see scripts/spark_score.py",
    )
    parser.epilog = (
        f"Values in force come from {source}'s tuned_parameters (the last evaluation), else the built-in defaults;"
        " a flag wins over both."
        if source
        else "Without a database to read, the built-in defaults are shown; a database's last evaluation may have"
        " tuned them (python -m scripts.score --db ... --help shows what will run there)."
    )
    return parser


def _tuned_for_help(argv: list[str] | None) -> tuple[dict[str, Any], str | None]:
    """The tuned values of the database ``--db`` names (for --help), or nothing if it cannot be read."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--db", default=None)
    known, _ = pre.parse_known_args(argv)
    try:
        with Database(known.db, read_only=True, must_exist=True) as db:
            return stored_params(db), describe(db.url)
    except Exception:  # no database, not built, locked: the help falls back to the built-in defaults
        return {}, None


@reports_database_errors
def main(argv: list[str] | None = None) -> int:
    wants_help = any(arg in ("-h", "--help") for arg in (sys.argv[1:] if argv is None else argv))
    parser = build_parser(*_tuned_for_help(argv)) if wants_help else build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    # only what the command line sets: the rest comes from tuned_parameters, then the defaults
    overrides = {key: getattr(args, key) for key in DEFAULT_PARAMS if getattr(args, key) is not None}
    try:
        params_from(overrides)
    except ValueError as exc:
        parser.error(str(exc))
    if args.spark:
        from scripts import spark_score

        return spark_score.main(args, overrides)
    if args.refresh and overrides:
        parser.error("--refresh scores with the latest run's parameters: no model parameters with it")
    with Database(args.db, must_exist=True) as db:
        require_built(db)
        # either publishes a complete run or raises
        if args.refresh:
            refresh.refresh(db)
        else:
            score(db, **overrides)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
