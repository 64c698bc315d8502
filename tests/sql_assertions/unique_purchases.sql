-- purchases: one row per (user_id, shoe_id, purchased_at), none of them null.
select user_id, shoe_id, purchased_at, count(*) as n_rows
from purchases
group by user_id, shoe_id, purchased_at
having count(*) > 1 or user_id is null or shoe_id is null or purchased_at is null
