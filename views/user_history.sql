-- one row per interaction (user_id, shoe_id, interaction_type, occurred_at) up to the reference date,
-- with the shoe's name and attributes: a customer's history as the dashboard shows it.

create view user_history as

with interactions_source as (
    select user_id, shoe_id, interaction_type, occurred_at from interactions
),

shoes_source as (
    select shoe_id, name, brand, type, material, color, price from shoes
),

settings_in_force as (
    select reference_date from current_settings
)

select
    interactions_source.user_id,
    interactions_source.shoe_id,
    interactions_source.interaction_type,
    interactions_source.occurred_at,
    cast(interactions_source.occurred_at as date) as occurred_on,
    shoes_source.name,
    shoes_source.brand,
    shoes_source.type,
    shoes_source.material,
    shoes_source.color,
    shoes_source.price
from interactions_source
inner join shoes_source
    on interactions_source.shoe_id = shoes_source.shoe_id
cross join settings_in_force
where interactions_source.occurred_at < cast(settings_in_force.reference_date + 1 as timestamp);

comment on view user_history is 'One row per interaction up to the reference date, with the shoe''s name and attributes.';
comment on column user_history.occurred_at is 'When it happened, in UTC.';
