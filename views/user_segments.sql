-- one row per user_id: the segment (primary usage x gender x age band) a user belongs to.
-- Unknown gender or age (or an age outside every band) becomes 'unknown'.

create view user_segments as

with users_source as (
    select user_id, age, gender, primary_usage from users
),

age_bands_source as (
    select age_band, min_age, max_age from age_bands
),

banded as (
    select
        users_source.user_id,
        users_source.age,
        users_source.primary_usage,
        coalesce(users_source.gender, 'unknown') as gender,
        coalesce(min(age_bands_source.age_band), 'unknown') as age_band
    from users_source
    left join age_bands_source
        on users_source.age between age_bands_source.min_age and age_bands_source.max_age
    group by users_source.user_id, users_source.age, users_source.primary_usage, users_source.gender
)

select
    user_id,
    age,
    primary_usage,
    gender,
    age_band,
    primary_usage || ' · ' || gender || ' · ' || age_band as segment
from banded;

comment on view user_segments is 'One row per user: their segment (primary usage x gender x age band), used for cold start.';
comment on column user_segments.age_band is 'age_bands.age_band containing the user''s age, or ''unknown''.';
comment on column user_segments.segment is 'Readable segment label, e.g. ''running · female · 25-34''.';
