"""Teacher backends: each turns synthesis `Request`s into `Completion`s (the `Teacher` protocol in records.py)."""
