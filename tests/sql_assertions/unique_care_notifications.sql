-- care_notifications: one row per (user_id, shoe_id, purchased_at, reminder_number), none of them null.
select user_id, shoe_id, purchased_at, reminder_number, count(*) as n_rows
from care_notifications
group by user_id, shoe_id, purchased_at, reminder_number
having count(*) > 1 or user_id is null or shoe_id is null or purchased_at is null or reminder_number is null
