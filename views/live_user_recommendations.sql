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

{#- The rows, as one customer's page view reads them (`where user_id = ?`: every table read by its key), or with
    `bulk` as the read model's full rebuild reads them on PostgreSQL (live_user_recommendations_all(low, high),
    sql/macros.sql read_model_bulk): the same rows for a range of customers, every table read for that range
    (in_range), the shoes hash-joined instead of looked up row by row (5M lookups at 100,000 customers) and the
    customers the run never saw found before their segment's lists are joined. -#}
{% macro live_rows(bulk=false) -%}

-- few CTEs, and tables read where they are used: PostgreSQL inlines a CTE by copying it (with every CTE it
-- has taken in) into the one that reads it, and walks the whole query once per CTE, so planning grows with
-- the cube of the chain (36 CTEs here planned in 8 ms, executed in 1.5)

with latest_run as (
    select run_id from latest_model_run
),
{% if bulk %}

-- the customers the run never scored, before their segment's lists are joined (inside the union PostgreSQL
-- guessed a few rows for that join and probed the run's key once per list row: 5M probes at 100,000 customers)
new_customers as materialized (
    select customers.user_id, customers.primary_usage, customers.gender, customers.age_band
    from user_segments as customers
    where {{ in_range('customers.user_id') }} and not exists (
        select from recommendations as run_heads
        inner join latest_run
            on run_heads.run_id = latest_run.run_id
        where run_heads.user_id = customers.user_id and run_heads.rank = 1
    )
),
{% endif %}

-- per customer the rows of each list that may be theirs, with the same columns in the same order (a union
-- is by position): the latest run's rows; the rows of each complete refresh of it (scripts.score --refresh);
-- for customers the run never scored (loaded since: no rank 1 row, found on the table's key), what the run
-- gives a user without history, their segment's cold-start list, all prior
listed_rows as (
    select
        recommendations.run_id,
        recommendations.user_id,
        recommendations.rank as model_rank,
        recommendations.shoe_id,
        recommendations.score,
        recommendations.cf_score,
        recommendations.content_score,
        recommendations.cf_weight,
        recommendations.popularity_share as recorded_popularity_share,
        recommendations.reason_shoe_id,
        cast(null as bigint) as refresh_id,
        'run' as list_source,
        2 as source_order
    from recommendations
    inner join latest_run
        on recommendations.run_id = latest_run.run_id
    {% if bulk %}
    where {{ in_range('recommendations.user_id') }}
    {% endif %}
    union all
    select
        refreshed_recommendations.run_id,
        refreshed_recommendations.user_id,
        refreshed_recommendations.rank as model_rank,
        refreshed_recommendations.shoe_id,
        refreshed_recommendations.score,
        refreshed_recommendations.cf_score,
        refreshed_recommendations.content_score,
        refreshed_recommendations.cf_weight,
        refreshed_recommendations.popularity_share as recorded_popularity_share,
        refreshed_recommendations.reason_shoe_id,
        refreshed_recommendations.refresh_id,
        'refresh' as list_source,
        1 as source_order
    from refreshed_recommendations
    inner join model_refreshes
        on refreshed_recommendations.refresh_id = model_refreshes.refresh_id
    inner join latest_run
        on model_refreshes.run_id = latest_run.run_id
    where model_refreshes.status = 'complete'{% if bulk %} and {{ in_range('refreshed_recommendations.user_id') }}{% endif %}
    union all
    select
        latest_run.run_id,
        customers.user_id,
        segment_recommendations.rank as model_rank,
        segment_recommendations.shoe_id,
        segment_recommendations.score,
        cast(null as double precision) as cf_score,
        segment_recommendations.score as content_score,
        cast(0 as double precision) as cf_weight,
        cast(1 as double precision) as recorded_popularity_share,
        cast(null as bigint) as reason_shoe_id,
        cast(null as bigint) as refresh_id,
        'segment' as list_source,
        3 as source_order
    from {{ 'new_customers' if bulk else 'user_segments' }} as customers
    cross join latest_run
{% if not bulk %}
    left join recommendations as run_heads
        on customers.user_id = run_heads.user_id
            and latest_run.run_id = run_heads.run_id
            and run_heads.rank = 1
{% endif %}
    inner join segment_recommendations
        on latest_run.run_id = segment_recommendations.run_id
            and customers.primary_usage = segment_recommendations.primary_usage
            and customers.gender = segment_recommendations.gender
            and customers.age_band = segment_recommendations.age_band
{% if not bulk %}
    where run_heads.user_id is null
{% endif %}
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

-- the rows of the chosen list whose shoes may be shown and the user has not bought (purchase events, not
-- de-duplicated: the anti-join runs on the interactions primary key; at any time, so a purchase after the
-- run counts at once), their score times the rules' boost; each shoe looked up with what shoe_assortment says
-- of it by its key in a lateral subquery (limit 1: shoe_id is unique), so that PostgreSQL reads only the
-- shoes a customer's list names instead of hashing the whole catalogue for their 50 rows (bulk: hashed once)
allowed as (
    select
        chosen_rows.*,
        listed.name,
        listed.brand,
        listed.type,
        listed.material,
        listed.color,
        listed.price,
        chosen_rows.score * listed.boost_factor as ranking_score,
        listed.brand_cap,
        listed.type_cap
    from chosen_rows
    {% if bulk %}
    inner join
    {% else %}
    cross join lateral
    {% endif %}
        (
            -- (one customer: a lookup by the key, at most one row)
            select
                shoes.shoe_id,
                shoes.name,
                shoes.brand,
                shoes.type,
                shoes.material,
                shoes.color,
                shoes.price,
                shoe_assortment.is_shown,
                shoe_assortment.boost_factor,
                shoe_assortment.brand_cap,
                shoe_assortment.type_cap
            from shoes
            inner join shoe_assortment
                on shoes.shoe_id = shoe_assortment.shoe_id
            {% if not bulk %}
            where shoes.shoe_id = chosen_rows.shoe_id
            limit 1  -- noqa: AM09
            {% endif %}
        ) as listed
    {% if bulk %}
        on chosen_rows.shoe_id = listed.shoe_id
    {% endif %}
    left join interactions as purchase_events
        on chosen_rows.user_id = purchase_events.user_id
            and chosen_rows.shoe_id = purchase_events.shoe_id
            and purchase_events.interaction_type = 'purchase'
    -- (bulk: `< 2`, the same rows, which PostgreSQL guesses at a third of them, not the 0.5% it guesses for `= 1`:
    -- every customer has a list, so in fact all of them)
    where chosen_rows.list_order {{ '< 2' if bulk else '= 1' }} and purchase_events.user_id is null and listed.is_shown
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

-- the picks shown (rank up to settings.recommendations_shown), each with the share of its score from the
-- user's own content profile (what behaviour and popularity leave)
shares as (
    select
        ranked.*,
        case
            when ranked.popularity_share is not null
                then greatest(1 - ranked.behaviour_share - ranked.popularity_share, 0)
        end as content_share
    from ranked
    cross join current_settings
    where ranked.rank <= current_settings.recommendations_shown
),

-- per (user, shoe): the interaction type furthest down the funnel (purchase > wishlist > view); over all
-- interactions, so that a filter on user_id reaches it (each CTE here is read once, hence inlined)
ranked_interactions as (
    select
        interactions.user_id,
        interactions.shoe_id,
        interactions.interaction_type,
        row_number() over (
            partition by interactions.user_id, interactions.shoe_id
            order by
                interaction_types.funnel_step desc,
                interaction_types.weight desc,
                interactions.interaction_type asc
        ) as strength_order
    from interactions
    inner join interaction_types
        on interactions.interaction_type = interaction_types.interaction_type
    {% if bulk %}
    where {{ in_range('interactions.user_id') }}
    {% endif %}
),

strongest_reasons as (
    select user_id, shoe_id, interaction_type
    from ranked_interactions
    where strength_order = 1
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
{% if bulk %}
    left join shoes as reason_shoes
        on shares.reason_shoe_id = reason_shoes.shoe_id
{% else %}
    left join
        lateral (
            -- a lookup by the key (at most one row)
            select shoes.name, shoes.brand, shoes.type
            from shoes
            where shoes.shoe_id = shares.reason_shoe_id
            limit 1  -- noqa: AM09
        ) as reason_shoes
        on true
{% endif %}
    left join strongest_reasons
        on shares.user_id = strongest_reasons.user_id
            and shares.reason_shoe_id = strongest_reasons.shoe_id
    left join user_segments as segments
        on shares.user_id = segments.user_id{% if bulk %} and {{ in_range('segments.user_id') }}{% endif %}
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
from explained
{%- endmacro %}

create view live_user_recommendations as

{{ live_rows() }};

comment on view live_user_recommendations is 'One row per (user, rank): the latest complete run''s recommendations (or the customer''s newest refresh of it, or their segment''s list when the run never saw them), only shoes that may be shown and the user has not bought, boosted and capped by merchandising_rules, re-ranked 1..n and cut at settings.recommendations_shown, each with the reason that carries it.';
comment on column live_user_recommendations.user_id is 'The customer; every column means what it means in user_recommendations, which reads this view.';

{{ read_model_bulk('user_recommendations', live_rows(bulk=true)) }}
