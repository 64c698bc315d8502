-- one row per (user_id, shoe_id): weighted, time-decayed interaction strength up to the reference date.
-- strength = sum of interaction_types.weight x 0.5 ^ min(age_days / half_life_days, 100), age counted to the
-- end of the newest event's day up to the reference date: a reference date past the data changes nothing.

create view interaction_matrix as

with interactions_source as (
    select user_id, shoe_id, interaction_type, occurred_at from interactions
),

-- a second import, so that PostgreSQL inlines each (a CTE read twice is materialised); the index on
-- occurred_at serves its max
interaction_times as (
    select occurred_at from interactions
),

weights as (
    select interaction_type, weight from interaction_types
),

settings_in_force as (
    select reference_date, half_life_days, cast(reference_date + 1 as timestamp) as counted_before
    from current_settings
),

-- the end of the day of the newest event up to the reference date: every age is counted to this instant (the
-- bound as a scalar subquery, so that PostgreSQL reads the max off the end of the index on occurred_at: joined,
-- it scanned all 5M events for it, 1.8 s at 100,000 customers)
decay_anchor as (
    select cast(cast(max(interaction_times.occurred_at) as date) + 1 as timestamp) as anchor_at
    from interaction_times
    where interaction_times.occurred_at < (select settings_in_force.counted_before from settings_in_force)
),

events as (
    select
        interactions_source.*,
        weights.weight,
        -- capped at 100 half-lives: 0.5 ^ 100 ~ 7.9e-31 is still a normal float32
        least(
            {{ days_between('decay_anchor.anchor_at', 'interactions_source.occurred_at') }}
            / settings_in_force.half_life_days,
            100
        ) as half_lives
    from interactions_source
    inner join weights
        on interactions_source.interaction_type = weights.interaction_type
    cross join settings_in_force
    cross join decay_anchor
    -- no leak: only events before the end of the reference day count
    where interactions_source.occurred_at < settings_in_force.counted_before
)

select
    user_id,
    shoe_id,
    sum(weight * power(0.5, half_lives)) as strength,
    sum(case when interaction_type = 'view' then 1 else 0 end) as view_count,
    sum(case when interaction_type = 'add_to_wishlist' then 1 else 0 end) as wishlist_count,
    sum(case when interaction_type = 'purchase' then 1 else 0 end) as purchase_count,
    min(occurred_at) as first_interaction_at,
    max(occurred_at) as last_interaction_at
from events
group by user_id, shoe_id;

comment on view interaction_matrix is 'One row per (user, shoe) with any interaction up to the reference date: weighted, time-decayed strength, decayed to the end of the day of the newest interaction up to the reference date. The scoring step exports this.';
comment on column interaction_matrix.strength is 'Sum of interaction weight x 0.5^(age in days / half-life), age counted to the end of the day of the newest interaction up to the reference date (one instant for every pair) and capped at 100 half-lives.';
comment on column interaction_matrix.view_count is 'Number of view events.';
comment on column interaction_matrix.wishlist_count is 'Number of add_to_wishlist events.';
comment on column interaction_matrix.purchase_count is 'Number of purchase events.';
