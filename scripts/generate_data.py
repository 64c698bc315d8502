"""Generate a seeded synthetic data set in the data contract: users.csv, shoes.csv, interactions.csv.

    python -m scripts.generate_data [--out data] [--profile demo|real-log] [--users 2000] [--shoes 300]
                                    [--interactions N] [--seed 42] [--end-date 2026-06-30]
                                    [--months 18] [--workers N]

The defaults reproduce the bundled data in data/ byte for byte; the same arguments always write the
same bytes (no clock, no global random state: one numpy Generator seeded by --seed).

The world it simulates has the structure evaluation needs:

- shoes: 14 brands (some lean to certain types, three price tiers), 11 types, 10 materials (two of
  them, cork and wool, without a care schedule), colours in four families; lifespan and care
  instructions depend on type and material; a release date each (most before the window, some in
  it, some in its last tenth); about 3% are never shown to anyone (cold shoes);
- users: primary usage, gender and age band (the last two possibly unknown) form a segment with
  preferences over types, materials, brands and colours; each user adds a personal taste (favourite
  brands, a colour family, price sensitivity, a latent taste vector shared with the shoes) on top,
  and a global Zipf-like popularity skews everyone; each user joins at some date (some in the last
  fifth of the window: the cold users of a time split) and 5-10% never interact at all;
- a funnel: sessions of views, wishlists mostly of viewed shoes, purchases mostly (>= 80%) of shoes
  viewed or wishlisted earlier, about 100 : 15 : 5, plus a few re-purchases of a worn-out shoe; all
  timestamps within the window (about 18 months ending on --end-date, that day included), after the
  user joined and after the shoe was released.

--profile real-log (default 950 users, 1,700 shoes, 100,000 interactions, 7 months) simulates
instead a world shaped like a public retail / rating log, to test a recommender on data whose
signal it was not tuned on: Zipf-like popularity (the top shoe reaches over half the users),
heavy-tailed activity (many users with under 20 events, a few with hundreds, about 2% with none)
in one or two bursts of a few days each, mostly one event per (user, shoe) whose type (about 45%
views, 30% wishlists, 25% purchases) follows how much the user likes the shoe, a low-rank taste
(12 latent dimensions) that collaborative filtering can learn, only a weak pull of demographics
and of brand, type, material and colour on it, and shoes released during the window that are
popular only afterwards. Same files, same contract.

Large sizes (e.g. --users 1000000 --shoes 5000) stream to disk user batch by user batch with
vectorized numpy, in bounded memory, on every core (--workers); the files do not depend on how many.
"""

from __future__ import annotations

import argparse
from typing import Any

from scripts.cli import iso_date, non_negative_int, positive_int, setup_logging
from scripts.generator.batches import batch_size
from scripts.generator.catalogue import Catalogue, make_catalogue
from scripts.generator.funnel import simulate_batch
from scripts.generator.real_log import simulate_real_log
from scripts.generator.run import (
    DEFAULT_END_DATE,
    DEFAULT_MONTHS,
    DEFAULT_PROFILE,
    DEFAULT_SEED,
    DEFAULT_SHOES,
    DEFAULT_USERS,
    INTERACTIONS_PER_USER,
    PROFILES,
    Profile,
    generate,
    window,
)
from scripts.generator.users import Users, make_users
from scripts.generator.world import FIRST_SHOE_ID, FIRST_USER_ID, INTERACTION_TYPES
from scripts.generator.writing import format_interactions

__all__ = [  # what other modules import from here; the code is in scripts/generator/
    "DEFAULT_END_DATE",
    "DEFAULT_MONTHS",
    "DEFAULT_PROFILE",
    "DEFAULT_SEED",
    "DEFAULT_SHOES",
    "DEFAULT_USERS",
    "FIRST_SHOE_ID",
    "FIRST_USER_ID",
    "INTERACTIONS_PER_USER",
    "INTERACTION_TYPES",
    "PROFILES",
    "Catalogue",
    "Profile",
    "Users",
    "batch_size",
    "format_interactions",
    "generate",
    "main",
    "make_catalogue",
    "make_users",
    "options",
    "simulate_batch",
    "simulate_real_log",
    "window",
]


def _parser() -> argparse.ArgumentParser:
    """The command line: the module docstring as help, an option per argument of generate()."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").strip(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", default="data", help="folder to write the three CSV files into (default: data)"
    )
    parser.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        default=DEFAULT_PROFILE,
        help="the simulated world: demo (segments, personal taste, a view -> wishlist -> purchase "
        "funnel; the bundled data) or real-log (shaped like a public interaction log: Zipf-like "
        "popularity, short bursty histories, one event per pair, low-rank taste, weak side "
        "information) (default: %(default)s)",
    )
    demo, real = PROFILES["demo"], PROFILES["real-log"]
    parser.add_argument(
        "--users",
        type=positive_int,
        default=None,
        help=f"number of users (default: {demo.users}; real-log: {real.users})",
    )
    parser.add_argument(
        "--shoes",
        type=positive_int,
        default=None,
        help=f"number of shoes (default: {demo.shoes}; real-log: {real.shoes})",
    )
    parser.add_argument(
        "--interactions",
        type=non_negative_int,
        default=None,
        help=f"about how many interactions in all (default: {demo.interactions_per_user} x users; "
        f"real-log: {real.interactions_per_user:.1f} x users)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--end-date",
        type=iso_date,
        default=DEFAULT_END_DATE,
        help="last day of the interaction window, included (default: %(default)s, never today: runs repeat)",
    )
    parser.add_argument(
        "--months",
        type=positive_int,
        default=None,
        help=f"length of the interaction window in calendar months (default: {demo.months}; "
        f"real-log: {real.months})",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="threads simulating user batches (default: 1 for small jobs, else every available core); "
        "the output does not depend on it",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    return parser


def options(argv: list[str] | None = None) -> dict[str, Any]:
    """The keyword arguments of :func:`generate` that the command line ``argv`` asks for.

    ``generate(**options(argv))`` returns the counts the command logs. Sets up logging (``-v``).
    """
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    return {
        "out_dir": args.out,
        "users": args.users,
        "shoes": args.shoes,
        "interactions": args.interactions,
        "seed": args.seed,
        "end_date": args.end_date,
        "months": args.months,
        "workers": args.workers,
        "progress": not args.no_progress,
        "profile": args.profile,
    }


def main(argv: list[str] | None = None) -> int:
    """The command: write the files ``argv`` asks for; returns the exit code (0)."""
    generate(**options(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
