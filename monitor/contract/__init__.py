"""The contract's shapes: the 12 sources, their schemas and keys, regions, and "as of".

What every stage agrees on: each source's columns and codes (pandera
models), snapshot or events and its key, the Chongqing county and township
codes, which deliveries make a source's state on a date, and how keys are
hashed and looked up.

Pure. May import: nothing of the project but this package.
"""
