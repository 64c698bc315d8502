"""The pieces of the scale benchmark (``python -m scripts.benchmark`` is its command line)."""
