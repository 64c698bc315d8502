-- user_recommendations: never a shoe the user has bought, at any time (even after the scoring run).
select user_recommendations.user_id, user_recommendations.rank, user_recommendations.shoe_id
from user_recommendations
inner join interactions
    on user_recommendations.user_id = interactions.user_id
    and user_recommendations.shoe_id = interactions.shoe_id
where interactions.interaction_type = 'purchase'
