-- one row: the retailer's key figures at the reference date (catalogue, customers, activity,
-- care reminders due now, shoes nearing or reaching their end of life in the next 30 days).

create view business_overview as

with settings_in_force as (
    select reference_date from current_settings
),

customers as (
    select count(*) as user_count from users
),

catalogue as (
    select count(*) as shoe_count from shoes
),

activity as (
    select
        count(*) as interaction_count,
        coalesce(sum(case when interaction_type = 'purchase' then 1 else 0 end), 0) as purchase_count,
        count(distinct user_id) as active_user_count
    from user_history
),

reminders as (
    -- what customers are actually told: the latest due or overdue reminder of each pair in use
    select
        coalesce(sum(case when status = 'due' then 1 else 0 end), 0) as reminders_due_count,
        coalesce(sum(case when status = 'overdue' then 1 else 0 end), 0) as reminders_overdue_count
    from live_user_messages
    where kind = 'care_reminder'
),

windows as (
    select
        coalesce(sum(case when replacement_windows.status = 'nearing_end_of_life' then 1 else 0 end), 0)
            as nearing_end_of_life_count,
        coalesce(sum(case when replacement_windows.status = 'past_end_of_life' then 1 else 0 end), 0)
            as past_end_of_life_count,
        coalesce(sum(
            case
                when replacement_windows.end_of_life_on > settings_in_force.reference_date
                    and replacement_windows.end_of_life_on <= settings_in_force.reference_date + 30
                    then 1
                else 0
            end
        ), 0) as end_of_life_next_30_days_count
    from replacement_windows
    cross join settings_in_force
)

select
    settings_in_force.reference_date,
    customers.user_count,
    catalogue.shoe_count,
    activity.active_user_count,
    activity.interaction_count,
    cast(activity.purchase_count as bigint) as purchase_count,
    cast(reminders.reminders_due_count as bigint) as reminders_due_count,
    cast(reminders.reminders_overdue_count as bigint) as reminders_overdue_count,
    cast(windows.nearing_end_of_life_count as bigint) as nearing_end_of_life_count,
    cast(windows.past_end_of_life_count as bigint) as past_end_of_life_count,
    cast(windows.end_of_life_next_30_days_count as bigint) as end_of_life_next_30_days_count
from settings_in_force
cross join customers
cross join catalogue
cross join activity
cross join reminders
cross join windows;

comment on view business_overview is 'One row: key figures at the reference date (customers, catalogue, activity, care reminders due, shoes at end of life).';
comment on column business_overview.active_user_count is 'Customers with at least one interaction up to the reference date.';
comment on column business_overview.reminders_due_count is 'Care messages due from the reference date through due_soon_days later (this week by default): one per pair in use, as in user_messages.';
comment on column business_overview.reminders_overdue_count is 'Care messages overdue (the latest missed reminder of each pair in use, as in user_messages).';
comment on column business_overview.nearing_end_of_life_count is 'Owned shoes whose replacement window is open and whose end of life is still ahead (status nearing_end_of_life).';
comment on column business_overview.past_end_of_life_count is 'Owned shoes past their personal end of life (status past_end_of_life).';
comment on column business_overview.end_of_life_next_30_days_count is 'Owned shoes whose personal end of life falls in the 30 days after the reference date (not those already past it).';
