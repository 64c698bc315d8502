-- care_notifications: every reminder falls after its purchase and strictly before the pair's end of life
-- and before the next purchase of the same shoe (which replaced the pair).
select
    care_notifications.user_id,
    care_notifications.shoe_id,
    care_notifications.purchased_at,
    care_notifications.reminder_number,
    care_notifications.due_on,
    purchases.end_of_life_on,
    purchases.next_purchase_on
from care_notifications
inner join purchases
    on care_notifications.user_id = purchases.user_id
    and care_notifications.shoe_id = purchases.shoe_id
    and care_notifications.purchased_at = purchases.purchased_at
where
    care_notifications.due_on <= purchases.purchased_on
    or care_notifications.due_on >= purchases.end_of_life_on
    or care_notifications.due_on >= purchases.next_purchase_on
