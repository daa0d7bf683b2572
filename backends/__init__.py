"""Built-in backends: one package per framework, one module per task inside it.

The contract a backend package defines is documented in rosetta/registry.py (see `Backend`).
"""
