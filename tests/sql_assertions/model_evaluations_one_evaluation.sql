-- model_evaluations: the rows of one evaluation only (the latest).
select count(distinct evaluation_id) as n_evaluations
from model_evaluations
having count(distinct evaluation_id) > 1
