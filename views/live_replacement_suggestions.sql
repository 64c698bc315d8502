-- one row per (user_id, shoe_id, rank): for a shoe whose replacement window is open, one of the top 3
-- shoes to replace it with, from the latest complete run's shoe_similarities, only shoes shoe_assortment
-- shows (buyable now, not excluded by a rule), never a shoe the user has bought; ordered by weight x similarity + (1 - weight) x the user's own score (settings, default 0.7).
-- Meant to be read filtered by user_id (an account page: `where user_id = ?`): every table is then read by its
-- key for that customer and the shoes they own (tests/test_serving.py checks the plan).

create view live_replacement_suggestions as

-- tables are read where they are used, not through an import CTE each: PostgreSQL inlines a CTE by copying
-- it into its reader and walking the whole query once per CTE, which is most of what planning costs here
-- open = nearing_end_of_life or past_end_of_life; written as <> 'ok', which PostgreSQL estimates well
with open_windows as (
    select user_id, shoe_id, name, brand, type, material, color, status
    from replacement_windows
    where status <> 'ok'
),

latest_run as (
    select run_id from latest_model_run
),

run_similarities as (
    select
        shoe_similarities.run_id, shoe_similarities.shoe_id, shoe_similarities.similar_shoe_id, shoe_similarities.similarity
    from shoe_similarities
    inner join latest_run
        on shoe_similarities.run_id = latest_run.run_id
),

-- the user's own score for a shoe in the run (absent from their top-N: 0 below)
run_user_scores as (
    select recommendations.run_id, recommendations.user_id, recommendations.shoe_id, recommendations.score
    from recommendations
    inner join latest_run
        on recommendations.run_id = latest_run.run_id
),

candidates as (
    select
        open_windows.user_id,
        open_windows.shoe_id,
        open_windows.name as owned_name,
        open_windows.status as window_status,
        run_similarities.similar_shoe_id as suggested_shoe_id,
        shoes.name as suggested_name,
        shoes.brand,
        shoes.type,
        shoes.material,
        shoes.color,
        shoes.price,
        run_similarities.similarity,
        coalesce(run_user_scores.score, 0) as user_score,
        -- the attributes the two shoes share, in a fixed order
        concat_ws(
            ', ',
            case when shoes.brand = open_windows.brand then 'brand' end,
            case when shoes.type = open_windows.type then 'type' end,
            case when shoes.material = open_windows.material then 'material' end,
            case when shoes.color = open_windows.color then 'color' end
        ) as shared_attributes
    from open_windows
    inner join run_similarities
        on open_windows.shoe_id = run_similarities.shoe_id
    inner join shoes
        on run_similarities.similar_shoe_id = shoes.shoe_id
    inner join shoe_assortment
        on run_similarities.similar_shoe_id = shoe_assortment.shoe_id
    -- purchase events, not de-duplicated: the anti-join then runs on the interactions primary key
    left join interactions as purchase_events
        on open_windows.user_id = purchase_events.user_id
            and run_similarities.similar_shoe_id = purchase_events.shoe_id
            and purchase_events.interaction_type = 'purchase'
    left join run_user_scores
        on open_windows.user_id = run_user_scores.user_id
            and run_similarities.similar_shoe_id = run_user_scores.shoe_id
    where shoe_assortment.is_shown and purchase_events.user_id is null
),

scored as (
    select
        candidates.*,
        current_settings.replacement_similarity_weight * candidates.similarity
        + (1 - current_settings.replacement_similarity_weight) * candidates.user_score as suggestion_score
    from candidates
    cross join current_settings
),

-- a shoe pair (or a user's score) the run lists twice counts once, at its best
deduplicated as (
    select
        scored.*,
        row_number() over (
            partition by scored.user_id, scored.shoe_id, scored.suggested_shoe_id order by scored.suggestion_score desc
        ) as pair_order
    from scored
),

ranked as (
    select
        deduplicated.*,
        row_number() over (
            partition by deduplicated.user_id, deduplicated.shoe_id
            order by
                deduplicated.suggestion_score desc,
                deduplicated.similarity desc,
                deduplicated.suggested_shoe_id asc
        ) as rank
    from deduplicated
    where deduplicated.pair_order = 1
)

select
    ranked.user_id,
    ranked.shoe_id,
    ranked.owned_name,
    ranked.window_status,
    ranked.rank,
    ranked.suggested_shoe_id,
    ranked.suggested_name,
    ranked.brand,
    ranked.type,
    ranked.material,
    ranked.color,
    ranked.price,
    ranked.similarity,
    ranked.user_score,
    ranked.suggestion_score,
    case
        when coalesce(ranked.shared_attributes, '') = '' then 'similar to your ' || ranked.owned_name
        else 'similar to your ' || ranked.owned_name || ': same ' || ranked.shared_attributes
    end as reason,
    latest_run.run_id
from ranked
cross join latest_run
where ranked.rank <= 3;

comment on view live_replacement_suggestions is 'Up to three shoes to replace each owned shoe whose replacement window is open, from the latest complete run; only shoes that can be bought now and no rule excludes (shoe_assortment), never a shoe the user has bought.';
comment on column live_replacement_suggestions.user_id is 'The customer; every column means what it means in replacement_suggestions, which reads this view.';

{{ read_model_bulk('replacement_suggestions') }}
