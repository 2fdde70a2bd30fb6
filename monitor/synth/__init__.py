"""The synthetic population and its deliveries, faults included (sample data; never real).

Pure: arrays in, DataFrames out; :mod:`monitor.io.sample_writer` writes them.
May import: ``monitor.contract``, ``monitor.validation``.
"""
