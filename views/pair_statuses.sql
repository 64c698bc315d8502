-- one row per (user_id, shoe_id, purchased_at, status): the days a pair bought up to the reference date
-- spends in each replacement status (ok, nearing_end_of_life, past_end_of_life), from valid_from_on up to
-- valid_until_on (exclusive; null = still so), ended when the owner buys the same shoe again (purchases).

create view pair_statuses as

with purchases_source as (
    select * from purchases
),

-- the three statuses of replacement_windows
statuses (status) as (
    values ('ok'), ('nearing_end_of_life'), ('past_end_of_life')
),

-- each status as a date range: ok until the window opens, nearing until the end of life, past it from then
-- on (a cross join, so that purchases is read once: on PostgreSQL a CTE read more than once is materialised
-- whole, and a filter on user_id no longer reaches it)
periods as (
    select
        purchases_source.*,
        statuses.status,
        case statuses.status
            when 'ok' then purchases_source.purchased_on
            when 'nearing_end_of_life' then purchases_source.window_opens_on
            else purchases_source.end_of_life_on
        end as starts_on,
        case statuses.status
            when 'ok' then purchases_source.window_opens_on
            when 'nearing_end_of_life' then purchases_source.end_of_life_on
        end as ends_on
    from purchases_source
    cross join statuses
),

-- a pair is in use until the same shoe is bought again: every period is cut there
in_use as (
    select
        periods.*,
        case
            when periods.next_purchase_on is null then periods.ends_on
            when periods.ends_on is null then periods.next_purchase_on
            else least(periods.ends_on, periods.next_purchase_on)
        end as valid_until_on
    from periods
)

select
    user_id,
    shoe_id,
    purchased_at,
    purchased_on,
    purchase_number,
    next_purchase_on,
    name,
    brand,
    type,
    price,
    personal_lifespan_days,
    window_opens_on,
    end_of_life_on,
    status,
    starts_on as valid_from_on,
    valid_until_on
from in_use
where valid_until_on is null or starts_on < valid_until_on;

comment on view pair_statuses is 'One row per pair and replacement status: the dates it holds (valid_from_on to valid_until_on, exclusive), so the pair in use and its status on any date is one lookup; a pair ends when the same shoe is bought again.';
comment on column pair_statuses.status is 'ok, nearing_end_of_life (from window_opens_on) or past_end_of_life (from end_of_life_on), as in replacement_windows.';
comment on column pair_statuses.valid_from_on is 'First day the pair has this status.';
comment on column pair_statuses.valid_until_on is 'First day it no longer has it (the next status, or the next purchase of the same shoe); null = open-ended.';
