-- one row per sent message (idempotency_key): whether its customer bought any shoe, and a shoe it
-- suggested, in the outcome_window_days (30) after the day it was sent (sent_on + 1 .. sent_on + 30),
-- counting purchases up to the reference date; is_window_complete once the whole window has passed.

create view message_outcomes as

with sent_messages as (
    select idempotency_key, user_id, kind, shoe_id, sent_on from notifications where status = 'sent'
),

suggestions_source as (
    select idempotency_key, shoe_id from notification_suggestions
),

purchase_events as (
    select user_id, shoe_id, cast(occurred_at as date) as purchased_on
    from interactions
    where interaction_type = 'purchase'
),

settings_in_force as (
    select reference_date, outcome_window_days from current_settings
),

-- purchases in the window after each message, up to the reference date
purchases_after as (
    select
        sent_messages.idempotency_key,
        purchase_events.shoe_id,
        purchase_events.purchased_on
    from sent_messages
    cross join settings_in_force
    inner join purchase_events
        on sent_messages.user_id = purchase_events.user_id
            and sent_messages.sent_on < purchase_events.purchased_on
            and purchase_events.purchased_on <= sent_messages.sent_on + settings_in_force.outcome_window_days
            and settings_in_force.reference_date >= purchase_events.purchased_on
),

any_purchases as (
    select
        idempotency_key,
        min(purchased_on) as first_purchased_on
    from purchases_after
    group by idempotency_key
),

suggested_purchases as (
    select
        purchases_after.idempotency_key,
        min(purchases_after.purchased_on) as first_purchased_on
    from purchases_after
    inner join suggestions_source
        on purchases_after.idempotency_key = suggestions_source.idempotency_key
            and purchases_after.shoe_id = suggestions_source.shoe_id
    group by purchases_after.idempotency_key
)

select
    sent_messages.idempotency_key,
    sent_messages.user_id,
    sent_messages.kind,
    sent_messages.shoe_id,
    sent_messages.sent_on,
    any_purchases.idempotency_key is not null as has_purchase,
    suggested_purchases.idempotency_key is not null as has_suggested_purchase,
    any_purchases.first_purchased_on,
    settings_in_force.reference_date >= sent_messages.sent_on + settings_in_force.outcome_window_days
        as is_window_complete
from sent_messages
cross join settings_in_force
left join any_purchases
    on sent_messages.idempotency_key = any_purchases.idempotency_key
left join suggested_purchases
    on sent_messages.idempotency_key = suggested_purchases.idempotency_key;

comment on view message_outcomes is 'One row per sent message: did the customer buy a shoe (any, and one it suggested) in the outcome window after it.';
comment on column message_outcomes.sent_on is 'The reference date of the run that sent it; purchases count from the next day.';
comment on column message_outcomes.has_purchase is 'A purchase of any shoe from sent_on + 1 to sent_on + outcome_window_days (and up to the reference date).';
comment on column message_outcomes.has_suggested_purchase is 'Such a purchase of a shoe the message suggested (notification_suggestions; care reminders suggest none).';
comment on column message_outcomes.first_purchased_on is 'The day of the first purchase in the window, null without one.';
comment on column message_outcomes.is_window_complete is 'True once the reference date is at least sent_on + outcome_window_days (the outcome is final).';
