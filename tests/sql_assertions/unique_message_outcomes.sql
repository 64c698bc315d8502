-- message_outcomes: one row per (idempotency_key), none of them null.
select idempotency_key, count(*) as n_rows
from message_outcomes
group by idempotency_key
having count(*) > 1 or idempotency_key is null
