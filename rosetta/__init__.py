"""Rosetta: one deep-learning exercise, every framework, side by side.

The engine (this package) imports no deep-learning framework: each backend runs in a worker process
of its own (rosetta.worker), started with the interpreter of that backend's environment.
"""

__version__ = "0.1.0"
