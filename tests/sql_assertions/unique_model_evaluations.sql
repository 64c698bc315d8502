-- model_evaluations: one row per (model, user_group, k, metric), all of one evaluation.
select model, user_group, k, metric, count(*) as n_rows
from model_evaluations
group by model, user_group, k, metric
having count(*) > 1
union all
select 'several evaluations', '', 0, '', count(distinct evaluation_id)
from model_evaluations
having count(distinct evaluation_id) > 1
