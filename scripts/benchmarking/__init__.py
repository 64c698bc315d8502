"""The pieces of the scale benchmark; ``python -m scripts.benchmark`` (scripts/benchmark.py) is its command line.

- ``process``: measuring a stage in a fresh child process: wall and CPU seconds, peak memory, a
  memory limit, the share of the cores others used meanwhile;
- ``stages``: what each stage does (generate, load, score, model, implicit, refresh, serve) and the
  figures it returns; ``native``: the engines' own bulk paths, the yardsticks; ``changes``: the day's
  delivery the refresh stage loads first;
- ``databases``: a fresh database per run (a DuckDB file or a PostgreSQL schema), dropped after;
- ``machine``: the host the figures were taken on;
- ``report``: the table the README quotes, the ratios within the run and the issues' targets.
"""
