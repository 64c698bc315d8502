-- one row per user_id: who the customer is (profile and segment) and how much we know about them.
-- Counts are of interactions up to the reference date.

create view user_profiles as

with segments as (
    select user_id, age, gender, primary_usage, age_band, segment from user_segments
),

matrix as (
    select user_id, shoe_id, view_count, wishlist_count, purchase_count, first_interaction_at, last_interaction_at
    from interaction_matrix
),

activity as (
    select
        user_id,
        count(*) as shoes_interacted,
        cast(sum(view_count) as bigint) as view_count,
        cast(sum(wishlist_count) as bigint) as wishlist_count,
        cast(sum(purchase_count) as bigint) as purchase_count,
        min(first_interaction_at) as first_interaction_at,
        max(last_interaction_at) as last_interaction_at
    from matrix
    group by user_id
)

select
    segments.user_id,
    segments.age,
    segments.gender,
    segments.primary_usage,
    segments.age_band,
    segments.segment,
    coalesce(activity.shoes_interacted, 0) as shoes_interacted,
    coalesce(activity.view_count, 0) as view_count,
    coalesce(activity.wishlist_count, 0) as wishlist_count,
    coalesce(activity.purchase_count, 0) as purchase_count,
    activity.first_interaction_at,
    activity.last_interaction_at,
    activity.user_id is null as has_no_history
from segments
left join activity
    on segments.user_id = activity.user_id;

comment on view user_profiles is 'One row per user: profile, segment and activity counts up to the reference date.';
comment on column user_profiles.shoes_interacted is 'Distinct shoes the user viewed, wishlisted or bought.';
comment on column user_profiles.has_no_history is 'True for a customer with no interaction yet (served by their segment).';
