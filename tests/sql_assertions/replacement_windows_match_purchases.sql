-- replacement_windows: one row per (user, shoe) bought up to the reference date, from the latest purchase,
-- with window_opens_on between purchase and end of life and a status that agrees with the dates.
select purchases.user_id, purchases.shoe_id, 'no window for a bought shoe' as problem
from purchases
left join replacement_windows
    on purchases.user_id = replacement_windows.user_id
    and purchases.shoe_id = replacement_windows.shoe_id
where replacement_windows.user_id is null
union all
select replacement_windows.user_id, replacement_windows.shoe_id, 'window is not from the latest purchase'
from replacement_windows
inner join purchases
    on replacement_windows.user_id = purchases.user_id
    and replacement_windows.shoe_id = purchases.shoe_id
    and purchases.is_latest_purchase
where replacement_windows.purchased_at <> purchases.purchased_at
union all
select replacement_windows.user_id, replacement_windows.shoe_id, 'dates or status inconsistent'
from replacement_windows
cross join current_settings
where
    replacement_windows.window_opens_on < replacement_windows.purchased_on
    or replacement_windows.window_opens_on > replacement_windows.end_of_life_on
    or replacement_windows.end_of_life_on <> replacement_windows.purchased_on + replacement_windows.personal_lifespan_days
    or (replacement_windows.status = 'past_end_of_life')
    <> (current_settings.reference_date >= replacement_windows.end_of_life_on)
    or (replacement_windows.status = 'ok')
    <> (current_settings.reference_date < replacement_windows.window_opens_on)
