-- replacement_suggestions: ranks 1..n (n at most 3) per owned shoe, best suggestion_score first.
select user_id, shoe_id, min(rank) as first_rank, max(rank) as last_rank, count(*) as n_suggestions
from replacement_suggestions
group by user_id, shoe_id
having min(rank) <> 1 or max(rank) <> count(*) or count(*) > 3
union all
select earlier.user_id, earlier.shoe_id, earlier.rank, later.rank, 0
from replacement_suggestions as earlier
inner join replacement_suggestions as later
    on earlier.user_id = later.user_id
    and earlier.shoe_id = later.shoe_id
    and earlier.rank < later.rank
where earlier.suggestion_score < later.suggestion_score
