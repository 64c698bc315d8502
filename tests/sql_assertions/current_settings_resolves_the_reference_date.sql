-- current_settings: its reference date is always resolved (null in settings = today).
select count(*) as n_rows
from current_settings
having count(reference_date) <> count(*)
