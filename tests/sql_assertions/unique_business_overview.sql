-- business_overview has exactly one row.
select count(*) as row_count
from business_overview
having count(*) <> 1
