-- one row per (user_id, shoe_id, rank): for a shoe whose replacement window is open, one of the top 3
-- shoes to replace it with, from the latest complete run's shoe_similarities, only shoes shoe_assortment
-- shows (buyable now, not excluded by a rule), never a shoe the user has bought; ordered by weight x similarity + (1 - weight) x the user's own score (settings, default 0.7).
-- Meant to be read filtered by user_id (an account page: `where user_id = ?`): every table is then read by its
-- key for that customer and the shoes they own (tests/test_serving.py checks the plan).

create view replacement_suggestions as

-- open = nearing_end_of_life or past_end_of_life; written as <> 'ok', which PostgreSQL estimates well
with open_windows as (
    select user_id, shoe_id, name, brand, type, material, color, status
    from replacement_windows
    where status <> 'ok'
),

latest_run as (
    select run_id from latest_model_run
),

similarities_source as (
    select run_id, shoe_id, similar_shoe_id, similarity from shoe_similarities
),

recommendations_source as (
    select run_id, user_id, shoe_id, score from recommendations
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

settings_in_force as (
    select replacement_similarity_weight from current_settings
),

assortment as (
    select shoe_id from shoe_assortment where is_shown
),

run_similarities as (
    select similarities_source.*
    from similarities_source
    inner join latest_run
        on similarities_source.run_id = latest_run.run_id
),

-- the user's own score for a shoe in the run (absent from their top-N: 0 below)
run_user_scores as (
    select recommendations_source.*
    from recommendations_source
    inner join latest_run
        on recommendations_source.run_id = latest_run.run_id
),

candidates as (
    select
        open_windows.user_id,
        open_windows.shoe_id,
        open_windows.name as owned_name,
        open_windows.status as window_status,
        run_similarities.similar_shoe_id as suggested_shoe_id,
        shoes_source.name as suggested_name,
        shoes_source.brand,
        shoes_source.type,
        shoes_source.material,
        shoes_source.color,
        shoes_source.price,
        run_similarities.similarity,
        coalesce(run_user_scores.score, 0) as user_score,
        -- the attributes the two shoes share, in a fixed order
        concat_ws(
            ', ',
            case when shoes_source.brand = open_windows.brand then 'brand' end,
            case when shoes_source.type = open_windows.type then 'type' end,
            case when shoes_source.material = open_windows.material then 'material' end,
            case when shoes_source.color = open_windows.color then 'color' end
        ) as shared_attributes
    from open_windows
    inner join run_similarities
        on open_windows.shoe_id = run_similarities.shoe_id
    inner join shoes_source
        on run_similarities.similar_shoe_id = shoes_source.shoe_id
    inner join assortment
        on run_similarities.similar_shoe_id = assortment.shoe_id
    left join purchase_events
        on open_windows.user_id = purchase_events.user_id
            and run_similarities.similar_shoe_id = purchase_events.shoe_id
    left join run_user_scores
        on open_windows.user_id = run_user_scores.user_id
            and run_similarities.similar_shoe_id = run_user_scores.shoe_id
    where purchase_events.user_id is null
),

scored as (
    select
        candidates.*,
        settings_in_force.replacement_similarity_weight * candidates.similarity
        + (1 - settings_in_force.replacement_similarity_weight) * candidates.user_score as suggestion_score
    from candidates
    cross join settings_in_force
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

comment on view replacement_suggestions is 'Up to three shoes to replace each owned shoe whose replacement window is open, from the latest complete run; only shoes that can be bought now and no rule excludes (shoe_assortment), never a shoe the user has bought.';
comment on column replacement_suggestions.shoe_id is 'The owned shoe to replace (its replacement_windows row is nearing or past end of life).';
comment on column replacement_suggestions.rank is '1..3 by suggestion_score, then similarity, then suggested_shoe_id.';
comment on column replacement_suggestions.similarity is 'shoe_similarities.similarity of the owned and the suggested shoe in the run.';
comment on column replacement_suggestions.user_score is 'The user''s own recommendation score for the suggested shoe in the run; 0 when it is not in their top-N.';
comment on column replacement_suggestions.suggestion_score is 'w x similarity + (1 - w) x user_score, w = settings.replacement_similarity_weight (0.7).';
comment on column replacement_suggestions.reason is '''similar to your <owned name>: same <the attributes they share among brand, type, material, color>''.';
