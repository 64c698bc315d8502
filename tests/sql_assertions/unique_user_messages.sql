-- user_messages: one row per (message_id), none of them null.
select message_id, count(*) as n_rows
from user_messages
group by message_id
having count(*) > 1 or message_id is null
