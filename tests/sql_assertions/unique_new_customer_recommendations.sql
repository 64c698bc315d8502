-- new_customer_recommendations: one row per (primary_usage, gender, age_band, rank), none of them null.
select primary_usage, gender, age_band, rank, count(*) as n_rows
from new_customer_recommendations
group by primary_usage, gender, age_band, rank
having count(*) > 1 or primary_usage is null or gender is null or age_band is null or rank is null
