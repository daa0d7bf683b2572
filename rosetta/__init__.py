"""Rosetta: one deep-learning exercise, every framework, side by side.

The engine (this package) imports no deep-learning framework: each backend runs in a worker process of its
own (rosetta/worker/), started with the interpreter of that backend's environment. This module stays light,
because every worker imports it: the Python API (rosetta.run, rosetta.load) is loaded on first use.
"""

__version__ = "0.2.0"

_API = ("run", "sweep", "load", "Run", "UsageError")


def __getattr__(name):  # rosetta.run, rosetta.sweep, rosetta.load, rosetta.Run: rosetta/api.py (pandas) on first use
    if name in _API:
        from rosetta import api
        return getattr(api, name)
    raise AttributeError(f"module 'rosetta' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
