-- latest_model_run: zero or one row, and it is the highest complete run_id.
select count(*) as n_rows
from latest_model_run
having
    count(*) > 1
    or max(run_id) <> (select max(run_id) from model_runs where status = 'complete')
    or (count(*) = 0 and exists (select 1 from model_runs where status = 'complete'))
