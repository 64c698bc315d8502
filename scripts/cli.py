"""What every command shares: the --db option, verbosity and logging."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

from scripts.db import DEFAULT_DUCKDB_PATH, ENV_DB, DatabaseError, exit_code


def base_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the module docstring as help, ``--db`` and ``-v``."""
    parser = argparse.ArgumentParser(
        description=(doc or "").strip(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db",
        default=None,
        help=f"postgresql://... URI, or a DuckDB file path (default: ${ENV_DB}, else {DEFAULT_DUCKDB_PATH.name} in data/)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    return parser


def _whole_number(value: str, least: int, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < least:
        raise argparse.ArgumentTypeError(f"{value} is not a {name} integer")
    return number


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1, else the usage error names the value."""
    return _whole_number(value, 1, "positive")


def non_negative_int(value: str) -> int:
    """An argparse type: a whole number of at least 0, else the usage error names the value."""
    return _whole_number(value, 0, "non-negative")


def iso_date(value: str) -> dt.date:
    """An argparse type: an ISO date YYYY-MM-DD, else the usage error names the value."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from None


def reports_database_errors(main: Callable[..., int]) -> Callable[..., int]:
    """Decorate a command's ``main``: a :class:`DatabaseError` out of it (a database file that does not
    exist, a server that does not answer, a step not yet run) ends the command in one logged line and
    exit code 2 for a usage error, 1 for any other, never a traceback."""

    @functools.wraps(main)
    def run(*args: Any, **kwargs: Any) -> int:
        try:
            return main(*args, **kwargs)
        except DatabaseError as exc:
            logging.getLogger(main.__module__).error("%s", exc)
            return exit_code(exc)

    return run


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
