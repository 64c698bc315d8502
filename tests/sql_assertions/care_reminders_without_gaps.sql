-- care_notifications: a pair's reminders are numbered 1..n without gaps, and every one belongs to a purchase.
select
    care_notifications.user_id,
    care_notifications.shoe_id,
    care_notifications.purchased_at,
    min(care_notifications.reminder_number) as first_number,
    max(care_notifications.reminder_number) as last_number,
    count(*) as n_reminders,
    count(purchases.user_id) as n_matched
from care_notifications
left join purchases
    on care_notifications.user_id = purchases.user_id
    and care_notifications.shoe_id = purchases.shoe_id
    and care_notifications.purchased_at = purchases.purchased_at
group by care_notifications.user_id, care_notifications.shoe_id, care_notifications.purchased_at
having
    min(care_notifications.reminder_number) <> 1
    or max(care_notifications.reminder_number) <> count(*)
    or count(purchases.user_id) <> count(*)
