-- replacement_suggestions: one row per (user_id, shoe_id, rank), none of them null.
select user_id, shoe_id, rank, count(*) as n_rows
from replacement_suggestions
group by user_id, shoe_id, rank
having count(*) > 1 or user_id is null or shoe_id is null or rank is null
