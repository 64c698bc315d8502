-- pair_statuses: one row per (user_id, shoe_id, purchased_at, status), none of them null.
select user_id, shoe_id, purchased_at, status, count(*) as n_rows
from pair_statuses
group by user_id, shoe_id, purchased_at, status
having count(*) > 1 or user_id is null or shoe_id is null or purchased_at is null or status is null
