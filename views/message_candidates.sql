-- one row per after-sale message due by the reference date and not yet in the outbox (idempotency_key),
-- across all customers: the latest care reminder fallen due of each pair in use, and each open
-- replacement window (its opening, then its end of life), with what the daily job does with it.
-- A pair is closed (no care, no replacement) once its owner buys another shoe of the same type on or
-- after the day its replacement window opens; buying the identical shoe again starts a new pair.
-- decision: expired (due more than message_expiry_days ago), suppressed (no_consent: no opt-in for the
-- kind's purpose on a channel with a template, or no address), deferred (frequency_cap: the customer had
-- marketing_cap_per_7_days marketing messages in the 7 days up to the reference date; daily_limit: one
-- message per customer per day, replacement before care, then the oldest due), else send.

create view message_candidates as

with settings_in_force as (
    select reference_date, message_expiry_days, marketing_cap_per_7_days, default_time_zone from current_settings
),

reminders_source as (
    select user_id, shoe_id, purchased_on, reminder_number, due_on, name, title, instructions, status, end_of_life_on
    from care_notifications
    where is_latest_purchase and days_until_due <= 0
),

pairs_source as (
    select user_id, shoe_id, purchased_on, name, type, personal_lifespan_days, end_of_life_on, window_opens_on, status
    from replacement_windows
),

purchases_source as (
    select user_id, shoe_id, type, purchased_on from purchases
),

kinds_source as (
    select kind, purpose, priority from message_kinds
),

channels_source as (
    select channel, priority from channels
),

templates_source as (
    select kind, channel from message_templates
),

preferences_source as (
    select user_id, channel, purpose, address, is_opted_in, time_zone, updated_at from contact_preferences
),

outbox_source as (
    select idempotency_key, user_id, purpose, status, queued_on, sent_on from notifications
),

-- pairs whose owner bought another shoe of the same type once the replacement window had opened
closed_pairs as (
    select distinct
        pairs_source.user_id,
        pairs_source.shoe_id
    from pairs_source
    inner join purchases_source
        on pairs_source.user_id = purchases_source.user_id
            and pairs_source.type = purchases_source.type
            and pairs_source.shoe_id <> purchases_source.shoe_id
            and pairs_source.window_opens_on <= purchases_source.purchased_on
),

open_pairs as (
    select pairs_source.*
    from pairs_source
    left join closed_pairs
        on pairs_source.user_id = closed_pairs.user_id
            and pairs_source.shoe_id = closed_pairs.shoe_id
    where closed_pairs.user_id is null
),

-- the latest reminder fallen due (by the reference date) of each open pair still before its end of life
current_reminders as (
    select
        reminders_source.*,
        row_number() over (
            partition by reminders_source.user_id, reminders_source.shoe_id
            order by reminders_source.reminder_number desc
        ) as recency
    from reminders_source
    inner join open_pairs
        on reminders_source.user_id = open_pairs.user_id
            and reminders_source.shoe_id = open_pairs.shoe_id
    cross join settings_in_force
    where settings_in_force.reference_date < reminders_source.end_of_life_on
),

care_messages as (
    select
        user_id,
        'care_reminder' as kind,
        shoe_id,
        purchased_on,
        due_on,
        status,
        name,
        title,
        instructions,
        cast(null as integer) as personal_lifespan_days,
        end_of_life_on
    from current_reminders
    where recency = 1
),

replacement_messages as (
    select
        user_id,
        'replacement' as kind,
        shoe_id,
        purchased_on,
        case when status = 'past_end_of_life' then end_of_life_on else window_opens_on end as due_on,
        status,
        name,
        case
            when status = 'past_end_of_life' then 'Time to replace your ' || name
            else 'Your ' || name || ' is nearing the end of its life'
        end as title,
        cast(null as text) as instructions,
        personal_lifespan_days,
        end_of_life_on
    from open_pairs
    where status in ('nearing_end_of_life', 'past_end_of_life')
),

due_messages as (
    select * from care_messages
    union all
    select * from replacement_messages
),

keyed as (
    select
        due_messages.*,
        due_messages.kind || ':' || cast(due_messages.user_id as text) || ':' || cast(due_messages.shoe_id as text)
        || ':' || {{ iso_date('due_messages.purchased_on') }} || ':' || {{ iso_date('due_messages.due_on') }}
            as idempotency_key,
        kinds_source.purpose,
        kinds_source.priority,
        settings_in_force.reference_date,
        settings_in_force.reference_date - due_messages.due_on as days_overdue,
        due_messages.due_on < settings_in_force.reference_date - settings_in_force.message_expiry_days
            as is_expired,
        settings_in_force.marketing_cap_per_7_days
    from due_messages
    inner join kinds_source
        on due_messages.kind = kinds_source.kind
    cross join settings_in_force
),

-- what the outbox already holds is no candidate again
new_messages as (
    select keyed.*
    from keyed
    left join outbox_source
        on keyed.idempotency_key = outbox_source.idempotency_key
    where outbox_source.idempotency_key is null
),

-- the preference in force per (user, channel, purpose): the latest received
latest_preferences as (
    select
        preferences_source.*,
        row_number() over (
            partition by preferences_source.user_id, preferences_source.channel, preferences_source.purpose
            order by preferences_source.updated_at desc
        ) as recency
    from preferences_source
),

-- marketing needs an opt-in for marketing on the channel; transactional only an address on it
reachable as (
    select
        new_messages.idempotency_key,
        latest_preferences.channel,
        latest_preferences.address,
        row_number() over (
            partition by new_messages.idempotency_key
            order by channels_source.priority, latest_preferences.channel, latest_preferences.purpose
        ) as channel_rank
    from new_messages
    inner join latest_preferences
        on new_messages.user_id = latest_preferences.user_id
            and latest_preferences.recency = 1
            and latest_preferences.address is not null
            and (
                new_messages.purpose = 'transactional'
                or new_messages.purpose = latest_preferences.purpose and latest_preferences.is_opted_in
            )
    inner join channels_source
        on latest_preferences.channel = channels_source.channel
    inner join templates_source
        on new_messages.kind = templates_source.kind
            and latest_preferences.channel = templates_source.channel
),

time_zones as (
    select
        user_id,
        time_zone,
        row_number() over (partition by user_id order by updated_at desc, channel asc, purpose asc) as recency
    from preferences_source
    where time_zone is not null
),

-- a customer with a message in flight (queued or failed) or one sent on the reference date gets no other
busy_customers as (
    select distinct outbox_source.user_id
    from outbox_source
    cross join settings_in_force
    where
        outbox_source.status in ('queued', 'failed')
        or outbox_source.status = 'sent' and outbox_source.sent_on = settings_in_force.reference_date
),

-- marketing messages queued or sent in the 7 days up to the reference date
recent_marketing as (
    select
        outbox_source.user_id,
        count(*) as message_count
    from outbox_source
    cross join settings_in_force
    where
        outbox_source.purpose = 'marketing'
        and outbox_source.status in ('queued', 'sent', 'failed')
        and coalesce(outbox_source.sent_on, outbox_source.queued_on)
        between settings_in_force.reference_date - 6 and settings_in_force.reference_date
    group by outbox_source.user_id
),

checked as (
    select
        new_messages.*,
        reachable.channel,
        reachable.address,
        coalesce(time_zones.time_zone, settings_in_force.default_time_zone) as time_zone,
        case
            when new_messages.is_expired then 'expired'
            when reachable.channel is null then 'no_consent'
            when
                new_messages.purpose = 'marketing'
                and coalesce(recent_marketing.message_count, 0) >= new_messages.marketing_cap_per_7_days
                then 'frequency_cap'
            when busy_customers.user_id is not null then 'daily_limit'
        end as blocked_by
    from new_messages
    cross join settings_in_force
    left join reachable
        on new_messages.idempotency_key = reachable.idempotency_key
            and reachable.channel_rank = 1
    left join time_zones
        on new_messages.user_id = time_zones.user_id
            and time_zones.recency = 1
    left join recent_marketing
        on new_messages.user_id = recent_marketing.user_id
    left join busy_customers
        on new_messages.user_id = busy_customers.user_id
),

-- one a day: the first by priority, then the oldest due, among the messages nothing else blocks
ranked as (
    select
        checked.*,
        row_number() over (
            partition by checked.user_id, checked.blocked_by is null
            order by checked.priority, checked.due_on, checked.idempotency_key
        ) as day_rank
    from checked
)

select
    reference_date,
    user_id,
    idempotency_key,
    kind,
    purpose,
    priority,
    shoe_id,
    purchased_on,
    due_on,
    days_overdue,
    status,
    name,
    title,
    instructions,
    personal_lifespan_days,
    end_of_life_on,
    channel,
    address,
    time_zone,
    case
        when blocked_by = 'expired' then 'expired'
        when blocked_by = 'no_consent' then 'suppressed'
        when blocked_by is not null or day_rank > 1 then 'deferred'
        else 'send'
    end as decision,
    case when blocked_by is null and day_rank > 1 then 'daily_limit' else blocked_by end as reason
from ranked;

comment on view message_candidates is 'One row per after-sale message due by the reference date and not yet in the outbox, across all customers, with the daily job''s decision (send, suppressed, expired, deferred) and its reason.';
comment on column message_candidates.idempotency_key is '<kind>:<user_id>:<shoe_id>:<purchased_on>:<due_on>: the outbox key; the same message always gets the same key.';
comment on column message_candidates.kind is 'care_reminder or replacement (message_kinds).';
comment on column message_candidates.purpose is 'marketing or transactional (message_kinds.purpose): what consent the message needs.';
comment on column message_candidates.due_on is 'Care: the reminder''s due date. Replacement: the day the window opened, or the end of life once past it.';
comment on column message_candidates.days_overdue is 'reference_date - due_on (0 on the due date).';
comment on column message_candidates.status is 'Care: due or overdue. Replacement: nearing_end_of_life or past_end_of_life.';
comment on column message_candidates.channel is 'The channel it goes out on: the customer''s consented channel with a template, lowest channels.priority first; null without one.';
comment on column message_candidates.address is 'The address on that channel (latest contact_preferences row).';
comment on column message_candidates.time_zone is 'The customer''s IANA time zone (latest contact row that has one), else settings.default_time_zone: quiet hours are local.';
comment on column message_candidates.decision is 'send (enqueue today), suppressed (recorded, never sent), expired (recorded, never sent), deferred (not recorded: tried again tomorrow).';
comment on column message_candidates.reason is 'expired, no_consent, frequency_cap or daily_limit; null when decision is send.';
