-- the score views show the latest complete run only (a running or failed run never leaks).
select 'replacement_suggestions' as view_name, run_id from replacement_suggestions
where run_id is distinct from (select run_id from latest_model_run)
union all
select 'new_customer_recommendations', run_id from new_customer_recommendations
where run_id is distinct from (select run_id from latest_model_run)
union all
select 'latest_model_run', run_id from latest_model_run
where status <> 'complete'
