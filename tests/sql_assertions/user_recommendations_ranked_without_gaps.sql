-- user_recommendations: ranks 1..n without gaps per user, all from the latest complete run, in the order of
-- the run's score times the merchandising boost (shoe_assortment.boost_factor).
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
inner join shoe_assortment as earlier_shoe
    on earlier.shoe_id = earlier_shoe.shoe_id
inner join shoe_assortment as later_shoe
    on later.shoe_id = later_shoe.shoe_id
where earlier.score * earlier_shoe.boost_factor < later.score * later_shoe.boost_factor - 1e-9
