-- one row per (user_id, rank): what a customer is shown now. Their list comes from their newest complete
-- refresh of the latest complete run (scripts.score --refresh), else from the run itself, else (a customer
-- the run never saw: registered since) their segment's list, as new_customer_recommendations; then only shoes
-- shoe_assortment shows (buyable, not excluded) that they have not bought (at any time, so a purchase after
-- the run disappears at once), scores times the rules' boosts, at most the caps per brand and per type,
-- re-ranked 1..n and cut at settings.recommendations_shown (10).
-- reason: what carries the pick, the largest of its behaviour, content and popularity shares: the user's
-- strongest interaction with the run's reason shoe (that shoe names at most 3 picks this way), the brand
-- and type the pick shares with it, or the user's segment. Rows of a run without popularity_share keep the
-- former reasons (no shares, no limit).
-- Meant to be read filtered by user_id (a page view: `where user_id = ?`): every table is then read by its key
-- for that customer and the shoes their list names (tests/test_serving.py checks the plan).

create view user_recommendations as

with latest_run as (
    select run_id from latest_model_run
),

refreshes_source as (
    select refresh_id, run_id, status from model_refreshes
),

-- rank is the run's own (model_rank below); popularity_share as the run recorded it (clamped in ranked)
recommendations_source as (
    select
        run_id, user_id, rank as model_rank, shoe_id, score, cf_score, content_score, cf_weight,
        popularity_share as recorded_popularity_share, reason_shoe_id
    from recommendations
),

-- who the latest run scored: rank 1 is one row per user, found on the table's key (a second import, so that
-- PostgreSQL inlines each: a CTE read twice is materialised, and then no filter on user_id reaches it)
run_heads as (
    select run_id, user_id from recommendations where rank = 1
),

-- the columns of recommendations_source, in the same order, then refresh_id (listed_rows unites them by position)
refreshed_source as (
    select
        run_id, user_id, rank as model_rank, shoe_id, score, cf_score, content_score, cf_weight,
        popularity_share as recorded_popularity_share, reason_shoe_id, refresh_id
    from refreshed_recommendations
),

segment_recommendations_source as (
    select run_id, primary_usage, gender, age_band, rank, shoe_id, score from segment_recommendations
),

shoes_source as (
    select shoe_id, name, brand, type, material, color, price from shoes
),

-- the shoes named as reasons: a second import of shoes, so that each is inlined
reason_shoes_source as (
    select shoe_id, name, brand, type from shoes
),

assortment as (
    select shoe_id, is_shown, boost_factor, brand_cap, type_cap from shoe_assortment
),

settings_in_force as (
    select recommendations_shown from current_settings
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

customers as (
    select user_id, primary_usage, gender, age_band from user_segments
),

latest_refreshes as (
    select refreshes_source.refresh_id
    from refreshes_source
    inner join latest_run
        on refreshes_source.run_id = latest_run.run_id
    where refreshes_source.status = 'complete'
),

-- the latest run's rows (a customer a refresh of it scored since: their newest refresh's rows instead, below)
run_rows as (
    select
        recommendations_source.*,
        cast(null as bigint) as refresh_id,
        'run' as list_source,
        2 as source_order
    from recommendations_source
    inner join latest_run
        on recommendations_source.run_id = latest_run.run_id
),

refresh_rows as (
    select
        refreshed_source.*,
        'refresh' as list_source,
        1 as source_order
    from refreshed_source
    inner join latest_refreshes
        on refreshed_source.refresh_id = latest_refreshes.refresh_id
),

-- customers the latest run never scored (loaded since): no history as far as the model knows, so what it
-- gives a user without history: the segment's cold-start list, all prior (a refresh of them wins, below)
new_customers as (
    select
        customers.*,
        latest_run.run_id
    from customers
    cross join latest_run
    left join run_heads
        on customers.user_id = run_heads.user_id
            and latest_run.run_id = run_heads.run_id
    where run_heads.user_id is null
),

segment_rows as (
    select
        new_customers.run_id,
        new_customers.user_id,
        segment_recommendations_source.rank as model_rank,
        segment_recommendations_source.shoe_id,
        segment_recommendations_source.score,
        cast(null as double precision) as cf_score,
        segment_recommendations_source.score as content_score,
        cast(0 as double precision) as cf_weight,
        cast(1 as double precision) as recorded_popularity_share,
        cast(null as bigint) as reason_shoe_id,
        cast(null as bigint) as refresh_id,
        'segment' as list_source,
        3 as source_order
    from new_customers
    inner join segment_recommendations_source
        on new_customers.run_id = segment_recommendations_source.run_id
            and new_customers.primary_usage = segment_recommendations_source.primary_usage
            and new_customers.gender = segment_recommendations_source.gender
            and new_customers.age_band = segment_recommendations_source.age_band
),

-- the three have the same columns in the same order (a union is by position)
listed_rows as (
    select * from run_rows
    union all
    select * from refresh_rows
    union all
    select * from segment_rows
),

-- per customer one list: their newest complete refresh of the latest run, else the run's, else their
-- segment's (a window per user_id rather than anti-joins, so that a filter on user_id reaches every table)
chosen_rows as (
    select
        listed_rows.*,
        rank() over (
            partition by listed_rows.user_id order by listed_rows.source_order asc, listed_rows.refresh_id desc
        ) as list_order
    from listed_rows
),

scored_rows as (
    select chosen_rows.*
    from chosen_rows
    where chosen_rows.list_order = 1
),

-- per shoe: its catalogue row and what shoe_assortment says of it
listed_shoes as (
    select
        shoes_source.*,
        assortment.is_shown,
        assortment.boost_factor,
        assortment.brand_cap,
        assortment.type_cap
    from shoes_source
    inner join assortment
        on shoes_source.shoe_id = assortment.shoe_id
),

-- the shoes that may be shown and the user has not bought, their score times the rules' boost; each shoe
-- looked up by its key in a lateral subquery (limit 1: shoe_id is unique), so that PostgreSQL reads only the
-- shoes a customer's list names instead of hashing the whole catalogue for their 50 rows
allowed as (
    select
        scored_rows.*,
        listed.name,
        listed.brand,
        listed.type,
        listed.material,
        listed.color,
        listed.price,
        scored_rows.score * listed.boost_factor as ranking_score,
        listed.brand_cap,
        listed.type_cap
    from scored_rows
    cross join
        lateral (
            -- a lookup by the key (at most one row): the outer reference must be qualified
            select * from listed_shoes where listed_shoes.shoe_id = scored_rows.shoe_id limit 1  -- noqa: RF03, AM09
        ) as listed
    left join purchase_events
        on scored_rows.user_id = purchase_events.user_id
            and scored_rows.shoe_id = purchase_events.shoe_id
    where purchase_events.user_id is null and listed.is_shown
),

-- the caps: a shoe beyond its brand's cap goes first, then one beyond its type's (best ranking_score kept)
brand_ordered as (
    select
        allowed.*,
        row_number() over (
            partition by allowed.user_id, allowed.brand order by allowed.ranking_score desc, allowed.model_rank asc
        ) as brand_order
    from allowed
),

type_ordered as (
    select
        brand_ordered.*,
        row_number() over (
            partition by brand_ordered.user_id, brand_ordered.type
            order by brand_ordered.ranking_score desc, brand_ordered.model_rank asc
        ) as type_order
    from brand_ordered
    where brand_ordered.brand_cap is null or brand_ordered.brand_order <= brand_ordered.brand_cap
),

-- the shares are computed here, beside the window, so that the levels above read them as columns (PostgreSQL
-- would otherwise substitute each expression into every one that uses it, and plan the copies)
ranked as (
    select
        type_ordered.*,
        row_number() over (
            partition by type_ordered.user_id order by type_ordered.ranking_score desc, type_ordered.model_rank asc
        ) as rank,
        case
            when type_ordered.score > 0
                then least(
                        greatest(type_ordered.cf_weight * coalesce(type_ordered.cf_score, 0) / type_ordered.score, 0), 1
                    )
            else 0
        end as behaviour_share,
        -- null (unknown) in rows of runs before popularity_share was recorded
        case
            when type_ordered.recorded_popularity_share is not null
                then least(greatest(type_ordered.recorded_popularity_share, 0), 1)
        end as popularity_share
    from type_ordered
    where type_ordered.type_cap is null or type_ordered.type_order <= type_ordered.type_cap
),

not_bought as (
    select ranked.*
    from ranked
    cross join settings_in_force
    where ranked.rank <= settings_in_force.recommendations_shown
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
    left join
        lateral (
            -- a lookup by the key (at most one row): the outer reference must be qualified
            select * from reason_shoes_source where reason_shoes_source.shoe_id = shares.reason_shoe_id limit 1  -- noqa: RF03, AM09
        ) as reason_shoes
        on true
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
        -- a simple case on reason_kind: PostgreSQL substitutes that expression once, not once per branch
        case kinds.reason_kind
            when 'popularity'
                then case
                        when kinds.list_source = 'segment'
                            then 'new since the last run: popular with ' || coalesce(kinds.segment, 'customers like you')
                        else 'popular with ' || coalesce(kinds.segment, 'customers like you')
                    end
            when 'content'
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
            else case
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
                end
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
    run_id,
    list_source
from explained;

comment on view user_recommendations is 'One row per (user, rank): the latest complete run''s recommendations (or the customer''s newest refresh of it, or their segment''s list when the run never saw them), only shoes that may be shown and the user has not bought, boosted and capped by merchandising_rules, re-ranked 1..n and cut at settings.recommendations_shown, each with the reason that carries it.';
comment on column user_recommendations.rank is '1..n without gaps (n = settings.recommendations_shown, 10), by score x boost after removing unavailable, excluded, capped and bought shoes (model_rank is the run''s own rank).';
comment on column user_recommendations.score is 'Hybrid score of the run: cf_weight x cf_score + (1 - cf_weight) x content_score.';
comment on column user_recommendations.cf_weight is 'Share of the score from collaborative filtering for this user (grows with their history).';
comment on column user_recommendations.behaviour_share is 'Share of this shoe''s score that comes from behaviour (collaborative filtering): cf_weight x cf_score / score, 0..1.';
comment on column user_recommendations.content_share is 'Share of this shoe''s score that comes from the user''s own content profile: 1 - behaviour_share - popularity_share, 0..1; null for a run that did not record popularity_share.';
comment on column user_recommendations.popularity_share is 'Share of this shoe''s score that comes from the segment''s popularity, 0..1 (1 without history); null for a run that did not record it.';
comment on column user_recommendations.reason is 'Why this shoe, by reason_kind: behaviour ''because you viewed / wishlisted / bought <reason shoe>'' (''on your wishlist'' or ''you looked at it before'' when it is the shoe itself); content ''similar to what you like: <brand> <type>'' (the brand and/or type it shares with the reason shoe; else ''similar to <reason shoe>'', or ''similar to what you like'' when that shoe already explains 3 picks); popularity ''popular with <segment>''.';
comment on column user_recommendations.reason_kind is 'behaviour, content or popularity: the largest of the three shares (ties: behaviour, content, popularity). A reason shoe explains at most 3 picks by behaviour (the best ranked); later ones, and picks without a shoe to name, take the larger of content and popularity (popularity without a reason shoe). Runs without popularity_share: behaviour when the user interacted with the reason shoe, content when not, popularity without one.';
comment on column user_recommendations.reason_shoe_id is 'The shoe in the user''s history that most explains this one (the run''s reason shoe), whatever reason_kind says; null when it comes from their segment.';
comment on column user_recommendations.model_rank is 'Rank in the scoring run (or refresh, or segment list), before any shoe was removed.';
comment on column user_recommendations.run_id is 'The scoring run (latest_model_run) the scores come from.';
comment on column user_recommendations.list_source is 'Where the list comes from: run (the latest complete run), refresh (a refresh of it folded the customer''s new events in) or segment (new since the last run: their segment''s list until the next refresh or run).';
