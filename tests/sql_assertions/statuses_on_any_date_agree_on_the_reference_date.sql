-- pair_statuses and care_reminder_statuses, looked up on the reference date, give exactly what
-- replacement_windows and user_messages say on it: one pair in use per bought shoe, with its status,
-- and the care messages (the latest reminder fallen due of each pair in use).
with pairs_then as (
    select pair_statuses.user_id, pair_statuses.shoe_id, pair_statuses.purchased_at, pair_statuses.status
    from pair_statuses
    cross join current_settings
    where pair_statuses.valid_from_on <= current_settings.reference_date
        and (pair_statuses.valid_until_on is null or current_settings.reference_date < pair_statuses.valid_until_on)
),

care_then as (
    select care_reminder_statuses.user_id, care_reminder_statuses.shoe_id, care_reminder_statuses.due_on,
        care_reminder_statuses.status
    from care_reminder_statuses
    cross join current_settings
    where care_reminder_statuses.status in ('due', 'overdue')
        and care_reminder_statuses.valid_from_on <= current_settings.reference_date
        and current_settings.reference_date < care_reminder_statuses.valid_until_on
),

care_told as (
    select user_id, shoe_id, message_on as due_on, status from user_messages where kind = 'care_reminder'
)

select user_id, shoe_id, 'pair status not as in replacement_windows' as problem
from (
    (select user_id, shoe_id, purchased_at, status from pairs_then
     except select user_id, shoe_id, purchased_at, status from replacement_windows)
    union all
    (select user_id, shoe_id, purchased_at, status from replacement_windows
     except select user_id, shoe_id, purchased_at, status from pairs_then)
) as differing
union all
select user_id, shoe_id, 'care status not as in user_messages'
from (
    (select user_id, shoe_id, due_on, status from care_then
     except select user_id, shoe_id, due_on, status from care_told)
    union all
    (select user_id, shoe_id, due_on, status from care_told
     except select user_id, shoe_id, due_on, status from care_then)
) as differing
