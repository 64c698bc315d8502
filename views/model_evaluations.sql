-- one row per (model, user_group, k, metric) of the latest offline evaluation (evaluation_runs),
-- with its split: how good each model is, for warm and cold users, with a 95% bootstrap interval.

create view model_evaluations as

with latest_run as (
    select
        evaluation_id,
        finished_at,
        cutoff_date,
        relevant_types,
        protocol,
        parameters
    from evaluation_runs
    where evaluation_id = (select max(newest.evaluation_id) from evaluation_runs as newest)
),

results as (
    select evaluation_id, model, user_group, k, metric, value, ci_low, ci_high, n_users from evaluations
)

select
    results.evaluation_id,
    latest_run.finished_at,
    latest_run.cutoff_date,
    latest_run.relevant_types,
    results.model,
    results.user_group,
    results.k,
    results.metric,
    results.value,
    results.ci_low,
    results.ci_high,
    results.n_users,
    latest_run.protocol,
    latest_run.parameters
from results
inner join latest_run
    on results.evaluation_id = latest_run.evaluation_id;

comment on view model_evaluations is 'The latest offline evaluation: one row per model x user group x k x metric.';
comment on column model_evaluations.cutoff_date is 'Last training day of the time split.';
comment on column model_evaluations.user_group is 'warm (had training interactions), cold (had none) or all.';
comment on column model_evaluations.value is 'Mean over the group''s users at k (null when undefined).';
comment on column model_evaluations.ci_low is '95% bootstrap interval of the mean over the group''s customers: lower end (null for coverage).';
comment on column model_evaluations.protocol is 'user (per-customer hold-out plus cold customers) or time (one global cut-off).';
