{#- Dialect macros: the only place where PostgreSQL and DuckDB SQL differ.
    Each macro does one job and says so in one line. `engine` is 'postgres' or 'duckdb'. -#}

{#- Fractional days from `earlier` to `later` (two timestamps), as double precision. -#}
{% macro days_between(later, earlier) -%}
{%- if engine == 'postgres' -%}
cast(extract(epoch from ({{ later }}) - ({{ earlier }})) / 86400.0 as double precision)
{%- else -%}
cast(epoch({{ later }}) - epoch({{ earlier }}) as double precision) / 86400.0
{%- endif -%}
{%- endmacro %}

{#- One row per integer from `low` to `high` (inclusive), used in a select list. -#}
{% macro series(low, high) -%}
{%- if engine == 'postgres' -%}
generate_series({{ low }}, {{ high }})
{%- else -%}
unnest(generate_series({{ low }}, {{ high }}))
{%- endif -%}
{%- endmacro %}

{#- A date as ISO text 'YYYY-MM-DD' whatever the session's DateStyle (for message texts). -#}
{% macro iso_date(value) -%}
{%- if engine == 'postgres' -%}
to_char({{ value }}, 'YYYY-MM-DD')
{%- else -%}
strftime({{ value }}, '%Y-%m-%d')
{%- endif -%}
{%- endmacro %}

{#- The key of the interactions table, after its last column: a primary key on PostgreSQL, none on
    DuckDB, where the loader's merge keeps it (it appends only events not stored yet, each once)
    and an ART index of every event would hold the load's memory (500 MiB per 5M events). -#}
{% macro merge_enforced_key(columns) -%}
{%- if engine == 'postgres' -%}
, primary key ({{ columns }})
{%- else -%}
-- key ({{ columns }}) kept by the loader's merge on DuckDB, not indexed
{%- endif -%}
{%- endmacro %}

{#- A foreign key of the interactions table: a constraint on PostgreSQL, none on DuckDB, where the
    loader refuses an event naming a user, shoe or type that exists neither in its files nor in the
    database (scripts/load.py, _reject_unknown_references). DuckDB keeps a foreign key with an ART
    index of the referencing column: three of them on interactions made appending 2M events 12x
    slower (2.96 against 0.24 s), its commit 1.6 s, and held memory that grows with every event. -#}
{% macro merge_enforced_reference(target) -%}
{%- if engine == 'postgres' -%}
references {{ target }}
{%- else -%}
/* references {{ target }}: checked by the loader on DuckDB */
{%- endif -%}
{%- endmacro %}

{#- The unique key of a bulk-written score table: an index on PostgreSQL, none on DuckDB (there an
    ART index makes writing a run of millions of rows 3x and pruning one 100x slower; zone maps
    serve its lookups by run and user, and the scoring step writes each key once). -#}
{% macro score_table_key(table, columns) -%}
{%- if engine == 'postgres' -%}
create unique index if not exists {{ table }}_key on {{ table }} ({{ columns }});
{%- else -%}
-- {{ table }}: key ({{ columns }}) not indexed on DuckDB
{%- endif -%}
{%- endmacro %}

{#- A secondary index: on PostgreSQL; none on DuckDB, whose zone maps serve the same range filters and
    whose ART indexes live in memory (three on 50M events did not fit the loader's memory bound at its
    commit). -#}
{% macro secondary_index(name, table, columns) -%}
{%- if engine == 'postgres' -%}
create index if not exists {{ name }} on {{ table }} ({{ columns }});
{%- else -%}
-- {{ name }}: {{ table }} ({{ columns }}) not indexed on DuckDB
{%- endif -%}
{%- endmacro %}

{#- The read model of a customer-facing view `view` (user_id first, then `columns`), before its create view:
    on PostgreSQL the table served_<view> holding live_<view>'s rows (re-created when its shape changes; its
    key indexed) and live_<view>_for(user_id), one customer's live rows through PL/pgSQL, whose plan each
    session prepares once. sql/serving.sql keeps it fresh. Nothing on DuckDB, which plans the live view in
    well under a millisecond. -#}
{% macro read_model_objects(view, key) -%}
{%- if engine == 'postgres' -%}
create table if not exists served_{{ view }} as select * from live_{{ view }} with no data;

-- a table of another shape (the live view changed): made again, and the read model stale until rebuilt
do $$
begin
    if (
        select array_agg(format('%s %s', attname, format_type(atttypid, atttypmod)) order by attnum)
        from pg_attribute where attrelid = 'served_{{ view }}'::regclass and attnum > 0 and not attisdropped
    ) is distinct from (
        select array_agg(format('%s %s', attname, format_type(atttypid, atttypmod)) order by attnum)
        from pg_attribute where attrelid = 'live_{{ view }}'::regclass and attnum > 0 and not attisdropped
    ) then
        drop table served_{{ view }};
        create table served_{{ view }} as select * from live_{{ view }} with no data;
        update serving_state set version = version + 1;
    end if;
end
$$;

create unique index if not exists served_{{ view }}_key on served_{{ view }} ({{ key }});

create or replace function live_{{ view }}_for(customer bigint) returns setof live_{{ view }}
language plpgsql stable as $$
begin
    return query select * from live_{{ view }} where user_id = customer;
end
$$;
{%- else -%}
-- {{ view }}: no read model on DuckDB (live_{{ view }} is read as it is)
{%- endif -%}
{%- endmacro %}

{#- The rows of live_<view> for the customers whose user_id is in [low, high) (a null bound: no bound): on
    PostgreSQL the function live_<view>_all(low, high), from which a full rebuild fills served_<view>, in
    ranges on several connections at once (sql/serving.sql serving_rebuild_view, scripts/serving.py). It is
    plain SQL, so that PostgreSQL inlines it into a call with constant bounds and estimates the ranges from
    the tables' statistics. `rows`: the view's select written for that, each table read for the range
    (in_range); default: the view itself. Nothing on DuckDB, which has no read model. -#}
{% macro read_model_bulk(view, rows=none) -%}
{%- if engine == 'postgres' -%}
create function live_{{ view }}_all(low bigint, high bigint) returns setof live_{{ view }}
language sql stable as $rows$
select *
from (
{{ rows if rows else 'select * from live_' ~ view }}
) as customer_rows
where {{ in_range('customer_rows.user_id') }}
$rows$;
{%- else -%}
-- live_{{ view }}: no read model on DuckDB, so no bulk form
{%- endif -%}
{%- endmacro %}

{#- In a bulk form (read_model_bulk): `user_id` is in its range, [$1, $2) (null: unbounded; with constant bounds
    PostgreSQL folds a null one away). -#}
{% macro in_range(user_id) -%}
($1 is null or {{ user_id }} >= $1) and ($2 is null or {{ user_id }} < $2)
{%- endmacro %}

{#- The select of a customer-facing view `view` (after its create view): on DuckDB live_<view>; on
    PostgreSQL served_<view>'s rows while the read model is fresh (built for today's reference date,
    after every change of a shared table) and the customer is not marked stale, else the customer's live
    rows: a marked customer's, or everyone's while it is not fresh. A filter on user_id reaches both
    branches: an index lookup each, and a function call for a customer computed live only. Two branches,
    not one per case: a simple-protocol query plans the whole union every time, and each branch costs
    about 0.1-0.2 ms to plan (a third one, for the stale customers apart, cost 20% of the call).
    `columns`: every column after user_id, in live_<view>'s order. -#}
{% macro read_model_select(view, columns) -%}
{%- if engine == 'postgres' -%}
{%- set live_columns -%}
    {%- for column in columns %}
    live.{{ column }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endset -%}
select served.*
from served_{{ view }} as served
where
    (select serving_is_fresh())
    and not exists (select from serving_stale_users as stale where stale.user_id = served.user_id)
union all
select
    customers.user_id,{{ live_columns }}
from users as customers
cross join lateral live_{{ view }}_for(customers.user_id) as live
where
    not (select serving_is_fresh())
    or exists (select from serving_stale_users as stale where stale.user_id = customers.user_id)
{%- else -%}
select * from live_{{ view }}
{%- endif -%}
{%- endmacro %}

{#- The latest purchase of each (user, shoe) in `purchases` (views/replacement_windows.sql), the same
    rows on both engines (a pair's purchases differ in purchased_at). PostgreSQL takes them with
    distinct on, so that it estimates one row per pair rather than guessing at a filter on window
    functions. DuckDB filters on is_latest_purchase, because it does not push a customer's filter
    (`where user_id = ?`) through distinct on: at 100,000 customers replacement_windows took 737 ms for
    one customer that way, 6 ms this way. -#}
{% macro latest_purchase_pairs() -%}
{%- if engine == 'postgres' -%}
select distinct on (user_id, shoe_id) *
    from purchases
    order by user_id asc, shoe_id asc, purchased_at desc
{%- else -%}
select *
    from purchases
    where is_latest_purchase
{%- endif -%}
{%- endmacro %}
