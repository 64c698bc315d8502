-- replacement_windows: one row per (user_id, shoe_id), none of them null.
select user_id, shoe_id, count(*) as n_rows
from replacement_windows
group by user_id, shoe_id
having count(*) > 1 or user_id is null or shoe_id is null
