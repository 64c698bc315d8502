-- one row per rule_id: an active merchandising rule (merchandising_rules where is_active) with a readable
-- description, as the views apply it (for the dashboard and psql users).

create view merchandising_rules_in_force as

with active_rules as (
    select rule_id, action, attribute, value, boost_factor, max_shoes, note
    from merchandising_rules
    where is_active
),

settings_in_force as (
    select recommendations_shown from current_settings
)

select
    active_rules.rule_id,
    active_rules.action,
    active_rules.attribute,
    active_rules.value,
    active_rules.boost_factor,
    active_rules.max_shoes,
    case active_rules.action
        when 'exclude' then 'never shown: ' || active_rules.attribute || ' ' || active_rules.value
        when 'boost'
            then 'scores x ' || cast(cast(active_rules.boost_factor as numeric(12, 2)) as text) || ': '
                || active_rules.attribute || ' ' || active_rules.value
        else 'at most ' || cast(active_rules.max_shoes as text) || ' shoes of '
            || coalesce(active_rules.attribute || ' ' || active_rules.value, 'any one ' || active_rules.attribute)
            || ' in a list of ' || cast(settings_in_force.recommendations_shown as text)
    end as description,
    active_rules.note
from active_rules
cross join settings_in_force;

comment on view merchandising_rules_in_force is 'The active merchandising rules, each with a readable description of what the recommendation views do with it.';
comment on column merchandising_rules_in_force.description is 'never shown: <attribute> <value> | scores x <factor>: <attribute> <value> | at most <k> shoes of <attribute> <value> (or any one <attribute>) in a list of <n>.';
