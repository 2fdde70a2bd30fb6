"""The risk model: features from the facts, outcomes, training, scoring and its reasons.

Pure. May import: ``monitor.policy`` and below.
"""
