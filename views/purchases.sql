-- one row per purchase event (user_id, shoe_id, purchased_at) up to the reference date, with the shoe,
-- the pair's personal lifespan (catalogue lifespan_days / the buyer's wear factor), end of life and
-- replacement window. A shoe bought twice gives two rows; the later purchase replaces the earlier pair.

create view purchases as

with purchase_events as (
    select user_id, shoe_id, occurred_at
    from interactions
    where interaction_type = 'purchase'
),

users_source as (
    select user_id, primary_usage from users
),

shoes_source as (
    select shoe_id, name, brand, type, material, color, price, care_instructions, lifespan_days from shoes
),

wear_factors_source as (
    select primary_usage, wear_factor from wear_factors
),

settings_in_force as (
    select reference_date, replacement_window_share from current_settings
),

purchases_to_date as (
    select
        purchase_events.user_id,
        purchase_events.shoe_id,
        purchase_events.occurred_at as purchased_at,
        cast(purchase_events.occurred_at as date) as purchased_on,
        settings_in_force.reference_date,
        settings_in_force.replacement_window_share
    from purchase_events
    cross join settings_in_force
    where purchase_events.occurred_at < cast(settings_in_force.reference_date + 1 as timestamp)
),

numbered as (
    select
        purchases_to_date.*,
        row_number() over (
            partition by purchases_to_date.user_id, purchases_to_date.shoe_id order by purchases_to_date.purchased_at
        ) as purchase_number,
        count(*) over (partition by purchases_to_date.user_id, purchases_to_date.shoe_id) as purchase_count,
        lead(purchases_to_date.purchased_on) over (
            partition by purchases_to_date.user_id, purchases_to_date.shoe_id order by purchases_to_date.purchased_at
        ) as next_purchase_on
    from purchases_to_date
),

-- the user's own usage row, else the '*' row, else 1.0 (as rated)
user_wear as (
    select
        users_source.user_id,
        users_source.primary_usage,
        coalesce(usage_factor.wear_factor, default_factor.wear_factor, 1.0) as wear_factor
    from users_source
    left join wear_factors_source as usage_factor
        on users_source.primary_usage = usage_factor.primary_usage
    left join wear_factors_source as default_factor
        on default_factor.primary_usage = '*'
),

-- rounding goes through numeric so that halves round up on both engines (round(double) does not);
-- computed in double precision and capped at 100 years, so that no catalogue lifespan or retailer
-- wear factor can overflow an integer or a date (the contract's 1..3650 days never reach the cap)
lifespans as (
    select
        numbered.*,
        shoes_source.name,
        shoes_source.brand,
        shoes_source.type,
        shoes_source.material,
        shoes_source.color,
        shoes_source.price,
        shoes_source.care_instructions,
        user_wear.primary_usage,
        shoes_source.lifespan_days,
        user_wear.wear_factor,
        greatest(
            cast(round(cast(
                least(cast(shoes_source.lifespan_days as double precision) / user_wear.wear_factor, 36525)
                as numeric(18, 3)
            )) as integer),
            1
        ) as personal_lifespan_days
    from numbered
    inner join shoes_source
        on numbered.shoe_id = shoes_source.shoe_id
    inner join user_wear
        on numbered.user_id = user_wear.user_id
)

select
    user_id,
    shoe_id,
    purchased_at,
    purchased_on,
    purchase_number,
    purchase_count,
    purchase_number = purchase_count as is_latest_purchase,
    next_purchase_on,
    name,
    brand,
    type,
    material,
    color,
    price,
    care_instructions,
    primary_usage,
    lifespan_days,
    wear_factor,
    personal_lifespan_days,
    purchased_on + personal_lifespan_days as end_of_life_on,
    purchased_on
    + cast(round(cast(replacement_window_share * personal_lifespan_days as numeric(18, 3))) as integer)
        as window_opens_on,
    reference_date - purchased_on as days_owned,
    cast(reference_date - purchased_on as double precision) / personal_lifespan_days as wear_share,
    purchased_on + personal_lifespan_days - reference_date as days_to_end_of_life
from lifespans;

comment on view purchases is 'One row per purchase up to the reference date: the pair, its personal lifespan, end of life and replacement window.';
comment on column purchases.purchased_at is 'When the purchase happened (UTC); with user_id and shoe_id, the key.';
comment on column purchases.purchase_number is '1 for the user''s first purchase of this shoe, 2 for the second, ...';
comment on column purchases.is_latest_purchase is 'True for the pair the user has now (their latest purchase of this shoe).';
comment on column purchases.next_purchase_on is 'Date the user bought this shoe again (the pair was replaced), null if not yet.';
comment on column purchases.wear_factor is 'wear_factors row of the user''s primary usage, else the ''*'' row, else 1.0.';
comment on column purchases.personal_lifespan_days is 'lifespan_days / wear_factor, rounded to whole days (halves up), at least 1 and at most 36525 (100 years).';
comment on column purchases.end_of_life_on is 'purchased_on + personal_lifespan_days: the day the pair is worn out.';
comment on column purchases.window_opens_on is 'purchased_on + replacement_window_share x personal_lifespan_days (whole days, halves up).';
comment on column purchases.days_owned is 'Days from purchased_on to the reference date.';
comment on column purchases.wear_share is 'days_owned / personal_lifespan_days: share of the pair''s life used at the reference date (1 = worn out).';
comment on column purchases.days_to_end_of_life is 'end_of_life_on - reference date (negative once past).';
