"""Prefect flows: thin orchestration over the monitor library (nightly run: issue 4)."""
