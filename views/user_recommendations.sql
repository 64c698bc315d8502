-- one row per (user_id, rank): the latest complete scoring run's recommendations for a user, without the
-- shoes they have bought (at any time, so a purchase after the run disappears at once), re-ranked 1..n.
-- reason: what carries the pick, the largest of its behaviour, content and popularity shares: the user's
-- strongest interaction with the run's reason shoe (that shoe names at most 3 picks this way), the brand
-- and type the pick shares with it, or the user's segment. Rows of a run without popularity_share keep the
-- former reasons (no shares, no limit).

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
        popularity_share,
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
        recommendations_source.popularity_share,
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
        case
            when run_recommendations.score > 0
                then least(
                    greatest(
                        run_recommendations.cf_weight * coalesce(run_recommendations.cf_score, 0)
                        / run_recommendations.score,
                        0
                    ),
                    1
                )
            else 0
        end as behaviour_share,
        -- null (unknown) in rows of runs before popularity_share was recorded
        case
            when run_recommendations.popularity_share is not null
                then least(greatest(run_recommendations.popularity_share, 0), 1)
        end as popularity_share,
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

-- per pick: the share of its score from the user's own content profile (what behaviour and popularity leave)
shares as (
    select
        not_bought.*,
        case
            when not_bought.popularity_share is not null
                then greatest(1 - not_bought.behaviour_share - not_bought.popularity_share, 0)
        end as content_share
    from not_bought
),

-- per pick: its reason shoe, what the user did with it, their segment, and whether it is behaviour-led:
-- behaviour is the largest share (ties go to the more specific reason: behaviour, content, popularity) and
-- the user did something with the reason shoe that can be named
candidates as (
    select
        shares.*,
        reason_shoes.name as reason_shoe_name,
        reason_shoes.brand as reason_shoe_brand,
        reason_shoes.type as reason_shoe_type,
        strongest_reasons.interaction_type as reason_interaction_type,
        segments.segment,
        coalesce(
            shares.behaviour_share >= shares.content_share
            and shares.behaviour_share >= shares.popularity_share
            and reason_shoes.name is not null
            and strongest_reasons.interaction_type is not null,
            false
        ) as is_behaviour_led
    from shares
    left join shoes_source as reason_shoes
        on shares.reason_shoe_id = reason_shoes.shoe_id
    left join strongest_reasons
        on shares.user_id = strongest_reasons.user_id
        and shares.reason_shoe_id = strongest_reasons.shoe_id
    left join segments
        on shares.user_id = segments.user_id
),

-- per pick: its place among the user's behaviour-led picks with the same reason shoe, best rank first (the
-- first 3 keep the behaviour reason); partitioned by user_id, so a filter on user_id still reaches the tables
behaviour_counted as (
    select
        candidates.*,
        row_number() over (
            partition by candidates.user_id, candidates.reason_shoe_id, candidates.is_behaviour_led
            order by candidates.rank
        ) as reason_shoe_order
    from candidates
),

-- per pick: the kind of reason given; a run without popularity_share keeps the former rule (no shares)
kinds as (
    select
        behaviour_counted.*,
        case
            when behaviour_counted.popularity_share is null
                then case
                    when behaviour_counted.reason_shoe_name is null then 'popularity'
                    when behaviour_counted.reason_interaction_type is null then 'content'
                    else 'behaviour'
                end
            when behaviour_counted.is_behaviour_led and behaviour_counted.reason_shoe_order <= 3
                then 'behaviour'
            when behaviour_counted.reason_shoe_name is not null
                and behaviour_counted.content_share >= behaviour_counted.popularity_share
                then 'content'
            else 'popularity'
        end as reason_kind
    from behaviour_counted
),

explained as (
    select
        kinds.*,
        case
            when kinds.reason_kind = 'popularity'
                then 'popular with ' || coalesce(kinds.segment, 'customers like you')
            when kinds.reason_kind = 'content'
                then case
                    when kinds.popularity_share is null
                        then 'similar to ' || kinds.reason_shoe_name
                    when kinds.brand = kinds.reason_shoe_brand and kinds.type = kinds.reason_shoe_type
                        then 'similar to what you like: ' || kinds.brand || ' ' || kinds.type
                    when kinds.brand = kinds.reason_shoe_brand
                        then 'similar to what you like: ' || kinds.brand
                    when kinds.type = kinds.reason_shoe_type
                        then 'similar to what you like: ' || kinds.type
                    -- led by behaviour, but its reason shoe already explains 3 picks: not named again
                    when kinds.is_behaviour_led
                        then 'similar to what you like'
                    else 'similar to ' || kinds.reason_shoe_name
                end
            when kinds.reason_shoe_id = kinds.shoe_id and kinds.reason_interaction_type = 'add_to_wishlist'
                then 'on your wishlist'
            when kinds.reason_shoe_id = kinds.shoe_id and kinds.reason_interaction_type = 'view'
                then 'you looked at it before'
            else 'because you '
                || case kinds.reason_interaction_type
                    when 'purchase' then 'bought'
                    when 'add_to_wishlist' then 'wishlisted'
                    when 'view' then 'viewed'
                    else 'liked'
                end
                || ' ' || kinds.reason_shoe_name
        end as reason
    from kinds
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
    behaviour_share,
    content_share,
    popularity_share,
    reason,
    reason_kind,
    reason_shoe_id,
    model_rank,
    run_id
from explained;

comment on view user_recommendations is 'One row per (user, rank): the latest complete run''s recommendations minus the shoes the user has bought, re-ranked 1..n, each with the reason that carries it.';
comment on column user_recommendations.rank is '1..n without gaps, after removing shoes the user has bought (model_rank is the run''s own rank).';
comment on column user_recommendations.score is 'Hybrid score of the run: cf_weight x cf_score + (1 - cf_weight) x content_score.';
comment on column user_recommendations.cf_weight is 'Share of the score from collaborative filtering for this user (grows with their history).';
comment on column user_recommendations.behaviour_share is 'Share of this shoe''s score that comes from behaviour (collaborative filtering): cf_weight x cf_score / score, 0..1.';
comment on column user_recommendations.content_share is 'Share of this shoe''s score that comes from the user''s own content profile: 1 - behaviour_share - popularity_share, 0..1; null for a run that did not record popularity_share.';
comment on column user_recommendations.popularity_share is 'Share of this shoe''s score that comes from the segment''s popularity, 0..1 (1 without history); null for a run that did not record it.';
comment on column user_recommendations.reason is 'Why this shoe, by reason_kind: behaviour ''because you viewed / wishlisted / bought <reason shoe>'' (''on your wishlist'' or ''you looked at it before'' when it is the shoe itself); content ''similar to what you like: <brand> <type>'' (the brand and/or type it shares with the reason shoe; else ''similar to <reason shoe>'', or ''similar to what you like'' when that shoe already explains 3 picks); popularity ''popular with <segment>''.';
comment on column user_recommendations.reason_kind is 'behaviour, content or popularity: the largest of the three shares (ties: behaviour, content, popularity). A reason shoe explains at most 3 picks by behaviour (the best ranked); later ones, and picks without a shoe to name, take the larger of content and popularity (popularity without a reason shoe). Runs without popularity_share: behaviour when the user interacted with the reason shoe, content when not, popularity without one.';
comment on column user_recommendations.reason_shoe_id is 'The shoe in the user''s history that most explains this one (the run''s reason shoe), whatever reason_kind says; null when it comes from their segment.';
comment on column user_recommendations.model_rank is 'Rank in the scoring run, before purchased shoes were removed.';
comment on column user_recommendations.run_id is 'The scoring run (latest_model_run) the scores come from.';
