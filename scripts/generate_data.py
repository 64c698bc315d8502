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
import csv
import datetime as dt
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from scripts.cli import positive_int, setup_logging

log = logging.getLogger(__name__)

DEFAULT_USERS = 2000
DEFAULT_SHOES = 300
DEFAULT_SEED = 42
DEFAULT_END_DATE = dt.date(2026, 6, 30)
DEFAULT_MONTHS = 18
INTERACTIONS_PER_USER = 22  # default --interactions = users * this


@dataclass(frozen=True)
class Profile:
    """The default sizes of a simulated world (each option overrides its own)."""

    users: int
    shoes: int
    interactions_per_user: float  # default --interactions = round(users * this)
    months: int


PROFILES = {
    "demo": Profile(DEFAULT_USERS, DEFAULT_SHOES, INTERACTIONS_PER_USER, DEFAULT_MONTHS),
    # shaped like a public log of about 940 customers, 1,680 items and 100k events over 7 months
    "real-log": Profile(950, 1700, 100_000 / 950, 7),
}
DEFAULT_PROFILE = "demo"

FIRST_USER_ID = 1
FIRST_SHOE_ID = 1001  # ids are not row numbers: code that confuses the two fails on this data

INTERACTION_TYPES = ("view", "add_to_wishlist", "purchase")  # codes 0, 1, 2 (also the funnel order)
VIEW, WISHLIST, PURCHASE = 0, 1, 2
WISHLISTS_PER_VIEW = 0.15
PURCHASES_PER_VIEW = 0.05
DIRECT_WISHLIST_SHARE = 0.08  # wishlisted without a view of the shoe before
DIRECT_PURCHASE_SHARE = 0.12  # bought without a view or wishlist before (e.g. in a shop)
NO_INTERACTION_USER_SHARE = 0.04
UNLISTED_SHOE_SHARE = 0.03

USERS_HEADER = ("user_id", "age", "gender", "primary_usage")
SHOES_HEADER = (
    "shoe_id", "name", "brand", "type", "material", "color", "price", "care_instructions", "lifespan_days",
)  # fmt: skip
INTERACTIONS_HEADER = ("user_id", "shoe_id", "interaction_type", "timestamp")

DAY = 86_400

# ------------------------------------------------------------------------------------------------
# The simulated world. These are the generator's own assumptions, not settings of the system.
# ------------------------------------------------------------------------------------------------

USAGES = ("running", "walking", "casual", "hiking", "training", "basketball", "formal")
USAGE_SHARE = (0.20, 0.21, 0.28, 0.09, 0.10, 0.06, 0.06)
# how fast each usage wears shoes out (same idea as wear_factors in sql/defaults.sql)
USAGE_WEAR = (1.0, 0.7, 0.6, 0.8, 0.9, 0.9, 0.5)
USAGE_AGE = ((36, 11), (52, 14), (37, 14), (42, 12), (31, 9), (24, 8), (45, 12))  # mean, sd
USAGE_MALE_SHARE = (0.48, 0.42, 0.45, 0.55, 0.52, 0.72, 0.58)

GENDERS = ("female", "male", "non-binary", "")  # "" = not given
NONBINARY_SHARE = 0.02
NO_GENDER_SHARE = 0.05
NO_AGE_SHARE = 0.05
AGE_BAND_EDGES = (18, 25, 35, 45, 55, 65)  # bands: <18, 18-24, 25-34, 35-44, 45-54, 55-64, 65+

TYPES = (
    "running", "trail running", "walking", "sneaker", "hiking boot", "basketball", "training",
    "oxford", "loafer", "sandal", "chelsea boot",
)  # fmt: skip
T = {name: i for i, name in enumerate(TYPES)}

# relative appeal of each type to each usage (rows: USAGES; columns: TYPES)
# fmt: off
USAGE_TYPE_APPEAL = np.array([
    #  run  trail  walk  snkr  hike  bball train  oxf  loaf  sand  chel
    [4.0,  2.0,  0.8,  1.0,  0.3,  0.3,  1.5,  0.1,  0.2,  0.6,  0.2],  # running
    [1.2,  0.6,  4.0,  1.5,  0.6,  0.1,  0.4,  0.3,  1.2,  1.5,  0.5],  # walking
    [0.6,  0.2,  1.5,  4.0,  0.3,  0.6,  0.4,  0.5,  1.5,  2.0,  1.2],  # casual
    [0.4,  2.5,  1.0,  0.5,  4.0,  0.1,  0.3,  0.1,  0.2,  1.2,  0.6],  # hiking
    [1.5,  0.6,  0.3,  1.0,  0.2,  1.0,  4.0,  0.1,  0.1,  0.4,  0.1],  # training
    [0.6,  0.1,  0.2,  2.0,  0.1,  4.0,  1.5,  0.1,  0.1,  0.8,  0.1],  # basketball
    [0.1,  0.1,  0.8,  0.8,  0.1,  0.1,  0.1,  4.0,  3.0,  0.3,  2.5],  # formal
])
# fmt: on
# additive log-appeal of types by gender (rows: GENDERS) and by age band (rows: unknown, then bands)
GENDER_TYPE_LOG = np.zeros((len(GENDERS), len(TYPES)))
GENDER_TYPE_LOG[0, [T["sandal"], T["loafer"], T["walking"]]] = 0.3
GENDER_TYPE_LOG[0, [T["basketball"], T["oxford"]]] = -0.4
GENDER_TYPE_LOG[1, [T["basketball"], T["oxford"], T["hiking boot"]]] = 0.3
GENDER_TYPE_LOG[1, [T["sandal"], T["loafer"]]] = -0.3
AGE_TYPE_LOG = np.zeros((1 + len(AGE_BAND_EDGES) + 1, len(TYPES)))
AGE_TYPE_LOG[1:3, [T["sneaker"], T["basketball"]]] = 0.5  # under 25
AGE_TYPE_LOG[1:3, [T["oxford"], T["loafer"], T["walking"], T["chelsea boot"]]] = -0.6
AGE_TYPE_LOG[5:7, [T["walking"], T["loafer"]]] = 0.4  # 45-64
AGE_TYPE_LOG[5:7, [T["basketball"]]] = -0.6
AGE_TYPE_LOG[7, [T["walking"]]] = 0.9  # 65+
AGE_TYPE_LOG[7, [T["loafer"]]] = 0.5
AGE_TYPE_LOG[7, [T["basketball"], T["trail running"], T["sneaker"]]] = -0.8

MATERIALS = ("leather", "suede", "mesh", "canvas", "knit", "synthetic", "gore-tex", "rubber", "cork", "wool")
M = {name: i for i, name in enumerate(MATERIALS)}
# material mix of each type (rows: TYPES)
TYPE_MATERIALS = {
    "running": {"mesh": 0.55, "knit": 0.30, "synthetic": 0.15},
    "trail running": {"mesh": 0.35, "gore-tex": 0.35, "synthetic": 0.30},
    "walking": {"mesh": 0.30, "leather": 0.30, "synthetic": 0.20, "knit": 0.12, "wool": 0.08},
    "sneaker": {
        "leather": 0.30,
        "canvas": 0.30,
        "suede": 0.18,
        "knit": 0.10,
        "synthetic": 0.06,
        "wool": 0.06,
    },  # fmt: skip
    "hiking boot": {"gore-tex": 0.45, "leather": 0.35, "suede": 0.20},
    "basketball": {"synthetic": 0.50, "leather": 0.30, "knit": 0.20},
    "training": {"mesh": 0.40, "synthetic": 0.35, "knit": 0.25},
    "oxford": {"leather": 0.85, "suede": 0.15},
    "loafer": {"leather": 0.60, "suede": 0.35, "wool": 0.05},
    "sandal": {"rubber": 0.40, "leather": 0.25, "cork": 0.25, "synthetic": 0.10},
    "chelsea boot": {"leather": 0.60, "suede": 0.40},
}
# additive log-appeal of materials by usage (rows: USAGES) and for young (< 25) and older (55+) users
USAGE_MATERIAL_LOG = np.zeros((len(USAGES), len(MATERIALS)))
USAGE_MATERIAL_LOG[0, [M["mesh"], M["knit"]]] = 0.4
USAGE_MATERIAL_LOG[1, [M["leather"], M["gore-tex"]]] = 0.3
USAGE_MATERIAL_LOG[2, [M["canvas"], M["suede"], M["wool"]]] = 0.4
USAGE_MATERIAL_LOG[3, [M["gore-tex"]]] = 0.9
USAGE_MATERIAL_LOG[3, [M["canvas"], M["knit"]]] = -0.6
USAGE_MATERIAL_LOG[4, [M["synthetic"], M["mesh"]]] = 0.3
USAGE_MATERIAL_LOG[6, [M["leather"]]] = 0.8
USAGE_MATERIAL_LOG[6, [M["synthetic"], M["mesh"], M["canvas"]]] = -0.8
YOUNG_MATERIAL_LOG = np.zeros(len(MATERIALS))
YOUNG_MATERIAL_LOG[[M["knit"], M["canvas"]]] = 0.4
YOUNG_MATERIAL_LOG[M["leather"]] = -0.3
OLDER_MATERIAL_LOG = np.zeros(len(MATERIALS))
OLDER_MATERIAL_LOG[M["leather"]] = 0.4
OLDER_MATERIAL_LOG[[M["knit"], M["canvas"]]] = -0.3

# brand: (catalogue share, price tier multiplier, the types it leans to)
BRANDS = {
    "Aurora": (1.2, 1.0, ("running", "trail running", "training")),
    "Stridewell": (1.0, 1.0, ("walking", "running", "sneaker")),
    "Northpeak": (1.0, 1.45, ("hiking boot", "trail running", "chelsea boot")),
    "Velox": (1.0, 1.35, ("running", "training", "basketball")),
    "Harbor & Finch": (0.8, 1.5, ("oxford", "loafer", "chelsea boot")),
    "Kestrel": (1.0, 1.0, ("sneaker", "basketball")),
    "Urbanite": (1.3, 0.65, ("sneaker", "walking", "sandal")),
    "Summit Trail Co.": (0.8, 1.0, ("hiking boot", "trail running", "sandal")),
    "Courtside": (0.8, 1.0, ("basketball", "sneaker", "training")),
    "Élan Atelier": (0.6, 1.7, ("oxford", "loafer")),
    "Pacer": (1.2, 0.65, ("running", "training", "walking")),
    "Driftwood": (0.9, 0.7, ("sandal", "sneaker", "loafer")),
    "Ironclad": (0.8, 1.0, ("training", "hiking boot", "chelsea boot")),
    "Lumen": (1.0, 1.0, ("sneaker", "running", "walking")),
}
BRAND_NAMES = tuple(BRANDS)
OFF_TYPE_WEIGHT = 0.04  # a brand's weight for a type it does not lean to

TYPE_BASE_PRICE = (125, 140, 105, 85, 175, 135, 95, 165, 140, 55, 170)
MATERIAL_PRICE = {"leather": 1.15, "suede": 1.1, "gore-tex": 1.2, "wool": 1.1, "cork": 1.0, "canvas": 0.8}
TYPE_LIFESPAN_DAYS = (420, 400, 650, 560, 1050, 430, 480, 1000, 850, 420, 950)
MATERIAL_LIFESPAN = {
    "leather": 1.2, "suede": 0.9, "mesh": 0.85, "canvas": 0.8, "knit": 0.85, "synthetic": 1.0,
    "gore-tex": 1.1, "rubber": 1.05, "cork": 0.9, "wool": 0.75,
}  # fmt: skip

COLOR_FAMILIES = ("neutral", "earth", "cool", "bright")
COLORS = {  # colour: its family (index into COLOR_FAMILIES)
    "black": 0, "white": 0, "grey": 0,
    "brown": 1, "tan": 1, "beige": 1, "olive": 1, "burgundy": 1,
    "navy": 2, "blue": 2, "green": 2,
    "red": 3, "orange": 3, "yellow": 3, "pink": 3, "multicolor": 3,
}  # fmt: skip
COLOR_NAMES = tuple(COLORS)
# colour mix by kind of shoe (relative weights)
_SPORT_COLORS = {
    "black": 18, "white": 14, "grey": 12, "navy": 8, "blue": 10, "red": 8, "green": 5, "orange": 6,
    "yellow": 4, "pink": 5, "multicolor": 10,
}  # fmt: skip
_CASUAL_COLORS = {
    "white": 25, "black": 20, "grey": 10, "navy": 10, "beige": 10, "red": 5, "green": 5, "pink": 5,
    "multicolor": 6, "olive": 4,
}  # fmt: skip
_FORMAL_COLORS = {"black": 40, "brown": 35, "tan": 13, "navy": 5, "burgundy": 7}
_BOOT_COLORS = {"brown": 30, "olive": 15, "grey": 20, "black": 20, "tan": 15}
_SANDAL_COLORS = {"black": 30, "brown": 25, "tan": 20, "beige": 15, "white": 10}
TYPE_COLORS = {
    "running": _SPORT_COLORS, "trail running": _SPORT_COLORS, "walking": _CASUAL_COLORS,
    "sneaker": _CASUAL_COLORS, "hiking boot": _BOOT_COLORS, "basketball": _SPORT_COLORS,
    "training": _SPORT_COLORS, "oxford": _FORMAL_COLORS, "loafer": _FORMAL_COLORS,
    "sandal": _SANDAL_COLORS, "chelsea boot": _BOOT_COLORS,
}  # fmt: skip

MODEL_WORDS = (
    "Zephyr", "Nimbus", "Cirrus", "Tempo", "Vector", "Ridge", "Cascade", "Meridian", "Solstice",
    "Equinox", "Orbit", "Comet", "Falcon", "Harrier", "Atlas", "Boreal", "Canyon", "Drift", "Ember",
    "Flux", "Glide", "Horizon", "Ion", "Juniper", "Kinetic", "Lark", "Mistral", "Nova", "Onyx", "Pulse",
    "Quill", "Rover", "Sierra", "Tundra", "Umbra", "Vale", "Wren", "Yonder", "Zenith", "Côte", "Fjäll",
    "Alder", "Basalt", "Cobalt", "Dune", "Fable", "Granite", "Haven", "Summit", "Aspen", "Breeze",
    "Crest", "Delta", "Ethos", "Fern", "Grove", "Halo", "Ivy", "Jet", "Keel",
)  # fmt: skip
TYPE_LABELS = {
    "running": ("Runner", "Run", "Racer"),
    "trail running": ("Trail Runner", "Trail"),
    "walking": ("Walker", "Comfort Walk"),
    "sneaker": ("Sneaker", "Low", "High-Top"),
    "hiking boot": ("Hiker", "Mid Boot"),
    "basketball": ("Court", "Hoops"),
    "training": ("Trainer", "Cross Trainer"),
    "oxford": ("Oxford", "Cap-Toe Oxford"),
    "loafer": ("Loafer", "Penny Loafer"),
    "sandal": ("Sandal", "Slide"),
    "chelsea boot": ("Chelsea Boot",),
}
MATERIAL_SUFFIX = {
    "gore-tex": " GTX", "knit": " Knit", "suede": " Suede", "canvas": " Canvas", "wool": " Wool",
    "cork": " Cork",
}  # fmt: skip

CARE_TEXTS = {
    "leather": (
        "Wipe clean with a soft, damp cloth, let dry at room temperature and condition every few weeks.",
        'Use a cream polish, not a "quick shine" sponge, and buff with a horsehair brush.',
    ),
    "suede": (
        "Brush with a suede brush, always in one direction; spray with a suede protector before first wear.",
        'Lift marks with a suede eraser. Let wet "fresh" stains dry before brushing, never rub them.',
    ),
    "mesh": (
        "Remove insoles and laces, hand-wash in lukewarm water with mild soap, then air-dry.",
        'Stuff with newspaper to dry; keep away from radiators and "hot air" dryers.',
    ),
    "canvas": (
        "Brush off dry dirt, spot-clean with cold water and mild detergent, air-dry out of the sun.",
        "Machine-washable on a cold, gentle cycle inside a laundry bag; wash the laces separately.",
    ),
    "knit": (
        "Hand-wash in cold water with a wool-safe detergent, reshape and air-dry flat.",
        'Pull snags back inside with a needle; never cut a "loose" thread.',
    ),
    "synthetic": (
        "Wipe with a damp cloth and mild soap, rinse the soles, air-dry.",
        "Clean the uppers with a soft brush and soapy water, then pat dry.",
    ),
    "gore-tex": (
        'Rinse off mud with clean water, brush gently, and re-proof with a "membrane-safe" spray.',
        "No fabric softener, no solvents: both clog the membrane.",
    ),
    "rubber": ("Rinse with fresh water after salt water or chlorine, and dry in the shade.",),
    "cork": ("Keep the cork footbed dry, seal it twice a year with cork sealant, and never soak it.",),
    "wool": ("Machine-wash on a cold wool cycle without the insoles, then air-dry away from heat.",),
}
TYPE_CARE_TIPS = {
    "running": "Rotate two pairs, so the midsole foam can recover between runs.",
    "trail running": "Knock out grit after every run, then let them dry, open, away from direct heat.",
    "walking": "Air them out overnight, with the insoles out.",
    "sneaker": "Clean the midsoles with a soft brush, and keep them out of the washing machine's dryer.",
    "hiking boot": 'Re-wax the seams each season; loosen the laces fully before drying, "tongue" open.',
    "basketball": "Wipe the outsole before you play, dust kills grip.",
    "training": "Let them dry fully between sessions, sweat breaks down the foam.",
    "oxford": 'Store with cedar shoe trees; polish "little and often".',
    "loafer": 'Store with cedar shoe trees; polish "little and often".',
    "sandal": "Keep them out of hot cars, the footbed can warp.",
    "chelsea boot": "Clean the elastic gussets with a dry brush, and store them upright.",
}

# ------------------------------------------------------------------------------------------------
# Catalogue and users
# ------------------------------------------------------------------------------------------------


@dataclass
class Catalogue:
    """The shoes, one array per attribute (row i is shoe_id FIRST_SHOE_ID + i)."""

    shoe_id: np.ndarray
    brand: np.ndarray  # index into BRAND_NAMES
    type: np.ndarray  # index into TYPES
    material: np.ndarray  # index into MATERIALS
    color: np.ndarray  # index into COLOR_NAMES
    price_cents: np.ndarray
    lifespan_days: np.ndarray
    released_at: np.ndarray  # epoch seconds
    popularity_log: np.ndarray  # log of the global (Zipf-like) popularity; -inf for unlisted shoes
    combo: np.ndarray  # index of the shoe's (type, material, brand, colour family) among combo_*
    combo_type: np.ndarray
    combo_material: np.ndarray
    combo_brand: np.ndarray
    combo_family: np.ndarray
    factors: np.ndarray  # (shoes, LATENT_DIM + 1): latent taste vector, then log price standardized in type
    names: list[str]
    care: list[str]

    def __post_init__(self):
        self.factors_t = np.ascontiguousarray(self.factors.T)


@dataclass
class Users:
    """The users, one array per attribute (row i is user_id FIRST_USER_ID + i)."""

    user_id: np.ndarray
    usage: np.ndarray  # index into USAGES
    gender: np.ndarray  # index into GENDERS (3 = unknown)
    age: np.ndarray  # years, -1 when unknown
    age_band: np.ndarray  # 0 unknown, 1..7 the bands of AGE_BAND_EDGES
    active_from: np.ndarray  # epoch seconds: the later of joining and the window start
    expected_views: np.ndarray  # Poisson mean of the user's number of views (0 for never-active users)


LATENT_DIM = 6
LATENT_SCALE = 0.35  # weight of the latent taste (dot product of two N(0, I) vectors)
CONVERSION_TASTE = 0.5  # how much more a liked shoe is wishlisted / bought: weight exp(this x logit)
POPULARITY_EXPONENT = 0.7  # popularity of the shoe at popularity rank r ~ r ** -exponent


def _choice(rng: np.random.Generator, n: int, weights) -> np.ndarray:
    """``n`` indices drawn with the given (unnormalized) weights."""
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def make_catalogue(rng: np.random.Generator, n: int, start: int, end: int) -> Catalogue:
    """``n`` shoes with brand, type, material, colour, price, lifespan, release date, popularity."""
    # brand, then a type the brand leans to
    brand_share = np.array([BRANDS[b][0] for b in BRAND_NAMES])
    brand = _choice(rng, n, brand_share)
    brand_types = np.full((len(BRAND_NAMES), len(TYPES)), OFF_TYPE_WEIGHT)
    for b, name in enumerate(BRAND_NAMES):
        brand_types[b, [T[t] for t in BRANDS[name][2]]] = 1.0
    brand_types /= brand_types.sum(axis=1, keepdims=True)
    type_ = _inverse_cdf(rng, brand_types[brand])
    # material and colour given the type
    type_material = np.zeros((len(TYPES), len(MATERIALS)))
    type_color = np.zeros((len(TYPES), len(COLOR_NAMES)))
    for t, name in enumerate(TYPES):
        for m, w in TYPE_MATERIALS[name].items():
            type_material[t, M[m]] = w
        for c, w in TYPE_COLORS[name].items():
            type_color[t, COLOR_NAMES.index(c)] = w
    type_material /= type_material.sum(axis=1, keepdims=True)
    type_color /= type_color.sum(axis=1, keepdims=True)
    material = _inverse_cdf(rng, type_material[type_])
    color = _inverse_cdf(rng, type_color[type_])

    # price: type base x brand tier x material x noise, ending in .99 or .95
    tier = np.array([BRANDS[b][1] for b in BRAND_NAMES])
    material_price = np.array([MATERIAL_PRICE.get(m, 1.0) for m in MATERIALS])
    price = np.array(TYPE_BASE_PRICE)[type_] * tier[brand] * material_price[material]
    price *= rng.lognormal(0.0, 0.15, n)
    cents = np.maximum(np.round(price), 10).astype(np.int64) * 100 - np.where(rng.random(n) < 0.7, 1, 5)
    # lifespan: type base x material x noise
    material_life = np.array([MATERIAL_LIFESPAN[m] for m in MATERIALS])
    lifespan = np.array(TYPE_LIFESPAN_DAYS)[type_] * material_life[material] * rng.lognormal(0.0, 0.12, n)
    lifespan = np.maximum(np.round(lifespan), 60).astype(np.int64)

    # release: 70% before the window (up to 3 years), 20% in its first 90%, 10% in its last 10%
    span = end - start
    kind = _choice(rng, n, (0.70, 0.20, 0.10))
    low = np.select([kind == 0, kind == 1], [start - 3 * 365 * DAY, start], start + 0.9 * span)
    high = np.select([kind == 0, kind == 1], [start, start + 0.9 * span], end)
    released_at = (low + rng.random(n) * (high - low)).astype(np.int64)

    # popularity: Zipf-like over a random order of the shoes; unlisted shoes are never shown
    rank = rng.permutation(n) + 1
    popularity_log = -POPULARITY_EXPONENT * np.log(rank)
    unlisted = rng.permutation(n)[: int(round(UNLISTED_SHOE_SHARE * n))]
    popularity_log[unlisted] = -np.inf

    # log price standardized within type (price sensitivity acts among comparable shoes)
    log_price = np.log(cents / 100.0)
    price_z = np.zeros(n)
    for t in np.unique(type_):
        of_type = type_ == t
        sd = log_price[of_type].std()
        price_z[of_type] = (log_price[of_type] - log_price[of_type].mean()) / (sd if sd > 0 else 1.0)
    latent = rng.standard_normal((n, LATENT_DIM))
    # the distinct attribute combinations: user x combo is far smaller than user x shoe
    family = np.array([COLORS[c] for c in COLOR_NAMES])[color]
    combo_key = ((type_ * len(MATERIALS) + material) * len(BRAND_NAMES) + brand) * len(
        COLOR_FAMILIES
    ) + family
    combo_keys, combo = np.unique(combo_key, return_inverse=True)

    # names and care instructions (Python strings: the catalogue is small)
    model = rng.integers(0, len(MODEL_WORDS), n)
    label_pick = rng.random(n)
    version = np.where(rng.random(n) < 0.3, rng.integers(2, 6, n), 0)
    care_pick = rng.random(n)
    tip_mode = _choice(rng, n, (0.45, 0.30, 0.25))  # no tip, tip on the same line, tip on a new line
    names, care = [], []
    for i in range(n):
        type_name, material_name = TYPES[type_[i]], MATERIALS[material[i]]
        labels = TYPE_LABELS[type_name]
        name = f"{BRAND_NAMES[brand[i]]} {MODEL_WORDS[model[i]]} {labels[int(label_pick[i] * len(labels))]}"
        name += MATERIAL_SUFFIX.get(material_name, "")
        names.append(name + (f" {version[i]}" if version[i] else ""))
        texts = CARE_TEXTS[material_name]
        text = texts[int(care_pick[i] * len(texts))]
        tip = TYPE_CARE_TIPS[type_name]
        care.append((text, f"{text} {tip}", f"{text}\n{tip}")[tip_mode[i]])
    return Catalogue(
        shoe_id=FIRST_SHOE_ID + np.arange(n, dtype=np.int64),
        brand=brand,
        type=type_,
        material=material,
        color=color,
        price_cents=cents,
        lifespan_days=lifespan,
        released_at=released_at,
        popularity_log=popularity_log,
        combo=combo,
        combo_type=combo_keys // (len(COLOR_FAMILIES) * len(BRAND_NAMES) * len(MATERIALS)),
        combo_material=combo_keys // (len(COLOR_FAMILIES) * len(BRAND_NAMES)) % len(MATERIALS),
        combo_brand=combo_keys // len(COLOR_FAMILIES) % len(BRAND_NAMES),
        combo_family=combo_keys % len(COLOR_FAMILIES),
        factors=np.column_stack((latent, price_z)),
        names=names,
        care=care,
    )


def make_users(rng: np.random.Generator, n: int, start: int, end: int, n_views: float) -> Users:
    """``n`` users with segment attributes, join date and expected number of views (``n_views`` in all)."""
    usage = _choice(rng, n, USAGE_SHARE)
    # gender depends a little on usage; some not given
    male = rng.random(n) < np.array(USAGE_MALE_SHARE)[usage]
    gender = np.where(male, 1, 0)
    other = rng.random(n)
    gender = np.where(other < NONBINARY_SHARE, 2, gender)
    gender = np.where(other > 1 - NO_GENDER_SHARE, 3, gender)
    # age by usage; some not given
    mean_sd = np.array(USAGE_AGE, dtype=float)[usage]
    age = np.clip(np.round(rng.normal(mean_sd[:, 0], mean_sd[:, 1])), 13, 95).astype(np.int64)
    age = np.where(rng.random(n) < NO_AGE_SHARE, -1, age)
    age_band = np.where(age < 0, 0, 1 + np.searchsorted(AGE_BAND_EDGES, age, side="right"))

    # 55% were customers before the window; the others join during it (uniformly)
    joined_before = rng.random(n) < 0.55
    active_from = np.where(joined_before, start, start + (rng.random(n) * (end - start)).astype(np.int64))
    # activity: heavy-tailed, proportional to the time the user is around; some never interact
    activity = rng.lognormal(0.0, 0.8, n) * (end - active_from) / (end - start)
    activity[rng.random(n) < NO_INTERACTION_USER_SHARE] = 0.0
    expected_views = activity * (n_views / activity.sum()) if activity.sum() > 0 else activity
    return Users(
        user_id=FIRST_USER_ID + np.arange(n, dtype=np.int64),
        usage=usage,
        gender=gender,
        age=age,
        age_band=age_band,
        active_from=active_from,
        expected_views=expected_views,
    )


def _inverse_cdf(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One index per row of ``probabilities`` (rows sum to 1), drawn by inverse CDF."""
    cdf = np.cumsum(probabilities, axis=1)
    picks = (rng.random((len(cdf), 1)) * cdf[:, -1:] >= cdf).sum(axis=1)
    return np.minimum(picks, probabilities.shape[1] - 1)


# ------------------------------------------------------------------------------------------------
# Preferences and the funnel, one batch of users at a time
# ------------------------------------------------------------------------------------------------


@dataclass
class Tastes:
    """A batch of users' preferences; see :func:`user_tastes`."""

    attributes: np.ndarray  # (batch, combos): log-appeal of each attribute combination
    factors: np.ndarray  # (batch, LATENT_DIM + 1): scaled latent taste, then price sensitivity

    def logits(self, shoes: Catalogue) -> np.ndarray:
        """Log-weights (batch x shoes), popularity excluded."""
        logits = self.factors @ shoes.factors_t
        logits += np.take(self.attributes, shoes.combo, axis=1)  # much faster than [:, combo]
        return logits

    def logits_at(self, rows: np.ndarray, shoe_rows: np.ndarray, shoes: Catalogue) -> np.ndarray:
        """The same log-weights for the given (row, shoe) pairs only."""
        latent = np.einsum("ij,ij->i", self.factors[rows], shoes.factors[shoe_rows])
        return self.attributes[rows, shoes.combo[shoe_rows]] + latent


def user_tastes(rng: np.random.Generator, users: Users, rows: slice, shoes: Catalogue) -> Tastes:
    r"""The preferences of a batch of users over the catalogue.

    The log-weight of user ``u`` for shoe ``s`` (popularity excluded) is

    .. math:: \ell_{us} = a_u[\mathrm{type}_s] + b_u[\mathrm{material}_s] + c_u[\mathrm{brand}_s]
              + d_u[\mathrm{family}_s] + \lambda\, x_u^\top y_s + \beta_u z_s

    with segment parts (usage x gender x age band) plus personal noise in ``a`` and ``b``, one or two
    personal favourite brands in ``c``, a favourite colour family in ``d``, a latent taste ``x`` shared
    with the shoes' ``y`` (both standard normal, weight ``lambda``) and a price sensitivity ``beta``
    (``z``: log price standardized within type).
    """
    usage, gender, band = users.usage[rows], users.gender[rows], users.age_band[rows]
    n = len(usage)
    young, older = (band >= 1) & (band <= 2), band >= 6
    # type: segment (usage x gender x age band) + personal noise
    type_log = np.log(USAGE_TYPE_APPEAL[usage]) + GENDER_TYPE_LOG[gender] + AGE_TYPE_LOG[band]
    type_log += rng.normal(0.0, 0.3, type_log.shape)
    # material: usage and age + personal noise
    material_log = USAGE_MATERIAL_LOG[usage] + rng.normal(0.0, 0.3, (n, len(MATERIALS)))
    material_log += young[:, None] * YOUNG_MATERIAL_LOG + older[:, None] * OLDER_MATERIAL_LOG
    # brand: one or two favourites among the brands that make what the user's usage likes
    brand_fit = np.zeros((len(USAGES), len(BRAND_NAMES)))
    for b, name in enumerate(BRAND_NAMES):
        brand_fit[:, b] = USAGE_TYPE_APPEAL[:, [T[t] for t in BRANDS[name][2]]].max(axis=1)
    brand_fit /= brand_fit.sum(axis=1, keepdims=True)
    brand_log = rng.normal(0.0, 0.3, (n, len(BRAND_NAMES)))
    first = _inverse_cdf(rng, brand_fit[usage])
    second = _inverse_cdf(rng, brand_fit[usage])
    has_second = rng.random(n) < 0.5
    brand_log[np.arange(n), first] += 1.3
    brand_log[np.arange(n)[has_second], second[has_second]] += 0.8
    # colour: a favourite family
    family_log = np.zeros((n, len(COLOR_FAMILIES)))
    family_log[np.arange(n), _choice(rng, n, (0.45, 0.2, 0.2, 0.15))] = 0.8
    # price sensitivity (negative: prefers the cheaper shoes of a type), stronger when young
    beta = rng.normal(-0.35, 0.35, n) - 0.25 * young
    latent = rng.standard_normal((n, LATENT_DIM))

    attributes = type_log[:, shoes.combo_type]
    attributes += material_log[:, shoes.combo_material]
    attributes += brand_log[:, shoes.combo_brand]
    attributes += family_log[:, shoes.combo_family]
    return Tastes(attributes=attributes, factors=np.column_stack((LATENT_SCALE * latent, beta)))


class _RowSampler:
    """Draws shoes for given batch rows, each row's distribution given by log-weights (batch x shoes)."""

    def __init__(self, logits: np.ndarray):
        # in place, one array: weights, cumulative, normalized, then row r shifted into (r, r + 1]
        n_rows, self.n_cols = logits.shape
        cdf = np.exp(logits, out=logits)
        np.cumsum(cdf, axis=1, out=cdf)
        total = cdf[:, -1:].copy()
        cdf /= np.where(total > 0, total, 1.0)
        cdf += np.arange(n_rows, dtype=float)[:, None]
        self.flat = cdf.ravel()  # one search over all rows

    def draw(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self.flat, rows + rng.random(len(rows)), side="right")
        return np.minimum(at - rows * self.n_cols, self.n_cols - 1)


def _draw_available(
    rng: np.random.Generator,
    sampler: _RowSampler,
    rows: np.ndarray,
    times: np.ndarray,
    released_at: np.ndarray,
    tries: int = 12,
) -> tuple[np.ndarray, np.ndarray]:
    """A shoe per (row, time), among shoes released by then (rejection); returns (shoes, kept mask)."""
    shoes = sampler.draw(rng, rows)
    for _ in range(tries):
        early = np.flatnonzero(released_at[shoes] > times)
        if len(early) == 0:
            break
        shoes[early] = sampler.draw(rng, rows[early])
    return shoes, released_at[shoes] <= times


def _uniform_time(rng: np.random.Generator, low: np.ndarray, end: int) -> np.ndarray:
    return low + (rng.random(len(low)) * (end + 1 - low)).astype(np.int64)


def _after(rng: np.random.Generator, anchor: np.ndarray, quick_share: float, end: int) -> np.ndarray:
    """A time after each anchor: within the hour (``quick_share``) or days later; at most ``end``."""
    quick = rng.random(len(anchor)) < quick_share
    delay = np.where(quick, rng.exponential(600.0, len(anchor)), rng.exponential(4.0 * DAY, len(anchor)))
    delay = 1 + delay.astype(np.int64)
    late = anchor + delay > end
    # no room for the delay: somewhere between the anchor and the end
    room = np.maximum(end - anchor, 0)
    squeezed = anchor + 1 + (rng.random(len(anchor)) * room).astype(np.int64)
    return np.where(late, np.minimum(squeezed, end), anchor + delay)


def _select(rng: np.random.Generator, weights: np.ndarray, expected: float) -> np.ndarray:
    """A mask choosing each item with probability proportional to its weight, ``expected`` in all."""
    if len(weights) == 0 or expected <= 0:
        return np.zeros(len(weights), dtype=bool)
    cap = 0.9
    p = weights * (expected / weights.sum())
    for _ in range(5):  # spread what the cap cuts off over the others
        p = np.minimum(p, cap)
        missing = expected - p.sum()
        free = p < cap
        if missing <= 1e-9 or not free.any():
            break
        p[free] *= 1 + missing / p[free].sum()
    return rng.random(len(weights)) < np.minimum(p, cap)


def simulate_batch(
    rng: np.random.Generator,
    users: Users,
    rows: slice,
    shoes: Catalogue,
    end: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The interactions of one batch of users: (user_id, shoe_id, type code, epoch seconds).

    Sorted by user, time, funnel step and shoe; at most one event per (user, shoe, type, second).
    """
    expected_views = users.expected_views[rows]
    active_from = users.active_from[rows]
    n = len(expected_views)
    tastes = user_tastes(rng, users, rows, shoes)
    logits = tastes.logits(shoes)
    logits += shoes.popularity_log
    sampler = _RowSampler(logits)  # takes over the array
    released = shoes.released_at

    # views: in sessions of a few views each, within half an hour from the session's start
    views_per_user = rng.poisson(expected_views)
    sessions_per_user = 1 + rng.binomial(np.maximum(views_per_user - 1, 0), 0.22)
    sessions_per_user[views_per_user == 0] = 0
    session_user = np.repeat(np.arange(n), sessions_per_user)
    session_start = _uniform_time(rng, active_from[session_user], end - 1800)
    session_start = np.maximum(np.minimum(session_start, end - 1800), active_from[session_user])
    first_session = np.concatenate(([0], np.cumsum(sessions_per_user)[:-1]))
    view_user = np.repeat(np.arange(n), views_per_user)
    view_session = first_session[view_user] + (
        rng.random(len(view_user)) * sessions_per_user[view_user]
    ).astype(np.int64)
    view_time = np.minimum(session_start[view_session] + rng.integers(0, 1800, len(view_user)), end)
    view_shoe, ok = _draw_available(rng, sampler, view_user, view_time, released)
    view_user, view_shoe, view_time = view_user[ok], view_shoe[ok], view_time[ok]
    n_views = len(view_user)

    # viewed (user, shoe) pairs with their first view and number of views
    key = view_user * len(released) + view_shoe
    order = np.lexsort((view_time, key))
    pair_key, first_at, n_seen = np.unique(key[order], return_index=True, return_counts=True)
    pair_user, pair_shoe = pair_key // len(released), pair_key % len(released)
    pair_first = view_time[order][first_at]
    pair_taste = np.exp(CONVERSION_TASTE * tastes.logits_at(pair_user, pair_shoe, shoes))

    # wishlists: mostly of viewed shoes (liked and seen more often: more likely), some direct
    n_wishlists = WISHLISTS_PER_VIEW * n_views
    wished = _select(rng, pair_taste * (1 + 0.5 * (n_seen - 1)), (1 - DIRECT_WISHLIST_SHARE) * n_wishlists)
    wished_at = np.flatnonzero(wished)
    wish_time = _after(rng, pair_first[wished_at], 0.7, end)
    room = wish_time > pair_first[wished_at]  # none when first viewed in the window's last second
    wished[wished_at[~room]] = False
    wish_time = wish_time[room]
    wish_user, wish_shoe = pair_user[wished], pair_shoe[wished]
    direct_wish_user = _direct_users(rng, views_per_user, DIRECT_WISHLIST_SHARE * n_wishlists)
    direct_wish_time = _uniform_time(rng, active_from[direct_wish_user], end)
    direct_wish_shoe, ok = _draw_available(rng, sampler, direct_wish_user, direct_wish_time, released)
    direct_wish_user, direct_wish_shoe, direct_wish_time = (
        direct_wish_user[ok],
        direct_wish_shoe[ok],
        direct_wish_time[ok],
    )

    # purchases: mostly of a viewed or wishlisted shoe, after that; a wishlisted shoe sells far better
    candidate_user = np.concatenate((pair_user, direct_wish_user))
    candidate_shoe = np.concatenate((pair_shoe, direct_wish_shoe))
    pair_anchor = pair_first.copy()  # bought after the first view, and after the wishlist if any
    pair_anchor[wished] = np.maximum(pair_first[wished], wish_time)
    candidate_anchor = np.concatenate((pair_anchor, direct_wish_time))
    candidate_weight = np.concatenate(
        (
            pair_taste * (1 + 0.3 * (n_seen - 1)),
            np.exp(CONVERSION_TASTE * tastes.logits_at(direct_wish_user, direct_wish_shoe, shoes)),
        )
    )
    is_wished = np.concatenate((wished, np.ones(len(direct_wish_user), dtype=bool)))
    candidate_weight[is_wished] *= 5.0
    n_purchases = PURCHASES_PER_VIEW * n_views
    bought = _select(rng, candidate_weight, (1 - DIRECT_PURCHASE_SHARE) * n_purchases)
    buy_user, buy_shoe = candidate_user[bought], candidate_shoe[bought]
    buy_time = _after(rng, candidate_anchor[bought], 0.35, end)
    keep = buy_time > candidate_anchor[bought]  # no room left after the anchor: no purchase
    buy_user, buy_shoe, buy_time = buy_user[keep], buy_shoe[keep], buy_time[keep]
    direct_buy_user = _direct_users(rng, views_per_user, DIRECT_PURCHASE_SHARE * n_purchases)
    direct_buy_time = _uniform_time(rng, active_from[direct_buy_user], end)
    direct_buy_shoe, ok = _draw_available(rng, sampler, direct_buy_user, direct_buy_time, released)
    buy_user = np.concatenate((buy_user, direct_buy_user[ok]))
    buy_shoe = np.concatenate((buy_shoe, direct_buy_shoe[ok]))
    buy_time = np.concatenate((buy_time, direct_buy_time[ok]))

    # re-purchases: some buy the same shoe again when the first pair is worn out (a view just before)
    wear = np.array(USAGE_WEAR)[users.usage[rows]][buy_user]
    worn_out = buy_time + (shoes.lifespan_days[buy_shoe] / wear * rng.uniform(0.75, 1.0, len(buy_time)) * DAY)
    again = (rng.random(len(buy_time)) < 0.06) & (worn_out <= end)
    again_user, again_shoe, again_time = buy_user[again], buy_shoe[again], worn_out[again].astype(np.int64)
    again_view_time = again_time - 1 - rng.integers(0, 3 * DAY, len(again_time))

    user = np.concatenate((view_user, wish_user, direct_wish_user, buy_user, again_user, again_user))
    shoe = np.concatenate((view_shoe, wish_shoe, direct_wish_shoe, buy_shoe, again_shoe, again_shoe))
    at = np.concatenate((view_time, wish_time, direct_wish_time, buy_time, again_time, again_view_time))
    kind = np.concatenate(
        (
            np.full(n_views, VIEW),
            np.full(len(wish_user) + len(direct_wish_user), WISHLIST),
            np.full(len(buy_user) + len(again_user), PURCHASE),
            np.full(len(again_user), VIEW),
        )
    )
    # one event per (user, shoe, kind, second): the key the database stores them by
    order = np.lexsort((shoe, kind, at, user))
    user, shoe, kind, at = user[order], shoe[order], kind[order], at[order]
    repeat = np.zeros(len(user), dtype=bool)
    repeat[1:] = (
        (user[1:] == user[:-1]) & (shoe[1:] == shoe[:-1]) & (kind[1:] == kind[:-1]) & (at[1:] == at[:-1])
    )
    keep = ~repeat
    return users.user_id[rows][user[keep]], shoes.shoe_id[shoe[keep]], kind[keep], at[keep]


def _direct_users(rng: np.random.Generator, views_per_user: np.ndarray, expected: float) -> np.ndarray:
    """Rows of users for ``expected`` direct events, spread in proportion to their views."""
    total = views_per_user.sum()
    if total == 0 or expected <= 0:
        return np.zeros(0, dtype=np.int64)
    counts = rng.multinomial(rng.poisson(expected), views_per_user / total)
    return np.repeat(np.arange(len(views_per_user)), counts)


# ------------------------------------------------------------------------------------------------
# The real-log profile: shaped like a public retail / rating log, not like the demo's funnel
# ------------------------------------------------------------------------------------------------
# A second world, for testing a recommender on data it was not tuned on: a low-rank taste that only
# collaborative filtering sees well, weak demographic and content signals, a Zipf-like head, short
# heavy-tailed histories in one or two bursts, and mostly one event per (user, shoe), its type set by
# how much the user likes the shoe. It reuses the demo's catalogue and user attributes (names, prices,
# care texts, ages ...) but none of their preferences.

REAL_LOG_LATENT_DIM = 12
REAL_LOG_TASTE_SCALE = 2.5  # weight of the latent taste (a dot product of unit variance) in the log-weights
REAL_LOG_POPULARITY_EXPONENT = 1.0  # popularity of the shoe at popularity rank r ~ r ** -exponent
REAL_LOG_DEMOGRAPHIC_SHARE = 0.2  # share of a user's taste variance set by usage x gender and age band
REAL_LOG_CONTENT_SHARE = 0.15  # share of a shoe's taste variance set by its brand, type, material, colour
REAL_LOG_NOVELTY = 1.5  # log-boost of a shoe just released in the window ...
REAL_LOG_NOVELTY_DAYS = 30  # ... fading with this time constant
REAL_LOG_COLD_USER_SHARE = 0.02
REAL_LOG_ACTIVITY_SIGMA = 1.45  # of the log-normal number of events per user
REAL_LOG_MAX_EVENTS = 650  # per user (before the few extra views) ...
REAL_LOG_MAX_SHOE_SHARE = 0.5  # ... and at most this share of the catalogue
REAL_LOG_TWO_BURST_SHARE = 0.4  # users active in two bursts (the others in one)
REAL_LOG_BURST_DAYS = (0.5, 4.0)  # length of a burst: uniform between these
REAL_LOG_TYPE_SHARE = (0.45, 0.30, 0.25)  # view, add_to_wishlist, purchase
REAL_LOG_TYPE_NOISE = 1.0  # logistic noise on the liking that sets the type
REAL_LOG_EXTRA_VIEW_SHARE = 0.02  # wishlisted or bought pairs that also have a view a little earlier


def real_log_tastes(
    rng: np.random.Generator, users: Users, shoes: Catalogue
) -> tuple[np.ndarray, np.ndarray]:
    r"""Latent user and shoe factors of the real-log world, each row of unit variance per dimension.

    A user's factor is mostly personal, with a small share (``REAL_LOG_DEMOGRAPHIC_SHARE``) from a
    vector per (usage, gender) and per age band; a shoe's is mostly its own, with a small share
    (``REAL_LOG_CONTENT_SHARE``) from vectors per brand, type, material and colour family. The taste
    of ``u`` for ``s`` is then ``x_u^T y_s / sqrt(k)``, of unit variance.

    Returns
    -------
    (user factors (users x k), shoe factors (shoes x k))
    """
    k = REAL_LOG_LATENT_DIM
    n_users, n_shoes = len(users.user_id), len(shoes.shoe_id)
    # demographic part: (usage, gender) and age band vectors, summed with equal variance
    segment = rng.standard_normal((len(USAGES), len(GENDERS), k))
    band = rng.standard_normal((len(AGE_TYPE_LOG), k))
    demographic = (segment[users.usage, users.gender] + band[users.age_band]) / np.sqrt(2)
    d = REAL_LOG_DEMOGRAPHIC_SHARE
    user_factors = np.sqrt(d) * demographic + np.sqrt(1 - d) * rng.standard_normal((n_users, k))
    # content part: brand, type, material and colour family vectors, summed with equal variance
    family = np.array([COLORS[c] for c in COLOR_NAMES])[shoes.color]
    content = (
        rng.standard_normal((len(BRAND_NAMES), k))[shoes.brand]
        + rng.standard_normal((len(TYPES), k))[shoes.type]
        + rng.standard_normal((len(MATERIALS), k))[shoes.material]
        + rng.standard_normal((len(COLOR_FAMILIES), k))[family]
    ) / 2.0
    c = REAL_LOG_CONTENT_SHARE
    shoe_factors = np.sqrt(c) * content + np.sqrt(1 - c) * rng.standard_normal((n_shoes, k))
    return user_factors, shoe_factors


def real_log_activity(rng: np.random.Generator, n: int, total: int, cap: float) -> np.ndarray:
    """Events per user: log-normal, at most ``cap``, ``total`` in all (about); 0 (cold users) or >= 1."""
    if n == 0 or total <= 0:
        return np.zeros(n, dtype=np.int64)
    activity = rng.lognormal(0.0, REAL_LOG_ACTIVITY_SIGMA, n)
    activity[rng.random(n) < REAL_LOG_COLD_USER_SHARE] = 0.0
    if activity.sum() == 0:
        return np.zeros(n, dtype=np.int64)
    # scale to the total, spreading what the cap cuts off over the others
    expected = activity * (total / activity.sum())
    cap = max(cap, 1.0)
    for _ in range(10):
        expected = np.minimum(expected, cap)
        free = (expected < cap) & (expected > 0)
        missing = total - expected.sum()
        if missing <= 0.5 or not free.any():
            break
        expected[free] *= 1 + missing / expected[free].sum()
    # at least one event for each active user, the rest Poisson
    counts = 1 + rng.poisson(np.maximum(expected - 1, 0.0))
    counts[activity == 0] = 0
    return np.minimum(counts, int(cap))


def real_log_bursts(rng: np.random.Generator, n: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """One or two bursts per user, at random points of the window: (starts (n, 2), lengths (n, 2)).

    Seconds; a user with one burst has its second equal to the first. The bursts are in time
    order and end by ``end``.
    """
    length = (rng.uniform(*REAL_LOG_BURST_DAYS, (n, 2)) * DAY).astype(np.int64)
    length = np.minimum(length, max(end - start, 1))
    first = start + (rng.random((n, 2)) * (end - start - length)).astype(np.int64)
    # in time order; one burst: the second is the first
    order = np.argsort(first, axis=1)
    first, length = np.take_along_axis(first, order, 1), np.take_along_axis(length, order, 1)
    one = rng.random(n) >= REAL_LOG_TWO_BURST_SHARE
    first[one, 1], length[one, 1] = first[one, 0], length[one, 0]
    return first, length


def _top_k_per_row(keys: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the ``k[row]`` largest keys of each row (at most the finite ones)."""
    k = np.minimum(k, np.isfinite(keys).sum(axis=1))
    order = np.argsort(-keys, axis=1, kind="stable")
    taken = np.arange(keys.shape[1]) < k[:, None]
    rows = np.repeat(np.arange(len(keys)), k)
    return rows, order[taken]


def _real_log_draws(
    rng: np.random.Generator,
    rows: slice,
    counts: np.ndarray,
    last_burst: np.ndarray,
    user_factors: np.ndarray,
    shoe_factors: np.ndarray,
    popularity_log: np.ndarray,
    novelty: np.ndarray,
    released_at: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shoes of a batch of users, drawn without replacement: (user rows, shoe rows, taste)."""
    # log-weights: taste, popularity, novelty; shoes not yet released by the last burst are out
    taste = REAL_LOG_TASTE_SCALE * (user_factors[rows] @ shoe_factors.T) / np.sqrt(REAL_LOG_LATENT_DIM)
    age_days = (last_burst[rows, None] - released_at[None, :]) / DAY
    logits = taste + popularity_log
    logits += novelty * np.exp(-np.maximum(age_days, 0.0) / REAL_LOG_NOVELTY_DAYS)
    logits[age_days < 0] = -np.inf
    # the k largest of log-weight + Gumbel noise: a draw of k without replacement
    keys = logits + rng.gumbel(size=logits.shape)
    user, shoe = _top_k_per_row(keys, counts[rows])
    return user + rows.start, shoe, taste[user, shoe]


def simulate_real_log(
    rng: np.random.Generator, users: Users, shoes: Catalogue, start: int, end: int, total: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""The interactions of the real-log world: (user_id, shoe_id, type code, epoch seconds).

    Each user's shoes are drawn without replacement (Gumbel top-k) with log-weights

    .. math:: \ell_{us} = -\alpha \log r_s + \lambda\, x_u^\top y_s / \sqrt{k} + \nu\, e^{-a_{us}/\tau}

    (Zipf popularity at rank ``r``, the low-rank taste of :func:`real_log_tastes`, a boost of a shoe
    released ``a`` before the user's last burst), among the shoes released by then. Each event lies
    in one of the user's bursts (after the shoe's release); its type is a quantile cut of the taste
    plus logistic noise, so liked shoes are wishlisted and bought more. A few wishlisted or bought
    pairs get a view shortly before. Sorted by user, time, type and shoe.
    """
    n_users, n_shoes = len(users.user_id), len(shoes.shoe_id)
    # share of all events that are the extra views (of the wishlisted or bought: 55% of the others)
    extra_share = REAL_LOG_EXTRA_VIEW_SHARE * 0.55 / (1 + REAL_LOG_EXTRA_VIEW_SHARE * 0.55)
    user_factors, shoe_factors = real_log_tastes(rng, users, shoes)
    cap = min(REAL_LOG_MAX_EVENTS, REAL_LOG_MAX_SHOE_SHARE * n_shoes)
    counts = real_log_activity(rng, n_users, round(total * (1 - extra_share)), cap)
    burst_start, burst_length = real_log_bursts(rng, n_users, start, end)

    popularity_log = -REAL_LOG_POPULARITY_EXPONENT * np.log(rng.permutation(n_shoes) + 1.0)
    novelty = np.where(shoes.released_at >= start, REAL_LOG_NOVELTY, 0.0)
    # the users x shoes part in batches of users (bounded memory at any size)
    size = batch_size(n_shoes)
    drawn = [
        _real_log_draws(
            rng,
            slice(b, b + size),
            counts,
            burst_start[:, 1],
            user_factors,
            shoe_factors,
            popularity_log,
            novelty,
            shoes.released_at,
        )  # fmt: skip
        for b in range(0, n_users, size)
    ]
    user, shoe, taste = (np.concatenate(parts) for parts in zip(*drawn, strict=True))

    # burst: the last one if the shoe came out after the first burst began, else either
    second_share = rng.uniform(0.3, 0.7, n_users)[user]
    burst = (rng.random(len(user)) < second_share) | (shoes.released_at[shoe] > burst_start[user, 0])
    burst = burst.astype(np.int64)
    at = burst_start[user, burst] + (rng.random(len(user)) * burst_length[user, burst]).astype(np.int64)
    at = np.minimum(np.maximum(at, shoes.released_at[shoe]), end)

    # type: cuts of the liking at the target shares (fewer views here: the extra views come on top)
    liking = taste + REAL_LOG_TYPE_NOISE * rng.logistic(size=len(user))
    share = np.array(REAL_LOG_TYPE_SHARE) * (1 + extra_share) - [extra_share, 0, 0]
    cuts = np.quantile(liking, np.cumsum(share)[:-1] / share.sum()) if len(user) else np.zeros(2)
    kind = np.searchsorted(cuts, liking).astype(np.int64)

    # a few wishlisted or bought pairs were viewed a little earlier
    extra = np.flatnonzero((kind > VIEW) & (rng.random(len(user)) < REAL_LOG_EXTRA_VIEW_SHARE))
    extra_at = at[extra] - 1 - rng.exponential(3600.0, len(extra)).astype(np.int64)
    extra_at = np.maximum(extra_at, np.maximum(shoes.released_at[shoe[extra]], start))
    user = np.concatenate((user, user[extra]))
    shoe = np.concatenate((shoe, shoe[extra]))
    kind = np.concatenate((kind, np.full(len(extra), VIEW)))
    at = np.concatenate((at, extra_at))

    order = np.lexsort((shoe, kind, at, user))
    return users.user_id[user[order]], shoes.shoe_id[shoe[order]], kind[order], at[order]


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digits of non-negative integers, right-aligned, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers % 10 + ord("0")).astype(np.uint8)


def _id_field(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(characters, mask) of integer ids written without padding (the mask keeps the digits)."""
    width = len(str(int(values.max()))) if len(values) else 1
    n_digits = np.ones(len(values), dtype=np.int64)
    for power in range(1, width):
        n_digits += values >= 10**power
    return _digits(values, width), np.arange(width) >= (width - n_digits)[:, None]


def _timestamp_field(seconds: np.ndarray) -> np.ndarray:
    """(n, 20) ASCII characters of ``YYYY-MM-DDTHH:MM:SSZ`` for epoch seconds (years 1000-9999)."""
    days = seconds // DAY
    second_of_day = seconds - days * DAY
    date = days.astype("datetime64[D]")
    year = date.astype("datetime64[Y]")
    month = date.astype("datetime64[M]")
    chars = np.empty((len(seconds), 20), dtype=np.uint8)
    chars[:, 0:4] = _digits(year.astype(np.int64) + 1970, 4)
    chars[:, 5:7] = _digits((month - year).astype(np.int64) + 1, 2)
    chars[:, 8:10] = _digits((date - month).astype(np.int64) + 1, 2)
    chars[:, 11:13] = _digits(second_of_day // 3600, 2)
    chars[:, 14:16] = _digits(second_of_day // 60 % 60, 2)
    chars[:, 17:19] = _digits(second_of_day % 60, 2)
    chars[:, [4, 7]] = ord("-")
    chars[:, 10] = ord("T")
    chars[:, [13, 16]] = ord(":")
    chars[:, 19] = ord("Z")
    return chars


def format_interactions(user_id: np.ndarray, shoe_id: np.ndarray, kind: np.ndarray, at: np.ndarray) -> bytes:
    """CSV lines (no header) of interactions, byte for byte as the csv module writes them.

    No field here ever needs quoting, so each line is put together as a row of a byte matrix: one
    fixed-width slot per field, a mask of the characters that are really there, and the masked
    matrix read out row by row.
    """
    user_chars, user_mask = _id_field(user_id)
    shoe_chars, shoe_mask = _id_field(shoe_id)
    names = [name.encode() for name in INTERACTION_TYPES]
    type_width = max(len(name) for name in names)
    type_table = np.zeros((len(names), type_width), dtype=np.uint8)
    for k, name in enumerate(names):
        type_table[k, : len(name)] = np.frombuffer(name, dtype=np.uint8)
    type_mask_table = np.arange(type_width) < np.array([len(name) for name in names])[:, None]
    n = len(user_id)
    comma = np.full((n, 1), ord(","), dtype=np.uint8)
    chars = np.hstack(
        (
            user_chars,
            comma,
            shoe_chars,
            comma,
            type_table[kind],
            comma,
            _timestamp_field(at),
            np.full((n, 1), ord("\n"), dtype=np.uint8),
        )
    )
    always = np.ones((n, 1), dtype=bool)
    mask = np.hstack(
        (user_mask, always, shoe_mask, always, type_mask_table[kind], always, np.ones((n, 21), bool))
    )
    return chars[mask].tobytes()


def _price(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _open_csv(path: Path):
    return open(path, "w", encoding="utf-8", newline="")


def write_users(path: Path, users: Users) -> None:
    with _open_csv(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(USERS_HEADER)
        ages = users.age.tolist()
        for user_id, age, gender, usage in zip(
            users.user_id.tolist(), ages, users.gender, users.usage, strict=True
        ):
            writer.writerow((user_id, "" if age < 0 else age, GENDERS[gender], USAGES[usage]))


CONTACTS_HEADER = ("user_id", "channel", "address", "opted_in", "updated_at", "purpose", "time_zone")
CONTACT_TIME_ZONES = (  # (IANA name or "" for none given, share)
    ("Europe/Berlin", 0.35), ("Europe/London", 0.2), ("America/New_York", 0.15),
    ("America/Los_Angeles", 0.1), ("Asia/Tokyo", 0.05), ("", 0.15),
)  # fmt: skip
EMAIL_SHARE, EMAIL_OPT_IN, SMS_SHARE, SMS_OPT_IN, WITHDRAWN_SHARE = 0.8, 0.7, 0.15, 0.5, 0.05


def write_contacts(path: Path, users: Users, end: int, seed: int) -> int:
    """contacts.csv: consent per customer and channel, from a random stream of its own.

    ``numpy.random.default_rng([seed, 1])`` draws it, so the three other files are the same with or
    without it. 80% of customers give an email address (70% of them opt in to marketing), 15% a phone
    number (50% opt in); 5% of the email opt-ins withdraw later (a second, newer row). Returns the
    number of rows written.
    """
    rng = np.random.default_rng([seed, 1])
    n = len(users.user_id)
    zones = [name for name, _ in CONTACT_TIME_ZONES]
    zone = rng.choice(len(zones), size=n, p=[share for _, share in CONTACT_TIME_ZONES])
    has_email, email_in = rng.random(n) < EMAIL_SHARE, rng.random(n) < EMAIL_OPT_IN
    has_sms, sms_in = rng.random(n) < SMS_SHARE, rng.random(n) < SMS_OPT_IN
    withdrawn = rng.random(n) < WITHDRAWN_SHARE
    given = users.active_from + (rng.random(n) * (end - users.active_from) * 0.5).astype(np.int64)
    later = given + (rng.random(n) * (end - given)).astype(np.int64)

    def stamp(second: int) -> str:
        return dt.datetime.fromtimestamp(int(second), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    rows = 0
    with _open_csv(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CONTACTS_HEADER)
        for i, user_id in enumerate(users.user_id.tolist()):
            if has_email[i]:
                address = f"customer{user_id}@example.com"
                opted = "true" if email_in[i] else "false"
                row = (user_id, "email", address, opted, stamp(given[i]), "marketing", zones[zone[i]])
                writer.writerow(row)
                rows += 1
                if email_in[i] and withdrawn[i] and later[i] > given[i]:
                    writer.writerow((user_id, "email", address, "false", stamp(later[i]), "marketing", ""))
                    rows += 1
            if has_sms[i]:
                phone = f"+4915{user_id:08d}"
                opted = "true" if sms_in[i] else "false"
                writer.writerow((user_id, "sms", phone, opted, stamp(given[i]), "marketing", zones[zone[i]]))
                rows += 1
    return rows


def write_shoes(path: Path, shoes: Catalogue) -> None:
    with _open_csv(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(SHOES_HEADER)
        for i, shoe_id in enumerate(shoes.shoe_id.tolist()):
            writer.writerow(
                (
                    shoe_id,
                    shoes.names[i],
                    BRAND_NAMES[shoes.brand[i]],
                    TYPES[shoes.type[i]],
                    MATERIALS[shoes.material[i]],
                    COLOR_NAMES[shoes.color[i]],
                    _price(int(shoes.price_cents[i])),
                    shoes.care[i],
                    int(shoes.lifespan_days[i]),
                )
            )


# ------------------------------------------------------------------------------------------------
# The whole run
# ------------------------------------------------------------------------------------------------


def window(end_date: dt.date, months: int) -> tuple[int, int]:
    """(first second, last second) of the window: ``months`` calendar months ending with ``end_date``."""
    after = end_date + dt.timedelta(days=1)
    month_index = after.year * 12 + after.month - 1 - months
    start = dt.date(month_index // 12, month_index % 12 + 1, min(after.day, 28))
    epoch = dt.date(1970, 1, 1)
    return (start - epoch).days * DAY, (after - epoch).days * DAY - 1


def batch_size(n_shoes: int) -> int:
    """Users per batch: the batch's users x shoes matrix stays around 16 MB."""
    return max(1, 2_000_000 // max(n_shoes, 1))


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class _World:
    """What every batch reads: the users, the catalogue and the window's last second."""

    users: Users
    shoes: Catalogue
    end: int
    batch_size: int


@dataclass
class _BatchResult:
    lines: bytes
    counts: np.ndarray  # per interaction type
    active_users: int
    shoe_rows: np.ndarray  # rows of the shoes that appear


def _batch_result(user_id: np.ndarray, shoe_id: np.ndarray, kind: np.ndarray, at: np.ndarray) -> _BatchResult:
    """The formatted lines and counts of a batch's interactions."""
    return _BatchResult(
        lines=format_interactions(user_id, shoe_id, kind, at),
        counts=np.bincount(kind, minlength=len(INTERACTION_TYPES)),
        active_users=len(np.unique(user_id)),
        shoe_rows=np.unique(shoe_id - FIRST_SHOE_ID),
    )


def _run_batch(b: int, rng: np.random.Generator, world: _World) -> _BatchResult:
    """Simulate and format batch ``b`` (its own random generator: any thread, any order, same result)."""
    rows = slice(b * world.batch_size, min((b + 1) * world.batch_size, len(world.users.user_id)))
    return _batch_result(*simulate_batch(rng, world.users, rows, world.shoes, world.end))


def _real_log_result(
    rng: np.random.Generator, users: Users, shoes: Catalogue, start: int, end: int, total: int
) -> _BatchResult:
    """The real-log profile's interactions, all users as one batch."""
    with threadpool_limits(1, user_api="blas"):  # the CPU is shared; the products are small
        return _batch_result(*simulate_real_log(rng, users, shoes, start, end, total))


def _batch_results(world: _World, rngs: list[np.random.Generator], workers: int) -> Iterator[_BatchResult]:
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


def generate(
    out_dir: str | os.PathLike = "data",
    users: int | None = None,
    shoes: int | None = None,
    interactions: int | None = None,
    seed: int = DEFAULT_SEED,
    end_date: dt.date | str = DEFAULT_END_DATE,
    months: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    profile: str = DEFAULT_PROFILE,
) -> dict[str, int]:
    """Write users.csv, shoes.csv, interactions.csv (and contacts.csv, consent) into ``out_dir``.

    Parameters
    ----------
    out_dir : folder to write into (created if missing); each file is replaced only once complete.
    users, shoes : how many of each (default: the profile's).
    interactions : about how many interactions in all (default: the profile's per user x ``users``).
    seed : the only source of randomness (``numpy.random.default_rng(seed)``).
    end_date : last day of the window, included (an ISO date string or a date); never "today".
    months : length of the window in calendar months (default: the profile's).
    workers : threads simulating user batches (demo profile); None: one for small jobs, else every
        available core. The files do not depend on it.
    progress : show a tqdm bar over the users.
    profile : the simulated world, a key of ``PROFILES``: ``demo`` (segments, personal taste and a
        view -> wishlist -> purchase funnel; the bundled data) or ``real-log`` (shaped like a public
        interaction log: see :func:`simulate_real_log`).

    Returns
    -------
    dict with the counts ``users``, ``shoes``, ``interactions``, ``view``, ``add_to_wishlist``,
    ``purchase``, ``users_without_interactions`` and ``shoes_without_interactions``.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; one of {', '.join(PROFILES)}")
    defaults = PROFILES[profile]
    users = defaults.users if users is None else users
    shoes = defaults.shoes if shoes is None else shoes
    months = defaults.months if months is None else months
    if users < 1 or shoes < 1:
        raise ValueError("need at least one user and one shoe")
    if interactions is not None and interactions < 0:
        raise ValueError("interactions must be >= 0")
    if months < 1:
        raise ValueError("months must be >= 1")
    if isinstance(end_date, str):
        end_date = dt.date.fromisoformat(end_date)
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start, end = window(end_date, months)
    total = round(defaults.interactions_per_user * users) if interactions is None else interactions
    n_views = total / (1 + WISHLISTS_PER_VIEW + PURCHASES_PER_VIEW)

    # everything random comes from this generator: catalogue, users, then one child per user batch
    # (demo), or the whole real-log simulation in one go
    rng = np.random.default_rng(seed)
    catalogue = make_catalogue(rng, shoes, start, end)
    people = make_users(rng, users, start, end, n_views)
    if profile == "real-log":
        users_per_batch = users
        batches = iter([_real_log_result(rng, people, catalogue, start, end, total)])
    else:
        world = _World(users=people, shoes=catalogue, end=end, batch_size=batch_size(shoes))
        users_per_batch = world.batch_size
        batch_rngs = rng.spawn(-(-users // world.batch_size))
        if workers is None:
            workers = 1 if users * shoes < 50_000_000 else available_cores()
        batches = _batch_results(world, batch_rngs, workers)

    counts = np.zeros(len(INTERACTION_TYPES), dtype=np.int64)
    active_users = 0
    shoe_seen = np.zeros(shoes, dtype=bool)
    names = ("users.csv", "shoes.csv", "interactions.csv", "contacts.csv")
    tmp = {name: out / f".{name}.tmp" for name in names}
    try:
        write_users(tmp["users.csv"], people)
        write_shoes(tmp["shoes.csv"], catalogue)
        write_contacts(tmp["contacts.csv"], people, end, seed)
        with (
            open(tmp["interactions.csv"], "wb") as f,
            tqdm(total=users, unit="user", desc="interactions", disable=not progress) as bar,
        ):
            f.write((",".join(INTERACTIONS_HEADER) + "\n").encode())
            for b, batch in enumerate(batches):
                f.write(batch.lines)
                counts += batch.counts
                active_users += batch.active_users
                shoe_seen[batch.shoe_rows] = True
                bar.update(min(users_per_batch, users - b * users_per_batch))
        for name, path in tmp.items():
            os.replace(path, out / name)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)

    result = {
        "users": users,
        "shoes": shoes,
        "interactions": int(counts.sum()),
        **{name: int(c) for name, c in zip(INTERACTION_TYPES, counts, strict=True)},
        "users_without_interactions": users - active_users,
        "shoes_without_interactions": int((~shoe_seen).sum()),
    }
    log.info(
        "generated %s users, %s shoes, %s interactions (%s views, %s wishlists, %s purchases; "
        "%s users and %s shoes without any) into %s in %.1f s",
        f"{users:,}",
        f"{shoes:,}",
        f"{result['interactions']:,}",
        f"{result['view']:,}",
        f"{result['add_to_wishlist']:,}",
        f"{result['purchase']:,}",
        f"{result['users_without_interactions']:,}",
        f"{result['shoes_without_interactions']:,}",
        out,
        time.perf_counter() - started,
    )
    return result


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a non-negative integer")
    return number


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from exc


def main(argv: list[str] | None = None) -> dict[str, int]:
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
        type=_non_negative_int,
        default=None,
        help=f"about how many interactions in all (default: {demo.interactions_per_user} x users; "
        f"real-log: {real.interactions_per_user:.1f} x users)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--end-date",
        type=_date,
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
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    return generate(
        args.out,
        users=args.users,
        shoes=args.shoes,
        interactions=args.interactions,
        seed=args.seed,
        end_date=args.end_date,
        months=args.months,
        workers=args.workers,
        progress=not args.no_progress,
        profile=args.profile,
    )


if __name__ == "__main__":
    main()
