"""latentmap's machine-learning library: datasets, models, training, projection, clustering, metrics.

Pure library: never imports app/, fastapi or jinja2, so it works from a notebook or the CLI.
"""
