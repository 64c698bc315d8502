-- user_profiles: one row per (user_id), none of them null.
select user_id, count(*) as n_rows
from user_profiles
group by user_id
having count(*) > 1 or user_id is null
