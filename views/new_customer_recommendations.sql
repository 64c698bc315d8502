-- one row per (primary_usage, gender, age_band, rank): what a brand-new customer of that segment is shown,
-- from the latest complete run's segment_recommendations, with the shoe's attributes: only shoes
-- shoe_assortment shows, scores times the rules' boosts, at most the caps per brand and per type, re-ranked
-- 1..n and cut at settings.recommendations_shown (10).

create view new_customer_recommendations as

with latest_run as (
    select run_id from latest_model_run
),

segment_recommendations_source as (
    select run_id, primary_usage, gender, age_band, rank as model_rank, shoe_id, score from segment_recommendations
),

shoes_source as (
    select shoe_id, name, brand, type, material, color, price from shoes
),

assortment as (
    select shoe_id, is_shown, boost_factor, brand_cap, type_cap from shoe_assortment
),

settings_in_force as (
    select recommendations_shown from current_settings
),

allowed as (
    select
        segment_recommendations_source.*,
        shoes_source.name,
        shoes_source.brand,
        shoes_source.type,
        shoes_source.material,
        shoes_source.color,
        shoes_source.price,
        segment_recommendations_source.score * assortment.boost_factor as ranking_score,
        assortment.brand_cap,
        assortment.type_cap
    from segment_recommendations_source
    inner join latest_run
        on segment_recommendations_source.run_id = latest_run.run_id
    inner join shoes_source
        on segment_recommendations_source.shoe_id = shoes_source.shoe_id
    inner join assortment
        on segment_recommendations_source.shoe_id = assortment.shoe_id
    where assortment.is_shown
),

-- the caps: a shoe beyond its brand's cap goes first, then one beyond its type's (best ranking_score kept)
brand_ordered as (
    select
        allowed.*,
        row_number() over (
            partition by allowed.primary_usage, allowed.gender, allowed.age_band, allowed.brand
            order by allowed.ranking_score desc, allowed.model_rank asc
        ) as brand_order
    from allowed
),

type_ordered as (
    select
        brand_ordered.*,
        row_number() over (
            partition by brand_ordered.primary_usage, brand_ordered.gender, brand_ordered.age_band, brand_ordered.type
            order by brand_ordered.ranking_score desc, brand_ordered.model_rank asc
        ) as type_order
    from brand_ordered
    where brand_ordered.brand_cap is null or brand_ordered.brand_order <= brand_ordered.brand_cap
),

run_segment_recommendations as (
    select
        type_ordered.*,
        row_number() over (
            partition by type_ordered.primary_usage, type_ordered.gender, type_ordered.age_band
            order by type_ordered.ranking_score desc, type_ordered.model_rank asc
        ) as rank
    from type_ordered
    where type_ordered.type_cap is null or type_ordered.type_order <= type_ordered.type_cap
)

select
    run_segment_recommendations.primary_usage,
    run_segment_recommendations.gender,
    run_segment_recommendations.age_band,
    run_segment_recommendations.primary_usage || ' · ' || run_segment_recommendations.gender
    || ' · ' || run_segment_recommendations.age_band as segment,
    run_segment_recommendations.rank,
    run_segment_recommendations.shoe_id,
    run_segment_recommendations.name,
    run_segment_recommendations.brand,
    run_segment_recommendations.type,
    run_segment_recommendations.material,
    run_segment_recommendations.color,
    run_segment_recommendations.price,
    run_segment_recommendations.score,
    run_segment_recommendations.model_rank,
    run_segment_recommendations.run_id
from run_segment_recommendations
cross join settings_in_force
where run_segment_recommendations.rank <= settings_in_force.recommendations_shown;

comment on view new_customer_recommendations is 'Top shoes for a brand-new customer of each segment (usage x gender x age band), from the latest complete run.';
comment on column new_customer_recommendations.gender is 'Gender, or ''unknown''.';
comment on column new_customer_recommendations.age_band is 'age_bands.age_band, or ''unknown''.';
comment on column new_customer_recommendations.segment is 'Readable label, the same as user_segments.segment.';
comment on column new_customer_recommendations.rank is '1..n without gaps (n = settings.recommendations_shown, 10), by score x boost after removing shoes missing from the catalogue, not shown (shoe_assortment) or beyond a cap; model_rank is the run''s own.';
