-- user_messages: one replacement message per open window, and one care message per pair in use with a
-- reminder fallen due (the latest such reminder); no message for anything else.
select replacement_windows.user_id, replacement_windows.shoe_id, 'open window without a message' as problem
from replacement_windows
left join user_messages
    on replacement_windows.user_id = user_messages.user_id
    and replacement_windows.shoe_id = user_messages.shoe_id
    and user_messages.kind = 'replacement'
where
    replacement_windows.status in ('nearing_end_of_life', 'past_end_of_life')
    and user_messages.message_id is null
union all
select user_messages.user_id, user_messages.shoe_id, 'replacement message without an open window'
from user_messages
left join replacement_windows
    on user_messages.user_id = replacement_windows.user_id
    and user_messages.shoe_id = replacement_windows.shoe_id
    and replacement_windows.status in ('nearing_end_of_life', 'past_end_of_life')
where user_messages.kind = 'replacement' and replacement_windows.user_id is null
union all
select user_id, shoe_id, 'more than one care message for a shoe'
from user_messages
where kind = 'care_reminder'
group by user_id, shoe_id
having count(*) > 1
union all
select care_notifications.user_id, care_notifications.shoe_id, 'pair in use with a reminder due but no message'
from care_notifications
cross join current_settings
left join user_messages
    on care_notifications.user_id = user_messages.user_id
    and care_notifications.shoe_id = user_messages.shoe_id
    and user_messages.kind = 'care_reminder'
where
    care_notifications.status in ('due', 'overdue')
    and care_notifications.is_latest_purchase
    and care_notifications.end_of_life_on > current_settings.reference_date
    and user_messages.message_id is null
