"""The synthetic data generator behind ``python -m scripts.generate_data``, cut at its seams.

- :mod:`~scripts.generator.world`: the world's tables (usages, brands, types, materials, colours ...);
- :mod:`~scripts.generator.draws`: the two weighted draws the others share;
- :mod:`~scripts.generator.catalogue` and :mod:`~scripts.generator.users`: the shoes and the customers;
- :mod:`~scripts.generator.tastes` and :mod:`~scripts.generator.funnel`: the demo world's
  preferences and its view -> wishlist -> purchase funnel, one batch of users at a time;
- :mod:`~scripts.generator.real_log`: the second world, shaped like a public interaction log;
- :mod:`~scripts.generator.batches`: the demo's batches, on one thread or several;
- :mod:`~scripts.generator.writing`: the CSV files;
- :mod:`~scripts.generator.run`: :func:`~scripts.generator.run.generate`, the whole run.

The command line and the names other modules import stay in :mod:`scripts.generate_data`.
"""
