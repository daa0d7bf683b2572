"""Rosetta: one deep-learning exercise, every framework, side by side.

The engine (this package) imports no deep-learning framework: each backend runs in a worker process of its
own (rosetta/worker/), started with the interpreter of that backend's environment. This module stays light,
because every worker imports it: the Python API (rosetta.run, rosetta.load) is loaded on first use.
"""

__version__ = "0.2.0"
