"""Ingest's checks: a delivered row is parsed, checked and placed, or quarantined with a reason.

Text parsers, id numbers (check digit, birth date, masking), keyed
pseudonyms, the row checks with their quarantine reasons, repeated keys
across batches, and the county each row is filed under.

Pure. May import: ``monitor.contract``.
"""
