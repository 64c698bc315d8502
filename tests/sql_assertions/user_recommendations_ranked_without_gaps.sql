-- user_recommendations: ranks 1..n without gaps per user, in the run's order, all from the latest complete run.
select user_id, min(rank) as first_rank, max(rank) as last_rank, count(*) as n_rows
from user_recommendations
group by user_id
having
    min(rank) <> 1
    or max(rank) <> count(*)
    or count(distinct run_id) <> 1
    or min(run_id) <> (select run_id from latest_model_run)
union all
select earlier.user_id, earlier.rank, later.rank, 0
from user_recommendations as earlier
inner join user_recommendations as later
    on earlier.user_id = later.user_id
    and earlier.rank < later.rank
where earlier.model_rank >= later.model_rank
