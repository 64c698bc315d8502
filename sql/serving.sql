-- The read model of the customer-facing views, PostgreSQL only (scripts/schema.py runs this file there, after
-- tables.sql; DuckDB reads the live views, which it plans in well under a millisecond).
--
-- user_recommendations, user_messages and replacement_suggestions are each live_<view>'s rows kept in a table,
-- served_<view> (views/<view>.sql, macros read_model_objects and read_model_select), so that a web shop's
-- `where user_id = ?` plans and runs as one index lookup instead of planning the whole view tree (5-10 ms).
-- The rows are the live view's own, and never served stale:
--   - a change to a customer's own rows (users, interactions, refreshed_recommendations, model_refreshes)
--     marks that customer in serving_stale_users (statement triggers, below);
--   - a change to any other table the live views read (the catalogue, the rules, settings, the lookup tables,
--     a run) bumps serving_state.version;
--   - the customer views serve served_<view> only while serving_state was built at the current version for
--     today's reference date (serving_is_fresh()) and the customer is not marked; everyone else is computed
--     live, one customer at a time (live_<view>_for).
-- refresh_serving() brings the tables back: every customer after a shared change or a new date, else the
-- marked ones. A run and a refresh call it in their publishing transaction, the daily job (scripts.notify)
-- when it starts; tests/test_read_model.py checks that the trigger list covers every table the live views
-- read.

create table if not exists serving_state (
    serving_id integer primary key check (serving_id = 1),
    version bigint not null default 1,
    built_version bigint,
    built_for date,
    built_at timestamp,
    n_users_built bigint
);
comment on table serving_state is 'One row: the version of the tables the customer views read (bumped by every change of a shared one) and the version and reference date the read model (served_*) was built for.';

insert into serving_state (serving_id) values (1) on conflict (serving_id) do nothing;

create table if not exists serving_stale_users (
    user_id bigint primary key
);
comment on table serving_stale_users is 'Customers whose own rows changed since the read model was built: the customer views compute them live until refresh_serving() rebuilds their rows.';

-- true while served_* hold the live views' rows for everyone not marked stale; as its owner (a customer
-- view calls it for the dashboard's reader, who may read views only), in the schema it was created in
create or replace function serving_is_fresh() returns boolean
language plpgsql stable security definer set search_path from current as $$
begin
    return coalesce(
        (
            select serving_state.built_version = serving_state.version
                and serving_state.built_for = current_settings.reference_date
            from serving_state
            cross join current_settings
            where serving_state.serving_id = 1
        ),
        false
    );
end
$$;

-- a shared table changed: every customer's rows may have (a statement that changed no row changes nothing:
-- a load upserts only the rows that differ, and often none; an update that sets the values a row holds, neither)
create or replace function serving_shared_change() returns trigger
language plpgsql as $$
declare
    is_change boolean := true;
begin
    -- (each branch names only the transition table its trigger has)
    if tg_nargs = 0 and tg_op = 'INSERT' then
        is_change := exists (select from new_rows);
    elsif tg_nargs = 0 and tg_op = 'UPDATE' then
        -- as text: any column type compares (json has no equality)
        is_change := exists (select cast(new_rows as text) from new_rows except select cast(old_rows as text) from old_rows);
    elsif tg_nargs = 0 and tg_op = 'DELETE' then
        is_change := exists (select from old_rows);
    end if;
    if is_change then
        update serving_state set version = version + 1 where serving_id = 1;
    end if;
    return null;
end
$$;

-- a customer's own rows changed (the statement's transition tables old_rows / new_rows, by TG_OP; an
-- updated row that holds what it held changes nothing)
create or replace function serving_customer_change() returns trigger
language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into serving_stale_users (user_id)
        select distinct user_id from new_rows
        on conflict (user_id) do nothing;
    elsif tg_op = 'UPDATE' then
        insert into serving_stale_users (user_id)
        select distinct changed.user_id
        from (
            select new_rows.user_id, cast(new_rows as text) as row_text from new_rows
            except
            select old_rows.user_id, cast(old_rows as text) from old_rows
        ) as changed
        on conflict (user_id) do nothing;
        -- a row moved to another customer leaves the first one too
        insert into serving_stale_users (user_id)
        select distinct old_rows.user_id from old_rows
        where not exists (select from new_rows where new_rows.user_id = old_rows.user_id)
        on conflict (user_id) do nothing;
    end if;
    if tg_op = 'DELETE' then
        insert into serving_stale_users (user_id)
        select distinct user_id from old_rows
        on conflict (user_id) do nothing;
    end if;
    return null;
end
$$;

-- a refresh changed state (published, pruned): the customers it holds rows for
create or replace function serving_refresh_change() returns trigger
language plpgsql as $$
begin
    if tg_op in ('INSERT', 'UPDATE') then
        insert into serving_stale_users (user_id)
        select distinct refreshed_recommendations.user_id
        from refreshed_recommendations
        inner join new_rows
            on refreshed_recommendations.refresh_id = new_rows.refresh_id
        on conflict (user_id) do nothing;
    end if;
    if tg_op in ('UPDATE', 'DELETE') then
        insert into serving_stale_users (user_id)
        select distinct refreshed_recommendations.user_id
        from refreshed_recommendations
        inner join old_rows
            on refreshed_recommendations.refresh_id = old_rows.refresh_id
        on conflict (user_id) do nothing;
    end if;
    return null;
end
$$;

-- the triggers, one per table and event (a trigger with transition tables takes one event); the score tables a
-- run writes in bulk get plain statement triggers (argument 'always': no transition table of millions of rows;
-- their rows show only once the run is published, which changes model_runs anyway)
do $$
declare
    customer_tables text[] := array['users', 'interactions', 'refreshed_recommendations'];
    refresh_tables text[] := array['model_refreshes'];
    shared_tables text[] := array[
        'age_bands', 'care_schedules', 'interaction_types', 'merchandising_rules', 'model_runs', 'settings', 'shoes',
        'wear_factors'
    ];
    bulk_tables text[] := array['recommendations', 'segment_recommendations', 'shoe_similarities'];
    handler text;
    name text;
begin
    foreach name in array customer_tables || refresh_tables || shared_tables || bulk_tables loop
        execute format('drop trigger if exists serving_insert on %I', name);
        execute format('drop trigger if exists serving_update on %I', name);
        execute format('drop trigger if exists serving_delete on %I', name);
        execute format('drop trigger if exists serving_truncate on %I', name);
        -- a truncate names no rows: every customer
        execute format(
            'create trigger serving_truncate after truncate on %I for each statement'
            ' execute function serving_shared_change(%L)', name, 'always'
        );
        if name = any(bulk_tables) then
            execute format(
                'create trigger serving_insert after insert or update or delete on %I for each statement'
                ' execute function serving_shared_change(%L)', name, 'always'
            );
            continue;
        end if;
        handler := case
            when name = any(customer_tables) then 'serving_customer_change'
            when name = any(refresh_tables) then 'serving_refresh_change'
            else 'serving_shared_change'
        end;
        execute format(
            'create trigger serving_insert after insert on %I referencing new table as new_rows'
            ' for each statement execute function %I()', name, handler
        );
        execute format(
            'create trigger serving_update after update on %I referencing old table as old_rows new table as new_rows'
            ' for each statement execute function %I()', name, handler
        );
        execute format(
            'create trigger serving_delete after delete on %I referencing old table as old_rows'
            ' for each statement execute function %I()', name, handler
        );
    end loop;
end
$$;

-- true when the next rebuild is of every customer: the read model is not fresh (a shared change, a new reference
-- date, never built), or more than a quarter of the customers are marked (one set-based pass beats that many
-- one-customer passes)
create or replace function serving_needs_full_rebuild() returns boolean
language sql stable as $$
    select not serving_is_fresh()
        or (select count(*) from serving_stale_users) > (select count(*) from users) / 4
$$;

-- A full rebuild in parts (a view, or a range of its customers), which scripts/serving.py runs on several
-- connections at once, in three steps, each committed on its own:
--   1. serving_full_rebuild_start(): the read model is no longer fresh (everyone is served live from here on,
--      so a part committed early is never read beside one half-built) and the marks are taken: every customer
--      is rebuilt, from snapshots taken after this commit; returns the version and reference date it builds for;
--   2. serving_rebuild_view(view, low, high) for every part of every customer view, in any order, at once;
--   3. serving_full_rebuild_finish(version, as_of): fresh again, for the version step 1 read.
-- A change committed after step 1 leaves its mark, or a newer version, for the next call; if a part fails,
-- step 3 never runs and the views stay live (exact, only slower) until the next full rebuild.
create or replace function serving_full_rebuild_start(out version bigint, out as_of date)
language plpgsql as $$
begin
    select serving_state.version into serving_full_rebuild_start.version from serving_state where serving_id = 1;
    as_of := (select reference_date from current_settings);
    update serving_state set built_version = null where serving_id = 1;
    delete from serving_stale_users;
end
$$;

-- one part of a full rebuild: served_<view> holds the rows of its bulk form (sql/macros.sql, read_model_bulk)
-- for the customers whose user_id is in [low, high) (null: unbounded); returns the rows written. The bounds go
-- into the statement as constants, so that the bulk form is inlined and its ranges estimated from statistics;
-- and it is planned with hash joins only, in this transaction: the planner's guesses for the rows a window's
-- filter keeps are per customer (`= 1`: 0.5% of millions of rows, all of them in fact), and a nested or merge
-- join planned on them walks or sorts millions of rows for nothing; hashing the smaller side is right
-- whatever the guess (user_recommendations at 100,000 customers: 54 s -> 35 s with its bulk form). The disabled
-- joins' penalty in the costs would also set off JIT compilation of every part (1-2 s each, whatever its size:
-- 1.5 s for 15 rows), so JIT is off too.
create or replace function serving_rebuild_view(view_name text, low bigint, high bigint) returns bigint
language plpgsql as $$
declare
    n_rows bigint;
    nestloop text := current_setting('enable_nestloop');
    mergejoin text := current_setting('enable_mergejoin');
    jit text := current_setting('jit');
begin
    if view_name not in ('user_recommendations', 'replacement_suggestions', 'user_messages') then
        raise exception 'serving_rebuild_view: % has no read model', view_name;
    end if;
    execute format(
        'delete from %I where (%L::bigint is null or user_id >= %L) and (%L::bigint is null or user_id < %L)',
        'served_' || view_name, low, low, high, high
    );
    perform set_config('enable_nestloop', 'off', true);
    perform set_config('enable_mergejoin', 'off', true);
    perform set_config('jit', 'off', true);
    execute format(
        'insert into %I select * from %I(%L, %L)', 'served_' || view_name, 'live_' || view_name || '_all', low, high
    );
    get diagnostics n_rows = row_count;
    perform set_config('enable_nestloop', nestloop, true);
    perform set_config('enable_mergejoin', mergejoin, true);
    perform set_config('jit', jit, true);
    return n_rows;
end
$$;

create or replace function serving_full_rebuild_finish(built_version bigint, built_for date) returns bigint
language plpgsql as $$
declare
    n_users bigint := (select count(*) from users);
begin
    update serving_state
    set built_version = serving_full_rebuild_finish.built_version,
        built_for = serving_full_rebuild_finish.built_for,
        built_at = localtimestamp,
        n_users_built = n_users
    where serving_id = 1;
    return n_users;
end
$$;

-- Rebuild the read model in this transaction: every customer when serving_needs_full_rebuild() (the three
-- steps above, each view whole), else the marked customers one at a time. It takes the marks it
-- handles and the version it builds for at the start, and locks nothing another writer needs: a change
-- committed meanwhile leaves its mark, or a newer version, for the next call. One call at a time (scripts/
-- serving.py holds the same lock while it runs a full rebuild in parts). Returns the number of customers
-- rebuilt (0: nothing to do).
create or replace function refresh_serving() returns bigint
language plpgsql as $$
declare
    full_rebuild record;
    n_marked bigint;
    view_name text;
begin
    -- the key of scripts/db.py's locks (Database.session_lock('refresh_serving'), which serving.py holds)
    perform pg_advisory_xact_lock(hashtext('refresh_serving'), hashtext(current_schema()));
    if serving_needs_full_rebuild() then
        select * into full_rebuild from serving_full_rebuild_start();
        foreach view_name in array array['user_recommendations', 'replacement_suggestions', 'user_messages'] loop
            perform serving_rebuild_view(view_name, null, null);
        end loop;
        return serving_full_rebuild_finish(full_rebuild.version, full_rebuild.as_of);
    end if;

    create temporary table if not exists serving_rebuilt_users (user_id bigint primary key) on commit drop;
    truncate serving_rebuilt_users;
    with taken as (delete from serving_stale_users returning user_id)
    insert into serving_rebuilt_users (user_id) select user_id from taken;
    get diagnostics n_marked = row_count;

    delete from served_user_recommendations where user_id in (select user_id from serving_rebuilt_users);
    insert into served_user_recommendations
    select live.* from serving_rebuilt_users cross join lateral live_user_recommendations_for(serving_rebuilt_users.user_id) as live;
    delete from served_replacement_suggestions where user_id in (select user_id from serving_rebuilt_users);
    insert into served_replacement_suggestions
    select live.* from serving_rebuilt_users cross join lateral live_replacement_suggestions_for(serving_rebuilt_users.user_id) as live;
    delete from served_user_messages where user_id in (select user_id from serving_rebuilt_users);
    insert into served_user_messages
    select live.* from serving_rebuilt_users cross join lateral live_user_messages_for(serving_rebuilt_users.user_id) as live;
    return n_marked;
end
$$;
