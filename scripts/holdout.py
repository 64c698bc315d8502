"""End-to-end check of the main job on held-out events, as a retailer would judge it.

    python -m scripts.holdout --data-dir DIR [--db PATH] [--test-share 0.2] [--cold-share 0.1]
                              [--seed 7] [--reference-date last|today|YYYY-MM-DD] [--keep-dir DIR]

What runs: the three CSV files of --data-dir (users.csv, shoes.csv, interactions.csv, the data
contract) are split per customer in time order: a share --cold-share of the customers with events
is held out entirely (cold), and every other customer's last --test-share of events (by timestamp,
ties in file order; floor(share x n + 0.5) events) is held out too. The training rows are written
as CSV files in the same contract (users.csv and shoes.csv copied byte for byte, interactions.csv
cell for cell) into a temporary folder (or --keep-dir), and the main job runs on them exactly as a
retailer runs it (`scripts.build.build`: load, evaluate and tune on the training rows, score) in a
fresh DuckDB database (a temporary file, or --db). The top 10 of the view user_recommendations per
customer is then scored against the held-out wishlists and purchases (minus shoes the customer
bought in the training rows) with NDCG@10 and hit rate@10, for warm and cold customers apart,
beside peers fitted on the same training rows (binary; with the exclusions the build chose for ours:
the shoes a customer bought, or every shoe of their history when it tuned exclude_seen): popularity, PureSVD (32 factors), EASE (lambda 300), ALS (64 factors) and BM25 item-kNN
on warm customers, popularity on cold ones. One table is printed: model, group, customers, NDCG@10
with its 95% bootstrap interval, hit rate@10, and the paired 95% interval of ours minus the model.

The reference date of the build: `last` (default) is the last day (UTC) of the training rows,
`today` views the data as a retailer with old data would, or an ISO date.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scripts import peers
from scripts.build import build
from scripts.cli import base_parser, setup_logging
from scripts.db import Database, DatabaseError
from scripts.load import LoadError
from scripts.metrics import bootstrap_interval, paired_bootstrap_interval, per_user_metric

log = logging.getLogger(__name__)

K = 10
OURS = "ours"
RELEVANT_TYPES = ("add_to_wishlist", "purchase")
FILES = ("users.csv", "shoes.csv", "interactions.csv")

# the peers and their options; cold customers have no history, so only popularity applies to them
PEER_OPTIONS: dict[str, dict[str, object]] = {
    "popularity": {},
    "puresvd": {"factors": 32},
    "ease": {"lam": 300.0},
    "als": {"factors": 64},
    "bm25_knn": {},
}
COLD_PEERS = ("popularity",)

__all__ = [
    "COLD_PEERS",
    "K",
    "PEER_OPTIONS",
    "build_recommendations",
    "last_day",
    "main",
    "peer_lists",
    "read_csv",
    "relevant_items",
    "report",
    "run",
    "score_lists",
    "split_files",
    "training_matrix",
    "write_training_files",
]


def read_csv(path: Path) -> pd.DataFrame:
    """A contract file with every cell as text, as written (a BOM is dropped; no NaN for empty cells)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _ids(values: pd.Series) -> np.ndarray:
    """Integer ids of text cells (" 7", "007" and "7" are the same id, as in the database)."""
    return pd.to_numeric(values.str.strip(), errors="raise").astype(np.int64).to_numpy()


def _timestamps(values: pd.Series) -> pd.Series:
    """Contract timestamps as UTC instants (no offset = UTC; a date alone = UTC midnight)."""
    return pd.to_datetime(values.str.strip(), utc=True, format="ISO8601")


def split_files(
    users: pd.DataFrame,
    shoes: pd.DataFrame,
    interactions: pd.DataFrame,
    test_share: float = 0.2,
    cold_share: float = 0.1,
    seed: int = 7,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Per-customer time-ordered hold-out plus whole cold customers.

    Parameters
    ----------
    users, shoes, interactions : DataFrame
        The three contract files, every column as text (:func:`read_csv`). ``users`` and ``shoes``
        are only checked for the ids the events name.
    test_share : float
        Share of each warm customer's events held out, the latest ones: ``floor(test_share * n + 0.5)``
        of a customer's ``n`` events.
    cold_share : float
        Share of the customers with events held out entirely: ``floor(cold_share * m + 0.5)`` of ``m``.
    seed : int
        Seed of the draw of cold customers (``numpy.random.default_rng``).

    Returns
    -------
    train, test : DataFrame
        Rows of ``interactions`` (its columns and cells unchanged, file order kept), split.
    cold_user_ids : ndarray of int64
        The cold customers, sorted.

    Raises
    ------
    ValueError
        A share outside [0, 1), or an event naming a user or shoe missing from the files.
    """
    for name, share in (("test_share", test_share), ("cold_share", cold_share)):
        if not 0.0 <= share < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {share}")
    user_id = _ids(interactions["user_id"])
    shoe_id = _ids(interactions["shoe_id"])
    # every event names a known user and shoe
    for label, ids, known in (("user", user_id, users["user_id"]), ("shoe", shoe_id, shoes["shoe_id"])):
        missing = np.setdiff1d(ids, _ids(known))
        if missing.size:
            raise ValueError(
                f"interactions name {missing.size} unknown {label} id(s), e.g. {missing[:5].tolist()}"
            )
    at = _timestamps(interactions["timestamp"]).dt.tz_localize(None).to_numpy()
    # each customer's events in time order, ties in file order
    order = np.lexsort((np.arange(len(interactions)), at, user_id))
    sorted_users = user_id[order]
    starts = (
        np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1] if len(order) else np.array([], dtype=np.int64)
    )
    counts = np.diff(np.r_[starts, len(order)])
    position = np.arange(len(order)) - np.repeat(starts, counts)  # 0..n-1 within the customer, in time order
    n_events = np.repeat(counts, counts)
    # cold customers: a seeded draw among the customers with events
    active = sorted_users[starts]
    n_cold = math.floor(cold_share * active.size + 0.5)
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(active, size=n_cold, replace=False)) if n_cold else np.array([], dtype=np.int64)
    # warm customers: the last floor(share * n + 0.5) events held out
    n_held = np.floor(test_share * n_events + 0.5).astype(np.int64)
    held_sorted = (position >= n_events - n_held) | np.isin(sorted_users, cold)
    held = np.empty(len(order), dtype=bool)
    held[order] = held_sorted
    return interactions[~held], interactions[held], cold.astype(np.int64)


def last_day(interactions: pd.DataFrame) -> dt.date:
    """The UTC day of the newest event (the reference date `last`)."""
    if interactions.empty:
        raise ValueError("no training events: no last day")
    return _timestamps(interactions["timestamp"]).max().date()


def relevant_items(train: pd.DataFrame, test: pd.DataFrame) -> dict[int, set[int]]:
    """Customer -> held-out wishlisted or purchased shoes, minus shoes bought in the training rows."""
    # shoes bought in training
    bought = train[train["interaction_type"].str.strip() == "purchase"]
    bought_pairs = set(zip(_ids(bought["user_id"]).tolist(), _ids(bought["shoe_id"]).tolist(), strict=True))
    # held-out wishlists and purchases
    wanted = test[test["interaction_type"].str.strip().isin(RELEVANT_TYPES)]
    relevant: dict[int, set[int]] = {}
    for user, shoe in zip(_ids(wanted["user_id"]).tolist(), _ids(wanted["shoe_id"]).tolist(), strict=True):
        if (user, shoe) not in bought_pairs:
            relevant.setdefault(user, set()).add(shoe)
    return relevant


def write_training_files(source_dir: Path, train: pd.DataFrame, out_dir: Path) -> Path:
    """users.csv and shoes.csv copied byte for byte, the training rows as interactions.csv; out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in FILES[:2]:
        shutil.copyfile(Path(source_dir) / name, out_dir / name)
    train.to_csv(out_dir / "interactions.csv", index=False, lineterminator="\n")
    return out_dir


def build_recommendations(
    db_path: str | Path, data_dir: Path, reference_date: str
) -> tuple[dict[int, list[int]], dict]:
    """Run the main job on ``data_dir`` into ``db_path``; the top-k of user_recommendations per customer.

    Returns
    -------
    lists : dict
        Customer -> shoe ids, rank 1 first.
    summary : dict
        The build's summary, plus ``tuned`` (the table tuned_parameters as a dict).
    """
    with Database(str(db_path)) as db:
        summary = build(db, Path(data_dir), reference_date)
        recs = db.query_df(
            "select user_id, shoe_id, rank from user_recommendations where rank <= ? order by user_id, rank",
            [K],
        )
        summary["tuned"] = dict(db.query("select parameter, value from tuned_parameters"))
    lists = {
        int(user): [int(shoe) for shoe in group["shoe_id"]]
        for user, group in recs.groupby("user_id", sort=False)
    }
    return lists, summary


def training_matrix(
    users: pd.DataFrame, shoes: pd.DataFrame, train: pd.DataFrame
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Customers x shoes event counts of the training rows, with the sorted user and shoe ids of its axes."""
    user_ids = np.unique(_ids(users["user_id"]))
    shoe_ids = np.unique(_ids(shoes["shoe_id"]))
    rows = np.searchsorted(user_ids, _ids(train["user_id"]))
    cols = np.searchsorted(shoe_ids, _ids(train["shoe_id"]))
    X = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float64), (rows, cols)), shape=(user_ids.size, shoe_ids.size)
    )
    X.sum_duplicates()
    return X, user_ids, shoe_ids


def peer_lists(
    name: str,
    X: sp.csr_matrix,
    user_ids: np.ndarray,
    shoe_ids: np.ndarray,
    customers: Sequence[int],
    random_state: int,
    exclude: sp.csr_matrix | None = None,
) -> dict[int, list[int]]:
    """Top-k shoe ids of a peer fitted on ``X > 0``; ``exclude`` (default: all of X) is never shown."""
    customers = np.asarray(sorted(customers), dtype=np.int64)
    if customers.size == 0:
        return {}
    top = peers.peer_top_n(
        name,
        X,
        np.searchsorted(user_ids, customers),
        K,
        exclude=X if exclude is None else exclude,
        random_state=random_state,
        **PEER_OPTIONS[name],
    )
    return {
        int(user): [int(shoe_ids[i]) for i in row if i >= 0] for user, row in zip(customers, top, strict=True)
    }


def score_lists(
    lists: Mapping[str, Mapping[int, Sequence[int]]],
    relevant: Mapping[int, set[int]],
    groups: Mapping[str, Sequence[int]],
    random_state: int = 0,
) -> list[dict]:
    """One row per (model, group): customers, NDCG@k with its 95% interval, hit rate@k, ours minus it.

    Parameters
    ----------
    lists : mapping
        Model -> customer -> ranked shoe ids (a customer missing from a model's lists scores 0);
        :data:`OURS` must be present. On the cold group only ours and :data:`COLD_PEERS` are scored.
    relevant : mapping
        Customer -> relevant shoe ids (:func:`relevant_items`).
    groups : mapping
        Group name -> the customers evaluated in it (each with relevant shoes).
    random_state : int
        Seed of the bootstrap intervals.

    Returns
    -------
    list of dict
        ``model``, ``group``, ``customers``, ``ndcg``, ``ndcg_low``, ``ndcg_high``, ``hit_rate``,
        and the paired interval of ours minus the model, ``ours_minus_low``, ``ours_minus_high``
        (nan for ours).
    """
    rows = []
    for group, customers in groups.items():
        customers = sorted(customers)
        ours = per_user_metric(lists[OURS], relevant, customers, K, "ndcg")
        for model, model_lists in lists.items():
            if group == "cold" and model not in (OURS, *COLD_PEERS):
                continue
            ndcg = per_user_metric(model_lists, relevant, customers, K, "ndcg")
            hits = per_user_metric(model_lists, relevant, customers, K, "hit_rate")
            low, high = bootstrap_interval(ndcg, random_state=random_state)
            diff_low, diff_high = (
                (float("nan"), float("nan"))
                if model == OURS
                else paired_bootstrap_interval(ours, ndcg, random_state=random_state)
            )
            rows.append(
                {
                    "model": model,
                    "group": group,
                    "customers": len(customers),
                    "ndcg": float(ndcg.mean()) if ndcg.size else float("nan"),
                    "ndcg_low": low,
                    "ndcg_high": high,
                    "hit_rate": float(hits.mean()) if hits.size else float("nan"),
                    "ours_minus_low": diff_low,
                    "ours_minus_high": diff_high,
                }
            )
    return rows


def report(rows: list[dict]) -> str:
    """The results as one readable table."""

    def interval(low: float, high: float) -> str:
        return "" if math.isnan(low) else f"[{low:.4f}, {high:.4f}]"

    frame = pd.DataFrame(
        {
            "model": [row["model"] for row in rows],
            "group": [row["group"] for row in rows],
            "customers": [row["customers"] for row in rows],
            f"NDCG@{K}": [f"{row['ndcg']:.4f}" for row in rows],
            "95% interval": [interval(row["ndcg_low"], row["ndcg_high"]) for row in rows],
            f"hit rate@{K}": [f"{row['hit_rate']:.4f}" for row in rows],
            "ours minus model, 95%": [
                interval(row["ours_minus_low"], row["ours_minus_high"]) for row in rows
            ],
        }
    )
    return frame.to_string(index=False)


def run(
    data_dir: Path,
    db: str | Path | None = None,
    test_share: float = 0.2,
    cold_share: float = 0.1,
    seed: int = 7,
    reference_date: str = "last",
    keep_dir: Path | None = None,
) -> dict:
    """Split, build on the training rows, score ours and the peers; returns the results.

    Returns
    -------
    dict with ``rows`` (of :func:`score_lists`), ``table`` (:func:`report`), ``lists`` (model ->
    customer -> shoe ids), ``relevant``, ``cold_user_ids``, ``groups`` (warm and cold evaluated
    customers), ``reference_date`` (as passed to the build), ``train_dir`` (None unless kept),
    ``build`` (the build's summary, with ``tuned``).
    """
    data_dir = Path(data_dir)
    users, shoes, interactions = (read_csv(data_dir / name) for name in FILES)
    # split
    train, test, cold = split_files(users, shoes, interactions, test_share, cold_share, seed)
    relevant = relevant_items(train, test)
    cold_set = set(cold.tolist())
    groups = {
        "warm": sorted(user for user in relevant if user not in cold_set),
        "cold": sorted(user for user in relevant if user in cold_set),
    }
    log.info(
        "split: %d training and %d held-out events; %d cold customers; evaluated: %d warm, %d cold",
        len(train),
        len(test),
        cold.size,
        len(groups["warm"]),
        len(groups["cold"]),
    )
    if reference_date == "last":
        reference_date = last_day(train).isoformat()
    with tempfile.TemporaryDirectory(prefix="shoerec-holdout-") as scratch:
        # the training files and a fresh database
        train_dir = write_training_files(
            data_dir, train, Path(keep_dir) if keep_dir else Path(scratch) / "data"
        )
        db_path = Path(db) if db else Path(scratch) / "holdout.duckdb"
        if db_path.exists() or db_path.with_name(db_path.name + ".wal").exists():
            raise ValueError(f"{db_path} exists: the hold-out check needs a fresh database")
        log.info("building on the training rows in %s as of %s", train_dir, reference_date)
        ours, summary = build_recommendations(db_path, train_dir, reference_date)
    log.info("build done in %.1f s; tuned %s", summary["seconds"], summary["tuned"])
    # the peers on the same training rows
    X, user_ids, shoe_ids = training_matrix(users, shoes, train)
    # the peers get the exclusions ours had: every shoe of the history, or only the bought ones
    if json.loads(summary["tuned"].get("exclude_seen", "false")):
        exclude = X
    else:
        exclude, _, _ = training_matrix(users, shoes, train[train["interaction_type"] == "purchase"])
    lists: dict[str, dict[int, list[int]]] = {OURS: ours}
    for name in PEER_OPTIONS:
        if name not in peers.available_peers():
            log.warning("peer %s skipped: the implicit package is not installed", name)
            continue
        customers = groups["warm"] + (groups["cold"] if name in COLD_PEERS else [])
        lists[name] = peer_lists(name, X, user_ids, shoe_ids, customers, seed, exclude)
    rows = score_lists(lists, relevant, groups, random_state=seed)
    return {
        "rows": rows,
        "table": report(rows),
        "lists": lists,
        "relevant": relevant,
        "cold_user_ids": cold,
        "groups": groups,
        "reference_date": reference_date,
        "train_dir": Path(keep_dir) if keep_dir else None,
        "build": summary,
    }


def _share(value: str) -> float:
    share = float(value)
    if not 0.0 <= share < 1.0:
        raise ValueError(f"{value!r} is not in [0, 1)")
    return share


def _reference_date(value: str) -> str:
    if value in ("last", "today"):
        return value
    return dt.date.fromisoformat(value).isoformat()


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.set_defaults(db=None)
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="folder of users.csv, shoes.csv, interactions.csv"
    )
    parser.add_argument(
        "--test-share",
        type=_share,
        default=0.2,
        help="share of each warm customer's latest events held out (default 0.2)",
    )
    parser.add_argument(
        "--cold-share", type=_share, default=0.1, help="share of customers held out entirely (default 0.1)"
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="seed of the cold draw, the peers and the intervals (default 7)"
    )
    parser.add_argument(
        "--reference-date",
        type=_reference_date,
        default="last",
        help="last (default: last day of the training rows), today, or YYYY-MM-DD",
    )
    parser.add_argument(
        "--keep-dir",
        type=Path,
        default=None,
        help="write the training CSV files here and keep them (default: a temporary folder)",
    )
    # --db here: a fresh DuckDB file for the build (default: a temporary file); $SHOEREC_DB is not used
    for action in parser._actions:
        if action.dest == "db":
            action.help = "DuckDB file to build into, must not exist (default: a temporary file)"
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        result = run(
            args.data_dir,
            args.db,
            args.test_share,
            args.cold_share,
            args.seed,
            args.reference_date,
            args.keep_dir,
        )
    except LoadError as exc:
        log.error("the training rows did not load:\n%s", exc)
        return 2
    except (DatabaseError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    print(f"\nhold-out check of {args.data_dir} (reference date {result['reference_date']}):")
    print(result["table"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
