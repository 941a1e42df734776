"""Labelled behaviour simulator of a marketplace (``fraudstream generate``).

``generate_files`` writes events and labels as JSON Lines; ``iter_events`` and
``Simulation`` yield the same stream lazily, in event-time order.
"""

from stream.simulate.config import SimConfig
from stream.simulate.writer import GenerateStats, Simulation, generate_files, iter_events

__all__ = ["GenerateStats", "SimConfig", "Simulation", "generate_files", "iter_events"]
