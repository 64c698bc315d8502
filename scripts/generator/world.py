"""The simulated world's tables: the generator's own assumptions, not settings of the system.

Who the customers are (usages, genders, age bands), what the shop sells (brands, types, materials,
colours, names, care texts, prices, lifespans) and how the two attract each other. Plain data: the
code that draws from it is in :mod:`scripts.generator.catalogue`, :mod:`scripts.generator.users`
and :mod:`scripts.generator.funnel`.
"""

from __future__ import annotations

import numpy as np

FIRST_USER_ID = 1
FIRST_SHOE_ID = 1001  # ids are not row numbers: code that confuses the two fails on this data

INTERACTION_TYPES = ("view", "add_to_wishlist", "purchase")  # codes 0, 1, 2 (also the funnel order)
VIEW, WISHLIST, PURCHASE = 0, 1, 2

DAY = 86_400

NO_INTERACTION_USER_SHARE = 0.04
UNLISTED_SHOE_SHARE = 0.03
LATENT_DIM = 6  # of the taste vector shared by users and shoes
POPULARITY_EXPONENT = 0.7  # popularity of the shoe at popularity rank r ~ r ** -exponent

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
