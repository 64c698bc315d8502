-- one row per (user_id, rank): what a customer is shown now, as live_user_recommendations computes it (their
-- newest list, shoes that may be shown and they have not bought, the rules applied, each with its reason).
-- Meant to be read filtered by user_id (`where user_id = ?`). On PostgreSQL it reads its read model, the
-- table served_user_recommendations (live_user_recommendations's rows, written by refresh_serving() when a run or refresh is
-- published and by the daily job; sql/serving.sql), for every customer it holds fresh, and computes live the
-- customers whose inputs changed since (triggers mark them) or everyone when the read model was built for
-- another reference date or before a shared table changed: the same rows either way, at the cost of two
-- index lookups to plan and run. On DuckDB it is live_user_recommendations itself.

{{ read_model_objects('user_recommendations', 'user_id, rank') }}

create view user_recommendations as

{{ read_model_select('user_recommendations', ['rank', 'shoe_id', 'name', 'brand', 'type', 'material', 'color', 'price', 'score', 'cf_score', 'content_score', 'cf_weight', 'behaviour_share', 'content_share', 'popularity_share', 'reason', 'reason_kind', 'reason_shoe_id', 'model_rank', 'run_id', 'list_source']) }};

comment on view user_recommendations is 'One row per (user, rank): the latest complete run''s recommendations (or the customer''s newest refresh of it, or their segment''s list when the run never saw them), only shoes that may be shown and the user has not bought, boosted and capped by merchandising_rules, re-ranked 1..n and cut at settings.recommendations_shown, each with the reason that carries it.';
comment on column user_recommendations.rank is '1..n without gaps (n = settings.recommendations_shown, 10), by score x boost after removing unavailable, excluded, capped and bought shoes (model_rank is the run''s own rank).';
comment on column user_recommendations.score is 'Hybrid score of the run: cf_weight x cf_score + (1 - cf_weight) x content_score.';
comment on column user_recommendations.cf_weight is 'Share of the score from collaborative filtering for this user (grows with their history).';
comment on column user_recommendations.behaviour_share is 'Share of this shoe''s score that comes from behaviour (collaborative filtering): cf_weight x cf_score / score, 0..1.';
comment on column user_recommendations.content_share is 'Share of this shoe''s score that comes from the user''s own content profile: 1 - behaviour_share - popularity_share, 0..1; null for a run that did not record popularity_share.';
comment on column user_recommendations.popularity_share is 'Share of this shoe''s score that comes from the segment''s popularity, 0..1 (1 without history); null for a run that did not record it.';
comment on column user_recommendations.reason is 'Why this shoe, by reason_kind: behaviour ''because you viewed / wishlisted / bought <reason shoe>'' (''on your wishlist'' or ''you looked at it before'' when it is the shoe itself); content ''similar to what you like: <brand> <type>'' (the brand and/or type it shares with the reason shoe; else ''similar to <reason shoe>'', or ''similar to what you like'' when that shoe already explains 3 picks); popularity ''popular with <segment>''.';
comment on column user_recommendations.reason_kind is 'behaviour, content or popularity: the largest of the three shares (ties: behaviour, content, popularity). A reason shoe explains at most 3 picks by behaviour (the best ranked); later ones, and picks without a shoe to name, take the larger of content and popularity (popularity without a reason shoe). Runs without popularity_share: behaviour when the user interacted with the reason shoe, content when not, popularity without one.';
comment on column user_recommendations.reason_shoe_id is 'The shoe in the user''s history that most explains this one (the run''s reason shoe), whatever reason_kind says; null when it comes from their segment.';
comment on column user_recommendations.model_rank is 'Rank in the scoring run (or refresh, or segment list), before any shoe was removed.';
comment on column user_recommendations.run_id is 'The scoring run (latest_model_run) the scores come from.';
comment on column user_recommendations.list_source is 'Where the list comes from: run (the latest complete run), refresh (a refresh of it folded the customer''s new events in) or segment (new since the last run: their segment''s list until the next refresh or run).';
