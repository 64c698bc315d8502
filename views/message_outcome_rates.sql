-- one row per message kind with a sent message (kind): how many were sent and the share after which the
-- customer bought a shoe (any, and a suggested one) within the outcome window (message_outcomes).

create view message_outcome_rates as

with outcomes as (
    select kind, has_purchase, has_suggested_purchase, is_window_complete from message_outcomes
)

select
    kind,
    count(*) as sent_count,
    sum(case when is_window_complete then 1 else 0 end) as complete_count,
    sum(case when has_purchase then 1 else 0 end) as purchase_count,
    sum(case when has_suggested_purchase then 1 else 0 end) as suggested_purchase_count,
    cast(sum(case when has_purchase then 1 else 0 end) as double precision) / count(*) as purchase_rate,
    cast(sum(case when has_suggested_purchase then 1 else 0 end) as double precision) / count(*)
        as suggested_purchase_rate
from outcomes
group by kind;

comment on view message_outcome_rates is 'One row per message kind: messages sent and the share followed by a purchase (any shoe, a suggested shoe) within settings.outcome_window_days.';
comment on column message_outcome_rates.sent_count is 'Messages of this kind sent.';
comment on column message_outcome_rates.complete_count is 'Of them, those whose outcome window has fully passed by the reference date.';
comment on column message_outcome_rates.purchase_rate is 'purchase_count / sent_count: a purchase of any shoe in the window.';
comment on column message_outcome_rates.suggested_purchase_rate is 'suggested_purchase_count / sent_count: a purchase of a shoe the message suggested.';
