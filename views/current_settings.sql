-- one row: the settings in force, with the reference date resolved (null in settings = today).
-- Every view that computes a status against "today" reads its date from here.

create view current_settings as

-- settings_id = 1 is the only row the table allows; saying so lets PostgreSQL plan for one row
-- (a one-row table is never auto-analysed, and unanalysed it is guessed at ~1,000 rows)
with settings_row as (
    select * from settings where settings_id = 1
)

select
    settings_id,
    coalesce(reference_date, current_date) as reference_date,
    reference_date is null as is_reference_date_today,
    half_life_days,
    replacement_window_share,
    due_soon_days,
    replacement_similarity_weight,
    -- the daily job's settings: added to older databases without NOT NULL, so their defaults here too
    coalesce(message_expiry_days, 14) as message_expiry_days,
    coalesce(marketing_cap_per_7_days, 2) as marketing_cap_per_7_days,
    coalesce(quiet_hours_start_hour, 21) as quiet_hours_start_hour,
    coalesce(quiet_hours_end_hour, 8) as quiet_hours_end_hour,
    coalesce(default_time_zone, 'UTC') as default_time_zone,
    coalesce(max_send_attempts, 5) as max_send_attempts,
    coalesce(outcome_window_days, 30) as outcome_window_days,
    coalesce(unsubscribe_url, 'https://shop.example.com/unsubscribe') as unsubscribe_url,
    -- list length, added after the first release (no NOT NULL on older databases)
    coalesce(recommendations_shown, 10) as recommendations_shown,
    -- the currency of prices, added after the first release (no NOT NULL on older databases)
    coalesce(currency, 'EUR') as currency
from settings_row;

comment on view current_settings is 'The settings in force (one row), reference_date resolved to today when unset.';
comment on column current_settings.reference_date is 'Date that statuses are computed against.';
comment on column current_settings.is_reference_date_today is 'True when settings.reference_date is null, so the date moves with the calendar.';
comment on column current_settings.replacement_similarity_weight is 'Weight of shoe similarity in a replacement suggestion''s score (the rest: the user''s own score).';
comment on column current_settings.message_expiry_days is 'A message not sent within this many days after its due date expires (settings, default 14).';
comment on column current_settings.marketing_cap_per_7_days is 'Marketing messages per customer in any 7 days, at most (settings, default 2).';
comment on column current_settings.currency is 'The currency shown with every price (settings, default EUR).';
comment on column current_settings.recommendations_shown is 'Shoes shown per list in user_recommendations and new_customer_recommendations (settings, default 10).';
