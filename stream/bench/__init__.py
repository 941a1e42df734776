"""The stream benchmark: the worker against a pass-through Faust agent and a bare consumer
loop on the same broker, repeated and pinned (``python -m stream.bench``)."""
