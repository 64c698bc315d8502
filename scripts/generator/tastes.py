"""The demo world's preferences: what each user of a batch likes, over the whole catalogue.

Segment (usage x gender x age band) plus personal noise over types and materials, favourite brands
and a colour family, a latent taste shared with the shoes and a price sensitivity; see
:func:`user_tastes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scripts.generator.catalogue import Catalogue
from scripts.generator.draws import choice, inverse_cdf
from scripts.generator.users import Users
from scripts.generator.world import (
    AGE_TYPE_LOG,
    BRAND_NAMES,
    BRANDS,
    COLOR_FAMILIES,
    GENDER_TYPE_LOG,
    LATENT_DIM,
    MATERIALS,
    OLDER_MATERIAL_LOG,
    USAGE_MATERIAL_LOG,
    USAGE_TYPE_APPEAL,
    USAGES,
    YOUNG_MATERIAL_LOG,
    T,
)

LATENT_SCALE = 0.35  # weight of the latent taste (dot product of two N(0, I) vectors)


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
    first = inverse_cdf(rng, brand_fit[usage])
    second = inverse_cdf(rng, brand_fit[usage])
    has_second = rng.random(n) < 0.5
    brand_log[np.arange(n), first] += 1.3
    brand_log[np.arange(n)[has_second], second[has_second]] += 0.8
    # colour: a favourite family
    family_log = np.zeros((n, len(COLOR_FAMILIES)))
    family_log[np.arange(n), choice(rng, n, (0.45, 0.2, 0.2, 0.15))] = 0.8
    # price sensitivity (negative: prefers the cheaper shoes of a type), stronger when young
    beta = rng.normal(-0.35, 0.35, n) - 0.25 * young
    latent = rng.standard_normal((n, LATENT_DIM))

    attributes = type_log[:, shoes.combo_type]
    attributes += material_log[:, shoes.combo_material]
    attributes += brand_log[:, shoes.combo_brand]
    attributes += family_log[:, shoes.combo_family]
    return Tastes(attributes=attributes, factors=np.column_stack((LATENT_SCALE * latent, beta)))
