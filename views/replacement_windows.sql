-- one row per owned shoe (user_id, shoe_id): the pair from the user's latest purchase of that shoe up to
-- the reference date, how much of its personal lifespan is used and whether its replacement window is open.

create view replacement_windows as

-- the latest purchase of each (user, shoe) (macro latest_purchase_pairs: distinct on for PostgreSQL's
-- estimates, is_latest_purchase for DuckDB's filter pushdown; the same rows)
with latest_pairs as (
    {{ latest_purchase_pairs() }}
),

settings_in_force as (
    select reference_date from current_settings
)

select
    latest_pairs.user_id,
    latest_pairs.shoe_id,
    latest_pairs.purchased_at,
    latest_pairs.purchased_on,
    latest_pairs.purchase_number,
    latest_pairs.purchase_count,
    latest_pairs.name,
    latest_pairs.brand,
    latest_pairs.type,
    latest_pairs.material,
    latest_pairs.color,
    latest_pairs.price,
    latest_pairs.primary_usage,
    latest_pairs.lifespan_days,
    latest_pairs.wear_factor,
    latest_pairs.personal_lifespan_days,
    latest_pairs.end_of_life_on,
    latest_pairs.window_opens_on,
    latest_pairs.days_owned,
    latest_pairs.wear_share,
    latest_pairs.days_to_end_of_life,
    case
        when settings_in_force.reference_date >= latest_pairs.end_of_life_on then 'past_end_of_life'
        when settings_in_force.reference_date >= latest_pairs.window_opens_on then 'nearing_end_of_life'
        else 'ok'
    end as status
from latest_pairs
cross join settings_in_force;

comment on view replacement_windows is 'One row per shoe a user owns (their latest purchase of it): wear and replacement window status at the reference date.';
comment on column replacement_windows.end_of_life_on is 'purchased_on + personal_lifespan_days: the day the pair is worn out.';
comment on column replacement_windows.window_opens_on is 'purchased_on + replacement_window_share x personal_lifespan_days.';
comment on column replacement_windows.wear_share is 'Share of the pair''s personal lifespan used at the reference date (1 = worn out).';
comment on column replacement_windows.days_to_end_of_life is 'end_of_life_on - reference date (0 or negative once worn out).';
comment on column replacement_windows.status is 'ok; nearing_end_of_life from window_opens_on; past_end_of_life from end_of_life_on on.';
