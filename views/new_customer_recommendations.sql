-- one row per (primary_usage, gender, age_band, rank): what a brand-new customer of that segment is shown,
-- from the latest complete run's segment_recommendations, with the shoe's attributes.

create view new_customer_recommendations as

with latest_run as (
    select run_id from latest_model_run
),

segment_recommendations_source as (
    select run_id, primary_usage, gender, age_band, rank, shoe_id, score from segment_recommendations
),

shoes_source as (
    select shoe_id, name, brand, type, material, color, price from shoes
),

run_segment_recommendations as (
    select
        segment_recommendations_source.run_id,
        segment_recommendations_source.primary_usage,
        segment_recommendations_source.gender,
        segment_recommendations_source.age_band,
        segment_recommendations_source.rank as model_rank,
        row_number() over (
            partition by
                segment_recommendations_source.primary_usage,
                segment_recommendations_source.gender,
                segment_recommendations_source.age_band
            order by segment_recommendations_source.rank
        ) as rank,
        segment_recommendations_source.shoe_id,
        shoes_source.name,
        shoes_source.brand,
        shoes_source.type,
        shoes_source.material,
        shoes_source.color,
        shoes_source.price,
        segment_recommendations_source.score
    from segment_recommendations_source
    inner join latest_run
        on segment_recommendations_source.run_id = latest_run.run_id
    inner join shoes_source
        on segment_recommendations_source.shoe_id = shoes_source.shoe_id
)

select
    primary_usage,
    gender,
    age_band,
    primary_usage || ' · ' || gender || ' · ' || age_band as segment,
    rank,
    shoe_id,
    name,
    brand,
    type,
    material,
    color,
    price,
    score,
    model_rank,
    run_id
from run_segment_recommendations;

comment on view new_customer_recommendations is 'Top shoes for a brand-new customer of each segment (usage x gender x age band), from the latest complete run.';
comment on column new_customer_recommendations.gender is 'Gender, or ''unknown''.';
comment on column new_customer_recommendations.age_band is 'age_bands.age_band, or ''unknown''.';
comment on column new_customer_recommendations.segment is 'Readable label, the same as user_segments.segment.';
comment on column new_customer_recommendations.rank is '1..n without gaps (a shoe missing from the catalogue is skipped); model_rank is the run''s own.';
