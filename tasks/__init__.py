"""Task specs: one module per task, importing numpy only (never a framework).

Each backend implements a task in backends/<backend>/<task>.py; rosetta/registry.py lists the tasks.
"""
