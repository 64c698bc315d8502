"""The interactions in batches of users: simulated and formatted here or on a few threads, in order.

Each batch has its own random generator, so the files do not depend on how many threads run them.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from scripts.generator.catalogue import Catalogue
from scripts.generator.funnel import simulate_batch
from scripts.generator.users import Users
from scripts.generator.world import FIRST_SHOE_ID, INTERACTION_TYPES
from scripts.generator.writing import format_interactions


def batch_size(n_shoes: int) -> int:
    """Users per batch: the batch's users x shoes matrix stays around 16 MB."""
    return max(1, 2_000_000 // max(n_shoes, 1))


def available_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class World:
    """What every batch reads: the users, the catalogue and the window's last second."""

    users: Users
    shoes: Catalogue
    end: int
    batch_size: int


@dataclass
class BatchResult:
    """A batch's interactions as CSV lines, with what the run's summary counts."""

    lines: bytes
    counts: np.ndarray  # per interaction type
    active_users: int
    shoe_rows: np.ndarray  # rows of the shoes that appear


def batch_result(user_id: np.ndarray, shoe_id: np.ndarray, kind: np.ndarray, at: np.ndarray) -> BatchResult:
    """The formatted lines and counts of a batch's interactions."""
    return BatchResult(
        lines=format_interactions(user_id, shoe_id, kind, at),
        counts=np.bincount(kind, minlength=len(INTERACTION_TYPES)),
        active_users=len(np.unique(user_id)),
        shoe_rows=np.unique(shoe_id - FIRST_SHOE_ID),
    )


def _run_batch(b: int, rng: np.random.Generator, world: World) -> BatchResult:
    """Simulate and format batch ``b`` (its own random generator: any thread, any order, same result)."""
    rows = slice(b * world.batch_size, min((b + 1) * world.batch_size, len(world.users.user_id)))
    return batch_result(*simulate_batch(rng, world.users, rows, world.shoes, world.end))


def batch_results(world: World, rngs: list[np.random.Generator], workers: int) -> Iterator[BatchResult]:
    """The batches' results in order, computed here or by ``workers`` threads (a few batches ahead).

    Threads, not processes: the work is numpy, which releases the GIL, and a process pool on
    Python 3.11 can deadlock at shutdown (CPython gh-125451), which once hung a test run here.
    """
    # BLAS threads only slow the thin products down; the batches are the parallelism
    with threadpool_limits(1, user_api="blas"):
        if workers <= 1 or len(rngs) <= 1:
            for b, rng in enumerate(rngs):
                yield _run_batch(b, rng, world)
            return
        with ThreadPoolExecutor(workers) as pool:
            pending: deque = deque()
            for b, rng in enumerate(rngs):
                pending.append(pool.submit(_run_batch, b, rng, world))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
