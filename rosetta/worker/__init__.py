"""The code that runs inside a backend's interpreter, one process per cell: `python -m rosetta.worker`.

Everything here imports the standard library and numpy only (and, in cell.py, the task spec and ONE
backend), because it runs in every backend's environment: the project's own, or MXNet's with numpy 1.23.
The engine (the rest of rosetta/) may import these modules; they never import the engine.
"""
