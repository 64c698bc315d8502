-- user_recommendations: every reason has a kind that matches its wording; where the run recorded
-- popularity_share, a behaviour reason is led by behaviour and a reason shoe names at most 3 picks that way.
select user_id, rank, reason_kind, reason
from user_recommendations
where
    reason is null
    or reason_kind is null
    or not (
        (reason_kind = 'behaviour' and reason not like 'similar to %' and reason not like '%popular with %')
        or (reason_kind = 'content' and reason like 'similar to %')
        or (reason_kind = 'popularity' and (reason like 'popular with %' or reason like 'new since the last run: popular with %'))
    )
    or (
        reason_kind = 'behaviour'
        and popularity_share is not null
        and (behaviour_share < content_share or behaviour_share < popularity_share)
    )
union all
select
    user_id,
    min(rank),
    'behaviour',
    'reason shoe ' || cast(reason_shoe_id as varchar) || ' named by more than 3'
from user_recommendations
where reason_kind = 'behaviour' and popularity_share is not null
group by user_id, reason_shoe_id
having count(*) > 3
