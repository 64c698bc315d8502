-- every status and kind comes from its allowed set (and none is null).
select 'care_notifications' as view_name, status as value from care_notifications
where status is null or status not in ('upcoming', 'due', 'overdue')
union all
select 'replacement_windows', status from replacement_windows
where status is null or status not in ('ok', 'nearing_end_of_life', 'past_end_of_life')
union all
select 'replacement_suggestions', window_status from replacement_suggestions
where window_status is null or window_status not in ('nearing_end_of_life', 'past_end_of_life')
union all
select 'user_messages', kind || ': ' || status from user_messages
where
    kind is null
    or status is null
    or not (
        (kind = 'care_reminder' and status in ('due', 'overdue'))
        or (kind = 'replacement' and status in ('nearing_end_of_life', 'past_end_of_life'))
    )
