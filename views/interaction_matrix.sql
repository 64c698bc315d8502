-- one row per (user_id, shoe_id): weighted, time-decayed interaction strength up to the reference date.
-- strength = sum over events of interaction_types.weight x 0.5 ^ (age in days / half_life_days).

create view interaction_matrix as

with interactions_source as (
    select user_id, shoe_id, interaction_type, occurred_at from interactions
),

weights as (
    select interaction_type, weight from interaction_types
),

settings_in_force as (
    select reference_date, half_life_days from current_settings
),

events as (
    select
        interactions_source.user_id,
        interactions_source.shoe_id,
        interactions_source.interaction_type,
        interactions_source.occurred_at,
        weights.weight,
        greatest(
            {{ days_between('cast(settings_in_force.reference_date + 1 as timestamp)', 'interactions_source.occurred_at') }},
            0
        ) as age_days,
        settings_in_force.half_life_days
    from interactions_source
    inner join weights
        on interactions_source.interaction_type = weights.interaction_type
    cross join settings_in_force
    where interactions_source.occurred_at < cast(settings_in_force.reference_date + 1 as timestamp)
)

select
    user_id,
    shoe_id,
    sum(weight * power(0.5, age_days / half_life_days)) as strength,
    sum(case when interaction_type = 'view' then 1 else 0 end) as view_count,
    sum(case when interaction_type = 'add_to_wishlist' then 1 else 0 end) as wishlist_count,
    sum(case when interaction_type = 'purchase' then 1 else 0 end) as purchase_count,
    min(occurred_at) as first_interaction_at,
    max(occurred_at) as last_interaction_at
from events
group by user_id, shoe_id;

comment on view interaction_matrix is 'One row per (user, shoe) with any interaction up to the reference date: weighted, time-decayed strength. The scoring step exports this.';
comment on column interaction_matrix.strength is 'Sum of interaction weight x 0.5^(age in days / half-life), age counted to the end of the reference date.';
comment on column interaction_matrix.view_count is 'Number of view events.';
comment on column interaction_matrix.wishlist_count is 'Number of add_to_wishlist events.';
comment on column interaction_matrix.purchase_count is 'Number of purchase events.';
