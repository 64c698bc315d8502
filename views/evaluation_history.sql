-- one row per (evaluation_id, model, user_group, k, metric) of every offline evaluation (evaluation_runs,
-- evaluations), oldest first: how each model's figures moved from one evaluation run to the next.

create view evaluation_history as

with runs as (
    select evaluation_id, finished_at, cutoff_date, protocol from evaluation_runs
),

results as (
    select evaluation_id, model, user_group, k, metric, value, ci_low, ci_high, n_users from evaluations
),

-- 1 for the first evaluation, 2 for the next, ... (ids may have gaps)
numbered_runs as (
    select
        runs.*,
        row_number() over (order by runs.evaluation_id) as run_number
    from runs
)

select
    results.evaluation_id,
    numbered_runs.run_number,
    numbered_runs.finished_at,
    numbered_runs.cutoff_date,
    numbered_runs.protocol,
    results.model,
    results.user_group,
    results.k,
    results.metric,
    results.value,
    results.ci_low,
    results.ci_high,
    results.n_users
from results
inner join numbered_runs
    on results.evaluation_id = numbered_runs.evaluation_id;

comment on view evaluation_history is 'Every offline evaluation''s figures (one row per run x model x user group x k x metric): the trend over evaluation runs.';
comment on column evaluation_history.run_number is '1 for the oldest evaluation run, 2 for the next, ...';
comment on column evaluation_history.value is 'Mean over the group''s customers at k (null when undefined), with its 95% interval ci_low..ci_high over n_users customers.';
