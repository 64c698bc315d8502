-- The tables of the shoe recommender, the same DDL on PostgreSQL and DuckDB.
-- Creating them twice is harmless (`if not exists` everywhere); defaults live in defaults.sql.
-- Timestamps are stored as UTC in `timestamp` columns (no time zone), on both engines.

------------------------------------------------------------------------------------------------
-- Settings a retailer tunes without touching code
------------------------------------------------------------------------------------------------

create table if not exists interaction_types (
    interaction_type text primary key,
    weight double precision not null check (weight >= 0),
    funnel_step integer not null check (funnel_step >= 1),
    description text
);
comment on table interaction_types is 'Lookup: the kinds of interaction and how much each counts in the interaction matrix.';
comment on column interaction_types.interaction_type is 'view, add_to_wishlist or purchase (the contract); a new kind is a new row.';
comment on column interaction_types.weight is 'Weight of one event of this kind in interaction_matrix.strength (defaults 1, 3, 5).';
comment on column interaction_types.funnel_step is 'Order in the funnel: 1 view, 2 wishlist, 3 purchase.';

create table if not exists settings (
    settings_id integer primary key check (settings_id = 1),
    reference_date date,
    half_life_days double precision not null check (half_life_days > 0),
    replacement_window_share double precision not null
        check (replacement_window_share > 0 and replacement_window_share <= 1),
    due_soon_days integer not null check (due_soon_days >= 0),
    replacement_similarity_weight double precision not null default 0.7
        check (replacement_similarity_weight between 0 and 1),
    message_expiry_days integer not null default 14 check (message_expiry_days >= 0),
    marketing_cap_per_7_days integer not null default 2 check (marketing_cap_per_7_days >= 0),
    quiet_hours_start_hour integer not null default 21 check (quiet_hours_start_hour between 0 and 23),
    quiet_hours_end_hour integer not null default 8 check (quiet_hours_end_hour between 0 and 23),
    default_time_zone text not null default 'UTC' check (default_time_zone <> ''),
    max_send_attempts integer not null default 5 check (max_send_attempts >= 1),
    outcome_window_days integer not null default 30 check (outcome_window_days >= 1),
    unsubscribe_url text not null default 'https://shop.example.com/unsubscribe'
);
comment on table settings is 'Single row of global settings that the views read.';
comment on column settings.reference_date is 'The date statuses are computed against; null means today (current_date).';
comment on column settings.half_life_days is 'Half-life, in days, of an interaction''s weight in interaction_matrix.strength.';
comment on column settings.replacement_window_share is 'Share of a shoe''s personal lifespan at which its replacement window opens (0.85).';
comment on column settings.due_soon_days is 'A care reminder is due when its date is at most this many days after the reference date.';
comment on column settings.replacement_similarity_weight is 'Weight of shoe similarity in replacement_suggestions.suggestion_score; the rest goes to the user''s own score for the candidate (0.7).';

create table if not exists care_schedules (
    material text primary key check (material <> ''),
    first_reminder_days integer not null check (first_reminder_days > 0),
    repeat_every_days integer not null check (repeat_every_days > 0),
    reminder_title text not null check (reminder_title <> ''),
    reminder_text text
);
comment on table care_schedules is 'Care reminder schedule per shoe material; the row ''*'' serves every material without a row of its own.';
comment on column care_schedules.material is 'A shoe material, or ''*'' for the default schedule.';
comment on column care_schedules.first_reminder_days is 'Days from purchase to the first care reminder.';
comment on column care_schedules.repeat_every_days is 'Days between later reminders (until the shoe''s end of life).';
comment on column care_schedules.reminder_text is 'Reminder text; null means the shoe''s own care_instructions.';

create table if not exists wear_factors (
    primary_usage text primary key check (primary_usage <> ''),
    wear_factor double precision not null check (wear_factor > 0)
);
comment on table wear_factors is 'How fast a user''s primary usage wears shoes out; the row ''*'' serves every usage without a row of its own.';
comment on column wear_factors.wear_factor is 'Multiplies the catalogue lifespan: personal lifespan = lifespan_days / wear_factor (1.0 = as rated; 0.6 lasts longer).';

create table if not exists age_bands (
    age_band text primary key check (age_band <> ''),
    min_age integer not null,
    max_age integer not null,
    check (min_age <= max_age)
);
comment on table age_bands is 'Age bands used to build user segments (usage x gender x age band); users without an age, or outside every band, are ''unknown''.';
comment on column age_bands.min_age is 'Youngest age in the band (inclusive).';
comment on column age_bands.max_age is 'Oldest age in the band (inclusive).';

------------------------------------------------------------------------------------------------
-- The retailer's data (the three CSV files of the contract)
------------------------------------------------------------------------------------------------

create table if not exists users (
    user_id bigint primary key,
    age integer check (age between 0 and 120),
    gender text check (gender <> ''),
    primary_usage text not null check (primary_usage <> '')
);
comment on table users is 'Customers, from users.csv.';
comment on column users.user_id is 'The retailer''s customer id.';
comment on column users.age is 'Age in years (0..120), null when unknown.';
comment on column users.gender is 'Open vocabulary, null when unknown.';
comment on column users.primary_usage is 'What the customer mostly wears shoes for (running, walking, casual, ...); open vocabulary.';

create table if not exists shoes (
    shoe_id bigint primary key,
    name text not null check (name <> ''),
    brand text not null check (brand <> ''),
    type text not null check (type <> ''),
    material text not null check (material <> ''),
    color text not null check (color <> ''),
    price numeric(12, 2) not null check (price >= 0),
    care_instructions text,
    lifespan_days integer not null check (lifespan_days > 0)
);
comment on table shoes is 'The catalogue, from shoes.csv.';
comment on column shoes.shoe_id is 'The retailer''s article id.';
comment on column shoes.type is 'Kind of shoe (running, hiking, sneaker, ...); open vocabulary.';
comment on column shoes.price is 'Price in the shop''s currency, two decimals.';
comment on column shoes.care_instructions is 'Free text from the catalogue, stored verbatim; null when empty.';
comment on column shoes.lifespan_days is 'Expected life in days for a wearer with wear factor 1.0.';
-- the assortment, added after the first release: databases built before get it here
alter table shoes add column if not exists availability text;
alter table shoes add column if not exists discontinued_on date;
comment on column shoes.availability is 'Google Merchant Center availability: in_stock, out_of_stock, preorder or backorder; null = in_stock. Only out_of_stock stops a shoe being shown.';
comment on column shoes.discontinued_on is 'The last day the shoe is sold; after it (reference date later) it is never shown. Null = not discontinued.';

-- how many recommendations a list shows (of the run's top_n, after the assortment and the rules)
alter table settings add column if not exists recommendations_shown integer default 10;
comment on column settings.recommendations_shown is 'Shoes shown per customer and per segment list (10): the top of what the run stored (top_n, 50) once unavailable, excluded and capped shoes are gone.';

-- the currency prices are in (shoes.price is a plain number), shown beside every price
alter table settings add column if not exists currency text default 'EUR';
comment on column settings.currency is 'The shop''s currency, shown with every price (an ISO 4217 code such as EUR, USD, JPY; default EUR).';

-- what the retailer puts in or out of the lists, applied by the views over the stored scores
create table if not exists merchandising_rules (
    rule_id integer primary key,
    action text not null check (action in ('exclude', 'boost', 'cap')),
    attribute text not null check (attribute in ('brand', 'type')),
    value text check (value <> ''),
    boost_factor double precision check (boost_factor > 0),
    max_shoes integer check (max_shoes >= 1),
    is_active boolean not null default true,
    note text,
    check ((action = 'boost') = (boost_factor is not null)),
    check ((action = 'cap') = (max_shoes is not null)),
    check (action = 'cap' or value is not null)
);
comment on table merchandising_rules is 'Merchandising rules the retailer edits: exclude a brand or type, boost one (a factor on its scores), cap the shoes of one type or brand in a customer''s top 10. Applied by the views at once, no rescoring.';
comment on column merchandising_rules.action is 'exclude (never shown), boost (score x boost_factor before ranking) or cap (at most max_shoes per value in a list).';
comment on column merchandising_rules.attribute is 'brand or type: the shoe attribute the rule matches.';
comment on column merchandising_rules.value is 'The brand or type matched exactly; for a cap, null = every value of the attribute.';
comment on column merchandising_rules.boost_factor is 'boost only: multiplies the score (> 1 lifts, < 1 lowers); several boosts on a shoe multiply.';
comment on column merchandising_rules.max_shoes is 'cap only: at most this many shoes of one value in a list (the smallest of the caps that match).';
comment on column merchandising_rules.is_active is 'False keeps the rule on file without applying it.';

create table if not exists interactions (
    user_id bigint not null {{ merge_enforced_reference('users (user_id)') }},
    shoe_id bigint not null {{ merge_enforced_reference('shoes (shoe_id)') }},
    interaction_type text not null {{ merge_enforced_reference('interaction_types (interaction_type)') }},
    occurred_at timestamp not null check (occurred_at >= timestamp '1900-01-01 00:00:00')
    {{ merge_enforced_key('user_id, shoe_id, interaction_type, occurred_at') }}
);
comment on table interactions is 'Events from interactions.csv; an identical event loaded twice is stored once (the key: a primary key on PostgreSQL, which also serves as the index on user_id; kept by the loader''s merge on DuckDB).';
comment on column interactions.user_id is 'Who (users.user_id).';
comment on column interactions.shoe_id is 'Which shoe (shoes.shoe_id).';
comment on column interactions.interaction_type is 'What happened (interaction_types).';
comment on column interactions.occurred_at is 'When, in UTC.';

{{ secondary_index('interactions_shoe_id_idx', 'interactions', 'shoe_id') }}
{{ secondary_index('interactions_occurred_at_idx', 'interactions', 'occurred_at') }}
{{ secondary_index('interactions_type_idx', 'interactions', 'interaction_type') }}

------------------------------------------------------------------------------------------------
-- Loading
------------------------------------------------------------------------------------------------

create table if not exists load_runs (
    load_id bigint primary key,
    started_at timestamp not null,
    finished_at timestamp not null,
    data_dir text not null,
    is_skip_invalid boolean not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_rejected bigint not null
);
comment on table load_runs is 'One row per committed load (python -m scripts.load).';
comment on column load_runs.rows_loaded is 'Rows inserted or changed; rows identical to what was stored count as read, not loaded.';

create table if not exists load_rejects (
    load_id bigint not null references load_runs (load_id),
    file_name text not null,
    line_number bigint not null,
    column_name text,
    raw_value text,
    reason text not null
);
comment on table load_rejects is 'Rows refused by a --skip-invalid load, each with where it was and why.';
comment on column load_rejects.line_number is 'Line in the file where the rejected record starts (the header is line 1).';
comment on column load_rejects.column_name is 'The offending column, null when the whole row is wrong.';
comment on column load_rejects.raw_value is 'The offending value as read (verbatim).';

create index if not exists load_rejects_load_id_idx on load_rejects (load_id);

------------------------------------------------------------------------------------------------
-- What the scoring step writes back (keyed by run; only complete runs are visible in the views)
------------------------------------------------------------------------------------------------

create table if not exists model_runs (
    run_id bigint primary key,
    status text not null check (status in ('running', 'complete', 'failed')),
    started_at timestamp not null,
    finished_at timestamp,
    reference_date date,
    parameters text not null,
    n_users bigint,
    n_shoes bigint,
    n_interactions bigint,
    n_recommendations bigint,
    timings text,
    error text
);
comment on table model_runs is 'One row per scoring run (python -m scripts.score); only status complete is ever shown.';
comment on column model_runs.status is 'running while it writes, complete once its scores are published (atomically), failed otherwise.';
comment on column model_runs.parameters is 'Every parameter of the run, as JSON.';
comment on column model_runs.timings is 'Seconds per stage, as JSON.';

create index if not exists model_runs_status_idx on model_runs (status);

-- The three score tables carry no foreign keys to users/shoes: they are bulk-written (millions of
-- rows) and checked by the data tests instead; the views join them to users and shoes. Their keys
-- are unique indexes on PostgreSQL only (see score_table_key in macros.sql).
create table if not exists recommendations (
    run_id bigint not null,
    user_id bigint not null,
    rank integer not null check (rank >= 1),
    shoe_id bigint not null,
    score double precision not null,
    cf_score double precision,
    content_score double precision,
    cf_weight double precision check (cf_weight between 0 and 1),
    reason_shoe_id bigint
);
{{ score_table_key('recommendations', 'run_id, user_id, rank') }}
-- added after the first release: databases built before get it here
alter table recommendations add column if not exists popularity_share double precision;
comment on table recommendations is 'Top-N shoes per user and scoring run.';
comment on column recommendations.score is 'Hybrid score: cf_weight * cf_score + (1 - cf_weight) * content_score, both on a 0..1 per-user scale.';
comment on column recommendations.cf_score is 'Collaborative (PureSVD, EASE, item-kNN blend) part, scaled 0..1 per user; null for a user with no history (no CF part).';
comment on column recommendations.content_score is 'Content (TF-IDF) part, scaled 0..1 per user; for a user with no history, segment popularity and content.';
comment on column recommendations.cf_weight is 'Share of the blend given to behaviour for this user: n / (n + k), n = the shoes they interacted with.';
comment on column recommendations.popularity_share is 'Share of the score that comes from the segment''s popularity (1 for a user with no history), 0..1.';
comment on column recommendations.reason_shoe_id is 'The shoe in the user''s history that most explains this one; null when it comes from their segment.';

create table if not exists shoe_similarities (
    run_id bigint not null,
    shoe_id bigint not null,
    rank integer not null check (rank >= 1),
    similar_shoe_id bigint not null,
    similarity double precision not null,
    content_similarity double precision,
    cf_similarity double precision
);
{{ score_table_key('shoe_similarities', 'run_id, shoe_id, rank') }}
comment on table shoe_similarities is 'Top similar shoes per shoe and scoring run: TF-IDF cosine blended with SVD item-factor cosine.';

create table if not exists segment_recommendations (
    run_id bigint not null,
    primary_usage text not null,
    gender text not null,
    age_band text not null,
    rank integer not null check (rank >= 1),
    shoe_id bigint not null,
    score double precision not null
);
{{ score_table_key('segment_recommendations', 'run_id, primary_usage, gender, age_band, rank') }}
comment on table segment_recommendations is 'Top-N shoes for a brand-new customer of each segment (usage x gender x age band), per scoring run.';
comment on column segment_recommendations.gender is 'Gender, or ''unknown''.';
comment on column segment_recommendations.age_band is 'age_bands.age_band, or ''unknown''.';

-- The state of a run's fitted model that a refresh (python -m scripts.score --refresh) folds new
-- customers into without refitting: per shoe its SVD factors, its row of the blended CF operator and
-- its TF-IDF vector; per segment its cold-start scores. Arrays are little-endian float32 (terms: int32)
-- in one bytea per row (blob on DuckDB): 5,000 shoes with an operator are 5,000 rows of 20 kB.
create table if not exists model_run_shoes (
    run_id bigint not null,
    shoe_id bigint not null,
    position integer not null check (position >= 0),
    item_factors bytea not null,
    cf_operator bytea,
    content_terms bytea not null,
    content_weights bytea not null
);
{{ score_table_key('model_run_shoes', 'run_id, position') }}
comment on table model_run_shoes is 'Per run and shoe: the fitted model''s item state (a refresh rebuilds the model from it).';
comment on column model_run_shoes.position is 'The shoe''s column in the run''s matrices (0-based, shoe_id order).';
comment on column model_run_shoes.item_factors is 'The shoe''s row of Q (PureSVD item factors), float32 x k.';
comment on column model_run_shoes.cf_operator is 'The shoe''s row of the blended CF operator C (EASE / item-kNN with PureSVD), float32 x shoes; null when PureSVD alone (C = Q Q^T).';
comment on column model_run_shoes.content_terms is 'Term indices (int32) of the shoe''s TF-IDF vector.';
comment on column model_run_shoes.content_weights is 'Weights (float32) of those terms.';

create table if not exists model_run_segments (
    run_id bigint not null,
    primary_usage text not null,
    gender text not null,
    age_band text not null,
    position integer not null check (position >= 0),
    scores bytea not null
);
{{ score_table_key('model_run_segments', 'run_id, position') }}
comment on table model_run_segments is 'Per run and segment: the cold-start score of every shoe (float32 x shoes, in model_run_shoes.position order).';

create table if not exists model_run_users (
    run_id bigint not null,
    refresh_id bigint not null,
    user_id bigint not null,
    n_events bigint not null
);
{{ score_table_key('model_run_users', 'run_id, refresh_id, user_id') }}
comment on table model_run_users is 'Per run (refresh_id 0) or refresh and customer scored: how many interaction events they had; a refresh scores the customers whose count changed since, or who are new.';

create table if not exists model_refreshes (
    refresh_id bigint primary key,
    run_id bigint not null,
    status text not null check (status in ('running', 'complete', 'failed')),
    started_at timestamp not null,
    finished_at timestamp,
    n_users bigint,
    n_recommendations bigint,
    timings text,
    error text
);
comment on table model_refreshes is 'One row per refresh (python -m scripts.score --refresh): new customers and new events folded into a run''s model without refitting; only complete refreshes of the latest run are shown.';
comment on column model_refreshes.run_id is 'The complete run whose fitted model the refresh used.';

create table if not exists refreshed_recommendations (
    refresh_id bigint not null,
    run_id bigint not null,
    user_id bigint not null,
    rank integer not null check (rank >= 1),
    shoe_id bigint not null,
    score double precision not null,
    cf_score double precision,
    content_score double precision,
    cf_weight double precision check (cf_weight between 0 and 1),
    popularity_share double precision,
    reason_shoe_id bigint
);
{{ score_table_key('refreshed_recommendations', 'refresh_id, user_id, rank') }}
comment on table refreshed_recommendations is 'Top-N per refreshed customer, as recommendations; a customer''s newest complete refresh of the latest run replaces their run rows in user_recommendations.';

------------------------------------------------------------------------------------------------
-- Offline evaluation (python -m scripts.evaluate) and the parameters it tunes
------------------------------------------------------------------------------------------------

create table if not exists evaluation_runs (
    evaluation_id bigint primary key,
    started_at timestamp not null,
    finished_at timestamp not null,
    cutoff_date date not null,
    test_share double precision,
    relevant_types text not null,
    parameters text not null,
    tuning text,
    n_train_interactions bigint not null,
    n_test_interactions bigint not null
);
-- added after the first release: databases built before get them here
alter table evaluation_runs add column if not exists protocol text;
alter table evaluation_runs add column if not exists cold_share double precision;
alter table evaluation_runs add column if not exists n_validation_warm_users bigint;
alter table evaluation_runs add column if not exists n_validation_cold_users bigint;
comment on table evaluation_runs is 'One row per offline evaluation: the time split and the parameters evaluated.';
comment on column evaluation_runs.cutoff_date is 'Last day of training; the test period starts the day after.';
comment on column evaluation_runs.relevant_types is 'Interaction types that count as relevant in the test period, comma-separated.';
comment on column evaluation_runs.parameters is 'The hybrid''s parameters evaluated (after tuning), as JSON.';
comment on column evaluation_runs.tuning is 'Every setting tried on the validation split with its NDCG, as JSON.';
comment on column evaluation_runs.protocol is 'user: each customer''s last events held out and a share of customers held out entirely; time: one global cut-off.';
comment on column evaluation_runs.n_validation_warm_users is 'Warm customers the tuning was measured on (fewer than 200: the defaults were kept).';
comment on column evaluation_runs.n_validation_cold_users is 'Customers the cold-start tuning held out as new (fewer than 200: the defaults were kept).';

create table if not exists evaluations (
    evaluation_id bigint not null references evaluation_runs (evaluation_id),
    model text not null,
    user_group text not null check (user_group in ('warm', 'cold', 'all')),
    k integer not null check (k >= 1),
    metric text not null,
    value double precision,
    n_users bigint not null,
    primary key (evaluation_id, model, user_group, k, metric)
);
alter table evaluations add column if not exists ci_low double precision;
alter table evaluations add column if not exists ci_high double precision;
comment on table evaluations is 'One row per evaluation x model x user group x k x metric.';
comment on column evaluations.model is 'popularity, segment_popularity, svd, ease, knn, cf, content, hybrid, or a peer (peer_*).';
comment on column evaluations.ci_low is '95% bootstrap interval of the mean over customers: lower end (null for coverage).';
comment on column evaluations.ci_high is '95% bootstrap interval of the mean over customers: upper end.';
comment on column evaluations.user_group is 'warm (had training interactions), cold (had none) or all.';
comment on column evaluations.value is 'The metric''s mean over the group''s users (coverage and cold_item_share: over their lists); null when undefined.';

create table if not exists tuned_parameters (
    parameter text primary key,
    value text not null,
    evaluation_id bigint references evaluation_runs (evaluation_id),
    tuned_at timestamp not null
);
comment on table tuned_parameters is 'Model parameters chosen by the last tuning; scripts.score uses them as its defaults (a command-line value still wins).';
comment on column tuned_parameters.value is 'The value, as JSON.';

------------------------------------------------------------------------------------------------
-- After-sale messages: consent, templates and the outbox (python -m scripts.notify)
------------------------------------------------------------------------------------------------

-- settings of the daily job, added after the first release: databases built before get them here
-- (DuckDB adds no NOT NULL column to an existing table; current_settings falls back to the defaults)
alter table settings add column if not exists message_expiry_days integer default 14;
alter table settings add column if not exists marketing_cap_per_7_days integer default 2;
alter table settings add column if not exists quiet_hours_start_hour integer default 21;
alter table settings add column if not exists quiet_hours_end_hour integer default 8;
alter table settings add column if not exists default_time_zone text default 'UTC';
alter table settings add column if not exists max_send_attempts integer default 5;
alter table settings add column if not exists outcome_window_days integer default 30;
alter table settings add column if not exists unsubscribe_url text default 'https://shop.example.com/unsubscribe';
comment on column settings.message_expiry_days is 'A message not sent within this many days after its due date is dropped (status expired) (14).';
comment on column settings.marketing_cap_per_7_days is 'At most this many marketing messages per customer in any 7 days, the reference day included (2).';
comment on column settings.quiet_hours_start_hour is 'Local hour (0..23, customer''s time zone) from which nothing is sent (21).';
comment on column settings.quiet_hours_end_hour is 'Local hour until which nothing is sent (8); start > end spans midnight, start = end means none.';
comment on column settings.default_time_zone is 'IANA time zone of a customer whose contacts give none (UTC).';
comment on column settings.max_send_attempts is 'Attempts (runs) before a failing message stays failed (5).';
comment on column settings.outcome_window_days is 'Days after a message in which a purchase counts as its outcome (30).';
comment on column settings.unsubscribe_url is 'Base of the one-click unsubscribe link (RFC 8058); the token is appended as ?token=...';

create table if not exists message_kinds (
    kind text primary key check (kind <> ''),
    purpose text not null check (purpose in ('marketing', 'transactional')),
    priority integer not null
);
comment on table message_kinds is 'Lookup: the kinds of after-sale message, their consent purpose and priority (lower goes first on a day).';
comment on column message_kinds.purpose is 'marketing (needs an opt-in on the channel, counts against the cap) or transactional (needs an address only).';
comment on column message_kinds.priority is 'Order among a customer''s messages due on one day: 1 (replacement) before 2 (care_reminder).';

create table if not exists channels (
    channel text primary key check (channel <> ''),
    priority integer not null
);
comment on table channels is 'Lookup: the channels a message can go out on; a customer reachable on several gets the lowest priority.';

create table if not exists message_templates (
    kind text not null check (kind <> ''),
    channel text not null check (channel <> ''),
    subject_template text not null,
    body_template text not null,
    updated_at timestamp,
    primary key (kind, channel)
);
comment on table message_templates is 'jinja2 templates per message kind and channel, edited by the retailer; rendered in a sandbox (jinja2.sandbox), as plain text.';
comment on column message_templates.subject_template is 'Subject (email) or first line; variables: see message_candidates (name, title, due_on, ...), suggestions, unsubscribe_url.';
comment on column message_templates.body_template is 'Body; the same variables as the subject.';

-- every preference ever received, never updated: the latest row per (user, channel, purpose) is in force
create table if not exists contact_preferences (
    user_id bigint not null,
    channel text not null check (channel <> ''),
    purpose text not null check (purpose in ('marketing', 'transactional')),
    address text,
    is_opted_in boolean not null,
    time_zone text,
    updated_at timestamp not null,
    source text not null,
    recorded_at timestamp not null,
    primary key (user_id, channel, purpose, updated_at)
);
comment on table contact_preferences is 'History of consent per customer, channel and purpose: rows from contacts.csv and one-click unsubscribes; the latest updated_at wins.';
comment on column contact_preferences.address is 'Email address, phone number or device token; null when none is known.';
comment on column contact_preferences.is_opted_in is 'True: the customer agreed to messages of this purpose on this channel.';
comment on column contact_preferences.time_zone is 'IANA time zone of the customer (quiet hours), null: settings.default_time_zone.';
comment on column contact_preferences.updated_at is 'When the customer gave or withdrew consent (UTC).';
comment on column contact_preferences.source is 'contacts.csv or unsubscribe (a one-click unsubscribe token).';

create table if not exists unsubscribe_tokens (
    token text primary key,
    user_id bigint not null,
    channel text not null,
    purpose text not null,
    created_at timestamp not null,
    used_at timestamp
);
comment on table unsubscribe_tokens is 'One-click unsubscribe tokens (RFC 8058), one per customer, channel and purpose; using one records an opt-out.';

-- the transactional outbox: one row per message ever decided, keyed by its idempotency key
create table if not exists notifications (
    idempotency_key text primary key,
    user_id bigint not null,
    kind text not null,
    purpose text not null,
    shoe_id bigint,
    purchased_on date,
    due_on date not null,
    channel text,
    address text,
    time_zone text,
    subject text,
    body text,
    unsubscribe_token text,
    status text not null check (status in ('queued', 'sent', 'failed', 'suppressed', 'expired')),
    reason text,
    attempts integer not null default 0,
    queued_on date not null,
    sent_on date,
    created_at timestamp not null,
    updated_at timestamp not null,
    sent_at timestamp,
    last_error text
);
comment on table notifications is 'The outbox: one row per after-sale message decided by python -m scripts.notify; the idempotency key makes enqueueing twice a no-op.';
comment on column notifications.idempotency_key is '<kind>:<user_id>:<shoe_id>:<purchased_on>:<due_on>; sent to a webhook as the Idempotency-Key header.';
comment on column notifications.status is 'queued (to send), sent, failed (last attempt failed; retried until settings.max_send_attempts), suppressed (no consent), expired (not sent in time).';
comment on column notifications.reason is 'Why a row is suppressed or expired (no_consent, expired); null otherwise.';
comment on column notifications.time_zone is 'The customer''s IANA time zone when queued: quiet hours are local to it.';
comment on column notifications.queued_on is 'The reference date of the run that decided the row.';
comment on column notifications.sent_on is 'The reference date of the run that sent it (outcomes count purchases after it).';
comment on column notifications.last_error is 'The error of the last failed attempt.';

create table if not exists notification_suggestions (
    idempotency_key text not null,
    rank integer not null check (rank >= 1),
    shoe_id bigint not null,
    primary key (idempotency_key, rank)
);
comment on table notification_suggestions is 'The shoes a replacement message suggested, as rendered (for its outcome).';
