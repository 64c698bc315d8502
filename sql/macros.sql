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
