-- one row per (user_id, shoe_id, purchased_at, reminder_number): a care reminder for a pair bought up to
-- the reference date, first_reminder_days after purchase then every repeat_every_days (care_schedules of
-- the shoe's material, else the '*' row), strictly before the pair's end of life or its replacement.

create view care_notifications as

with purchases_source as (
    select
        user_id, shoe_id, purchased_at, purchased_on, purchase_number, is_latest_purchase, next_purchase_on, name,
        material, care_instructions, end_of_life_on
    from purchases
),

schedules_source as (
    select material, first_reminder_days, repeat_every_days, reminder_title, reminder_text from care_schedules
),

settings_in_force as (
    select reference_date, due_soon_days from current_settings
),

-- the material's own schedule row if it has one, else the '*' row (whole rows, not column by column)
scheduled as (
    select
        purchases_source.*,
        coalesce(
            least(purchases_source.next_purchase_on, purchases_source.end_of_life_on),
            purchases_source.end_of_life_on
        ) as stops_on,
        coalesce(material_schedule.first_reminder_days, default_schedule.first_reminder_days)
            as first_reminder_days,
        coalesce(material_schedule.repeat_every_days, default_schedule.repeat_every_days)
            as repeat_every_days,
        coalesce(material_schedule.reminder_title, default_schedule.reminder_title) as title,
        coalesce(
            case
                when material_schedule.material is not null then material_schedule.reminder_text
                else default_schedule.reminder_text
            end,
            purchases_source.care_instructions,
            'Brush off dirt, wipe the shoes with a damp cloth and let them air-dry away from direct heat.'
        ) as instructions
    from purchases_source
    left join schedules_source as material_schedule
        on purchases_source.material = material_schedule.material
    left join schedules_source as default_schedule
        on default_schedule.material = '*'
),

-- reminder k is due on purchased_on + first + (k - 1) x repeat; count those strictly before stops_on
counted as (
    select
        scheduled.*,
        cast(
            floor(
                (
                    cast(scheduled.stops_on - scheduled.purchased_on as double precision)
                    - scheduled.first_reminder_days - 1
                ) / scheduled.repeat_every_days
            )
            as integer
        ) + 1 as reminder_count
    from scheduled
    where scheduled.first_reminder_days is not null
),

reminders as (
    select
        counted.*,
        {{ series(1, 'counted.reminder_count') }} as reminder_number
    from counted
    where counted.reminder_count >= 1
),

dated as (
    select
        reminders.*,
        reminders.purchased_on
        + reminders.first_reminder_days
        + cast(cast(reminders.reminder_number - 1 as bigint) * reminders.repeat_every_days as integer) as due_on,
        settings_in_force.reference_date,
        settings_in_force.due_soon_days
    from reminders
    cross join settings_in_force
)

select
    user_id,
    shoe_id,
    purchased_at,
    purchased_on,
    purchase_number,
    is_latest_purchase,
    reminder_number,
    due_on,
    name,
    material,
    title,
    instructions,
    case
        when due_on < reference_date then 'overdue'
        when due_on <= reference_date + due_soon_days then 'due'
        else 'upcoming'
    end as status,
    due_on - reference_date as days_until_due,
    end_of_life_on
from dated
where due_on < stops_on;

comment on view care_notifications is 'One row per care reminder of a pair bought up to the reference date, from purchase until its end of life or replacement (every future reminder is listed, so the row count is bounded by lifespan / interval).';
comment on column care_notifications.purchased_at is 'The purchase the reminder belongs to; with user_id, shoe_id and reminder_number, the key.';
comment on column care_notifications.reminder_number is '1 for the first reminder after the purchase, 2 for the next, ...';
comment on column care_notifications.due_on is 'purchased_on + first_reminder_days + (reminder_number - 1) x repeat_every_days; always before end_of_life_on and before the next purchase of the same shoe.';
comment on column care_notifications.title is 'care_schedules.reminder_title of the shoe''s material, else of the ''*'' row.';
comment on column care_notifications.instructions is 'The schedule''s reminder_text, else the shoe''s own care_instructions, else a generic sentence.';
comment on column care_notifications.status is 'overdue (due_on before the reference date), due (from the reference date to reference date + due_soon_days), else upcoming.';
comment on column care_notifications.days_until_due is 'due_on - reference date (negative when overdue).';
