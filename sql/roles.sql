-- Least privilege on PostgreSQL (not run on DuckDB): a writer that owns the schema's tables and
-- views (load, score, build), and a dashboard reader that may only SELECT the views.
-- Rendered by scripts/roles.py with `schema`, `writer`, `reader` (checked plain identifiers) and
-- `views` (our view names); idempotent, so running it again converges to the same grants.
-- Passwords are never in this text: scripts/roles.py sets them with a bound parameter.

------------------------------------------------------------------------------------------------
-- The two roles: created if missing, attributes (re)set every time
------------------------------------------------------------------------------------------------

do $$
begin
    if not exists (select from pg_roles where rolname = '{{ writer }}') then
        create role "{{ writer }}";
    end if;
    if not exists (select from pg_roles where rolname = '{{ reader }}') then
        create role "{{ reader }}";
    end if;
end
$$;

alter role "{{ writer }}" with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls inherit;
alter role "{{ reader }}" with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls noinherit;

-- the reader is a member of no role (it would inherit what that role may do)
do $$
declare
    granted record;
begin
    for granted in
        select groups.rolname
        from pg_auth_members as members
        inner join pg_roles as groups
            on groups.oid = members.roleid
        where members.member = (select oid from pg_roles where rolname = '{{ reader }}')
    loop
        execute format('revoke %I from %I', granted.rolname, '{{ reader }}');
    end loop;
end
$$;

-- not a privilege but a default in this database: a reader session starts read-only (large
-- objects, for instance, need no privilege to be created)
do $$
begin
    execute format(
        'alter role %I in database %I set default_transaction_read_only = on',
        '{{ reader }}', current_database()
    );
end
$$;

------------------------------------------------------------------------------------------------
-- Database: PUBLIC loses TEMP and CREATE (every role holds PUBLIC's privileges, so a revoke
-- from the reader alone would not do); the writer gets TEMP back for the loader's staging tables
------------------------------------------------------------------------------------------------

do $$
begin
    execute format('revoke create, temporary on database %I from public', current_database());
    execute format('revoke create, temporary on database %I from %I', current_database(), '{{ reader }}');
    execute format('grant connect on database %I to %I', current_database(), '{{ reader }}');
    execute format('grant connect, temporary on database %I to %I', current_database(), '{{ writer }}');
end
$$;

------------------------------------------------------------------------------------------------
-- Schemas: no CREATE for PUBLIC in `public` (the PostgreSQL 15 default, made explicit) nor in
-- ours; the writer may create in ours, the reader may only look names up in it
------------------------------------------------------------------------------------------------

do $$
begin
    if exists (select from pg_namespace where nspname = 'public') then
        revoke create on schema public from public;
    end if;
end
$$;

revoke create on schema "{{ schema }}" from public;
revoke create on schema "{{ schema }}" from "{{ reader }}";
grant usage on schema "{{ schema }}" to "{{ reader }}";
grant usage, create on schema "{{ schema }}" to "{{ writer }}";

------------------------------------------------------------------------------------------------
-- Tables and views: owned by the writer (the loader alters `interactions` in a bulk load only
-- when it owns it; a rebuild drops and re-creates the views, which only their owner may do)
------------------------------------------------------------------------------------------------

do $$
declare
    relation record;
begin
    for relation in
        select
            classes.relname,
            case classes.relkind
                when 'v' then 'view'
                when 'm' then 'materialized view'
                else 'table'
            end as kind
        from pg_class as classes
        inner join pg_namespace as schemas
            on schemas.oid = classes.relnamespace
        where
            schemas.nspname = '{{ schema }}'
            and classes.relkind in ('r', 'p', 'v', 'm')  -- sequences and indexes follow their table
            and classes.relowner <> (select oid from pg_roles where rolname = '{{ writer }}')
    loop
        execute format('alter %s %I.%I owner to %I', relation.kind, '{{ schema }}', relation.relname, '{{ writer }}');
    end loop;
end
$$;

-- Functions (PostgreSQL's read model, sql/serving.sql): owned by the writer too, whose rebuild drops and
-- re-creates the customer views' live_<view>_for with them
do $$
declare
    routine record;
begin
    for routine in
        select procs.oid::regprocedure as signature
        from pg_proc as procs
        inner join pg_namespace as schemas
            on schemas.oid = procs.pronamespace
        where
            schemas.nspname = '{{ schema }}'
            and procs.proowner <> (select oid from pg_roles where rolname = '{{ writer }}')
    loop
        execute format('alter function %s owner to %I', routine.signature, '{{ writer }}');
    end loop;
end
$$;

-- nothing on any table, view, sequence or function of ours for PUBLIC or the reader ...
revoke all on all tables in schema "{{ schema }}" from public, "{{ reader }}";
revoke all on all sequences in schema "{{ schema }}" from public, "{{ reader }}";
revoke all on all functions in schema "{{ schema }}" from "{{ reader }}";

-- ... but SELECT on the views (the same grants scripts.roles.apply_grants gives after a rebuild)
{% for view in views -%}
grant select on "{{ schema }}"."{{ view }}" to "{{ reader }}";
{% endfor %}
