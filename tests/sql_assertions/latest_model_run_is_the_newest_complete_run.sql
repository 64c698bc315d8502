-- latest_model_run: it is the highest complete run_id (none only when no run is complete).
select count(*) as n_rows
from latest_model_run
having
    max(run_id) <> (select max(run_id) from model_runs where status = 'complete')
    or (count(*) = 0 and exists (select 1 from model_runs where status = 'complete'))
