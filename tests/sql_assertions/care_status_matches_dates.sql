-- care_notifications: status and days_until_due agree with due_on and the settings in force.
select
    care_notifications.user_id,
    care_notifications.shoe_id,
    care_notifications.reminder_number,
    care_notifications.due_on,
    care_notifications.status,
    care_notifications.days_until_due
from care_notifications
cross join current_settings
where
    care_notifications.days_until_due <> care_notifications.due_on - current_settings.reference_date
    or (care_notifications.status = 'overdue') <> (care_notifications.days_until_due < 0)
    or (care_notifications.status = 'due')
    <> (care_notifications.days_until_due between 0 and current_settings.due_soon_days)
