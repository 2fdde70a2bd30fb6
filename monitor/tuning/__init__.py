"""What a candidate parameter file would change: both sets on the same facts, backtested.

Pure. May import: ``monitor.triage`` and below.
"""
