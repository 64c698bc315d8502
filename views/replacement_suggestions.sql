-- one row per (user_id, shoe_id, rank): up to 3 replacements for each shoe of a customer whose replacement
-- window is open, as live_replacement_suggestions computes them.
-- Meant to be read filtered by user_id (`where user_id = ?`). On PostgreSQL it reads its read model, the
-- table served_replacement_suggestions (live_replacement_suggestions's rows, written by refresh_serving() when a run or refresh is
-- published and by the daily job; sql/serving.sql), for every customer it holds fresh, and computes live the
-- customers whose inputs changed since (triggers mark them) or everyone when the read model was built for
-- another reference date or before a shared table changed: the same rows either way, at the cost of two
-- index lookups to plan and run. On DuckDB it is live_replacement_suggestions itself.

{{ read_model_objects('replacement_suggestions', 'user_id, shoe_id, rank') }}

create view replacement_suggestions as

{{ read_model_select('replacement_suggestions', ['shoe_id', 'owned_name', 'window_status', 'rank', 'suggested_shoe_id', 'suggested_name', 'brand', 'type', 'material', 'color', 'price', 'similarity', 'user_score', 'suggestion_score', 'reason', 'run_id']) }};

comment on view replacement_suggestions is 'Up to three shoes to replace each owned shoe whose replacement window is open, from the latest complete run; only shoes that can be bought now and no rule excludes (shoe_assortment), never a shoe the user has bought.';
comment on column replacement_suggestions.shoe_id is 'The owned shoe to replace (its replacement_windows row is nearing or past end of life).';
comment on column replacement_suggestions.rank is '1..3 by suggestion_score, then similarity, then suggested_shoe_id.';
comment on column replacement_suggestions.similarity is 'shoe_similarities.similarity of the owned and the suggested shoe in the run.';
comment on column replacement_suggestions.user_score is 'The user''s own recommendation score for the suggested shoe in the run; 0 when it is not in their top-N.';
comment on column replacement_suggestions.suggestion_score is 'w x similarity + (1 - w) x user_score, w = settings.replacement_similarity_weight (0.7).';
comment on column replacement_suggestions.reason is '''similar to your <owned name>: same <the attributes they share among brand, type, material, color>''.';
