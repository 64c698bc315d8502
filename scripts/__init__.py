"""The shoe recommender's Python steps: generate, load, build, score, evaluate, benchmark."""
