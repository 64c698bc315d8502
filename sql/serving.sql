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

-- Rebuild the read model: every customer when it is not fresh (or when more than a quarter are marked: one
-- set-based pass beats that many one-customer passes), else the marked customers one at a time. It takes the
-- marks it handles and the version it builds for at the start, and locks nothing another writer needs: a
-- change committed meanwhile leaves its mark, or a newer version, for the next call. One call at a time.
-- Returns the number of customers rebuilt (0: nothing to do).
create or replace function refresh_serving() returns bigint
language plpgsql as $$
declare
    state serving_state%rowtype;
    as_of date;
    n_marked bigint;
    n_users bigint;
begin
    perform pg_advisory_xact_lock(hashtext(current_schema() || '.refresh_serving'));
    select * into state from serving_state where serving_id = 1;
    as_of := (select reference_date from current_settings);
    create temporary table if not exists serving_rebuilt_users (user_id bigint primary key) on commit drop;
    truncate serving_rebuilt_users;
    with taken as (delete from serving_stale_users returning user_id)
    insert into serving_rebuilt_users (user_id) select user_id from taken;
    get diagnostics n_marked = row_count;
    n_users := (select count(*) from users);

    if state.built_version is distinct from state.version or state.built_for is distinct from as_of
        or n_marked > n_users / 4 then
        delete from served_user_recommendations;
        insert into served_user_recommendations select * from live_user_recommendations;
        delete from served_replacement_suggestions;
        insert into served_replacement_suggestions select * from live_replacement_suggestions;
        delete from served_user_messages;
        insert into served_user_messages select * from live_user_messages;
        update serving_state
        set built_version = state.version, built_for = as_of, built_at = localtimestamp, n_users_built = n_users
        where serving_id = 1;
        return n_users;
    end if;

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
