-- user_history: one row per (user_id, shoe_id, interaction_type, occurred_at), none of them null.
select user_id, shoe_id, interaction_type, occurred_at, count(*) as n_rows
from user_history
group by user_id, shoe_id, interaction_type, occurred_at
having count(*) > 1 or user_id is null or shoe_id is null or interaction_type is null or occurred_at is null
