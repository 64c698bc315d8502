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
        check (replacement_similarity_weight between 0 and 1)
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

create table if not exists interactions (
    user_id bigint not null references users (user_id),
    shoe_id bigint not null references shoes (shoe_id),
    interaction_type text not null references interaction_types (interaction_type),
    occurred_at timestamp not null check (occurred_at >= timestamp '1900-01-01 00:00:00'),
    primary key (user_id, shoe_id, interaction_type, occurred_at)
);
comment on table interactions is 'Events from interactions.csv; an identical event loaded twice is stored once. The primary key also serves as the index on user_id.';
comment on column interactions.user_id is 'Who (users.user_id).';
comment on column interactions.shoe_id is 'Which shoe (shoes.shoe_id).';
comment on column interactions.interaction_type is 'What happened (interaction_types).';
comment on column interactions.occurred_at is 'When, in UTC.';

create index if not exists interactions_shoe_id_idx on interactions (shoe_id);
create index if not exists interactions_occurred_at_idx on interactions (occurred_at);
create index if not exists interactions_type_idx on interactions (interaction_type);

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
