"""Fold new customers and new events into the latest complete run, without refitting.

    python -m scripts.score --refresh [--db ...]

A full run (scripts.score) stores, beside its scores, the state of its fitted model (tables
model_run_shoes and model_run_segments): per shoe its PureSVD factors q_i, its row of the blended CF
operator C when EASE or item-kNN was blended in (C is what EASE's inverse and the kNN cut produced;
recomputing it from the matrix would be a refit) and its TF-IDF vector; per segment its cold-start
scores. With the run's own parameters (cf_k, prior_k, top_n, exclude_seen) that is everything
scripts.model.recommend needs, so a refresh rebuilds the very same HybridModel
(scripts.model.assemble) and scores only the customers whose events changed since they were last
scored (model_run_users: the event count per customer of the run and of each refresh), or who are
new. A customer scored this way gets exactly the list a full run with that model would give them.

Publication is atomic, as a run's: a 'running' row of model_refreshes is committed first, then one
transaction writes refreshed_recommendations and model_run_users and marks the refresh complete.
user_recommendations shows each customer their newest complete refresh of the latest run, else the
run's rows, so readers see the state before or after, never between. Refreshes hold the run lock
(one scoring run or refresh at a time); a refresh killed at any point leaves the previous state, and
the next one marks it failed.

Sizes: 5,000 shoes are 5,000 model_run_shoes rows (64 factors: 256 bytes; the operator: 20 kB each,
100 MB in all), 100k customers 100k model_run_users rows. Only the newest run's state is kept.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scripts import model, serving
from scripts.clock import Stopwatch, utc_now
from scripts.db import Database, UsageError

log = logging.getLogger(__name__)

ID_CHUNK = 1000  # customer ids per `in (...)` query
STATE_TABLES = (
    "model_run_shoes",
    "model_run_segments",
    "model_run_users",
    "refreshed_recommendations",
    "model_refreshes",
)


# ---------------------------------------------------------------------------------------------
# Arrays as bytes (little-endian float32 / int32), one bytea (DuckDB: blob) per row
# ---------------------------------------------------------------------------------------------


def to_bytes(values: np.ndarray, dtype: str = "<f4") -> bytes:
    """An array as the bytes stored in a bytea cell."""
    return np.ascontiguousarray(values, dtype=dtype).tobytes()


def from_bytes(cell: Any, dtype: str = "<f4") -> np.ndarray:
    """The array a bytea cell holds (bytes from DuckDB, memoryview from psycopg2)."""
    return np.frombuffer(bytes(cell), dtype=dtype)


def _cells(db: Database, blobs: list[bytes | None]) -> list[Any]:
    """bytea cells as ``insert_df`` writes them: bytes for DuckDB, hex text for PostgreSQL's COPY."""
    if db.is_postgres:
        return [None if blob is None else "\\x" + blob.hex() for blob in blobs]
    return blobs


# ---------------------------------------------------------------------------------------------
# What a full run stores
# ---------------------------------------------------------------------------------------------


def event_counts(db: Database) -> pd.DataFrame:
    """Interaction events per customer (user_id, n_events): a customer whose count changes has new events."""
    return db.query_df("select user_id, count(*) as n_events from interactions group by user_id")


def write_model_state(
    db: Database,
    run_id: int,
    fitted: model.HybridModel,
    shoe_ids: np.ndarray,
    segments: pd.DataFrame,
    user_ids: np.ndarray,
    events: pd.DataFrame,
) -> int:
    """Store what a refresh needs to rebuild ``fitted`` (inside the run's transaction); returns rows written.

    ``events`` are the event counts taken before the run read its inputs (:func:`event_counts`), so a
    load that lands meanwhile makes its customers look changed (they are refreshed), never unchanged.
    """
    content = sp.csr_matrix(fitted.content, dtype=np.float32)
    content.sort_indices()
    operator = fitted.cf_operator
    shoes = pd.DataFrame(
        {
            "run_id": np.int64(run_id),
            "shoe_id": shoe_ids,
            "position": np.arange(len(shoe_ids), dtype=np.int32),
            "item_factors": _cells(db, [to_bytes(row) for row in fitted.item_factors]),
            "cf_operator": _cells(
                db, [None] * len(shoe_ids) if operator is None else [to_bytes(row) for row in operator]
            ),
            "content_terms": _cells(
                db,
                [
                    to_bytes(content.indices[a:b], "<i4")
                    for a, b in zip(content.indptr[:-1], content.indptr[1:], strict=True)
                ],
            ),
            "content_weights": _cells(
                db,
                [
                    to_bytes(content.data[a:b])
                    for a, b in zip(content.indptr[:-1], content.indptr[1:], strict=True)
                ],
            ),
        }
    )
    written = db.insert_df("model_run_shoes", shoes)
    segment_rows = pd.DataFrame(
        {
            "run_id": np.int64(run_id),
            "primary_usage": segments["primary_usage"].to_numpy(),
            "gender": segments["gender"].to_numpy(),
            "age_band": segments["age_band"].to_numpy(),
            "position": np.arange(len(segments), dtype=np.int32),
            "scores": _cells(db, [to_bytes(row) for row in fitted.segment_scores]),
        }
    )
    written += db.insert_df("model_run_segments", segment_rows)
    written += _write_users(db, run_id, 0, user_ids, events)
    return written


def _write_users(
    db: Database, run_id: int, refresh_id: int, user_ids: np.ndarray, events: pd.DataFrame
) -> int:
    """model_run_users rows: each scored customer's event count (0 without events)."""
    counts = events.set_index("user_id")["n_events"].reindex(user_ids, fill_value=0)
    return db.insert_df(
        "model_run_users",
        pd.DataFrame(
            {
                "run_id": np.int64(run_id),
                "refresh_id": np.int64(refresh_id),
                "user_id": np.asarray(user_ids, dtype=np.int64),
                "n_events": counts.to_numpy(np.int64),
            }
        ),
    )


def prune_model_state(db: Database, run_id: int) -> None:
    """Keep the model state and refreshes of ``run_id`` only (the run being published; only the latest is refreshed)."""
    for table in STATE_TABLES:
        db.execute(f"delete from {table} where run_id <> ?", [run_id])


# ---------------------------------------------------------------------------------------------
# Rebuilding the model of a run
# ---------------------------------------------------------------------------------------------


def load_model(
    db: Database, run_id: int, params: dict[str, Any]
) -> tuple[model.HybridModel, np.ndarray, pd.DataFrame]:
    """The run's HybridModel (as it was fitted), its shoe ids (column order) and its segments (row order)."""
    shoes = db.query(
        "select shoe_id, item_factors, cf_operator, content_terms, content_weights from model_run_shoes"
        " where run_id = ? order by position",
        [run_id],
    )
    if not shoes:
        raise UsageError(
            f"run {run_id} has no stored model (it was scored before refreshes existed):"
            " run python -m scripts.score once, then --refresh"
        )
    shoe_ids = np.array([row[0] for row in shoes], dtype=np.int64)
    n_shoes = len(shoe_ids)
    Q = np.vstack([from_bytes(row[1]) for row in shoes]).reshape(n_shoes, -1)
    operator = None if shoes[0][2] is None else np.vstack([from_bytes(row[2]) for row in shoes])
    terms = [from_bytes(row[3], "<i4") for row in shoes]
    weights = [from_bytes(row[4]) for row in shoes]
    lengths = np.array([len(t) for t in terms], dtype=np.int64)
    n_terms = int(max((t.max() + 1 for t in terms if len(t)), default=0))
    content = sp.csr_matrix(
        (
            np.concatenate(weights) if n_shoes else np.zeros(0, np.float32),
            np.concatenate(terms) if n_shoes else np.zeros(0, np.int32),
            np.concatenate([[0], np.cumsum(lengths)]),
        ),
        shape=(n_shoes, n_terms),
        dtype=np.float32,
    )
    segment_rows = db.query_df(
        "select primary_usage, gender, age_band, scores from model_run_segments where run_id = ? order by position",
        [run_id],
    )
    scores = (
        np.vstack([from_bytes(cell) for cell in segment_rows["scores"]])
        if len(segment_rows)
        else np.zeros((0, n_shoes), np.float32)
    )
    fitted = model.assemble(
        Q,
        np.ones(Q.shape[1], np.float32),  # singular values: only similar_items reads them, a refresh does not
        content,
        scores,
        operator,
        cf_k=params["cf_k"],
        prior_k=params["prior_k"],
    )
    return fitted, shoe_ids, segment_rows[["primary_usage", "gender", "age_band"]]


# ---------------------------------------------------------------------------------------------
# The refresh
# ---------------------------------------------------------------------------------------------


def changed_users(db: Database, run_id: int) -> pd.DataFrame:
    """Customers whose event count differs from when they were last scored (the run or a complete refresh of it), or never scored."""
    return db.query_df(
        """
        with current_events as (
            select user_id, count(*) as n_events from interactions group by user_id
        ),
        scorings as (
            select user_id, n_events, row_number() over (partition by user_id order by refresh_id desc) as recency
            from model_run_users
            where run_id = ?
                and (refresh_id = 0 or refresh_id in (
                    select refresh_id from model_refreshes where run_id = ? and status = 'complete'
                ))
        )
        select users.user_id, coalesce(current_events.n_events, 0) as n_events
        from users
        left join current_events
            on users.user_id = current_events.user_id
        left join scorings
            on users.user_id = scorings.user_id and scorings.recency = 1
        where scorings.user_id is null or scorings.n_events <> coalesce(current_events.n_events, 0)
        order by users.user_id
        """,
        [run_id, run_id],
    )


def _in_chunks(db: Database, sql: str, ids: np.ndarray) -> pd.DataFrame:
    """``sql`` with ``{ids}`` replaced by placeholders, run per chunk of ids, the results concatenated."""
    parts = []
    for start in range(0, len(ids), ID_CHUNK):
        chunk = [int(i) for i in ids[start : start + ID_CHUNK]]
        parts.append(db.query_df(sql.format(ids=", ".join("?" * len(chunk))), chunk))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def read_users(db: Database, user_ids: np.ndarray, shoe_ids: np.ndarray, segments: pd.DataFrame):
    """Rows of R, purchases, all interactions and segment codes of ``user_ids`` over the run's shoes.

    A shoe added since the run is not in the model: its interactions are left out (as a full run
    leaves out pairs of unknown shoes). A customer whose segment the run did not have (a new usage)
    gets the mean of the run's segment scores: its code is ``len(segments)``.
    """
    matrix = _in_chunks(
        db,
        "select user_id, shoe_id, cast(strength as real) as strength, purchase_count > 0 as is_purchased"
        " from interaction_matrix where user_id in ({ids})",
        user_ids,
    )
    rows = (
        np.searchsorted(user_ids, matrix["user_id"].to_numpy(np.int64))
        if len(matrix)
        else np.zeros(0, np.int64)
    )
    cols = (
        np.searchsorted(shoe_ids, matrix["shoe_id"].to_numpy(np.int64))
        if len(matrix)
        else np.zeros(0, np.int64)
    )
    known = cols < len(shoe_ids)
    known[known] &= shoe_ids[cols[known]] == matrix["shoe_id"].to_numpy(np.int64)[known]
    shape = (len(user_ids), len(shoe_ids))
    strength = matrix["strength"].to_numpy(np.float32)[known] if len(matrix) else np.zeros(0, np.float32)
    rows, cols = rows[known], cols[known]
    positive = strength > 0
    R = sp.csr_matrix((strength[positive], (rows[positive], cols[positive])), shape=shape)
    bought = matrix["is_purchased"].to_numpy(bool)[known] if len(matrix) else np.zeros(0, bool)
    purchased = sp.csr_matrix(
        (np.ones(int(bought.sum()), np.float32), (rows[bought], cols[bought])), shape=shape
    )
    users = (
        _in_chunks(
            db,
            "select user_id, primary_usage, gender, age_band from user_segments where user_id in ({ids})",
            user_ids,
        )
        .set_index("user_id")
        .reindex(user_ids)
    )
    grid = pd.MultiIndex.from_frame(segments)
    codes = grid.get_indexer(pd.MultiIndex.from_frame(users[["primary_usage", "gender", "age_band"]]))
    codes[codes < 0] = len(segments)
    return R, purchased, codes.astype(np.int64)


def refresh(db: Database) -> dict[str, Any]:
    """Score the customers new or changed since the latest complete run with its model; publish atomically.

    Returns
    -------
    dict
        refresh_id, run_id, status, n_users, n_recommendations, timings (seconds).
    """
    from scripts import score

    with db.session_lock(score.RUN_LOCK):
        clock = Stopwatch()
        score.fail_abandoned(db, "model_refreshes")
        latest = db.query("select run_id, parameters from latest_model_run")
        if not latest:
            raise UsageError("no complete scoring run to refresh: run python -m scripts.score first")
        run_id, parameters = int(latest[0][0]), json.loads(latest[0][1])
        params = score.params_from({k: v for k, v in parameters.items() if k in score.DEFAULT_PARAMS})
        refresh_id = int(db.scalar("select coalesce(max(refresh_id), 0) + 1 from model_refreshes"))
        db.execute(
            "insert into model_refreshes (refresh_id, run_id, status, started_at) values (?, ?, 'running', ?)",
            [refresh_id, run_id, utc_now(seconds=True)],
        )
        score._checkpoint("refresh_after_running_row")
        try:
            summary = _refresh(db, refresh_id, run_id, params, clock)
        except BaseException as exc:
            try:
                db.execute(
                    "update model_refreshes set status = 'failed', finished_at = ?, error = ? where refresh_id = ?",
                    [utc_now(seconds=True), f"{type(exc).__name__}: {exc}"[:2000], refresh_id],
                )
            except Exception:
                log.exception("could not mark refresh %d failed", refresh_id)
            raise
    log.info(
        "refresh %d of run %d complete: %d customers -> %d recommendations in %.2f s (%s)",
        refresh_id,
        run_id,
        summary["n_users"],
        summary["n_recommendations"],
        summary["timings"]["total"],
        ", ".join(f"{k} {v:.2f}" for k, v in summary["timings"].items() if k != "total"),
    )
    rebuild = Stopwatch()
    serving.refresh(db)  # PostgreSQL: the refreshed customers' rows in the customer views' read model
    summary["timings"]["read_model"] = rebuild.total()
    return summary


def _refresh(db: Database, refresh_id: int, run_id: int, params: dict[str, Any], clock) -> dict[str, Any]:
    from scripts import score

    with clock.stage("changed"):
        changed = changed_users(db, run_id)
    user_ids = changed["user_id"].to_numpy(np.int64)
    with clock.stage("model"):
        fitted, shoe_ids, segments = (
            (None, None, None) if not len(user_ids) else load_model(db, run_id, params)
        )
    with clock.stage("read"):
        if len(user_ids):
            R, purchased, codes = read_users(db, user_ids, shoe_ids, segments)
            # a segment the run did not have: the mean of the run's segment scores
            fitted = dataclasses.replace(
                fitted,
                segment_scores=np.vstack(
                    [fitted.segment_scores, fitted.segment_scores.mean(axis=0, keepdims=True)]
                ),
            )
    score._checkpoint("refresh_after_read")
    frames = []
    with clock.stage("score"):
        size = params["batch_size"]
        for start in range(0, len(user_ids), size):
            stop = min(start + size, len(user_ids))
            exclude = R[start:stop] if params["exclude_seen"] else purchased[start:stop]
            recs = model.recommend(fitted, R[start:stop], codes[start:stop], params["top_n"], exclude=exclude)
            frame = score.recommendation_frame(run_id, user_ids[start:stop], shoe_ids, recs)
            frame.insert(0, "refresh_id", np.int64(refresh_id))
            frames.append(frame)
    n_recommendations = 0
    with db.transaction():
        with clock.stage("write"):
            for frame in frames:
                n_recommendations += db.insert_df("refreshed_recommendations", frame)
                score._checkpoint("refresh_mid_write")
            _write_users(db, run_id, refresh_id, user_ids, changed[["user_id", "n_events"]])
        timings = {**clock.seconds, "total": clock.total()}
        db.execute(
            "update model_refreshes set status = 'complete', finished_at = ?, n_users = ?, n_recommendations = ?,"
            " timings = ? where refresh_id = ?",
            [
                utc_now(seconds=True),
                len(user_ids),
                n_recommendations,
                json.dumps(timings, sort_keys=True),
                refresh_id,
            ],
        )
        score._checkpoint("refresh_before_commit")
    score._checkpoint("refresh_committed")
    return {
        "refresh_id": refresh_id,
        "run_id": run_id,
        "status": "complete",
        "n_users": len(user_ids),
        "n_recommendations": n_recommendations,
        "timings": {**clock.seconds, "total": clock.total()},
    }
