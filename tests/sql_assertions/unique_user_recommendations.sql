-- user_recommendations: one row per (user_id, rank), none of them null.
select user_id, rank, count(*) as n_rows
from user_recommendations
group by user_id, rank
having count(*) > 1 or user_id is null or rank is null
