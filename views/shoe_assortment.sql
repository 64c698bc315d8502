-- one row per shoe_id: whether the shoe may be shown to a customer as of the reference date (it can be bought:
-- not out_of_stock and not past its discontinued_on; no active exclude rule matches it) and what the active
-- merchandising_rules do to it (boost factor, caps of its brand and type). Every view naming a shoe reads this.

create view shoe_assortment as

with shoes_source as (
    select shoe_id, brand, type, availability, discontinued_on from shoes
),

settings_in_force as (
    select reference_date from current_settings
),

active_rules as (
    select action, attribute, value, boost_factor, max_shoes
    from merchandising_rules
    where is_active
),

-- buyable: in_stock (or unset), preorder or backorder, and the reference date not after discontinued_on
availability as (
    select
        shoes_source.shoe_id,
        shoes_source.brand,
        shoes_source.type,
        coalesce(shoes_source.availability, 'in_stock') as availability,
        shoes_source.discontinued_on,
        coalesce(shoes_source.availability, 'in_stock') in ('in_stock', 'preorder', 'backorder')
        and coalesce(settings_in_force.reference_date <= shoes_source.discontinued_on, true) as is_purchasable
    from shoes_source
    cross join settings_in_force
),

-- per shoe, over the rules that name its brand or type (a cap without a value: every one): excluded by any,
-- the product of its boosts, the smallest cap of its brand and of its type (all null when no rule names it);
-- a lateral join per shoe, so that a customer's query reads only the shoes it names (by the key)
rule_effects as (
    select
        availability.*,
        effects.is_excluded,
        effects.boost_factor,
        effects.brand_cap,
        effects.type_cap
    from availability
    cross join lateral (
        select
            max(case when active_rules.action = 'exclude' then 1 else 0 end) = 1 as is_excluded,
            exp(sum(case when active_rules.action = 'boost' then ln(active_rules.boost_factor) else 0 end))
                as boost_factor,
            min(
                case when active_rules.action = 'cap' and active_rules.attribute = 'brand' then active_rules.max_shoes end
            ) as brand_cap,
            min(
                case when active_rules.action = 'cap' and active_rules.attribute = 'type' then active_rules.max_shoes end
            ) as type_cap
        from active_rules
        where
            (
                active_rules.attribute = 'brand'
                and (active_rules.value = availability.brand or active_rules.value is null)
            )
            or (
                active_rules.attribute = 'type'
                and (active_rules.value = availability.type or active_rules.value is null)
            )
    ) as effects
)

select
    shoe_id,
    brand,
    type,
    availability,
    discontinued_on,
    is_purchasable,
    coalesce(is_excluded, false) as is_excluded,
    is_purchasable and not coalesce(is_excluded, false) as is_shown,
    coalesce(boost_factor, 1.0) as boost_factor,
    brand_cap,
    type_cap
from rule_effects;

comment on view shoe_assortment is 'One row per shoe: whether it may be shown now (buyable as of the reference date, not excluded by a merchandising rule) and the boost and caps the active rules give it.';
comment on column shoe_assortment.availability is 'shoes.availability, null read as in_stock (Google Merchant Center values).';
comment on column shoe_assortment.is_purchasable is 'Can be bought as of the reference date: in_stock, preorder or backorder, and the reference date on or before discontinued_on.';
comment on column shoe_assortment.is_excluded is 'An active exclude rule names its brand or type.';
comment on column shoe_assortment.is_shown is 'is_purchasable and not is_excluded: only these shoes are recommended, suggested as replacements or named in messages.';
comment on column shoe_assortment.boost_factor is 'Product of the active boost rules naming its brand or type (1 = none); scores are multiplied by it before ranking.';
comment on column shoe_assortment.brand_cap is 'The smallest active cap on its brand: at most this many shoes of the brand in a list; null = none.';
comment on column shoe_assortment.type_cap is 'The smallest active cap on its type: at most this many shoes of the type in a list; null = none.';
