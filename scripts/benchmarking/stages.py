"""The stages of the benchmark: what each one does, and the figures it returns.

Each stage is a function of a task (a dict: the database URL, the data folder, the sizes, ...) run in
a child process of its own by :func:`scripts.benchmarking.process.run_stage`; heavy imports happen
there (``STAGE_IMPORTS``, before the clocks). A stage returns its rows, rows per second and the
seconds of its parts; the process adds wall and CPU seconds and peak memory. The native stage, the
engine's own bulk paths, is in :mod:`scripts.benchmarking.native`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from scripts.benchmarking.native import stage_native
from scripts.benchmarking.process import MIB, rate
from scripts.clock import Stopwatch

log = logging.getLogger(__name__)

STAGES = ("generate", "load", "score", "native", "model", "implicit", "refresh", "serve")
# serve times latency, not bulk: only when asked for (--stages ...,serve)
DEFAULT_STAGES = tuple(stage for stage in STAGES if stage != "serve")
# the stages run again on --compare-db
COMPARED_STAGES = ("load", "score", "native", "refresh")
# what each stage includes (the report's last column)
WHAT = {
    "generate": "simulate + write the three CSV files",
    "load": "schema, validate, stage, check, merge (one transaction), reference date",
    "score": "export, fit, similarities, segments, top-50 all users, write-back, publish",
    "native": "the engine's bulk read of the CSV files, export of the matrix, write of the run's rows",
    "model": "export, fit, similarities, segments, top-50 all users; no write",
    "implicit": "export, ALS fit, recommend top-50 all users; no write",
    "refresh": "score --refresh: find the changed customers, rebuild the run's model, score, publish",
    "serve": "one customer's rows of the customer-facing views, p50 / p99 (scripts.serve_bench)",
}
TOP_N = 50
IMPLICIT_PARAMS = {"factors": 64, "iterations": 15, "random_state": 42}
IMPLICIT_BATCH_USERS = 10_000
_CSV_FILES = ("users.csv", "shoes.csv", "interactions.csv")


def stage_generate(task: dict[str, Any]) -> dict[str, Any]:
    """scripts.generate_data: the three CSV files into the data folder (its worker processes simulate)."""
    from scripts.generate_data import generate

    clock = Stopwatch()
    counts = generate(
        task["data_dir"],
        users=task["users"],
        shoes=task["shoes"],
        interactions=task["interactions"],
        seed=task["seed"],
    )
    seconds = clock.total()
    rows = counts["users"] + counts["shoes"] + counts["interactions"]
    size = sum((Path(task["data_dir"]) / name).stat().st_size for name in _CSV_FILES)
    return {
        "seconds": seconds,
        "rows": rows,
        "rows_per_second": rate(rows, seconds),
        "counts": counts,
        "csv_mib": round(size / MIB, 1),
    }


def stage_load(task: dict[str, Any]) -> dict[str, Any]:
    """A fresh database: schema and views, scripts.load (strict), the reference date at the last event's day."""
    from scripts.db import Database
    from scripts.load import load
    from scripts.schema import create_schema

    clock = Stopwatch()
    with Database(task["url"]) as db:
        with clock.stage("schema"):
            create_schema(db)
        summary = load(db, task["data_dir"])
        clock.seconds["load"] = round(summary.seconds, 3)
        # as scripts.build does for generated data: statuses and decay as of the last interaction day
        with clock.stage("reference_date"):
            db.execute(
                "update settings set reference_date = (select cast(max(occurred_at) as date) from interactions)"
            )
            reference_date = db.scalar("select reference_date from settings")
        pairs = int(db.scalar("select count(*) from interaction_matrix"))
    return {
        "seconds": clock.total(),
        **_loaded(summary),
        "parts": clock.seconds,
        "reference_date": str(reference_date),
        "interaction_pairs": pairs,
    }


def stage_score(task: dict[str, Any]) -> dict[str, Any]:
    """scripts.score with its defaults: export, fit, similarities, segments, top-50 for all, write, publish."""
    from scripts.db import Database
    from scripts.score import score

    clock = Stopwatch()
    with Database(task["url"]) as db:
        summary = score(db, **task.get("score_params", {}))
    # rows of the three score tables
    written = summary["n_recommendations"] + summary["n_similarities"] + summary["n_segment_recommendations"]
    return {
        **_published(summary, written, clock.total()),
        "run_id": summary["run_id"],
        "counts": {key: summary[key] for key in summary if key.startswith("n_")},
        "parameters": _model_params(summary["parameters"]),
    }


def stage_changes(task: dict[str, Any]) -> dict[str, Any]:
    """Before the refresh: a day's delivery changing ``refresh_customers`` customers, loaded by scripts.load."""
    import shutil
    import tempfile
    from dataclasses import asdict

    from scripts.benchmarking.changes import write_changes
    from scripts.db import Database
    from scripts.load import load

    clock = Stopwatch()
    delivery = Path(tempfile.mkdtemp(prefix="refresh-changes-", dir=task["data_dir"]))
    try:
        with Database(task["url"]) as db:
            with clock.stage("write"):
                changes = write_changes(db, delivery, task["refresh_customers"], seed=task["seed"])
            summary = load(db, delivery, progress=False)
            clock.seconds["load"] = round(summary.seconds, 3)
    finally:
        shutil.rmtree(delivery, ignore_errors=True)
    return {**_loaded(summary), "parts": clock.seconds, "changes": asdict(changes)}


def stage_refresh(task: dict[str, Any]) -> dict[str, Any]:
    """scripts.score --refresh after the delivery: the changed customers scored with the run's model."""
    from scripts.db import Database
    from scripts.refresh import refresh

    clock = Stopwatch()
    with Database(task["url"]) as db:
        summary = refresh(db)
    return {
        **_published(summary, summary["n_recommendations"], clock.total()),
        "refresh_id": summary["refresh_id"],
        "run_id": summary["run_id"],
        "n_users": summary["n_users"],
    }


def stage_model(task: dict[str, Any]) -> dict[str, Any]:
    """The same hybrid in memory: export, fit, similarities, segments, top-50 for every user; no write."""
    from tqdm import tqdm

    from scripts import model
    from scripts import score as scoring
    from scripts.db import Database

    clock = Stopwatch()
    with clock.stage("read"), Database(task["url"], read_only=True) as db:
        # the parameters a run would use: tuned ones stored in the database, then the defaults
        params = scoring.params_from({**scoring.stored_params(db), **task.get("score_params", {})})
        inputs = scoring.read_inputs(db)
    with clock.stage("fit"):
        fitted = scoring.fit_model(inputs, params)
    with clock.stage("similarities"):
        sims = model.similar_items(fitted, params["similar_n"], params["similarity_content_weight"])
    with clock.stage("segments"):
        model.top_n(fitted.segment_scores.copy(), params["top_n"])
    # every user, in the scorer's own batches and threads, rows prepared as for writing
    rows = 0
    with (
        clock.stage("recommend"),
        tqdm(total=inputs.strength.shape[0], unit="user", desc="model: top-N", leave=False) as progress,
    ):
        for n_batch, frame in scoring.recommendation_batches(fitted, inputs, params, run_id=0):
            rows += len(frame)
            progress.update(n_batch)
    return {
        **_in_memory("model in memory", inputs.strength, rows, clock),
        "n_similar_rows": int((sims.index >= 0).sum()),
        "parameters": _model_params({**params, "factors_used": int(fitted.item_factors.shape[1])}),
    }


def stage_implicit(task: dict[str, Any]) -> dict[str, Any]:
    """implicit's ALS on the same matrix: export, fit, recommend top-50 for every user; no write."""
    import implicit
    import numpy as np
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    from scripts import score as scoring
    from scripts.db import Database

    clock = Stopwatch()
    # the same export as the scorer: interaction_matrix strengths, users x shoes
    with clock.stage("read"):
        with Database(task["url"], read_only=True) as db:
            inputs = scoring.read_inputs(db)
        R = sp.csr_matrix(inputs.strength, dtype=np.float32)
        del inputs
    threads = int(task["threads"])
    n_users, rows = R.shape[0], 0
    # implicit parallelises itself; a threaded BLAS underneath only oversubscribes the cores
    with threadpool_limits(1, user_api="blas"):
        als = AlternatingLeastSquares(**IMPLICIT_PARAMS, num_threads=threads)
        with clock.stage("fit"):
            als.fit(R, show_progress=sys.stderr.isatty())
        with (
            clock.stage("recommend"),
            tqdm(total=n_users, unit="user", desc="implicit: recommend", leave=False) as progress,
        ):
            for start in range(0, n_users, IMPLICIT_BATCH_USERS):
                stop = min(start + IMPLICIT_BATCH_USERS, n_users)
                ids, _ = als.recommend(
                    np.arange(start, stop), R[start:stop], N=TOP_N, filter_already_liked_items=True
                )
                rows += int((ids >= 0).sum())
                progress.update(stop - start)
    return {
        **_in_memory(f"implicit {implicit.__version__} ALS", R, rows, clock),
        "threads": threads,
        "implicit_version": implicit.__version__,
    }


def stage_serve(task: dict[str, Any]) -> dict[str, Any]:
    """p50 / p99 per customer-facing view and protocol with concurrent clients, beside the raw lookup."""
    from scripts.serve_bench import DEFAULT_CLIENTS, DEFAULT_SECONDS, serve

    results = serve(
        task["url"], task.get("serve_clients", DEFAULT_CLIENTS), task.get("serve_seconds", DEFAULT_SECONDS)
    )
    return {"rows": None, "rows_per_second": None, "serve": results}


# -- the figures stages share ----------------------------------------------------------------------
def _loaded(summary) -> dict[str, Any]:
    """A load's rows read, at rows per the loader's own seconds (validation, staging, checks, merge, commit)."""
    log.info("%s", summary)
    return {
        "rows": summary.rows_read,
        "rows_per_second": rate(summary.rows_read, summary.seconds),
        "files": {name: vars(counts) for name, counts in summary.files.items()},
    }


def _published(summary: dict[str, Any], rows: int, seconds: float) -> dict[str, Any]:
    """A scoring run's or refresh's rows, at rows per second spent writing them, and its timings."""
    timings = summary["timings"]
    return {
        "seconds": seconds,
        "rows": rows,
        "rows_per_second": rate(rows, timings.get("write", 0.0)),
        "parts": {name: value for name, value in timings.items() if name != "total"},
    }


def _in_memory(what: str, R, rows: int, clock: Stopwatch) -> dict[str, Any]:
    """An in-memory model's recommendations (none written), logged with the matrix and the parts."""
    seconds = clock.total()
    log.info(
        "%s: %d users x %d shoes, %d recommendations in %.1f s (%s)",
        what,
        R.shape[0],
        R.shape[1],
        rows,
        seconds,
        ", ".join(f"{k} {v:.1f}" for k, v in clock.seconds.items()),
    )
    matrix = {"users": int(R.shape[0]), "shoes": int(R.shape[1]), "nonzeros": int(R.nnz)}
    return {
        "seconds": seconds,
        "rows": rows,
        "rows_per_second": None,
        "parts": clock.seconds,
        "matrix": matrix,
    }


def _model_params(params: dict[str, Any]) -> dict[str, Any]:
    keys = ("top_n", "factors", "factors_used", "svd_iterations", "batch_size", "workers")
    return {key: params[key] for key in keys if key in params}


_SCORING = ["numpy", "pandas", "scipy.sparse", "duckdb", "scripts.model", "scripts.score"]
# imported by a stage's process before its clocks start (they count in its peak memory, as in a real run)
STAGE_IMPORTS = {
    "generate": ["numpy", "scripts.generate_data"],
    "load": ["numpy", "pandas", "duckdb", "scripts.load", "scripts.schema"],
    "score": _SCORING,
    "native": ["duckdb", "pyarrow", "scripts.db"],
    "model": _SCORING + ["tqdm"],
    "implicit": _SCORING + ["implicit", "implicit.cpu.als", "threadpoolctl", "tqdm"],
    "refresh": _SCORING + ["scripts.refresh"],
    "serve": ["duckdb", "scripts.serve_bench"],
    # the refresh's delivery, before it (not a stage of its own: run_stages runs it for the refresh)
    "changes": ["numpy", "pandas", "duckdb", "scripts.load", "scripts.benchmarking.changes"],
}
STAGE_FUNCTIONS = {
    "generate": stage_generate,
    "load": stage_load,
    "score": stage_score,
    "native": stage_native,
    "model": stage_model,
    "implicit": stage_implicit,
    "refresh": stage_refresh,
    "serve": stage_serve,
    "changes": stage_changes,
}
