-- current_settings: exactly one row, with a reference date.
select count(*) as n_rows
from current_settings
having count(*) <> 1 or count(reference_date) <> 1
