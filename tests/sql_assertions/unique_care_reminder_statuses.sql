-- care_reminder_statuses: one row per (user_id, shoe_id, purchased_at, reminder_number, status), none null.
select user_id, shoe_id, purchased_at, reminder_number, status, count(*) as n_rows
from care_reminder_statuses
group by user_id, shoe_id, purchased_at, reminder_number, status
having count(*) > 1 or user_id is null or shoe_id is null or purchased_at is null or reminder_number is null
    or status is null
