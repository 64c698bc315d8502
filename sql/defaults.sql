-- Default settings, seeded once: a row that already exists is left as the retailer set it.

insert into interaction_types (interaction_type, weight, funnel_step, description) values
    ('view', 1, 1, 'Looked at the product page.'),
    ('add_to_wishlist', 3, 2, 'Put the shoe on their wishlist.'),
    ('purchase', 5, 3, 'Bought the shoe.')
on conflict (interaction_type) do nothing;

insert into settings (
    settings_id, reference_date, half_life_days, replacement_window_share, due_soon_days,
    replacement_similarity_weight, currency
) values
    (1, null, 180, 0.85, 7, 0.7, 'EUR')
on conflict (settings_id) do nothing;

insert into care_schedules (material, first_reminder_days, repeat_every_days, reminder_title, reminder_text) values
    ('*', 60, 90, 'Time for some shoe care', null),
    ('leather', 30, 60, 'Condition your leather shoes',
        'Wipe off dust with a damp cloth, let them dry away from heat, then work in a leather conditioner.'),
    ('suede', 21, 45, 'Brush and protect your suede',
        'Brush the nap with a suede brush, lift marks with a suede eraser and renew the water-repellent spray.'),
    ('mesh', 45, 60, 'Freshen up your mesh shoes',
        'Remove the insoles, hand-wash the uppers in lukewarm soapy water and air-dry stuffed with paper.'),
    ('canvas', 45, 60, 'Clean your canvas shoes',
        'Brush off dirt, spot-clean with mild soap and cold water, and air-dry out of direct sun.'),
    ('knit', 45, 60, 'Refresh your knit uppers',
        'Hand-wash gently in cold water with mild detergent; never machine-dry.'),
    ('synthetic', 60, 90, 'Wipe down your shoes',
        'Wipe with a damp cloth and mild soap; check the soles for wear.'),
    ('gore-tex', 60, 90, 'Keep your waterproof shoes breathing',
        'Rinse off mud, clean with a soft brush, and re-proof the outer with a membrane-safe spray.'),
    ('rubber', 90, 120, 'Rinse your rubber shoes',
        'Rinse with water and wipe dry; keep them away from direct heat.')
on conflict (material) do nothing;

insert into wear_factors (primary_usage, wear_factor) values
    ('*', 1.0),
    ('running', 1.0),
    ('training', 0.9),
    ('basketball', 0.9),
    ('hiking', 0.8),
    ('walking', 0.7),
    ('casual', 0.6),
    ('formal', 0.5)
on conflict (primary_usage) do nothing;

insert into age_bands (age_band, min_age, max_age) values
    ('under 18', 0, 17),
    ('18-24', 18, 24),
    ('25-34', 25, 34),
    ('35-44', 35, 44),
    ('45-54', 45, 54),
    ('55-64', 55, 64),
    ('65+', 65, 120)
on conflict (age_band) do nothing;

insert into message_kinds (kind, purpose, priority) values
    ('replacement', 'marketing', 1),
    ('care_reminder', 'marketing', 2)
on conflict (kind) do nothing;

insert into channels (channel, priority) values
    ('email', 1),
    ('sms', 2)
on conflict (channel) do nothing;

-- the templates are jinja2 for the job, not for this file's renderer: raw
{% raw -%}
insert into message_templates (kind, channel, subject_template, body_template) values
    ('care_reminder', 'email', '{{ title }}',
        'Your {{ name }} (bought {{ purchased_on }}) {{ "was" if days_overdue > 0 else "is" }} due for care on {{ due_on }}.
{{ instructions }}

Unsubscribe from care tips: {{ unsubscribe_url }}'),
    ('care_reminder', 'sms', '{{ title }}',
        '{{ title }}: your {{ name }}. {{ instructions }} Stop: {{ unsubscribe_url }}'),
    ('replacement', 'email', '{{ title }}',
        'You bought your {{ name }} on {{ purchased_on }}. At your usage a pair lasts about {{ personal_lifespan_days }} days, so it {{ "was" if status == "past_end_of_life" else "will be" }} worn out around {{ end_of_life_on }}.
{% if suggestions %}You might like:
{% for shoe in suggestions %}- {{ shoe.name }} by {{ shoe.brand }} ({{ shoe.price }})
{% endfor %}{% endif %}
Unsubscribe from offers: {{ unsubscribe_url }}'),
    ('replacement', 'sms', '{{ title }}',
        '{{ title }}.{% if suggestions %} Try the {{ suggestions[0].name }} ({{ suggestions[0].price }}).{% endif %} Stop: {{ unsubscribe_url }}')
on conflict (kind, channel) do nothing;
{%- endraw %}
