"""`python -m minimath.bench`: the training-step benchmark (minimath.bench.train)."""

from minimath.bench.train import entry

entry()
