"""A run's configuration: the shipped ``rules/`` folder, a home's overrides, the model in use.

The shipped folder is ``rules/`` at the top of the checkout, installed with
the package as ``monitor/shipped_rules`` (a link to it in a checkout, a copy
in a wheel); ``<home>/parameters.yaml`` overrides parameters for one
deployment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from monitor.contract.regions import township_regions
from monitor.io.home import DELIVERIES_OVERRIDE, PARAMETERS_OVERRIDE, Home
from monitor.io.models import load_latest_model
from monitor.io.pseudonym_key import lake_pseudonym_key
from monitor.model.risk import ModelSettings, RiskModel
from monitor.policy.params import ParameterError, Parameters
from monitor.policy.rules import Rule, parse_rules
from monitor.policy.scoring import RulesOnlyScore
from monitor.triage.deliveries import DeliveryExpectations

#: The shipped rules/ folder, as package data (monitor/shipped_rules links to rules/ in a
#: checkout; a wheel holds a copy): found through the package, wherever it is installed.
RULES_DIR = Path(str(resources.files("monitor") / "shipped_rules")).resolve()
OVERRIDE_NAME, DELIVERIES_NAME = PARAMETERS_OVERRIDE, DELIVERIES_OVERRIDE


#: A configuration file is a few kilobytes; one larger than this is not one.
MAX_YAML_BYTES = 1 << 20


def _read_yaml(path: Path, content: bytes | None = None) -> object:
    """A YAML file's data (``content``: its bytes, when the caller has read them).

    Refused with one line: a file over :data:`MAX_YAML_BYTES`, and any alias
    (``*name``): a few hundred bytes of nested aliases expand to gigabytes
    (a "billion laughs"), and no parameter or setting needs one.
    """
    try:
        if content is None and path.stat().st_size > MAX_YAML_BYTES:
            raise ParameterError(f"{path}: {path.stat().st_size:,} bytes, more than a "
                                 f"configuration file holds ({MAX_YAML_BYTES:,})")
        text = path.read_text(encoding="utf-8") if content is None else content.decode("utf-8")
        if len(text) > MAX_YAML_BYTES:
            raise ParameterError(f"{path}: more than a configuration file holds "
                                 f"({MAX_YAML_BYTES:,} bytes)")
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                raise ParameterError(f"{path}: line {mark.line + 1}: a YAML alias "
                                     f"(*{event.anchor}) is not accepted in a configuration "
                                     "file; write the values out")
        return yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as error:
        raise ParameterError(f"{path}: cannot read: {error}") from None
    except yaml.YAMLError as error:
        raise ParameterError(f"{path}: not valid YAML: {error}".replace("\n", " ")) from None


def load_parameters(home: Path | None = None, as_of: dt.date | None = None,
                    rules_dir: Path = RULES_DIR) -> Parameters:
    """The shipped parameters, with ``<home>/parameters.yaml`` applied when it exists.

    With ``as_of``, also check that every parameter has a value in force on
    that date for every township, so that a bad override stops a run before
    it starts.
    """
    shipped = rules_dir / "parameters.yaml"
    override = Home.of(home).parameters_override if home is not None else None
    if override is not None and override.exists():
        params = Parameters.from_files(_read_yaml(shipped), str(shipped),
                                       _read_yaml(override), str(override))
    else:
        params = Parameters.from_files(_read_yaml(shipped), str(shipped))
    if as_of is not None:
        # Every township must have every value: a gap found mid-run would be too late.
        params.check_in_force(as_of, township_regions())
    return params


def load_delivery_expectations(home: Path | None = None, rules_dir: Path = RULES_DIR
                               ) -> DeliveryExpectations:
    """The shipped delivery expectations, with ``<home>/deliveries.yaml`` applied when it exists.

    Raises :class:`monitor.triage.deliveries.DeliveryExpectationError` (a
    :class:`ParameterError`) naming the file and the entry.
    """
    shipped = rules_dir / DELIVERIES_NAME
    override = Home.of(home).deliveries_override if home is not None else None
    if override is not None and override.exists():
        return DeliveryExpectations.from_files(_read_yaml(shipped), str(shipped),
                                               _read_yaml(override), str(override))
    return DeliveryExpectations.from_files(_read_yaml(shipped), str(shipped))


def read_candidate(path: Path) -> bytes:
    """A candidate parameter file's bytes; a missing file is a :class:`ParameterError`."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"{path}: no such parameter file")
    return path.read_bytes()


def load_candidate_parameters(current: Parameters, path: Path, as_of: dt.date,
                              content: bytes | None = None) -> Parameters:
    """The parameters in force with a candidate file (``monitor tune --parameters``) on top.

    The candidate file has the form of ``<home>/parameters.yaml``; errors name
    it. Checked for every township on ``as_of``, as the parameters of a run are.
    ``content``: the file's bytes, when the caller keeps them (the tune stores
    the very bytes it evaluated).
    """
    path = Path(path)
    content = read_candidate(path) if content is None else content
    candidate = current.with_override(_read_yaml(path, content), str(path))
    candidate.check_in_force(as_of, township_regions())
    return candidate


def load_rule_definitions(rules_dir: Path = RULES_DIR) -> list[dict]:
    """The rule definitions of ``rules/rules.yaml`` as parsed YAML."""
    path = rules_dir / "rules.yaml"
    document = _read_yaml(path)
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise ParameterError(f"{path}: expected a mapping with a list under 'rules'")
    return document["rules"]


def load_rules(parameters: Parameters | None = None, rules_dir: Path = RULES_DIR) -> list[Rule]:
    """The rules of ``rules/rules.yaml``, parsed (and checked against ``parameters``).

    With ``parameters``, every name a rule uses must be a fact of the
    catalogue or one of the parameters (:func:`monitor.policy.rules.parse_rules`).
    """
    return parse_rules(load_rule_definitions(rules_dir),
                       parameters=None if parameters is None else parameters.names)


def load_scoring(rules_dir: Path = RULES_DIR) -> object:
    """The ``rules_only_score`` mapping of ``rules/rules.yaml`` (validated by the caller)."""
    path = rules_dir / "rules.yaml"
    document = _read_yaml(path)
    return document.get("rules_only_score") if isinstance(document, dict) else None


def configuration_versions(home: Path | None = None, rules_dir: Path = RULES_DIR
                           ) -> dict[str, str]:
    """The sha256 of each rules and parameters file in use (the run manifest's versions)."""
    files = {"rules": rules_dir / "rules.yaml", "parameters": rules_dir / "parameters.yaml",
             "model_settings": rules_dir / "model.yaml",
             "deliveries": rules_dir / DELIVERIES_NAME}
    if home is not None:
        for key in ("parameters_override", "deliveries_override"):
            if (override := getattr(Home.of(home), key)).exists():
                files[key] = override
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}


def load_model_settings(rules_dir: Path = RULES_DIR) -> ModelSettings:
    """The risk model's settings, ``rules/model.yaml``, validated."""
    path = rules_dir / "model.yaml"
    return ModelSettings.from_definition(_read_yaml(path), str(path))


@dataclass
class Configuration:
    """Parameters, rules and score definition of a run, loaded once."""

    params: Parameters
    rules: list[Rule]
    scoring: RulesOnlyScore
    versions: dict[str, str]
    #: What each source's deliveries are expected to be (held and stale sources).
    deliveries: DeliveryExpectations
    #: The newest model trained for the run date or earlier; None: rules alone.
    model: RiskModel | None = None

    @property
    def roster_rules(self) -> frozenset[str]:
        """The codes of the visit rosters (定期探访)."""
        return frozenset(rule.code for rule in self.rules if rule.roster)

    @property
    def model_manifest(self) -> dict:
        """The run manifest's model entry: which model scored the run, or that none did."""
        if self.model is None:
            return {"version": None, "risk_score": self.scoring.description}
        meta = self.model.metadata
        return {"version": self.model.version, "kind": meta["kind"],
                "trained_on": meta["trained_on"], "data_sha256": meta["data_sha256"],
                "risk_score": self.model.description}


def load_configuration(home: Path, run_date: dt.date) -> Configuration:
    """Parameters (checked for every township on the date), rules, score and model.

    Raises if any is unusable, or if ``MONITOR_PSEUDONYM_KEY`` does not fit the lake.
    """
    params = load_parameters(home, run_date)
    rules = load_rules(params)
    scoring = RulesOnlyScore.from_definition(load_scoring())
    expectations = load_delivery_expectations(home)
    model = load_latest_model(home, run_date)
    lake_pseudonym_key(home, create=False)  # the key fits the lake, or there is none to fit
    return Configuration(params, rules, scoring, configuration_versions(home), expectations,
                         model)
