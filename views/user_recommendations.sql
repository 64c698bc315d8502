-- one row per (user_id, rank): the latest complete scoring run's recommendations for a user, without the
-- shoes they have bought (at any time, so a purchase after the run disappears at once), re-ranked 1..n.
-- reason: the user's strongest interaction with the run's reason shoe, else the user's segment.

create view user_recommendations as

with latest_run as (
    select run_id from latest_model_run
),

recommendations_source as (
    select
        run_id,
        user_id,
        rank,
        shoe_id,
        score,
        cf_score,
        content_score,
        cf_weight,
        reason_shoe_id
    from recommendations
),

shoes_source as (
    select shoe_id, name, brand, type, material, color, price from shoes
),

-- purchase events, not de-duplicated: the anti-join below then runs on the interactions primary key
purchase_events as (
    select user_id, shoe_id
    from interactions
    where interaction_type = 'purchase'
),

interactions_source as (
    select user_id, shoe_id, interaction_type from interactions
),

interaction_types_source as (
    select interaction_type, weight, funnel_step from interaction_types
),

segments as (
    select user_id, segment from user_segments
),

run_recommendations as (
    select
        recommendations_source.run_id,
        recommendations_source.user_id,
        recommendations_source.rank,
        recommendations_source.shoe_id,
        recommendations_source.score,
        recommendations_source.cf_score,
        recommendations_source.content_score,
        recommendations_source.cf_weight,
        recommendations_source.reason_shoe_id
    from recommendations_source
    inner join latest_run
        on recommendations_source.run_id = latest_run.run_id
),

not_bought as (
    select
        run_recommendations.run_id,
        run_recommendations.user_id,
        run_recommendations.rank as model_rank,
        row_number() over (
            partition by run_recommendations.user_id order by run_recommendations.rank
        ) as rank,
        run_recommendations.shoe_id,
        shoes_source.name,
        shoes_source.brand,
        shoes_source.type,
        shoes_source.material,
        shoes_source.color,
        shoes_source.price,
        run_recommendations.score,
        run_recommendations.cf_score,
        run_recommendations.content_score,
        run_recommendations.cf_weight,
        run_recommendations.reason_shoe_id
    from run_recommendations
    inner join shoes_source
        on run_recommendations.shoe_id = shoes_source.shoe_id
    left join purchase_events
        on run_recommendations.user_id = purchase_events.user_id
        and run_recommendations.shoe_id = purchase_events.shoe_id
    where purchase_events.user_id is null
),

-- per (user, shoe): the interaction type furthest down the funnel (purchase > wishlist > view); over all
-- interactions, so that a filter on user_id reaches it (each CTE here is read once, hence inlined)
ranked_interactions as (
    select
        interactions_source.user_id,
        interactions_source.shoe_id,
        interactions_source.interaction_type,
        row_number() over (
            partition by interactions_source.user_id, interactions_source.shoe_id
            order by
                interaction_types_source.funnel_step desc,
                interaction_types_source.weight desc,
                interactions_source.interaction_type asc
        ) as strength_order
    from interactions_source
    inner join interaction_types_source
        on interactions_source.interaction_type = interaction_types_source.interaction_type
),

strongest_reasons as (
    select user_id, shoe_id, interaction_type
    from ranked_interactions
    where strength_order = 1
),

explained as (
    select
        not_bought.user_id,
        not_bought.rank,
        not_bought.model_rank,
        not_bought.shoe_id,
        not_bought.name,
        not_bought.brand,
        not_bought.type,
        not_bought.material,
        not_bought.color,
        not_bought.price,
        not_bought.score,
        not_bought.cf_score,
        not_bought.content_score,
        not_bought.cf_weight,
        not_bought.reason_shoe_id,
        not_bought.run_id,
        case
            when reason_shoes.name is null
                then 'popular with ' || coalesce(segments.segment, 'customers like you')
            when not_bought.reason_shoe_id = not_bought.shoe_id
                and strongest_reasons.interaction_type = 'add_to_wishlist'
                then 'on your wishlist'
            when not_bought.reason_shoe_id = not_bought.shoe_id and strongest_reasons.interaction_type = 'view'
                then 'you looked at it before'
            when strongest_reasons.interaction_type is null
                then 'similar to ' || reason_shoes.name
            else 'because you '
                || case strongest_reasons.interaction_type
                    when 'purchase' then 'bought'
                    when 'add_to_wishlist' then 'wishlisted'
                    when 'view' then 'viewed'
                    else 'liked'
                end
                || ' ' || reason_shoes.name
        end as reason
    from not_bought
    left join shoes_source as reason_shoes
        on not_bought.reason_shoe_id = reason_shoes.shoe_id
    left join strongest_reasons
        on not_bought.user_id = strongest_reasons.user_id
        and not_bought.reason_shoe_id = strongest_reasons.shoe_id
    left join segments
        on not_bought.user_id = segments.user_id
)

select
    user_id,
    rank,
    shoe_id,
    name,
    brand,
    type,
    material,
    color,
    price,
    score,
    cf_score,
    content_score,
    cf_weight,
    case
        when score > 0 then least(greatest(cf_weight * coalesce(cf_score, 0) / score, 0), 1)
        else 0
    end as behaviour_share,
    reason,
    reason_shoe_id,
    model_rank,
    run_id
from explained;

comment on view user_recommendations is 'One row per (user, rank): the latest complete run''s recommendations minus the shoes the user has bought, re-ranked 1..n.';
comment on column user_recommendations.rank is '1..n without gaps, after removing shoes the user has bought (model_rank is the run''s own rank).';
comment on column user_recommendations.score is 'Hybrid score of the run: cf_weight x cf_score + (1 - cf_weight) x content_score.';
comment on column user_recommendations.cf_weight is 'Share of the score from collaborative filtering for this user (grows with their history).';
comment on column user_recommendations.reason is '''because you viewed / wishlisted / bought <shoe>'' (strongest interaction with the run''s reason shoe; ''on your wishlist'' or ''you looked at it before'' when it is the shoe itself), else ''popular with <segment>''.';
comment on column user_recommendations.behaviour_share is 'Share of this shoe''s score that comes from behaviour (collaborative filtering): cf_weight x cf_score / score, 0..1.';
comment on column user_recommendations.model_rank is 'Rank in the scoring run, before purchased shoes were removed.';
comment on column user_recommendations.run_id is 'The scoring run (latest_model_run) the scores come from.';
