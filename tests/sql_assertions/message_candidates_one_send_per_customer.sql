-- message_candidates: at most one message to send per customer, none expired, none without a channel,
-- and none for a customer who already has one in flight.
select user_id, 'more than one message to send' as problem
from message_candidates
where decision = 'send'
group by user_id
having count(*) > 1
union all
select message_candidates.user_id, 'an expired message to send'
from message_candidates
cross join current_settings
where
    message_candidates.decision = 'send'
    and message_candidates.due_on < current_settings.reference_date - current_settings.message_expiry_days
union all
select user_id, 'a message to send without a channel'
from message_candidates
where decision = 'send' and (channel is null or address is null)
union all
select message_candidates.user_id, 'a message to send beside one in flight'
from message_candidates
inner join notifications
    on message_candidates.user_id = notifications.user_id
    and notifications.status in ('queued', 'failed')
where message_candidates.decision = 'send'
