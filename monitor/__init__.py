"""Dynamic monitoring and early warning of the rural low-income population.

The library behind the ``monitor`` command: ingest department deliveries into a
Parquet lake, build household facts, apply dated policy rules, and write
township referral lists.
"""

__version__ = "0.1.0"
