"""The risk model: features from the facts, outcomes, training, scoring and its reasons.

Pure. May import: ``monitor.policy`` and below.
"""


def __getattr__(name: str) -> object:
    """Classes of models saved before the stage packages, by their old names.

    A model trained before is a pickle that names ``monitor.model.RiskModel``
    and ``monitor.model.FeaturePhrase``: found in :mod:`monitor.model.risk`,
    so that an upgrade does not make every trained model unreadable.
    """
    if name in ("RiskModel", "FeaturePhrase"):
        from monitor.model import risk

        return getattr(risk, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
