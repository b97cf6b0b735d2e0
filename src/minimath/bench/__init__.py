"""Benchmarks: tools that measure the library from outside (nothing in `minimath` imports them).

python -m minimath.bench ...             training steps, ours vs a plain PyTorch loop (minimath.bench.train)
python -m minimath.bench.data ...        the data pipeline's share of a training step
python -m minimath.bench.generation ...  KV-cached generation vs re-forwarding
"""
