{#- The loader's engine fast path (scripts/staging.py): the typed rows of one file, inserted into its
    staging table straight from the engine's text reading of it, for the cells the data contract
    (scripts/contract.py) surely accepts.

    `source` yields `record` (the record's ordinal in the file, 1 = the line after the header) and
    the file's fields as text (`fields`: their names); `columns` are the contract's columns, each with `cell`, the text field
    it is read from (coalesced: the readers give NULL for an empty field). A row is inserted only if
    every cell is in the strict subset accepted here; the caller compares the rows inserted with the
    file's physical lines, and any difference sends the file to the Python path, which says exactly
    what is wrong. So a check here may refuse what the contract accepts (rare shapes: a 19-digit id,
    12.500, a tab or a no-break space around a number, seconds with 7 decimals, an offset beyond
    14 hours), never the reverse, and the typed value is the one the Python path would stage.

    No cast can raise: each one is reached only for text whose shape and ranges were checked first
    (in a `case`: neither engine promises the order in which it evaluates the terms of an `and`).
    The one parameter, bound once per timestamp column, is the latest accepted moment (naive UTC). -#}

{#- `value` is entirely of the regular expression `pattern` (the subset both engines read alike). -#}
{% macro full_match(value, pattern) -%}
{%- if engine == 'postgres' -%}
({{ value }} ~ '^({{ pattern }})$')
{%- else -%}
regexp_full_match({{ value }}, '{{ pattern }}')
{%- endif -%}
{%- endmacro %}

{#- `value` holds a match of `pattern` somewhere. -#}
{% macro has_match(value, pattern) -%}
{%- if engine == 'postgres' -%}
({{ value }} ~ '{{ pattern }}')
{%- else -%}
regexp_matches({{ value }}, '{{ pattern }}')
{%- endif -%}
{%- endmacro %}

{#- An ISO date's day exists in its month (`t` starts with YYYY-MM-DD of checked digits and ranges). -#}
{% macro day_exists(t) -%}
(case
    when substr({{ t }}, 9, 2) <= '28' then true
    when substr({{ t }}, 6, 2) in ('04', '06', '09', '11') then substr({{ t }}, 9, 2) <= '30'
    when substr({{ t }}, 6, 2) = '02' then substr({{ t }}, 9, 2) = '29'
        and cast(substr({{ t }}, 1, 4) as integer) % 4 = 0
        and (cast(substr({{ t }}, 1, 4) as integer) % 100 <> 0 or cast(substr({{ t }}, 1, 4) as integer) % 400 = 0)
    else true
end)
{%- endmacro %}

{#- The UTC moment of a checked ISO 8601 timestamp `t`: a date alone, or a local time with no offset,
    Z, +HH, +HHMM or +HH:MM (the sign three, five or six characters before the end). -#}
{% macro utc_moment(t) -%}
(case
    when length({{ t }}) = 10 then cast({{ t }} as timestamp)
    when substr({{ t }}, length({{ t }}), 1) = 'Z' then cast(substr({{ t }}, 1, length({{ t }}) - 1) as timestamp)
    when substr({{ t }}, length({{ t }}) - 2, 1) in ('+', '-') then
        cast(substr({{ t }}, 1, length({{ t }}) - 3) as timestamp)
        - (case when substr({{ t }}, length({{ t }}) - 2, 1) = '-' then -60 else 60 end)
            * cast(substr({{ t }}, length({{ t }}) - 1, 2) as integer) * interval '1 minute'
    when substr({{ t }}, length({{ t }}) - 4, 1) in ('+', '-') then
        cast(substr({{ t }}, 1, length({{ t }}) - 5) as timestamp)
        - (case when substr({{ t }}, length({{ t }}) - 4, 1) = '-' then -1 else 1 end)
            * (cast(substr({{ t }}, length({{ t }}) - 3, 2) as integer) * 60
                + cast(substr({{ t }}, length({{ t }}) - 1, 2) as integer)) * interval '1 minute'
    when substr({{ t }}, length({{ t }}) - 5, 1) in ('+', '-') then
        cast(substr({{ t }}, 1, length({{ t }}) - 6) as timestamp)
        - (case when substr({{ t }}, length({{ t }}) - 5, 1) = '-' then -1 else 1 end)
            * (cast(substr({{ t }}, length({{ t }}) - 4, 2) as integer) * 60
                + cast(substr({{ t }}, length({{ t }}) - 1, 2) as integer)) * interval '1 minute'
    else cast({{ t }} as timestamp)
end)
{%- endmacro %}

{#- the shapes accepted (spaces around a value are what Python's strip would take away); written
    without '?' (the placeholder of the one parameter): groups are (...), an optional part {0,1} -#}
{%- set blank = ' *' -%}
{%- set id_shape = ' *[+-]{0,1}[0-9]{1,18} *' -%}
{%- set integer_shape = ' *[+-]{0,1}[0-9]{1,9} *' -%}
{%- set decimal_shape = ' *[+]{0,1}([0-9]{1,7}([.][0-9]{0,2}){0,1}|[.][0-9]{1,2}) *' -%}
{%- set choice_shape = ' *[A-Za-z_]+( +[A-Za-z_]+)* *' -%}
{%- set month_day = '-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])' -%}
{%- set date_shape = ' *(19[0-9]{2}|2[0-9]{3})' + month_day + ' *' -%}
{%- set time_shape = '[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6}){0,1}){0,1}' -%}
{%- set offset_shape = '(Z|[+-](0[0-9]|1[0-4])(:{0,1}[0-5][0-9]){0,1})' -%}
{%- set timestamp_shape = ' *(1[89][0-9]{2}|2[0-9]{3})' + month_day + '(' + time_shape + offset_shape + '{0,1}){0,1} *' -%}

{#- the cell is surely accepted -#}
{% macro accepted(c) -%}
{%- set v = c.cell -%}
{%- if c.kind == 'id' -%}
{{ full_match(v, id_shape) }}
{%- elif c.kind == 'integer' -%}
(case
    when {{ full_match(v, integer_shape) }} then cast(trim({{ v }}) as bigint) between {{ c.low }} and {{ c.high }}
    else {{ 'false' if c.required else full_match(v, blank) }}
end)
{%- elif c.kind == 'decimal' -%}
(case
    when {{ full_match(v, decimal_shape) }} then cast(trim({{ v }}) as numeric(12, 2)) <= {{ price_max }}
    else {{ 'false' if c.required else full_match(v, blank) }}
end)
{%- elif c.kind == 'text' -%}
{{ has_match(v, not_blank) if c.required else 'true' }}
{%- elif c.kind == 'category' -%}
{{ v }} in (select interaction_type from interaction_types)
{%- elif c.kind == 'choice' -%}
({{ "" if c.required else full_match(v, blank) + " or " }}({{ full_match(v, choice_shape) }}
    and regexp_replace(lower(trim({{ v }})), ' +', '_', 'g') in ('{{ c.choices | join("', '") }}')))
{%- elif c.kind == 'date' -%}
(case
    when {{ full_match(v, date_shape) }} then {{ day_exists('trim(' + v + ')') }}
    else {{ 'false' if c.required else full_match(v, blank) }}
end)
{%- elif c.kind == 'timestamp' -%}
(case
    when {{ full_match(v, timestamp_shape) }} then (case
        when {{ day_exists('trim(' + v + ')') }}
            then {{ utc_moment('trim(' + v + ')') }} between cast('1900-01-01' as timestamp) and cast(? as timestamp)
        else false
    end)
    else {{ 'false' if c.required else full_match(v, blank) }}
end)
{%- endif -%}
{%- endmacro %}

{#- the value the Python path stages for an accepted cell -#}
{% macro typed(c) -%}
{%- set v = c.cell -%}
{%- if c.kind == 'id' -%}
cast(trim({{ v }}) as bigint)
{%- elif c.kind == 'integer' -%}
cast(nullif(trim({{ v }}), '') as integer)
{%- elif c.kind == 'decimal' -%}
cast(nullif(trim({{ v }}), '') as numeric(12, 2))
{%- elif c.kind == 'text' -%}
{%- if c.required -%}{{ v }}{%- else -%}(case when {{ has_match(v, not_blank) }} then {{ v }} end){%- endif -%}
{%- elif c.kind == 'category' -%}
{{ v }}
{%- elif c.kind == 'choice' -%}
nullif(regexp_replace(lower(trim({{ v }})), ' +', '_', 'g'), '')
{%- elif c.kind == 'date' -%}
cast(nullif(trim({{ v }}), '') as date)
{%- elif c.kind == 'timestamp' -%}
(case when trim({{ v }}) <> '' then {{ utc_moment('trim(' + v + ')') }} end)
{%- endif -%}
{%- endmacro %}

insert into {{ stage }} (line_number{% for c in columns %}, {{ c.column }}{% endfor %})
select
    record + 1{% for c in columns %},
    {{ typed(c) }}{% endfor %}
from {{ source }}
where
{%- for c in columns %}
    {{ "and " if not loop.first }}{{ accepted(c) }}
{%- endfor %}
    -- Python's csv module refuses a longer field (its field_size_limit), in any column
{%- for name in fields %}
    and coalesce(length({{ name }}), 0) < {{ field_limit }}
{%- endfor %}
