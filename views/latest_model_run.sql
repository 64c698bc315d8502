-- zero or one row: the newest scoring run (model_runs) with status 'complete', the run every score view
-- reads; running and failed runs are never shown. Newest = highest run_id (the scorer numbers runs
-- max + 1, and keeps the latest complete runs by run_id too).

create view latest_model_run as

with complete_runs as (
    select * from model_runs where status = 'complete'
)

select
    run_id,
    status,
    started_at,
    finished_at,
    reference_date,
    parameters,
    n_users,
    n_shoes,
    n_interactions,
    n_recommendations,
    timings,
    cast(
        round(cast({{ days_between('finished_at', 'started_at') }} * 86400 as numeric(18, 3)), 3)
        as double precision
    ) as duration_seconds
from complete_runs
-- the newest: run_id is the key, so this is at most one row
order by run_id desc
limit 1;

comment on view latest_model_run is 'The newest (highest run_id) complete scoring run, zero or one row; the recommendation views read its run_id.';
comment on column latest_model_run.parameters is 'Every parameter of the run, as JSON text.';
comment on column latest_model_run.timings is 'Seconds per stage, as JSON text.';
comment on column latest_model_run.duration_seconds is 'finished_at - started_at in seconds (to the millisecond).';
