"""The shoes: brand, type, material, colour, price, lifespan, release date, popularity, name and care text.

:func:`make_catalogue` draws them step by step from one random generator; the steps' order is part
of the output (the same seed gives the same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scripts.generator.draws import choice, inverse_cdf
from scripts.generator.world import (
    BRAND_NAMES,
    BRANDS,
    CARE_TEXTS,
    COLOR_FAMILIES,
    COLOR_NAMES,
    COLORS,
    DAY,
    FIRST_SHOE_ID,
    LATENT_DIM,
    MATERIAL_LIFESPAN,
    MATERIAL_PRICE,
    MATERIAL_SUFFIX,
    MATERIALS,
    MODEL_WORDS,
    OFF_TYPE_WEIGHT,
    POPULARITY_EXPONENT,
    TYPE_BASE_PRICE,
    TYPE_CARE_TIPS,
    TYPE_COLORS,
    TYPE_LABELS,
    TYPE_LIFESPAN_DAYS,
    TYPE_MATERIALS,
    TYPES,
    UNLISTED_SHOE_SHARE,
    M,
    T,
)

COLOR_FAMILY = np.array([COLORS[c] for c in COLOR_NAMES])  # index into COLOR_FAMILIES, per colour
COMBO_SHAPE = (len(TYPES), len(MATERIALS), len(BRAND_NAMES), len(COLOR_FAMILIES))


@dataclass
class Catalogue:
    """The shoes, one array per attribute (row i is shoe_id FIRST_SHOE_ID + i)."""

    brand: np.ndarray  # index into BRAND_NAMES
    type: np.ndarray  # index into TYPES
    material: np.ndarray  # index into MATERIALS
    color: np.ndarray  # index into COLOR_NAMES
    price_cents: np.ndarray
    lifespan_days: np.ndarray
    released_at: np.ndarray  # epoch seconds
    popularity_log: np.ndarray  # log of the global (Zipf-like) popularity; -inf for unlisted shoes
    factors: np.ndarray  # (shoes, LATENT_DIM + 1): latent taste vector, then log price standardized in type
    names: list[str]
    care: list[str]
    # derived from the above
    shoe_id: np.ndarray = field(init=False)
    family: np.ndarray = field(init=False)  # colour family, index into COLOR_FAMILIES
    combo: np.ndarray = field(init=False)  # index of the shoe's (type, material, brand, family) among combo_*
    combo_type: np.ndarray = field(init=False)
    combo_material: np.ndarray = field(init=False)
    combo_brand: np.ndarray = field(init=False)
    combo_family: np.ndarray = field(init=False)
    factors_t: np.ndarray = field(init=False)

    def __post_init__(self):
        self.shoe_id = FIRST_SHOE_ID + np.arange(len(self.brand), dtype=np.int64)
        self.family = COLOR_FAMILY[self.color]
        # the distinct attribute combinations: user x combo is far smaller than user x shoe
        key = np.ravel_multi_index((self.type, self.material, self.brand, self.family), COMBO_SHAPE)
        keys, self.combo = np.unique(key, return_inverse=True)
        self.combo_type, self.combo_material, self.combo_brand, self.combo_family = np.unravel_index(
            keys, COMBO_SHAPE
        )
        self.factors_t = np.ascontiguousarray(self.factors.T)


def make_catalogue(rng: np.random.Generator, n: int, start: int, end: int) -> Catalogue:
    """``n`` shoes with brand, type, material, colour, price, lifespan, release date, popularity.

    ``start`` and ``end`` (epoch seconds) bound the interaction window the release dates relate to.
    """
    brand, type_ = _brands_and_types(rng, n)
    material, color = _materials_and_colors(rng, type_)
    cents = _prices_cents(rng, brand, type_, material)
    lifespan = _lifespans_days(rng, type_, material)
    released_at = _release_times(rng, n, start, end)
    popularity_log = _popularity_log(rng, n)
    latent = rng.standard_normal((n, LATENT_DIM))
    names, care = _names_and_care(rng, brand, type_, material)
    return Catalogue(
        brand=brand,
        type=type_,
        material=material,
        color=color,
        price_cents=cents,
        lifespan_days=lifespan,
        released_at=released_at,
        popularity_log=popularity_log,
        factors=np.column_stack((latent, _price_z(cents, type_))),
        names=names,
        care=care,
    )


def _brands_and_types(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A brand per shoe (by catalogue share), then a type the brand leans to."""
    brand = choice(rng, n, [BRANDS[b][0] for b in BRAND_NAMES])
    brand_types = np.full((len(BRAND_NAMES), len(TYPES)), OFF_TYPE_WEIGHT)
    for b, name in enumerate(BRAND_NAMES):
        brand_types[b, [T[t] for t in BRANDS[name][2]]] = 1.0
    brand_types /= brand_types.sum(axis=1, keepdims=True)
    return brand, inverse_cdf(rng, brand_types[brand])


def _materials_and_colors(rng: np.random.Generator, type_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A material and a colour per shoe, from the mixes of its type."""
    type_material = np.zeros((len(TYPES), len(MATERIALS)))
    type_color = np.zeros((len(TYPES), len(COLOR_NAMES)))
    for t, name in enumerate(TYPES):
        for m, w in TYPE_MATERIALS[name].items():
            type_material[t, M[m]] = w
        for c, w in TYPE_COLORS[name].items():
            type_color[t, COLOR_NAMES.index(c)] = w
    type_material /= type_material.sum(axis=1, keepdims=True)
    type_color /= type_color.sum(axis=1, keepdims=True)
    material = inverse_cdf(rng, type_material[type_])
    return material, inverse_cdf(rng, type_color[type_])


def _prices_cents(
    rng: np.random.Generator, brand: np.ndarray, type_: np.ndarray, material: np.ndarray
) -> np.ndarray:
    """Prices in cents: type base x brand tier x material x noise, ending in .99 or .95."""
    tier = np.array([BRANDS[b][1] for b in BRAND_NAMES])
    material_price = np.array([MATERIAL_PRICE.get(m, 1.0) for m in MATERIALS])
    price = np.array(TYPE_BASE_PRICE)[type_] * tier[brand] * material_price[material]
    price *= rng.lognormal(0.0, 0.15, len(price))
    ending = np.where(rng.random(len(price)) < 0.7, 1, 5)
    return np.maximum(np.round(price), 10).astype(np.int64) * 100 - ending


def _lifespans_days(rng: np.random.Generator, type_: np.ndarray, material: np.ndarray) -> np.ndarray:
    """Expected life in days: type base x material x noise, at least 60."""
    material_life = np.array([MATERIAL_LIFESPAN[m] for m in MATERIALS])
    lifespan = np.array(TYPE_LIFESPAN_DAYS)[type_] * material_life[material]
    lifespan *= rng.lognormal(0.0, 0.12, len(lifespan))
    return np.maximum(np.round(lifespan), 60).astype(np.int64)


def _release_times(rng: np.random.Generator, n: int, start: int, end: int) -> np.ndarray:
    """Release dates: 70% before the window (up to 3 years), 20% in its first 90%, 10% in its last 10%."""
    span = end - start
    kind = choice(rng, n, (0.70, 0.20, 0.10))
    low = np.select([kind == 0, kind == 1], [start - 3 * 365 * DAY, start], start + 0.9 * span)
    high = np.select([kind == 0, kind == 1], [start, start + 0.9 * span], end)
    return (low + rng.random(n) * (high - low)).astype(np.int64)


def _popularity_log(rng: np.random.Generator, n: int) -> np.ndarray:
    """Zipf-like log-popularity over a random order of the shoes; unlisted shoes (-inf) are never shown."""
    rank = rng.permutation(n) + 1
    popularity_log = -POPULARITY_EXPONENT * np.log(rank)
    unlisted = rng.permutation(n)[: int(round(UNLISTED_SHOE_SHARE * n))]
    popularity_log[unlisted] = -np.inf
    return popularity_log


def _price_z(cents: np.ndarray, type_: np.ndarray) -> np.ndarray:
    """Log price standardized within type (price sensitivity acts among comparable shoes)."""
    log_price = np.log(cents / 100.0)
    price_z = np.zeros(len(cents))
    for t in np.unique(type_):
        of_type = type_ == t
        sd = log_price[of_type].std()
        price_z[of_type] = (log_price[of_type] - log_price[of_type].mean()) / (sd if sd > 0 else 1.0)
    return price_z


def _names_and_care(
    rng: np.random.Generator, brand: np.ndarray, type_: np.ndarray, material: np.ndarray
) -> tuple[list[str], list[str]]:
    """Names (brand, model word, type label, material suffix, version) and care texts (by material, maybe
    with a tip for the type, on the same line or a new one). Python strings: the catalogue is small."""
    n = len(brand)
    model = rng.integers(0, len(MODEL_WORDS), n)
    label_pick = rng.random(n)
    version = np.where(rng.random(n) < 0.3, rng.integers(2, 6, n), 0)
    care_pick = rng.random(n)
    tip_mode = choice(rng, n, (0.45, 0.30, 0.25))  # no tip, tip on the same line, tip on a new line
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
    return names, care
