"""The scoring run of scripts.score, computed on Apache Spark (``python -m scripts.score --spark MASTER``).

    python -m scripts.score --spark 'local[2]' [--db ...] [any option of scripts.score]
    python -m scripts.score --spark spark://host:7077 --db postgresql://user@host/db

The same run as in-process scoring, for a customer base larger than one machine:

read    ``interaction_matrix`` and ``user_segments``: from PostgreSQL over JDBC, partitioned by
        ``user_id`` ranges (PostgreSQL's driver jar: Debian's libpostgresql-jdbc-java, or
        ``$SHOEREC_JDBC_JAR``); from a DuckDB database through Parquet files that the driver
        exports first (scripts.export), or from a lake's export (``$SHOEREC_SPARK_INPUT``). The
        shoes, age bands and settings are small: the driver reads them from the database.
fit     one pass over the partitions sums the shoes x shoes Gram matrix ``G = R^T R`` and the
        segments' popularity votes; the driver eigen-decomposes G (PureSVD's ``Q``, exactly: the
        in-process run uses a randomized SVD, equal up to sign and rotation within near-equal
        singular values), derives EASE and item-kNN from G, and assembles the same
        ``model.HybridModel`` as ``scripts.score.fit_model`` with scripts/model.py's functions. The
        matrix itself is never collected (only the first 2,000 users with history, which
        ``model.cf_operator`` measures its score ranges on).
score   every partition of customers is scored by ``model.recommend`` (``mapInPandas``, batches of
        ``--batch-size`` users, through ``scripts.score.recommendation_batches``).
write   PostgreSQL: each partition COPYs its rows into the new run (its own transaction, idempotent
        if Spark retries the task); DuckDB: partitions write Parquet files that the driver inserts.
        Then the driver publishes in one transaction as in-process scoring does (similarities,
        segment lists, run 'complete', pruning): readers see the old run or the new one, never a
        part. A run that fails deletes its rows and is marked failed.

Environment: ``SHOEREC_SPARK_DIR`` (a directory every executor and the driver can reach; default a
temporary one) holds the Parquet files of a DuckDB run; ``SHOEREC_SPARK_PARTITIONS`` the number of
partitions (default: 4 per core of the cluster). Spark itself is configured as usual
(``spark-defaults.conf``, ``SPARK_CONF_DIR``); the executors need this repository and its Python
environment (``PYSPARK_PYTHON``; the driver's own interpreter for a ``local`` master).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from scripts import export, model, serving
from scripts import score as scoring
from scripts.cli import reports_database_errors
from scripts.clock import Stopwatch
from scripts.db import Database, describe, require_built

log = logging.getLogger(__name__)

JDBC_JAR_ENV = "SHOEREC_JDBC_JAR"
DEFAULT_JDBC_JAR = "/usr/share/java/postgresql.jar"  # Debian's libpostgresql-jdbc-java
WORK_DIR_ENV = "SHOEREC_SPARK_DIR"
INPUT_ENV = "SHOEREC_SPARK_INPUT"
PARTITIONS_ENV = "SHOEREC_SPARK_PARTITIONS"
CF_SAMPLE_USERS = 2000  # model.cf_operator's default sample

RECOMMENDATION_SCHEMA = (
    "run_id long, user_id long, rank int, shoe_id long, score double, cf_score double,"
    " content_score double, cf_weight double, popularity_share double, reason_shoe_id long"
)
WRITTEN_SCHEMA = "users long, rows long"
PARTIAL_SCHEMA = "users long, nnz long, gram binary, votes binary, voters binary"


# ---------------------------------------------------------------------------------------------
# The item side from the Gram matrix (the driver's share of the fit)
# ---------------------------------------------------------------------------------------------


def gram_item_factors(gram: np.ndarray, factors: int, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """PureSVD's item factors from ``G = R^T R``: the top-k eigenvectors of G are R's right singular vectors.

    ``R = U S Q^T`` gives ``G = Q S^2 Q^T``, so the k largest eigenpairs of G are ``Q`` and ``S^2``
    exactly (:func:`scripts.model.item_factors` finds them by a randomized SVD of R: the same
    subspace, up to sign and rotation within near-equal singular values, to which ``r Q Q^T`` is
    blind). Same conventions: directions below ``1e-6`` of the largest singular value are dropped,
    a shoe nobody touched has a zero row.

    Parameters
    ----------
    gram : ndarray of shape (n_shoes, n_shoes), float64
        ``R^T R`` of the interaction strengths.
    factors : int
        k; at most ``min(n_users, n_shoes)`` are used.
    n_users : int
        Rows of R.

    Returns
    -------
    Q : ndarray of shape (n_shoes, k'), float32
    singular_values : ndarray of shape (k',), float32
    """
    n_shoes = gram.shape[0]
    k = min(int(factors), n_users, n_shoes)
    if k < 1 or not np.any(np.diag(gram) > 0):
        return np.zeros((n_shoes, 0), dtype=np.float32), np.zeros(0, dtype=np.float32)
    # the k largest eigenpairs (ascending), largest first
    values, vectors = scipy.linalg.eigh(gram, subset_by_index=[n_shoes - k, n_shoes - 1])
    values, vectors = values[::-1], vectors[:, ::-1]
    singular = np.sqrt(np.maximum(values, 0))
    # drop null directions, as item_factors does
    keep = singular > singular[0] * 1e-6
    Q = np.ascontiguousarray(vectors[:, keep], dtype=np.float32)
    # a shoe nobody touched: an exact zero row
    Q[np.diag(gram) == 0] = 0.0
    return Q, singular[keep].astype(np.float32)


def gram_ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE's B from ``G = R^T R``: :func:`scripts.model.ease_weights` without R.

    ``lambda = l2 * mean(diag G)``, ``P = (G + lambda I)^-1``, ``B_ij = -P_ij / P_jj``, ``B_jj = 0``;
    the inverse through the same float32 Cholesky (float64 if float32 cannot factor G).
    """
    gram = np.array(gram, dtype=np.float64)
    n_shoes = gram.shape[0]
    diagonal = np.arange(n_shoes)
    # ridge relative to the mean diagonal
    scale = float(gram[diagonal, diagonal].mean()) if n_shoes else 0.0
    gram[diagonal, diagonal] += float(l2) * (scale if scale > 0 else 1.0)
    # P = (G + lambda I)^-1, as model.ease_weights computes it
    precision = model._spd_inverse(gram.astype(np.float32))
    if precision is None:
        precision = model._spd_inverse(gram)
    # B = -P_ij / P_jj, zero diagonal
    weights = -precision / np.diag(precision)[None, :]
    weights[diagonal, diagonal] = 0.0
    return weights.astype(np.float32)


def gram_knn_weights(gram: np.ndarray, neighbours: int) -> np.ndarray:
    """Item-kNN weights from ``G = R^T R``: :func:`scripts.model.item_knn_weights` without R.

    ``cos(R[:, i], R[:, j]) = G_ij / sqrt(G_ii G_jj)``; each column keeps its ``neighbours`` largest,
    the diagonal is 0.
    """
    # unit columns: divide by the column norms sqrt(G_ii)
    norms = np.sqrt(np.diag(gram))
    inverse = 1 / np.where(norms > 0, norms, 1)
    cosine = (gram * inverse[:, None] * inverse[None, :]).astype(np.float32)
    return model.nearest_neighbours(cosine, neighbours)


def vote_rows(votes: sp.csr_matrix, vote_exponent: float) -> sp.csr_matrix:
    """The popularity votes of :func:`scripts.model.segment_popularity`: ``v_u = r_u / (sum r_u)^e``."""
    votes = sp.csr_matrix(votes, dtype=np.float64)
    totals = np.asarray(votes.sum(axis=1)).ravel()
    divisor = np.where(totals > 0, totals, 1) ** float(vote_exponent)
    return sp.csr_matrix(sp.diags(1 / divisor) @ votes)


def popularity_surrogate(vote_sums: np.ndarray, voters: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows that :func:`scripts.model.segment_popularity` (``vote_exponent=0``) reads as the real votes.

    segment_popularity depends on the users only through each segment's sum of votes and its number
    of voters (users with history). For segment s with n_s voters this gives n_s rows: the first
    carries the segment's whole sum, the others one tiny value (``sum * 2^-80 / n_s`` on the
    segment's largest cell) that rounds away in that sum in every order of addition, so the sums
    are exact and each row counts as a voter. O(voters) memory, no O(interactions).

    Parameters
    ----------
    vote_sums : ndarray of shape (n_segments, n_shoes), float64
        Sum of the votes of each segment's users.
    voters : ndarray of shape (n_segments,), int
        Users with history per segment.

    Returns
    -------
    rows : csr_matrix of shape (sum(voters), n_shoes), float64
    row_segment : ndarray of shape (sum(voters),), int64
    """
    n_segments, n_shoes = vote_sums.shape
    voters = np.asarray(voters, dtype=np.int64)
    blocks, segments = [], []
    for s in np.flatnonzero(voters > 0):
        carrier = sp.csr_matrix(vote_sums[s][None, :])
        top = int(np.argmax(vote_sums[s]))
        tiny = np.ldexp(vote_sums[s, top], -80) / voters[s]
        fillers = sp.csr_matrix(
            (np.full(voters[s] - 1, tiny), (np.arange(voters[s] - 1), np.full(voters[s] - 1, top))),
            shape=(voters[s] - 1, n_shoes),
        )
        blocks += [carrier, fillers]
        segments.append(np.full(voters[s], s, dtype=np.int64))
    if not blocks:
        return sp.csr_matrix((0, n_shoes), dtype=np.float64), np.zeros(0, dtype=np.int64)
    return sp.csr_matrix(sp.vstack(blocks, format="csr")), np.concatenate(segments)


def assemble_model(
    gram: np.ndarray,
    n_users: int,
    sample: sp.csr_matrix,
    vote_sums: np.ndarray,
    voters: np.ndarray,
    shoe_fields: dict[str, list],
    segments: pd.DataFrame,
    params: dict[str, Any],
) -> model.HybridModel:
    """The ``model.HybridModel`` of ``scripts.score.fit_model``, from what the partitions summed.

    Parameters
    ----------
    gram : ndarray (n_shoes, n_shoes), float64
        ``R^T R``.
    n_users : int
        Users scored (rows of R).
    sample : csr_matrix (<= 2000, n_shoes)
        Rows of the first users with history (what ``model.cf_operator`` measures ranges on).
    vote_sums, voters
        Each segment's sum of popularity votes (:func:`vote_rows`) and number of voters.
    shoe_fields : dict
        Shoe attributes, in shoe order.
    segments : DataFrame
        The segment grid (as ``scripts.score.read_inputs`` builds it).
    params : dict
        The run's parameters.
    """
    # collaborative factors (also the CF half of the shoe similarities)
    Q, s = gram_item_factors(gram, params["factors"], n_users)
    # the CF operator: PureSVD alone stays factored, otherwise one blended shoe x shoe matrix
    operator = None
    if params["ease_weight"] > 0 or params["knn_weight"] > 0:
        used = [
            (build, weight)
            for build, weight in (
                (lambda: Q @ Q.T, params["svd_weight"]),
                (lambda: gram_ease_weights(gram, params["ease_l2"]), params["ease_weight"]),
                (lambda: gram_knn_weights(gram, params["knn_neighbours"]), params["knn_weight"]),
            )
            if weight > 0
        ]
        operator = model.cf_operator(sample, [build() for build, _ in used], [w for _, w in used])
    # content vectors
    content = sp.csr_matrix(model.item_features(shoe_fields, params["field_weights"]), dtype=np.float32)
    # cold start: segment popularity (from the summed votes) and its content
    rows, row_segment = popularity_surrogate(vote_sums, voters)
    popularity = model.segment_popularity(
        rows,
        row_segment,
        segments["usage_code"].to_numpy(),
        params["segment_prior_users"],
        segment_features=segments[["usage_code", "gender_code", "age_band_code"]].to_numpy(np.int64),
        feature_prior_users=params["feature_prior_users"],
        vote_exponent=0.0,  # the rows are votes already
    )
    segment_scores, _, _ = model.cold_start_scores(popularity, content, params["popularity_blend"])
    # the two item x item matrices side by side, as model.fit lays them out
    grams = np.empty((content.shape[0], content.shape[0], 2), dtype=np.float32)
    grams[..., 0] = Q @ Q.T if operator is None else operator.T
    dense = content.toarray()
    grams[..., 1] = dense @ dense.T
    return model.HybridModel(
        item_factors=Q,
        singular_values=s,
        content=content,
        grams=grams,
        cf_k=float(params["cf_k"]),
        prior_k=float(params["prior_k"]),
        segment_scores=segment_scores,
        cf_operator=operator,
    )


# ---------------------------------------------------------------------------------------------
# Partitions: whole users, as sparse rows
# ---------------------------------------------------------------------------------------------


def whole_users(batches: Iterator[pd.DataFrame], size: int) -> Iterator[pd.DataFrame]:
    """Rows of at most ``size`` users at a time, every user's rows together.

    ``batches`` are a partition's rows sorted by ``user_id`` (Arrow cuts them anywhere); the rows of
    the last user of a batch wait for the next batch.
    """
    carry = None
    for batch in batches:
        rows = batch if carry is None else pd.concat([carry, batch], ignore_index=True)
        if rows.empty:
            continue
        users = rows["user_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        # the complete users (all but the last), `size` at a time
        for first in range(0, len(starts) - 1, size):
            last = min(first + size, len(starts) - 1)
            yield rows.iloc[starts[first] : starts[last]]
        carry = rows.iloc[starts[-1] :]
    if carry is not None and not carry.empty:
        yield carry  # the partition's last user


def chunk_inputs(rows: pd.DataFrame, shoe_ids: np.ndarray, segments: pd.DataFrame) -> scoring.Inputs:
    """A ``scripts.score.Inputs`` of the users in ``rows`` (the same matrices ``read_inputs`` builds).

    ``rows``: user_id, segment, col (shoe position; null for a user without pairs), strength,
    is_purchased, is_wishlisted, sorted by user_id.
    """
    user_ids, first = np.unique(rows["user_id"].to_numpy(np.int64), return_index=True)
    user_segment = rows["segment"].to_numpy(np.int64)[first]
    paired = rows["col"].notna().to_numpy()
    rows = rows[paired]
    user_pos = np.searchsorted(user_ids, rows["user_id"].to_numpy(np.int64))
    cols = rows["col"].to_numpy(np.int64)
    shape = (len(user_ids), len(shoe_ids))
    strength = rows["strength"].to_numpy(np.float32)

    def matrix(mask: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((values[mask], (user_pos[mask], cols[mask])), shape=shape)

    bought = rows["is_purchased"].to_numpy(bool)
    wished = rows["is_wishlisted"].to_numpy(bool)
    ones = np.ones(len(rows), np.float32)
    return scoring.Inputs(
        user_ids=user_ids,
        shoe_ids=shoe_ids,
        strength=matrix(strength > 0, strength),
        purchased=matrix(bought, ones),
        wishlisted=matrix(wished, ones),
        user_segment=user_segment,
        segments=segments,
        shoe_fields={},
        reference_date=None,
    )


def partial_sums(
    batches: Iterator[pd.DataFrame],
    shoe_ids: np.ndarray,
    segments: pd.DataFrame,
    params: dict[str, Any],
) -> Iterator[pd.DataFrame]:
    """One partition's share of the fit: users, pairs, ``R^T R`` and the segments' votes (one row)."""
    from threadpoolctl import threadpool_limits

    n_shoes, n_segments = len(shoe_ids), len(segments)
    gram = np.zeros((n_shoes, n_shoes), dtype=np.float64)
    vote_sums = np.zeros((n_segments, n_shoes), dtype=np.float64)
    voters = np.zeros(n_segments, dtype=np.int64)
    n_users = nnz = 0
    with threadpool_limits(1):  # one core per task
        for rows in whole_users(batches, params["batch_size"]):
            inputs = chunk_inputs(rows, shoe_ids, segments)
            R = sp.csr_matrix(inputs.strength, dtype=np.float64)
            n_users += R.shape[0]
            nnz += R.nnz
            # the Gram matrix of the shoes, summed over users
            gram += (R.T @ R).toarray()
            # votes per segment, and voters (users with history) per segment
            votes = vote_rows(scoring.popularity_votes(inputs, params), params["vote_exponent"])
            membership = sp.csr_matrix(
                (np.ones(R.shape[0]), (inputs.user_segment, np.arange(R.shape[0]))),
                shape=(n_segments, R.shape[0]),
            )
            vote_sums += (membership @ votes).toarray()
            voters += np.bincount(
                inputs.user_segment[np.diff(votes.indptr) > 0], minlength=n_segments
            ).astype(np.int64)
    yield pd.DataFrame(
        {
            "users": [n_users],
            "nnz": [nnz],
            "gram": [gram.tobytes()],
            "votes": [vote_sums.tobytes()],
            "voters": [voters.tobytes()],
        }
    )


def score_partition(
    batches: Iterator[pd.DataFrame],
    fitted: Any,
    shoe_ids: np.ndarray,
    segments: pd.DataFrame,
    params: dict[str, Any],
    run_id: int,
    db_url: str | None,
) -> Iterator[pd.DataFrame]:
    """Score one partition's users with ``model.recommend``.

    Without ``db_url``, yields the rows of ``recommendations``; with a PostgreSQL ``db_url``, COPYs
    them into the run in one transaction (first deleting what an earlier attempt of this task wrote
    for these users) and yields one row of counts.
    """
    from threadpoolctl import threadpool_limits

    fitted = fitted.value if hasattr(fitted, "value") else fitted  # a broadcast variable
    one_batch = {**params, "workers": 1}
    database = Database(db_url) if db_url else None
    users = written = 0
    try:
        if database is not None:
            database.execute("begin")
        with threadpool_limits(1):  # one core per task
            for rows in whole_users(batches, params["batch_size"]):
                inputs = chunk_inputs(rows, shoe_ids, segments)
                for n_users, frame in scoring.recommendation_batches(fitted, inputs, one_batch, run_id):
                    users += n_users
                    if database is None:
                        # NaN (a cold user's cf_score) must arrive as null, as it does through COPY
                        yield frame.astype(
                            {c: "Float64" for c in frame.columns if frame[c].dtype.kind == "f"}
                        )
                        continue
                    # idempotent if Spark runs this task again: these users' rows of this run go first
                    database.execute(
                        "delete from recommendations where run_id = ? and user_id = any(?)",
                        [run_id, inputs.user_ids.tolist()],
                    )
                    written += database.insert_df("recommendations", frame)
        if database is not None:
            database.execute("commit")
            yield pd.DataFrame({"users": [users], "rows": [written]})
    finally:
        if database is not None:
            database.close()  # without a commit, the transaction rolls back


# ---------------------------------------------------------------------------------------------
# Spark session and reading
# ---------------------------------------------------------------------------------------------


def start_session(master: str, driver_memory: str | None = None):
    """A SparkSession on ``master`` with PostgreSQL's JDBC driver and this interpreter for Python workers."""
    # the workers of a local master run the driver's interpreter (its venv); a cluster sets its own
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName("shoerec-score")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        # Arrow batches of about --batch-size users (whole_users cuts them at user boundaries)
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
    )
    jar = os.environ.get(JDBC_JAR_ENV, DEFAULT_JDBC_JAR)
    if Path(jar).exists():
        builder = builder.config("spark.jars", jar)
    if driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stop_session(spark) -> None:
    """Stop Spark and its JVM: ``spark.stop()``, then the py4j gateway and the JVM process itself."""
    context = spark.sparkContext
    gateway = getattr(context, "_gateway", None)
    process = getattr(gateway, "proc", None)
    spark.stop()
    if gateway is not None:
        gateway.shutdown()
    if process is not None:
        # the JVM of a local driver exits when its stdin closes; reaped, so no zombie is left either
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=15)
        except Exception:
            process.kill()
            process.wait(timeout=10)
    from pyspark import SparkContext

    SparkContext._gateway = None  # a later session starts a new JVM
    SparkContext._jvm = None


def jdbc_options(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI as Spark's JDBC URL and connection properties (user, password, search path, sslmode)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    port = parts.port or 5432
    database = unquote(parts.path.lstrip("/")) or unquote(parts.username or "postgres")
    properties = {"driver": "org.postgresql.Driver", "user": unquote(parts.username or "postgres")}
    if parts.password:
        properties["password"] = unquote(parts.password)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    # libpq parameters pgjdbc knows under the same name (options carries e.g. -csearch_path=...)
    for key in ("options", "sslmode", "application_name", "connect_timeout"):
        if key in query:
            properties[{"connect_timeout": "connectTimeout"}.get(key, key)] = query[key]
    return f"jdbc:postgresql://{host}:{port}/{database}", properties


def segment_grid(usages: list[str], genders: list[str], bands: list[str]) -> pd.DataFrame:
    """The segment grid of ``scripts.score.read_inputs``: usage x gender x band (+ unknown), with codes."""
    usages = sorted(usages)
    genders = sorted(set(genders) | {scoring.UNKNOWN})
    bands = [band for band in bands if band != scoring.UNKNOWN] + [scoring.UNKNOWN]
    grid = pd.MultiIndex.from_product([usages, genders, bands], names=["primary_usage", "gender", "age_band"])
    segments = grid.to_frame(index=False)
    for column, values, code in (
        ("primary_usage", usages, "usage_code"),
        ("gender", genders, "gender_code"),
        ("age_band", bands, "age_band_code"),
    ):
        segments[code] = segments[column].map({v: i for i, v in enumerate(values)}).astype(np.int64)
    return segments


def read_sources(spark, db: Database, work_dir: Path, partitions: int):
    """(users, matrix) as Spark DataFrames: JDBC from PostgreSQL, else Parquet (exported now, or a lake's)."""
    lake = os.environ.get(INPUT_ENV)
    if lake:
        log.info("reading the Parquet export in %s", lake)
        return (
            spark.read.parquet(str(export.parquet_path(lake, "user_segments"))),
            spark.read.parquet(str(export.parquet_path(lake, "interaction_matrix"))),
        )
    if not db.is_postgres:
        export.export(db, work_dir / "input")
        return (
            spark.read.parquet(str(export.parquet_path(work_dir / "input", "user_segments"))),
            spark.read.parquet(str(export.parquet_path(work_dir / "input", "interaction_matrix"))),
        )
    url, properties = jdbc_options(db.url)
    low, high = db.query("select min(user_id), max(user_id) from users")[0]
    frames = []
    for name in ("user_segments", "interaction_matrix"):
        frames.append(
            spark.read.jdbc(
                url,
                f"({export.QUERIES[name]}) as {name}",
                column="user_id",
                lowerBound=int(low or 0),
                upperBound=int(high or 0) + 1,
                numPartitions=partitions,
                properties={**properties, "fetchsize": "10000"},
            )
        )
    return tuple(frames)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def score(db: Database, master: str, driver_memory: str | None = None, **overrides: Any) -> dict[str, Any]:
    """``scripts.score.score`` on Spark: fit, score everyone and publish a new complete run.

    Same parameters (stored tuning, then ``overrides``) and the same run bookkeeping; the summary
    has the same keys, plus ``spark`` (master, partitions, cores).
    """
    params = scoring.params_from(
        {**scoring.stored_params(db), **{k: v for k, v in overrides.items() if v is not None}}
    )
    scoring.refuse_empty(db)
    # one run at a time, in-process or on Spark (scripts.score.RUN_LOCK)
    with db.session_lock(scoring.RUN_LOCK):
        clock = Stopwatch()
        scoring.fail_abandoned(db)
        run_id = scoring._start_run(db, params)
        scoring._checkpoint("after_running_row")
        shared = os.environ.get(WORK_DIR_ENV)
        work_dir = (
            Path(shared) / f"run-{run_id}" if shared else Path(tempfile.mkdtemp(prefix="shoerec-spark-"))
        )
        spark = None
        try:
            with clock.stage("spark_start"):
                spark = start_session(master, driver_memory)
            summary = _spark_run(spark, db, run_id, params, clock, work_dir)
        except BaseException as exc:
            if db.is_postgres:  # rows the partitions committed; never visible (the run is not complete)
                try:
                    db.execute("delete from recommendations where run_id = ?", [run_id])
                except Exception:
                    log.exception("could not delete the rows of failed run %d", run_id)
            scoring._mark_failed(db, run_id, exc)
            raise
        finally:
            if spark is not None:
                stop_session(spark)
            shutil.rmtree(work_dir, ignore_errors=True)
    scoring.log_complete(summary, f"on Spark ({master})")
    # PostgreSQL: the customer views' read model, for the run now published (served live until then)
    serving.refresh(db)
    return summary


def _spark_run(
    spark, db: Database, run_id: int, params: dict[str, Any], clock: Any, work_dir: Path
) -> dict[str, Any]:
    from pyspark.sql import functions as F

    cores = spark.sparkContext.defaultParallelism
    partitions = int(os.environ.get(PARTITIONS_ENV) or 4 * cores)
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    with clock.stage("read"):
        # small tables, on the driver
        shoes = db.query_df(f"select shoe_id, {', '.join(scoring.SHOE_FIELDS)} from shoes order by shoe_id")
        bands = [band for (band,) in db.query("select age_band from age_bands order by min_age, age_band")]
        reference_date = db.scalar("select reference_date from current_settings")
        shoe_ids = shoes["shoe_id"].to_numpy(np.int64)
        shoe_fields = {field: shoes[field].tolist() for field in scoring.SHOE_FIELDS}
        users, matrix = read_sources(spark, db, work_dir, partitions)
        # the segment grid from the users' usages and genders (small), each user's segment code
        levels = users.select("primary_usage", "gender", "age_band").distinct().toPandas()
        segments = segment_grid(
            levels["primary_usage"].unique().tolist(), levels["gender"].unique().tolist(), bands
        )
        if not set(levels["age_band"]) <= set(segments["age_band"]):
            raise ValueError("a user's segment is missing from the segment grid (age band not in age_bands?)")
        grid = spark.createDataFrame(
            segments[["primary_usage", "gender", "age_band"]].assign(segment=np.arange(len(segments)))
        )
        users = users.join(F.broadcast(grid), ["primary_usage", "gender", "age_band"], "inner")
        # pairs of known users and shoes; users without pairs keep one row with a null shoe
        shoe_index = spark.createDataFrame(
            pd.DataFrame({"shoe_id": shoe_ids, "col": np.arange(len(shoe_ids))})
        )
        pairs = matrix.join(F.broadcast(shoe_index), "shoe_id", "inner").drop("shoe_id")
        rows = (
            users.select("user_id", "segment")
            .join(pairs, "user_id", "left")
            .repartition(partitions, "user_id")
            .sortWithinPartitions("user_id", "col")
            .select("user_id", "segment", "col", "strength", "is_purchased", "is_wishlisted")
            .cache()
        )
    scoring._checkpoint("after_read")

    with clock.stage("fit"):
        # one pass: R^T R and the segments' votes, summed over partitions (tree-wise on the executors)
        n_shoes, n_segments = len(shoe_ids), len(segments)

        def partials(batches):
            return partial_sums(batches, shoe_ids, segments, params)

        def unpack(row):
            return (
                row.users,
                row.nnz,
                np.frombuffer(row.gram, dtype=np.float64).reshape(n_shoes, n_shoes),
                np.frombuffer(row.votes, dtype=np.float64).reshape(n_segments, n_shoes),
                np.frombuffer(row.voters, dtype=np.int64),
            )

        def add(a, b):
            return tuple(x + y for x, y in zip(a, b, strict=True))

        n_users, n_interactions, gram, vote_sums, voters = (
            rows.mapInPandas(partials, PARTIAL_SCHEMA).rdd.map(unpack).treeReduce(add, depth=2)
        )
        # the rows model.cf_operator measures its ranges on: the first users with history
        sample = _first_users_with_history(rows, CF_SAMPLE_USERS, shoe_ids, segments)
        fitted = assemble_model(gram, n_users, sample, vote_sums, voters, shoe_fields, segments, params)
        del gram
    scoring._checkpoint("after_fit")
    with clock.stage("similarities"):
        sims = model.similar_items(fitted, params["similar_n"], params["similarity_content_weight"])
        similarities = scoring.similarity_frame(run_id, shoe_ids, sims)
    scoring._checkpoint("after_similarities")
    with clock.stage("segments"):
        segment_index, segment_value = model.top_n(fitted.segment_scores.copy(), params["top_n"])
        segment_rows = scoring.segment_frame(run_id, segments, shoe_ids, segment_index, segment_value)
    scoring._checkpoint("after_segments")

    with clock.stage("score"):
        broadcast = spark.sparkContext.broadcast(fitted)
        db_url = db.url if db.is_postgres else None

        def score_fn(batches):
            return score_partition(batches, broadcast, shoe_ids, segments, params, run_id, db_url)

        if db.is_postgres:
            # each partition COPYs its rows into the run (invisible until the run is complete)
            counts = rows.mapInPandas(score_fn, WRITTEN_SCHEMA).agg(F.sum("users"), F.sum("rows")).first()
            n_scored, n_recommendations = int(counts[0] or 0), int(counts[1] or 0)
            staged = None
        else:
            # partitions write Parquet; the driver's DuckDB connection inserts it when it publishes
            staged = work_dir / "recommendations"
            rows.mapInPandas(score_fn, RECOMMENDATION_SCHEMA).write.mode("overwrite").parquet(str(staged))
            n_scored = n_users
        rows.unpersist()
        broadcast.destroy()
    if n_scored != n_users:
        raise RuntimeError(f"scored {n_scored} users, expected {n_users}")

    with db.transaction():
        with clock.stage("write"):
            db.insert_df("shoe_similarities", similarities)
            scoring._checkpoint("similarities_written")
            db.insert_df("segment_recommendations", segment_rows)
            scoring._checkpoint("segments_written")
            if staged is not None:
                columns = ", ".join(_REC_COLUMNS)
                pattern = str(staged / "*.parquet")
                n_recommendations = int(db.scalar("select count(*) from read_parquet(?)", [pattern]))
                db.execute(
                    f"insert into recommendations ({columns}) select {columns} from read_parquet(?)",
                    [pattern],
                )
        with clock.stage("publish"):
            parameters = {
                **params,
                "factors_used": int(fitted.item_factors.shape[1]),
                "spark": {"master": spark.sparkContext.master, "cores": cores, "partitions": partitions},
            }
            counts = {
                "n_users": n_users,
                "n_shoes": n_shoes,
                "n_interactions": int(n_interactions),
                "n_recommendations": n_recommendations,
            }
            scoring.mark_complete(db, run_id, parameters, counts, clock)
            scoring._checkpoint("run_marked_complete")
            pruned = scoring._prune(db, params["keep_runs"])
            scoring._checkpoint("before_commit")
        commit_started = time.perf_counter()
    scoring._checkpoint("committed")
    return scoring.run_summary(
        run_id,
        counts,
        len(similarities),
        len(segment_rows),
        pruned,
        reference_date,
        parameters,
        clock,
        commit_started,
    )


_REC_COLUMNS = [column.split()[0] for column in RECOMMENDATION_SCHEMA.split(",")]


def _first_users_with_history(
    rows, count: int, shoe_ids: np.ndarray, segments: pd.DataFrame
) -> sp.csr_matrix:
    """Strength rows of the ``count`` smallest user ids with history (the in-process run's sample)."""
    from pyspark.sql import functions as F

    positive = rows.filter(F.col("col").isNotNull() & (F.col("strength") > 0))
    first = positive.select("user_id").distinct().orderBy("user_id").limit(count)
    chosen = positive.join(F.broadcast(first), "user_id", "inner").toPandas().sort_values(["user_id", "col"])
    return chunk_inputs(chosen, shoe_ids, segments).strength


@reports_database_errors
def main(args: Any, overrides: dict[str, Any]) -> int:
    """``scripts.score --spark MASTER``: the run on Spark; exit code as scripts.score's."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        log.error("--spark needs pyspark: .venv/bin/pip install -r requirements-spark.txt")
        return 2
    with Database(args.db, must_exist=True) as db:
        require_built(db)
        log.info("scoring %s on Spark %s", describe(db.url), args.spark)
        score(db, args.spark, **overrides)  # publishes a complete run or raises
    return 0
