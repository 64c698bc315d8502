-- one row per message in the outbox (idempotency_key): what the daily job decided and did, with the
-- customer's address and the rendered texts; the unsubscribe token stays in the table (so the columns
-- are listed, not notifications.*).

create view outbox as

select
    idempotency_key,
    user_id,
    kind,
    purpose,
    shoe_id,
    purchased_on,
    due_on,
    channel,
    address,
    subject,
    body,
    status,
    reason,
    attempts,
    queued_on,
    sent_on,
    created_at,
    updated_at,
    sent_at,
    last_error
from notifications;

comment on view outbox is 'One row per message the daily job recorded (python -m scripts.notify): queued, sent, failed, suppressed or expired, without its unsubscribe token.';
comment on column outbox.idempotency_key is '<kind>:<user_id>:<shoe_id>:<purchased_on>:<due_on>, unique.';
comment on column outbox.status is 'queued, sent, failed (retried until settings.max_send_attempts), suppressed or expired.';
comment on column outbox.reason is 'no_consent (suppressed) or expired; null for the others.';
comment on column outbox.queued_on is 'The reference date of the run that recorded the row.';
comment on column outbox.sent_on is 'The reference date of the run that sent it.';
comment on column outbox.last_error is 'The error of the last failed attempt.';
