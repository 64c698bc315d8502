-- one row per message to a user (message_id): their current care reminders and open replacement windows,
-- as live_user_messages computes them.
-- Meant to be read filtered by user_id (`where user_id = ?`). On PostgreSQL it reads its read model, the
-- table served_user_messages (live_user_messages's rows, written by refresh_serving() when a run or refresh is
-- published and by the daily job; sql/serving.sql), for every customer it holds fresh, and computes live the
-- customers whose inputs changed since (triggers mark them) or everyone when the read model was built for
-- another reference date or before a shared table changed: the same rows either way, at the cost of two
-- index lookups to plan and run. On DuckDB it is live_user_messages itself.

{{ read_model_objects('user_messages', 'user_id, message_id') }}

create view user_messages as

{{ read_model_select('user_messages', ['message_id', 'kind', 'message_on', 'status', 'shoe_id', 'title', 'body']) }};

comment on view user_messages is 'One row per message to a user: the current care reminder of each pair in use (due or overdue) and each open replacement window, rendered as plain text.';
comment on column user_messages.message_id is 'Stable unique key: care-<user>-<shoe>-<purchase number>-<reminder number> or replacement-<user>-<shoe>-<purchase number>.';
comment on column user_messages.kind is 'care_reminder or replacement.';
comment on column user_messages.message_on is 'Care: the due date. Replacement: the day the window opened, or the end of life once past it.';
comment on column user_messages.status is 'Care: due or overdue. Replacement: nearing_end_of_life or past_end_of_life.';
comment on column user_messages.body is 'Plain text (no markup), rendered from a template per kind; shoe names and care texts appear verbatim.';
