"""Measuring a stage: a fresh child process, its wall and CPU seconds, its peak memory, the host's load.

Every stage runs in a process of its own (multiprocessing, spawn), so the peak memory of a stage is
its own (the maximum resident set size of its process, imports included; worker processes apart).
While it runs the parent samples the resident memory of its process tree and kills it beyond a limit;
when it ends the parent adds the share of the cores that other processes used meanwhile (/proc/stat).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import resource
import signal
import sys
import time
import traceback
from typing import Any

from scripts.cli import setup_logging
from scripts.db import engine_of

log = logging.getLogger(__name__)

MIB = 1024 * 1024


class StageFailed(RuntimeError):
    """A stage raised in its child process, or the child died (killed, out of memory)."""


def _peak_rss_mib(who: int) -> float:
    """ru_maxrss of this process or of its waited-for children, in MiB (Linux reports KiB)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(who).ru_maxrss * scale / MIB, 1)


def _rss_mib(pid: int | str = "self") -> float:
    """Resident memory of a live process, this one by default (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB
    except (OSError, IndexError, ValueError):
        return 0.0


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc; just ``root`` where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return [root]
    for name in entries:
        try:
            with open(f"/proc/{name}/stat") as stat:
                # the command may hold spaces or parentheses: the fields after the last ')' are fixed
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _host_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy since boot (all cores; /proc/stat), or None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of its finished worker processes."""
    return sum(
        used.ru_utime + used.ru_stime
        for used in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def load_average() -> list[float] | None:
    """The host's 1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def rate(rows: int, seconds: float) -> float | None:
    """Rows per second (None without a time to divide by)."""
    return round(rows / seconds, 1) if seconds and seconds > 0 else None


def _child_main(sender, stage: str, task: dict[str, Any]) -> None:
    """Entry point of a stage's child: run it, add time and memory, send the result back."""
    setup_logging(task.get("verbose", False))
    try:
        # imports first, outside the clocks (they are in the peak memory, as in any real run)
        from scripts.benchmarking.stages import STAGE_FUNCTIONS, STAGE_IMPORTS

        drivers = ["psycopg2"] if engine_of(task.get("url", "")) == "postgres" else []
        for module in STAGE_IMPORTS[stage] + drivers:
            importlib.import_module(module)
        baseline = round(_rss_mib(), 1)
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        result = STAGE_FUNCTIONS[stage](task)
        result.setdefault("seconds", round(time.perf_counter() - started, 3))
        # CPU time of every thread of the process: steadier than wall time on a busy host
        result["cpu_seconds"] = round(_cpu_seconds() - cpu_before, 3)
        result["peak_rss_mib"] = _peak_rss_mib(resource.RUSAGE_SELF)
        result["workers_peak_rss_mib"] = _peak_rss_mib(resource.RUSAGE_CHILDREN)
        result["baseline_rss_mib"] = baseline
        # everything this process and its workers used, imports included (for the share of others)
        result["process_cpu_seconds"] = round(_cpu_seconds(), 3)
        sender.send(result)
    except BaseException as exc:  # sent to the parent, which reports it
        sender.send({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
    finally:
        sender.close()


def run_stage(stage: str, task: dict[str, Any]) -> dict[str, Any]:
    """Run one stage in a fresh spawned process and return what it measured.

    While it runs, the resident memory of its process tree is sampled twice a second (the peak is
    ``tree_peak_rss_mib``); with ``task['max_rss_mib']`` the tree is killed when it goes beyond, so
    that a stage too big for the machine fails alone instead of taking the host's memory.

    Raises
    ------
    StageFailed
        The stage raised, or its process died without answering (killed for memory, by us or the OS).
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(sender, stage, task), name=f"benchmark-{stage}")
    limit = task.get("max_rss_mib")
    load_before = load_average()
    host_before, wall_before = _host_busy_seconds(), time.perf_counter()
    process.start()
    sender.close()
    result, tree_peak, over_limit = None, 0.0, None
    try:
        while not receiver.poll(0.5):
            tree = _process_tree(process.pid)
            rss = sum(_rss_mib(pid) for pid in tree)
            tree_peak = max(tree_peak, rss)
            if limit and rss > limit:
                over_limit = rss
                for pid in tree:  # the stage's own processes only
                    _kill(pid)
                break
        else:
            result = receiver.recv()
    except EOFError:
        result = None
    finally:
        receiver.close()
        process.join()
    if over_limit is not None:
        raise StageFailed(
            f"{stage}: killed at {over_limit / 1024:.1f} GiB resident, beyond --max-rss-gib {limit / 1024:g}"
        )
    if result is None:
        code = process.exitcode
        why = f"killed by signal {-code} (out of memory?)" if code and code < 0 else f"exit code {code}"
        raise StageFailed(f"{stage}: the child process died without a result ({why})")
    if "error" in result:
        log.debug("%s", result["traceback"])
        raise StageFailed(f"{stage}: {result['error']}")
    if limit and result["peak_rss_mib"] > limit:
        # it finished between two samples: over the limit all the same
        raise StageFailed(
            f"{stage}: went to {result['peak_rss_mib'] / 1024:.2f} GiB resident, beyond --max-rss-gib"
            f" {limit / 1024:g} (it finished before it could be stopped)"
        )
    result["tree_peak_rss_mib"] = round(max(tree_peak, result["peak_rss_mib"]), 1)
    # share of the machine's cores that other processes used meanwhile (the PostgreSQL server counts
    # as "other"): 0 on a quiet host; figures taken at a high share are pessimistic
    host_after, wall = _host_busy_seconds(), time.perf_counter() - wall_before
    if host_before is not None and host_after is not None and wall > 0:
        others = max(0.0, host_after - host_before - result["process_cpu_seconds"])
        result["others_cpu_share"] = round(min(1.0, others / (cores() * wall)), 3)
    # the host's 1-minute load average before and after: how much others competed for the cores
    result["load_average"] = [load_before[0] if load_before else None, (load_average() or [None])[0]]
    return result
