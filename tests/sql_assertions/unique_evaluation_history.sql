-- evaluation_history: one row per (evaluation_id, model, user_group, k, metric), none of them null.
select evaluation_id, model, user_group, k, metric, count(*) as n_rows
from evaluation_history
group by evaluation_id, model, user_group, k, metric
having count(*) > 1 or evaluation_id is null or model is null or user_group is null or k is null or metric is null
