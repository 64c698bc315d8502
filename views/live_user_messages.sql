-- one row per message to a user (message_id): the current care reminder (due or overdue) of each pair in
-- use, and each owned shoe whose replacement window is open, with its replacement suggestions in the text.
-- Texts are rendered here (one template per kind), as plain text: names and care texts are user-supplied.
-- Meant to be read filtered by user_id (an account page: `where user_id = ?`): every table is then read by its
-- key for that customer and the shoes they own (tests/test_serving.py checks the plan).

create view live_user_messages as

-- the views are read where they are used, not through an import CTE each: PostgreSQL inlines a CTE by copying
-- it (with the views it names) into its reader and walking the whole query once per CTE
with settings_in_force as (
    select reference_date, currency from current_settings
),

-- only the pair a user has now, before its end of life, and only its latest reminder fallen due
-- (an older one is superseded by it)
current_reminders as (
    select
        care_notifications.user_id,
        care_notifications.shoe_id,
        care_notifications.purchased_on,
        care_notifications.purchase_number,
        care_notifications.reminder_number,
        care_notifications.due_on,
        care_notifications.name,
        care_notifications.title,
        care_notifications.instructions,
        care_notifications.status,
        row_number() over (
            partition by care_notifications.user_id, care_notifications.shoe_id, care_notifications.purchased_at
            order by care_notifications.reminder_number desc
        ) as recency
    from care_notifications
    cross join settings_in_force
    where
        care_notifications.status in ('due', 'overdue')
        and care_notifications.is_latest_purchase
        and settings_in_force.reference_date < care_notifications.end_of_life_on
),

-- each suggestion with its price in the shop's currency: "Pace by Peak (99.00 EUR)"
suggestion_lists as (
    select
        live_replacement_suggestions.user_id,
        live_replacement_suggestions.shoe_id,
        string_agg(
            live_replacement_suggestions.suggested_name || ' by ' || live_replacement_suggestions.brand
            || ' (' || cast(live_replacement_suggestions.price as text) || ' ' || settings_in_force.currency || ')',
            ', ' order by live_replacement_suggestions.rank
        ) as suggestion_list
    from live_replacement_suggestions
    cross join settings_in_force
    group by live_replacement_suggestions.user_id, live_replacement_suggestions.shoe_id
),

care_messages as (
    select
        user_id,
        'care-' || cast(user_id as text) || '-' || cast(shoe_id as text)
        || '-' || cast(purchase_number as text) || '-' || cast(reminder_number as text) as message_id,
        'care_reminder' as kind,
        due_on as message_on,
        status,
        shoe_id,
        title,
        'Your ' || name || ' (bought ' || {{ iso_date('purchased_on') }} || ') '
        || case when status = 'overdue' then 'was' else 'is' end
        || ' due for care on ' || {{ iso_date('due_on') }} || '. ' || instructions as body
    from current_reminders
    where recency = 1
),

replacement_messages as (
    select
        windows.user_id,
        'replacement-' || cast(windows.user_id as text) || '-' || cast(windows.shoe_id as text)
        || '-' || cast(windows.purchase_number as text) as message_id,
        'replacement' as kind,
        case
            when windows.status = 'past_end_of_life' then windows.end_of_life_on
            else windows.window_opens_on
        end as message_on,
        windows.status,
        windows.shoe_id,
        case
            when windows.status = 'past_end_of_life' then 'Time to replace your ' || windows.name
            else 'Your ' || windows.name || ' is nearing the end of its life'
        end as title,
        'You bought your ' || windows.name || ' on ' || {{ iso_date('windows.purchased_on') }}
        || '. At your usage a pair lasts about ' || cast(windows.personal_lifespan_days as text) || ' days, so it '
        || case when windows.status = 'past_end_of_life' then 'was' else 'will be' end
        || ' worn out around ' || {{ iso_date('windows.end_of_life_on') }} || '.'
        || coalesce(' You might like: ' || suggestion_lists.suggestion_list || '.', '') as body
    from replacement_windows as windows
    left join suggestion_lists
        on windows.user_id = suggestion_lists.user_id
            and windows.shoe_id = suggestion_lists.shoe_id
    where windows.status in ('nearing_end_of_life', 'past_end_of_life')
)

select user_id, message_id, kind, message_on, status, shoe_id, title, body from care_messages
union all
select user_id, message_id, kind, message_on, status, shoe_id, title, body from replacement_messages;

comment on view live_user_messages is 'One row per message to a user: the current care reminder of each pair in use (due or overdue) and each open replacement window, rendered as plain text.';
comment on column live_user_messages.user_id is 'The customer; every column means what it means in user_messages, which reads this view.';

{{ read_model_bulk('user_messages') }}
