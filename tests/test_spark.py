"""Scoring on Spark (scripts/spark_score.py): the same run as in-process scoring.

The driver's share of the fit (PureSVD, EASE and item-kNN from ``R^T R``; segment popularity from
summed votes) is checked against scripts/model.py on small matrices; then a ``local[2]`` Spark run on
the bundled data is compared with the in-process run on the same database: on DuckDB (through the
Parquet export) and on PostgreSQL (over JDBC). Without pyspark the Spark runs skip, unless
``SHOEREC_REQUIRE_SPARK=1`` (as in CI), where they fail.

The in-process reference runs with ``--svd-iterations 40``: Spark computes PureSVD's factors exactly
(an eigen-decomposition of ``R^T R``), the in-process run by a randomized SVD whose default 5 power
iterations are far from converged at the bundled data's tuned 128 factors of 300 shoes (their top-10
lists agree with the exact ones for about a quarter of the customers; at 40 iterations for > 99%).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import fresh_url

from scripts import build, model, spark_score
from scripts import score as scoring
from scripts.db import Database
from scripts.load import load
from scripts.schema import create_schema

REQUIRE_SPARK = os.environ.get("SHOEREC_REQUIRE_SPARK") == "1"
CONVERGED_SVD_ITERATIONS = 40
MASTER = "local[2]"


def _require(condition: bool, message: str) -> None:
    if condition:
        return
    if REQUIRE_SPARK:
        pytest.fail(message + " (SHOEREC_REQUIRE_SPARK=1)")
    pytest.skip(message)


def _require_pyspark() -> None:
    _require(
        importlib.util.find_spec("pyspark") is not None,
        "pyspark is not installed (.venv/bin/pip install -r requirements-spark.txt)",
    )


# -- the driver's math from the Gram matrix, against scripts/model.py ----------------------------------


def _matrix(seed: int = 7, users: int = 80, shoes: int = 30) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((users, shoes)) * (rng.random((users, shoes)) < 0.2)
    dense[:, 3] = 0  # a shoe nobody touched
    dense[5] = 0  # a user without history
    return sp.csr_matrix(dense.astype(np.float32))


def _gram(R: sp.csr_matrix) -> np.ndarray:
    R = sp.csr_matrix(R, dtype=np.float64)
    return (R.T @ R).toarray()


def test_ease_and_knn_from_the_gram_matrix_equal_the_models():
    R = _matrix()
    gram = _gram(R)
    np.testing.assert_allclose(
        spark_score.gram_ease_weights(gram, 2.0), model.ease_weights(R, 2.0), atol=1e-5
    )
    np.testing.assert_allclose(spark_score.gram_knn_weights(gram, 5), model.item_knn_weights(R, 5), atol=1e-6)


def test_item_factors_from_the_gram_matrix_are_the_exact_svd():
    R = _matrix()
    k = 6
    Q, s = spark_score.gram_item_factors(_gram(R), k, R.shape[0])
    _, exact_s, vt = np.linalg.svd(R.toarray().astype(np.float64))
    np.testing.assert_allclose(s, exact_s[:k], rtol=1e-5)
    # the same subspace (PureSVD's r Q Q^T), whatever the signs
    np.testing.assert_allclose(Q @ Q.T, vt[:k].T @ vt[:k], atol=1e-5)
    assert not Q[3].any()  # the untouched shoe
    # and what model.item_factors converges to
    converged, _ = model.item_factors(R, k, n_iter=CONVERGED_SVD_ITERATIONS, random_state=0)
    np.testing.assert_allclose(Q @ Q.T, converged @ converged.T, atol=1e-4)


@pytest.mark.parametrize("vote_exponent", [0.0, 0.5, 1.0])
def test_segment_popularity_from_summed_votes_is_exact(vote_exponent):
    R = _matrix()
    rng = np.random.default_rng(3)
    user_segment = rng.integers(0, 6, R.shape[0])
    segment_usage = np.array([0, 0, 1, 1, 2, 2])
    features = np.column_stack([segment_usage, [0, 1, 0, 1, 0, 1]])
    kwargs = {"segment_features": features, "feature_prior_users": 3.0}
    expected = model.segment_popularity(
        R, user_segment, segment_usage, 4.0, vote_exponent=vote_exponent, **kwargs
    )
    # what the partitions sum: each segment's votes and voters
    votes = spark_score.vote_rows(R, vote_exponent)
    membership = sp.csr_matrix(
        (np.ones(R.shape[0]), (user_segment, np.arange(R.shape[0]))), shape=(6, R.shape[0])
    )
    voters = np.bincount(user_segment[np.diff(votes.indptr) > 0], minlength=6)
    rows, row_segment = spark_score.popularity_surrogate((membership @ votes).toarray(), voters)
    got = model.segment_popularity(rows, row_segment, segment_usage, 4.0, vote_exponent=0.0, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_whole_users_never_splits_a_user():
    import pandas as pd

    users = np.repeat([1, 2, 3, 4, 5, 6, 7], [3, 1, 4, 2, 2, 5, 1])
    rows = pd.DataFrame({"user_id": users, "value": np.arange(len(users))})
    batches = [rows.iloc[0:2], rows.iloc[2:9], rows.iloc[9:9], rows.iloc[9:15], rows.iloc[15:]]
    chunks = list(spark_score.whole_users(iter(batches), size=2))
    assert pd.concat(chunks)["value"].tolist() == rows["value"].tolist()
    seen = [set(chunk["user_id"]) for chunk in chunks]
    assert all(len(users) <= 2 for users in seen)
    assert all(a.isdisjoint(b) for i, a in enumerate(seen) for b in seen[i + 1 :])


def test_jdbc_options_from_a_libpq_uri():
    url, properties = spark_score.jdbc_options(
        "postgresql://writer:s%40cret@db.example:6543/shoerec?options=-csearch_path%3Dt_1&sslmode=require"
    )
    assert url == "jdbc:postgresql://db.example:6543/shoerec"
    assert properties["user"] == "writer" and properties["password"] == "s@cret"
    assert properties["options"] == "-csearch_path=t_1" and properties["sslmode"] == "require"


# -- a Spark run against the in-process run on the bundled data -------------------------------------


def _live_java_children() -> list[int]:
    """Our child processes that are a running (not zombie) JVM."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        state, ppid = text[text.rindex(")") + 2 :].split()[:2]
        if comm == "java" and state != "Z" and int(ppid) == os.getpid():
            found.append(int(stat.parent.name))
    return found


def _lists(db: Database, table: str, key: str, item: str, run_id: int, n: int) -> dict:
    rows = db.query(
        f"select {key}, rank, {item} from {table} where run_id = ? and rank <= ? order by {key}, rank",
        [run_id, n],
    )
    lists: dict = {}
    for *keys, _, value in rows:
        lists.setdefault(tuple(keys), []).append(value)
    return lists


def _share_equal(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return sum(a[key] == b[key] for key in a) / len(a)


def _spark_equals_in_process(url: str) -> dict:
    """Score in-process, then on Spark; compare the two runs; return the shares of equal lists."""
    with Database(url) as db:
        reference = scoring.score(db, svd_iterations=CONVERGED_SVD_ITERATIONS)
        spark = spark_score.score(db, MASTER, driver_memory="1g", svd_iterations=CONVERGED_SVD_ITERATIONS)
        assert _live_java_children() == [], "the JVM outlived the Spark run"
        assert spark["status"] == "complete"
        assert db.scalar("select run_id from latest_model_run") == spark["run_id"]
        for key in ("n_users", "n_shoes", "n_interactions", "n_recommendations", "n_similarities"):
            assert spark[key] == reference[key], key
        assert spark["n_segment_recommendations"] == reference["n_segment_recommendations"]
        shares = {
            table: _share_equal(
                _lists(db, table, key, item, reference["run_id"], n),
                _lists(db, table, key, item, spark["run_id"], n),
            )
            for table, key, item, n in (
                ("recommendations", "user_id", "shoe_id", 10),
                ("shoe_similarities", "shoe_id", "similar_shoe_id", 10),
                ("segment_recommendations", "primary_usage, gender, age_band", "shoe_id", 10),
            )
        }
        # cold customers' parts arrive as nulls, as in-process (no NaN through Parquet or COPY)
        is_nan = "cf_score = 'NaN'" if db.is_postgres else "isnan(cf_score)"
        nulls = db.query(
            "select run_id, count(*) filter (where cf_score is null),"
            f" count(*) filter (where {is_nan}) from recommendations"
            " where run_id in (?, ?) group by run_id order by run_id",
            [reference["run_id"], spark["run_id"]],
        )
        assert nulls[0][1:] == nulls[1][1:] and nulls[1][2] == 0, nulls
    return shares


def _assert_same_results(shares: dict) -> None:
    assert shares["recommendations"] >= 0.99, shares
    assert shares["shoe_similarities"] >= 0.99, shares
    assert shares["segment_recommendations"] >= 0.99, shares


def test_spark_run_on_duckdb_equals_the_in_process_run(bundled_duckdb_url, tmp_path):
    _require_pyspark()
    path = tmp_path / "shoerec.duckdb"
    shutil.copyfile(bundled_duckdb_url, path)
    _assert_same_results(_spark_equals_in_process(str(path)))


def test_spark_run_on_postgres_over_jdbc_equals_the_in_process_run(bundled_duckdb_url, request, tmp_path):
    _require_pyspark()
    jar = os.environ.get(spark_score.JDBC_JAR_ENV, spark_score.DEFAULT_JDBC_JAR)
    _require(
        Path(jar).exists(), f"no PostgreSQL JDBC driver at {jar} (apt-get install -y libpostgresql-jdbc-java)"
    )
    url = fresh_url("postgres", request, tmp_path)
    # the bundled data and the DuckDB build's settings and tuned parameters
    with Database(url) as db, Database(bundled_duckdb_url, read_only=True) as source:
        create_schema(db)
        load(db, build.BUNDLED_DATA_DIR)
        with db.transaction():
            db.execute("delete from settings")
            db.insert_df("settings", source.query_df("select * from settings"))
            for table in ("evaluation_runs", "tuned_parameters"):
                db.insert_df(table, source.query_df(f"select * from {table}"))
    _assert_same_results(_spark_equals_in_process(url))
