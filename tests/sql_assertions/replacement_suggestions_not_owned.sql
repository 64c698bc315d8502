-- replacement_suggestions: never a shoe the user has bought (at any time), and only for an open window.
select
    replacement_suggestions.user_id,
    replacement_suggestions.shoe_id,
    replacement_suggestions.suggested_shoe_id,
    replacement_windows.status as window_status
from replacement_suggestions
left join replacement_windows
    on replacement_suggestions.user_id = replacement_windows.user_id
    and replacement_suggestions.shoe_id = replacement_windows.shoe_id
where
    exists (
        select 1
        from interactions
        where
            interactions.interaction_type = 'purchase'
            and interactions.user_id = replacement_suggestions.user_id
            and interactions.shoe_id = replacement_suggestions.suggested_shoe_id
    )
    or replacement_windows.status is null
    or replacement_windows.status not in ('nearing_end_of_life', 'past_end_of_life')
