"""Crash safety of the loader and the scorer, on both engines.

Each step is SIGKILLed at every checkpoint it reaches (``SHOEREC_LOAD_KILL_AT`` /
``SHOEREC_SCORE_KILL_AT`` = ``<stage>:<k>``, see ``CHECKPOINTS`` in scripts/load.py and
scripts/score.py). After each kill the database must hold exactly what the last successful step
committed (a checksum of every table, and on PostgreSQL of its constraints and indexes, equals the
one taken before), and the next run must succeed. DuckDB discards the dead writer's uncommitted WAL
when the file is reopened; PostgreSQL rolls the dead session's transaction back.

The killed process is a fork of the test process (the modules are imported once: a fresh
interpreter per kill point costs seconds of imports); it opens its own connection, as the command
line does. tests/test_score.py kills the real ``python -m scripts.score`` command as well.

A load that fails part-way in Python (an invalid third file, an error while merging) leaves the
tables as they were.
"""

from __future__ import annotations

import math
import signal
from pathlib import Path

import pytest
import tqdm
from helpers import assert_every_kill_point_passes, differences, run_killed, snapshot

from scripts import load as load_module
from scripts import score as score_module
from scripts.db import Database
from scripts.generate_data import generate
from scripts.load import LoadError, load
from scripts.schema import create_schema
from scripts.score import score

USERS, SHOES, EVENTS = 60, 20, 300
CHUNK_ROWS = 50  # records staged at a time: users 2 chunks, shoes 1, interactions 6
SCORE_PARAMS = {"top_n": 3, "factors": 2, "similar_n": 2, "batch_size": 10, "workers": 1, "keep_runs": 2}
SCORE_BATCHES = math.ceil(USERS / SCORE_PARAMS["batch_size"])


@pytest.fixture(autouse=True)
def _no_tqdm_monitor(monkeypatch):
    # tqdm's monitor thread would be running in the parent when it forks
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> list[Path]:
    """Tiny data sets of the same users and shoes (ids) with other attributes and events per seed."""
    root = tmp_path_factory.mktemp("crash_data")
    dirs = []
    for seed in range(24):
        out = root / f"seed_{seed}"
        generate(out, users=USERS, shoes=SHOES, interactions=EVENTS, seed=seed, progress=False)
        dirs.append(out)
    return dirs


def _load_job(url: str, data_dir: Path, bulk_rows: int | None) -> None:
    if bulk_rows is not None:  # the PostgreSQL bulk append (keys and indexes dropped) even for tiny data
        load_module.BULK_ROWS = bulk_rows
    with Database(url) as db:
        load(db, data_dir, progress=False, chunk_rows=CHUNK_ROWS)


def _score_job(url: str) -> None:
    with Database(url) as db:
        score(db, **SCORE_PARAMS)


# -- the loader ----------------------------------------------------------------------------------
def load_kill_points() -> list[str]:
    chunks = math.ceil(USERS / CHUNK_ROWS) + math.ceil(SHOES / CHUNK_ROWS) + math.ceil(EVENTS / CHUNK_ROWS)
    # merge: create + upsert for users and shoes, create + append for interactions
    points = ["merge:6"]  # first: the only point where a PostgreSQL bulk append has its keys dropped
    points += ["transaction_started"] + [f"chunk:{k}" for k in range(1, chunks + 1)]
    points += [f"staged:{k}" for k in (1, 2, 3)] + ["references_checked"]
    points += [f"merge:{k}" for k in range(1, 6)] + ["run_recorded", "before_commit", "committed"]
    return points


def test_load_kill_points_cover_every_checkpoint():
    stages = {point.partition(":")[0] for point in load_kill_points()}
    assert stages == set(load_module.CHECKPOINTS)
    assert len(load_kill_points()) >= 20


def test_a_killed_load_leaves_the_last_committed_load(db_url, engine, datasets):
    with Database(db_url) as db:
        create_schema(db)
        load(db, datasets[0], progress=False)
        assert db.scalar("select count(*) from interactions") > 0
    points = load_kill_points()
    assert len(points) >= 20 and len(datasets) > len(points)
    data_dirs = dict(zip(points, datasets[1:], strict=False))

    def check(point: str) -> list[str]:
        data_dir = data_dirs[point]
        with Database(db_url) as db:
            before = snapshot(db)
            last_load = db.scalar("select max(load_id) from load_runs")
        code = run_killed(
            load_module.KILL_AT_ENV, point, _load_job, db_url, data_dir, 1 if engine == "postgres" else None
        )
        problems = [] if code == -signal.SIGKILL else [f"exit code {code}, not killed"]
        with Database(db_url) as db:
            after = snapshot(db)
            if point == "committed":  # the load was committed: it is the last successful step
                if db.scalar("select max(load_id) from load_runs") != last_load + 1:
                    problems.append("the committed load is missing")
                if differences(before, after) == ["load_runs"]:
                    problems.append("the committed load changed no data")
            elif differences(before, after):
                problems.append(f"tables changed: {differences(before, after)}")
            # the next load succeeds (and finds nothing left to do after a committed load)
            summary = load(db, data_dir, progress=False)
            if (summary.rows_loaded == 0) != (point == "committed"):
                problems.append(f"the next load loaded {summary.rows_loaded} rows")
        return problems

    assert_every_kill_point_passes(f"loader on {engine}", points, check)


def test_a_load_refused_on_its_third_file_leaves_the_tables(schema_db, datasets, tmp_path):
    db = schema_db  # create_schema's database (a copy: conftest.py)
    load(db, datasets[0], progress=False)
    before = snapshot(db)
    # users and shoes change (another seed), then one bad event: nothing at all may be written
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("users.csv", "shoes.csv", "interactions.csv"):
        (bad / name).write_bytes((datasets[1] / name).read_bytes())
    with open(bad / "interactions.csv", "a", encoding="utf-8") as out:
        out.write("1,1001,returned,2025-01-01T00:00:00Z\n")
    with pytest.raises(LoadError, match="interaction_type"):
        load(db, bad, progress=False, chunk_rows=CHUNK_ROWS)
    assert differences(before, snapshot(db)) == []
    # the same connection loads the good files afterwards
    assert load(db, datasets[1], progress=False).rows_loaded > 0
    assert differences(before, snapshot(db)) != []


class InjectedFailure(RuntimeError):
    pass


INJECTED_FAILURES = [*(("merge", k) for k in range(1, 7)), ("run_recorded", 1)]


def test_a_failure_while_merging_rolls_the_load_back(schema_db, datasets, monkeypatch):
    db = schema_db  # create_schema's database (a copy: conftest.py)
    load(db, datasets[0], progress=False)
    for data_dir, (stage, k) in zip(datasets[1:], INJECTED_FAILURES, strict=False):
        before = snapshot(db)
        reached = []

        def failing_checkpoint(name: str, stage=stage, k=k, reached=reached) -> None:
            reached.append(name)
            if name == stage and reached.count(name) == k:
                raise InjectedFailure(f"{name}:{k}")

        monkeypatch.setattr(load_module, "_checkpoint", failing_checkpoint)
        with pytest.raises(InjectedFailure):
            load(db, data_dir, progress=False)
        assert reached.count("merge") == (k if stage == "merge" else 6), "the failure came while merging"
        assert differences(before, snapshot(db)) == [], f"{stage}:{k}"
        # the same connection loads the same files afterwards
        monkeypatch.undo()
        assert load(db, data_dir, progress=False).rows_loaded > 0
        assert differences(before, snapshot(db)) != []


# -- the scorer ----------------------------------------------------------------------------------
def score_kill_points() -> list[str]:
    points = ["after_running_row", "after_read", "after_fit", "after_similarities", "after_segments"]
    points += ["similarities_written", "segments_written"]
    points += [f"mid_recommendations:{k}" for k in range(1, SCORE_BATCHES + 1)]
    points += ["run_marked_complete"] + [f"prune:{k}" for k in range(1, 5)]
    points += ["before_commit", "committed"]
    return points


def test_score_kill_points_cover_every_checkpoint():
    stages = {point.partition(":")[0] for point in score_kill_points()}
    assert stages == set(score_module.CHECKPOINTS)
    assert len(score_kill_points()) >= 20


def test_a_killed_run_leaves_the_last_published_run(db_url, engine, datasets):
    with Database(db_url) as db:
        create_schema(db)
        load(db, datasets[0], progress=False)
        assert db.scalar("select count(*) from user_segments") == USERS
        score(db, **SCORE_PARAMS)
        score(db, **SCORE_PARAMS)  # two complete runs: the next publication prunes the older one
    points = score_kill_points()

    def check(point: str) -> list[str]:
        with Database(db_url) as db:
            before = snapshot(db)
            run_id = db.scalar("select max(run_id) from model_runs") + 1
            published = db.scalar("select run_id from latest_model_run")
        code = run_killed(score_module.KILL_AT_ENV, point, _score_job, db_url)
        problems = [] if code == -signal.SIGKILL else [f"exit code {code}, not killed"]
        with Database(db_url) as db:
            status = db.scalar("select status from model_runs where run_id = ?", [run_id])
            if point == "committed":  # published: the new run is the last successful step
                n_rows = db.scalar("select count(*) from recommendations where run_id = ?", [run_id])
                if status != "complete" or db.scalar("select run_id from latest_model_run") != run_id:
                    problems.append(f"the committed run {run_id} is not the published one")
                elif n_rows != db.scalar(
                    "select n_recommendations from model_runs where run_id = ?", [run_id]
                ):
                    problems.append("the committed run lacks rows")
            else:
                # the last successful step committed the 'running' row, and only that
                if status != "running":
                    problems.append(f"run {run_id} is {status!r}, not 'running'")
                changed = differences(before, snapshot(db, exclude_running=True))
                if changed:
                    problems.append(f"tables changed: {changed}")
                if db.scalar("select run_id from latest_model_run") != published:
                    problems.append("the published run changed")
            # the next run succeeds (and marks a dead run failed)
            summary = score(db, **SCORE_PARAMS)
            if summary["status"] != "complete" or summary["run_id"] != run_id + 1:
                problems.append(f"the next run: {summary['status']} {summary['run_id']}")
            if point != "committed" and db.scalar(
                "select status from model_runs where run_id = ?", [run_id]
            ) not in ("failed", None):
                problems.append("the killed run was not marked failed")
        return problems

    assert_every_kill_point_passes(f"scorer on {engine}", points, check)
