"""The machine a benchmark ran on: CPU, cores, memory, library versions, date and load average."""

from __future__ import annotations

import datetime as dt
import platform
from pathlib import Path
from typing import Any

from scripts.benchmarking.process import cores, load_average
from scripts.db import engine_of


def machine_info(url: str | None = None) -> dict[str, Any]:
    """CPU model, cores, memory, OS, library versions, date and load average."""
    memory_kib = _proc_value("/proc/meminfo", "MemTotal")
    versions = {"python": platform.python_version()}
    for package in ("numpy", "scipy", "pandas", "scikit-learn", "duckdb", "psycopg2-binary", "implicit"):
        versions[package] = _version(package)
    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _proc_value("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "cores": cores(),
        "memory_gib": round(int(memory_kib.split()[0]) / 1024 / 1024, 1) if memory_kib else None,
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
        "load_average_start": load_average(),
    }
    if url and engine_of(url) == "postgres":
        try:
            from scripts.db import Database

            with Database(url) as db:
                info["postgresql"] = db.scalar("show server_version")
        except Exception as exc:  # the machine block should not fail the benchmark
            info["postgresql"] = f"unknown ({exc})"
    return info


def _proc_value(path: str, key: str) -> str | None:
    """The value of the first ``key: value`` line of a /proc file (None: no such line, or no /proc)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
