"""Policy as data: dated parameters, safe conditions, the facts they read and the rules.

The parameters of ``rules/parameters.yaml`` (dated, with sources), the
expression language of rule conditions, one row of facts per household and
per person as of a date, the 20 rules and the rules-only 风险评分.

Pure. May import: ``monitor.contract``, ``monitor.validation``.
"""
