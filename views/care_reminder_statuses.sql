-- one row per (user_id, shoe_id, purchased_at, reminder_number, status): the days a care reminder of a pair
-- (care_notifications) is upcoming, due, overdue or superseded (a later reminder has fallen due), from
-- valid_from_on up to valid_until_on (exclusive), ended at the pair's end of life or its repurchase.

create view care_reminder_statuses as

with reminders_source as (
    select
        user_id, shoe_id, purchased_at, purchased_on, purchase_number, reminder_number, due_on, name, title,
        instructions, end_of_life_on
    from care_notifications
),

purchases_source as (
    select user_id, shoe_id, purchased_at, next_purchase_on from purchases
),

settings_in_force as (
    select due_soon_days from current_settings
),

-- a reminder is due from due_soon_days before its date; it is superseded once the next one is due, and
-- every reminder of the pair stops when it is worn out or bought again (as user_messages tells it)
bounds as (
    select
        reminders_source.*,
        reminders_source.due_on - settings_in_force.due_soon_days as due_from_on,
        lead(reminders_source.due_on) over (
            partition by reminders_source.user_id, reminders_source.shoe_id, reminders_source.purchased_at
            order by reminders_source.reminder_number
        ) - settings_in_force.due_soon_days as superseded_on,
        case
            when purchases_source.next_purchase_on is null then reminders_source.end_of_life_on
            else least(purchases_source.next_purchase_on, reminders_source.end_of_life_on)
        end as stops_on
    from reminders_source
    inner join purchases_source
        on reminders_source.user_id = purchases_source.user_id
            and reminders_source.shoe_id = purchases_source.shoe_id
            and reminders_source.purchased_at = purchases_source.purchased_at
    cross join settings_in_force
),

statuses (status) as (
    values ('upcoming'), ('due'), ('overdue'), ('superseded')
),

-- each status from its first day (a cross join, so that bounds is read once: on PostgreSQL a CTE read more
-- than once is materialised whole, and a filter on user_id no longer reaches it)
periods as (
    select
        bounds.*,
        statuses.status,
        case statuses.status
            when 'upcoming' then bounds.purchased_on
            when 'due' then bounds.due_from_on
            when 'overdue' then bounds.due_on + 1
            else bounds.superseded_on
        end as starts_on,
        case statuses.status
            when 'upcoming' then bounds.due_from_on
            when 'due' then bounds.due_on + 1
        end as ends_on
    from bounds
    cross join statuses
    where statuses.status <> 'superseded' or bounds.superseded_on is not null
),

-- not before the purchase; upcoming, due and overdue end where a later reminder takes over; all at the stop
cut as (
    select
        periods.*,
        greatest(periods.starts_on, periods.purchased_on) as valid_from_on,
        least(
            coalesce(periods.ends_on, periods.stops_on),
            case when periods.status = 'superseded' then periods.stops_on else coalesce(periods.superseded_on, periods.stops_on) end,
            periods.stops_on
        ) as valid_until_on
    from periods
)

select
    user_id,
    shoe_id,
    purchased_at,
    purchased_on,
    purchase_number,
    reminder_number,
    due_on,
    name,
    title,
    instructions,
    status,
    valid_from_on,
    valid_until_on
from cut
where valid_from_on < valid_until_on;

comment on view care_reminder_statuses is 'One row per care reminder and status: the dates it holds (valid_from_on to valid_until_on, exclusive), so the reminders of any date are one lookup; at the reference date its due and overdue rows are the care messages of user_messages.';
comment on column care_reminder_statuses.status is 'upcoming; due from due_soon_days before due_on through due_on; overdue after; superseded once the next reminder of the pair is due.';
comment on column care_reminder_statuses.valid_from_on is 'First day the reminder has this status (not before the purchase).';
comment on column care_reminder_statuses.valid_until_on is 'First day it no longer has it: the next status, the next reminder taking over, or the pair worn out or bought again.';
