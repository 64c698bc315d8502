{#- The loader's engine fast path (scripts/staging.py): the typed rows of one file, inserted into its
    staging table straight from the engine's text reading of it, for the cells the data contract
    (scripts/contract.py) surely accepts.

    `source` yields the file's fields as text (`fields`: their names) and, when `numbered`
    (PostgreSQL: COPY numbers the rows as it reads them), `record`, the record's ordinal in the file
    (1 = the line after the header). DuckDB types the rows in parallel into `typed_table` (`step`
    'type'), in file order (preserve_insertion_order), and the insert (`step` 'insert') numbers them
    by their rowid from `first_rowid`, the table's first: a row_number() over () in the same
    statement held the typing to one thread (3.1 of 4.7 s for 5M events). `columns` are the contract's
    columns, each with `cell`, the text field it is read from (coalesced: the readers give NULL for
    an empty field). Each cell is trimmed and typed once, in one pass. A row is inserted only if
    every cell is in the strict subset accepted here; the caller compares the rows inserted with the
    file's physical lines, and any difference sends the file to the Python path, which says exactly
    what is wrong. So a check here may refuse what the contract accepts (rare shapes: a 19-digit id,
    12.500, a tab or a no-break space around a number, seconds with 7 decimals, an offset beyond
    14 hours), never the reverse, and the typed value is the one the Python path would stage.

    No cast can raise: each one is reached only for text whose shape was checked first (in a
    `case`: neither engine promises the order in which it evaluates the terms of an `and`), or is a
    try_cast (DuckDB's dates and timestamps: a day the month lacks); ranges are checked on the
    typed values. The one parameter, bound once per timestamp column, is the
    latest accepted moment (naive UTC). -#}

{#- The shapes accepted, per kind: `masks` (scripts/staging.py: a cell's digits each turned into 9, the
    rest kept, e.g. 9999-99-99T99:99:99Z), matched as `patterns`, one regular expression each, on
    DuckDB (RE2: 0.1 us a cell, where its translate takes 0.5 us) and as the list itself on PostgreSQL (whose
    regular expressions took 1-3 us a cell: 20 s for 2M events). The two accept the same text, but
    for dates and timestamps DuckDB's patterns also hold the ranges (a month to 12, an hour to 23,
    ...) that valid_day and valid_time check on PostgreSQL. Python's strip
    takes away the whitespace around a value; here `trim` does: spaces on PostgreSQL (a tab or a
    no-break space sends the file to the Python path), and also the other Unicode spaces on DuckDB,
    each of which Python's strip takes away too (tests/test_engine_staging.py). Written without '?' (the placeholder of the one parameter). -#}


{#- the trimmed cell `t` of a column of `kind` has one of its shapes -#}
{% macro shaped(kind, t) -%}
{%- if engine == 'postgres' -%}
m_{{ t[2:] }} in ('{{ masks[kind] | join("', '") }}')
{%- else -%}
regexp_full_match({{ t }}, '{{ patterns[kind] }}')
{%- endif -%}
{%- endmacro %}

{#- PostgreSQL: the date part of `t` (shaped: YYYY-MM-DD of digits) is a day that exists, from the year `first` to 2999 -#}
{% macro valid_day(t, first) -%}
(substr({{ t }}, 1, 4) between '{{ first }}' and '2999'
    and substr({{ t }}, 6, 2) between '01' and '12'
    and substr({{ t }}, 9, 2) between '01' and '31'
    and (case
        when substr({{ t }}, 9, 2) <= '28' then true
        when substr({{ t }}, 6, 2) in ('04', '06', '09', '11') then substr({{ t }}, 9, 2) <= '30'
        when substr({{ t }}, 6, 2) = '02' then substr({{ t }}, 9, 2) = '29'
            and cast(substr({{ t }}, 1, 4) as integer) % 4 = 0
            and (cast(substr({{ t }}, 1, 4) as integer) % 100 <> 0 or cast(substr({{ t }}, 1, 4) as integer) % 400 = 0)
        else true
    end))
{%- endmacro %}

{#- Where the offset of a shaped timestamp `t` starts, counted from its end: 1 (Z), 3 (+HH), 5 (+HHMM),
    6 (+HH:MM), or 0 for none. The time part holds only digits, ':' and '.', and is at least 5
    characters long, so a sign 3, 5 or 6 characters before the end is the offset's. -#}
{% macro offset_length(t) -%}
(case
    when length({{ t }}) = 10 then 0
    when right({{ t }}, 1) = 'Z' then 1
    when substr({{ t }}, length({{ t }}) - 2, 1) in ('+', '-') then 3
    when substr({{ t }}, length({{ t }}) - 4, 1) in ('+', '-') then 5
    when substr({{ t }}, length({{ t }}) - 5, 1) in ('+', '-') then 6
    else 0
end)
{%- endmacro %}

{#- PostgreSQL: the time and offset of a shaped timestamp `t` are in range: hours to 23, minutes and seconds to 59
    (no leap second), an offset to 14 hours and 59 minutes -#}
{% macro valid_time(t) -%}
(length({{ t }}) = 10 or (substr({{ t }}, 12, 2) <= '23' and substr({{ t }}, 15, 2) <= '59'
    and (substr({{ t }}, 17, 1) <> ':' or substr({{ t }}, 18, 2) <= '59')
    and (case {{ offset_length(t) }}
        when 3 then right({{ t }}, 2) <= '14'
        when 5 then substr({{ t }}, length({{ t }}) - 3, 2) <= '14' and right({{ t }}, 2) <= '59'
        when 6 then substr({{ t }}, length({{ t }}) - 4, 2) <= '14' and right({{ t }}, 2) <= '59'
        else true
    end)))
{%- endmacro %}

{#- The UTC moment of a checked timestamp `t`: a date alone or a local time (UTC) read as a timestamp;
    one with Z or an offset read as an instant, then told in UTC. Neither depends on the session's
    time zone. PostgreSQL only: DuckDB's typing (`duckdb_moment`) reads the checked text itself. -#}
{% macro utc_moment(t) -%}
(case
    when {{ offset_length(t) }} > 0
        then cast({{ t }} as timestamptz) at time zone 'UTC'
    else cast({{ t }} as timestamp)
end)
{%- endmacro %}

{#- DuckDB: the UTC moment of a timestamp `t` whose text matched the `patterns`, or NULL for a day that
    does not exist. The pattern already holds the ranges that valid_day and valid_time check on
    PostgreSQL (the years 1800-2999, months, days to 31, hours to 23, minutes and seconds to 59, an
    offset to 14:59), the ones its try_cast would not refuse (hour 24 rolls over to the next day, an
    offset may be +15:00 or +14:99); try_cast refuses the rest, a day the month lacks (02-30, 2100-02-29).
    Without an offset (no Z, no '+', no '-' after a ':') the text is a timestamp; with one, an instant,
    told in UTC by its microseconds since the epoch (timezone('UTC', ...) took 0.4 s for 5M events).
    Neither depends on the session's time zone. -#}
{% macro duckdb_moment(t) -%}
(case
    when {{ t }} like '%Z' or {{ t }} like '%+%' or {{ t }} like '%:%-%'
        then make_timestamp(epoch_us(try_cast({{ t }} as timestamptz)))
    else try_cast({{ t }} as timestamp)
end)
{%- endmacro %}

{#- A column of the typed rows: `v_<column>`, the value the Python path stages, NULL for a blank cell or
    one outside the subset, and for an optional column `blank_<column>`, whether its cell is blank (so
    that a NULL there is accepted). Every cast is reached only for a shaped cell, inside a `case`. -#}
{% macro typed(c) -%}
{%- set t = 't_' + c.column -%}
{%- set r = 'r_' + c.column -%}
{%- if c.kind == 'id' -%}
(case when {{ shaped('id', t) }} then cast({{ t }} as bigint) end)
{%- elif c.kind == 'integer' -%}
(case when {{ shaped('integer', t) }} then cast({{ t }} as bigint) end)
{%- elif c.kind == 'decimal' -%}
(case when {{ shaped('decimal', t) }} then cast({{ t }} as numeric(12, 2)) end)
{%- elif c.kind == 'text' -%}
(case when trim({{ r }}, '{{ whitespace }}') <> '' then {{ r }} end)
{%- elif c.kind == 'category' -%}
{{ r }}
{%- elif c.kind == 'choice' -%}
(case when {{ t }} <> '' and translate({{ t }}, '{{ letters }} ', '') = '' then regexp_replace(lower({{ t }}), ' +', '_', 'g') end)
{%- elif c.kind == 'date' and engine == 'postgres' -%}
(case when {{ shaped('date', t) }} then (case when {{ valid_day(t, 1900) }} then cast({{ t }} as date) end) end)
{%- elif c.kind == 'date' -%}
(case when {{ shaped('date', t) }} then try_cast({{ t }} as date) end)
{%- elif c.kind == 'timestamp' and engine == 'postgres' -%}
(case when {{ shaped('timestamp', t) }} then (case when {{ valid_day(t, 1800) }} and {{ valid_time(t) }} then {{ utc_moment(t) }} end) end)
{%- elif c.kind == 'timestamp' -%}
(case when {{ shaped('timestamp', t) }} then {{ duckdb_moment(t) }} end)
{%- endif %} as v_{{ c.column }}
{%- if not c.required and c.kind != 'text' -%}
, {{ t }} = '' as blank_{{ c.column }}
{%- endif -%}
{%- endmacro %}

{#- the typed value of the column is accepted: there, or the cell blank where it may be; in range -#}
{% macro accepted(c) -%}
{%- set v = 'v_' + c.column -%}
{%- if c.kind == 'text' and not c.required -%}
true
{%- else -%}
({{ v }} is not null{{ "" if c.required else " or blank_" + c.column }})
{%- endif -%}
{%- if c.kind == 'integer' %} and ({{ v }} is null or {{ v }} between {{ c.low }} and {{ c.high }})
{%- elif c.kind == 'decimal' %} and ({{ v }} is null or {{ v }} <= {{ price_max }})
{%- elif c.kind == 'category' %} and {{ v }} in (select interaction_type from interaction_types)
{%- elif c.kind == 'choice' %} and ({{ v }} is null or {{ v }} in ('{{ c.choices | join("', '") }}'))
{%- elif c.kind == 'timestamp' %} and ({{ v }} is null or {{ v }} between cast('1900-01-01' as timestamp) and cast(? as timestamp))
{%- endif -%}
{%- endmacro %}

{#- A cell trimmed. DuckDB's trim takes 85 ns for a cell longer than 12 bytes (0.4 s for 5M timestamps)
    and takes away only spaces and the other Unicode spaces (category Zs): a cell of ASCII (as many
    bytes as characters) that neither starts nor ends with a space is kept as it is. -#}
{% macro trimmed(cell) -%}
{%- if engine == 'postgres' -%}
trim({{ cell }})
{%- else -%}
(case when {{ cell }} like ' %' or {{ cell }} like '% ' or strlen({{ cell }}) <> length({{ cell }}) then trim({{ cell }}) else {{ cell }} end)
{%- endif -%}
{%- endmacro %}

{#- the file's typed rows, each with `record` when `numbered` -#}
{% macro typed_rows() -%}
select
{%- if numbered %}
    record,
{%- endif %}
    {% for c in columns %}{{ typed(c) }}{{ "," if not loop.last }}
    {% endfor %}
from (
    select
{%- if numbered %}
        record,
{%- endif %}
        {% for c in columns %}{{ c.cell }} as r_{{ c.column }}, {{ trimmed(c.cell) }} as t_{{ c.column }}
{%- if engine == 'postgres' and c.kind in masks %},
        translate(trim({{ c.cell }}), '0123456789', '9999999999') as m_{{ c.column }}
{%- endif %}{{ "," if not loop.last }}
        {% endfor %}
    from {{ source }}
{%- if engine == 'postgres' %}
    offset 0  -- each cell trimmed once: PostgreSQL would otherwise inline it into every test of it
{%- endif %}
) as cells
{%- if engine == 'postgres' %}
offset 0  -- each value typed once, likewise
{%- endif %}
{%- endmacro %}

{%- if step == 'type' %}
create temp table {{ typed_table }} as
{{ typed_rows() }}
{%- else %}
insert into {{ stage }} (line_number{% for c in columns %}, {{ c.column }}{% endfor %})
select
    {{ "record + 1" if numbered else "rowid - " ~ first_rowid ~ " + 2" }}{% for c in columns %},
    {% if c.kind == 'integer' %}cast(v_{{ c.column }} as integer){% else %}v_{{ c.column }}{% endif %}{% endfor %}
{%- if numbered %}
from ({{ typed_rows() | indent(4) }}
) as typed
{%- else %}
from {{ typed_table }}
{%- endif %}
where
{%- for c in columns %}
    {{ "and " if not loop.first }}{{ accepted(c) }}
{%- endfor %}
{%- endif %}
