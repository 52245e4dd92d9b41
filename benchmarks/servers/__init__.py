"""Servers measured by ``benchmarks/realtime.py``, each run as its own process."""
