-- message_outcome_rates: one row per (kind), none of them null.
select kind, count(*) as n_rows
from message_outcome_rates
group by kind
having count(*) > 1 or kind is null
