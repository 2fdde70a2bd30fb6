"""Dated, regional policy parameters: parse, merge a deployment's overrides, look values up.

Pure: the io layer reads ``rules/parameters.yaml`` and ``<home>/parameters.yaml``
and hands their parsed YAML here. The value in force for a region on a date is
the entry with the longest region-code prefix matching the region, and among
those the latest ``from`` on or before the date (DATA_CONTRACT.md section 6).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Every parameter the contract names (section 6); the shipped file must define each.
CONTRACT_PARAMETERS = (
    "dibao_standard", "edge_ratio", "gradual_exit_months", "tekun_minor_age",
    "tekun_standard_ratio", "medical_window_days", "medical_burden_share",
    "medical_burden_amount", "sudden_window_days", "sudden_loss_amount", "elder_age",
    "left_behind_child_age", "financial_asset_months", "model_threshold",
    "verify_days_red", "verify_days_orange", "verify_days_yellow", "visit_cadence_days",
)
_ENTRY_KEYS = {"region", "from", "value", "source"}
_COLUMNS = ["name", "region", "from", "value", "source", "origin"]


class ParameterError(ValueError):
    """A parameter file that cannot be used; the message names the file, parameter and problem."""


def parse_entries(name: str, raw: object, origin: str, what: str = "parameter") -> list[dict]:
    """Validate one parameter's entries (a list, or a mapping with ``values``).

    ``what`` names the kind of thing in messages (``rules/deliveries.yaml``
    has settings, not parameters).
    """
    def fail(problem: str) -> ParameterError:
        return ParameterError(f"{origin}: {what} '{name}': {problem}")

    entries = raw.get("values") if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not entries:
        raise fail("expected a list of entries like {region: \"50\", from: 2024-01-01, value: 600}")
    rows = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise fail(f"entry {number} is not a mapping of region, from, value")
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise fail(f"entry {number} has unknown keys {sorted(unknown)}")
        start = entry.get("from")
        if isinstance(start, dt.datetime):
            start = start.date()
        if isinstance(start, str):
            try:
                start = dt.date.fromisoformat(start)
            except ValueError:
                start = None
        if not isinstance(start, dt.date):
            raise fail(f"entry {number}: 'from' must be a date YYYY-MM-DD, "
                       f"got {entry.get('from')!r}")
        value = entry.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise fail(f"entry {number}: 'value' must be a number, got {value!r}")
        region = entry.get("region", "")
        region = "" if region is None else str(region).strip()
        if region and not re.fullmatch(r"[0-9]+", region):
            raise fail(f"entry {number}: 'region' must be a region-code prefix of digits, "
                       f"got {region!r}")
        rows.append({"name": name, "region": region, "from": pd.Timestamp(start),
                     "value": float(value), "source": str(entry.get("source", origin)),
                     "origin": origin})
    keys = [(row["region"], row["from"]) for row in rows]
    if len(set(keys)) != len(keys):
        raise fail("two entries share the same region and from-date")
    return rows


def parse_parameter_file(document: object, origin: str, known: set[str] | None = None
                         ) -> pd.DataFrame:
    """Parse a parameter file's YAML into one row per entry.

    Parameters
    ----------
    document : object
        The parsed YAML: a mapping of parameter name to its entries.
    origin : str
        The file it came from, named in every error.
    known : set of str, optional
        Parameter names allowed (an override may not invent one).
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ParameterError(f"{origin}: expected a mapping of parameter names to entries")
    rows = []
    for name, raw in document.items():
        if known is not None and name not in known:
            raise ParameterError(f"{origin}: parameter '{name}': unknown name "
                                 f"(known: {', '.join(sorted(known))})")
        rows.extend(parse_entries(str(name), raw, origin))
    return pd.DataFrame(rows, columns=_COLUMNS)


@dataclass(frozen=True)
class ValidRange:
    """Where a parameter's values make sense (both ends included), and its unit."""

    low: float
    high: float
    unit: str = ""

    def __str__(self) -> str:
        return f"{self.low:g} to {self.high:g}" + (f" {self.unit}" if self.unit else "")


def parse_ranges(document: object, origin: str) -> dict[str, ValidRange]:
    """Each parameter's ``range: [low, high]`` (beside its ``unit``) in a shipped file."""
    ranges = {}
    for name, raw in (document or {}).items() if isinstance(document, dict) else ():
        if not isinstance(raw, dict) or "range" not in raw:
            continue
        bounds = raw["range"]
        if (not isinstance(bounds, list) or len(bounds) != 2  # noqa: PLR2004 (low, high)
                or not all(isinstance(b, int | float) and not isinstance(b, bool)
                           for b in bounds) or bounds[0] > bounds[1]):
            raise ParameterError(f"{origin}: parameter '{name}': range must be [low, high], "
                                 f"got {bounds!r}")
        ranges[str(name)] = ValidRange(float(bounds[0]), float(bounds[1]),
                                       str(raw.get("unit", "")))
    return ranges


def check_ranges(table: pd.DataFrame, ranges: dict[str, ValidRange]) -> None:
    """Every entry's value within its parameter's range, else the usual one-line error."""
    for row in table.to_dict("records"):
        valid = ranges.get(row["name"])
        if valid is not None and not valid.low <= row["value"] <= valid.high:
            where = f"region {row['region']}, " if row["region"] else ""
            raise ParameterError(
                f"{row['origin']}: parameter '{row['name']}': value {row['value']:g} "
                f"({where}from {row['from'].date()}) is outside its valid range {valid}")


@dataclass(frozen=True)
class Parameters:
    """Every parameter's dated entries, after a deployment's overrides.

    Examples
    --------
    >>> table = parse_parameter_file({"dibao_standard": [
    ...     {"region": "50", "from": dt.date(2021, 1, 1), "value": 600},
    ...     {"region": "500238", "from": dt.date(2023, 1, 1), "value": 640}]}, "example")
    >>> params = Parameters(table)
    >>> params.value("dibao_standard", dt.date(2024, 6, 30), "500238123456")
    640.0
    >>> params.value("dibao_standard", dt.date(2024, 6, 30), "500101001201")
    600.0
    """

    table: pd.DataFrame
    #: Each parameter's valid range (from the shipped file): overrides are checked against it.
    ranges: dict[str, ValidRange] = field(default_factory=dict, compare=False)

    @classmethod
    def from_files(cls, shipped: object, shipped_origin: str, override: object = None,
                   override_origin: str | None = None) -> Parameters:
        """Shipped parameters with a deployment's override file applied.

        A parameter named in the override replaces all shipped entries of it.
        """
        base = parse_parameter_file(shipped, shipped_origin)
        missing = sorted(set(CONTRACT_PARAMETERS) - set(base["name"]))
        if missing:
            raise ParameterError(f"{shipped_origin}: contract parameters missing: "
                                 f"{', '.join(missing)}")
        ranges = parse_ranges(shipped, shipped_origin)
        check_ranges(base, ranges)
        if override is None:
            return cls(base, ranges)
        return cls(base, ranges).with_override(override, override_origin or "override")

    def with_override(self, override: object, origin: str) -> Parameters:
        """These parameters with an override file's applied on top (a new object).

        A parameter named in the override replaces all of its entries here;
        an unknown name is an error. A deployment's ``parameters.yaml`` is
        applied to the shipped file this way, and a candidate for ``monitor
        tune`` to the parameters in force.
        """
        changes = parse_parameter_file(override, origin, known=set(self.table["name"]))
        check_ranges(changes, self.ranges)
        kept = self.table[~self.table["name"].isin(set(changes["name"]))]
        return Parameters(pd.concat([kept, changes], ignore_index=True), self.ranges)

    @property
    def names(self) -> list[str]:
        """Parameter names in file order."""
        return list(dict.fromkeys(self.table["name"]))

    def check_in_force(self, as_of: dt.date, regions: pd.Series | None = None) -> None:
        """Raise unless every parameter has a value in force on ``as_of`` for every region.

        ``regions`` are the region codes to cover (by default only that some
        value has started); the io layer passes every township of the bureau.
        """
        started = self.table[self.table["from"] <= pd.Timestamp(as_of)]
        for name in self.names:
            if name not in set(started["name"]):
                origin = self.table.loc[self.table["name"] == name, "origin"].iloc[0]
                raise ParameterError(f"{origin}: parameter '{name}': no value in force on "
                                     f"{as_of.isoformat()} (the earliest entry starts later)")
        if regions is not None:
            self.frame(regions, as_of)

    def in_force(self, as_of: dt.date, region: str = "") -> pd.DataFrame:
        """The entry in force for ``region`` on ``as_of``, one row per parameter that has one."""
        chosen = self._chosen_entries(pd.Series([region]), as_of, self.names)
        rows = [entries[0] for entries in chosen.values() if entries[0] >= 0]
        return self.table.iloc[rows].reset_index(drop=True)

    def _chosen_entries(self, distinct: pd.Series, as_of: dt.date, names: list[str]
                        ) -> dict[str, np.ndarray]:
        """For each parameter, the table row in force for each region (-1: none).

        The one place the contract's lookup lives: the longest matching
        region prefix, then the latest ``from`` on or before ``as_of``.
        """
        table = self.table.reset_index(drop=True)
        started = table[(table["from"] <= pd.Timestamp(as_of)) & table["name"].isin(names)]
        # Latest entry per (parameter, prefix): the only one that can be in force.
        latest = started.sort_values("from").groupby(["name", "region"], sort=False).tail(1)
        number_of = {name: number for number, name in enumerate(names)}
        chosen = np.full((len(names), len(distinct)), -1, dtype=np.int64)
        lengths = latest["region"].str.len().to_numpy()
        positions = np.arange(len(distinct))
        # Shortest prefix first: a longer matching prefix overwrites it (the longest wins).
        for length in np.unique(lengths):
            entries = latest[lengths == length]
            matched = pd.DataFrame({"region": distinct.str.slice(0, int(length)).to_numpy(),
                                    "position": positions}).merge(pd.DataFrame({
                                        "region": entries["region"].to_numpy(),
                                        "name": entries["name"].map(number_of).to_numpy(),
                                        "row": entries.index.to_numpy()}), on="region")
            chosen[matched["name"].to_numpy(dtype=np.int64),
                   matched["position"].to_numpy(dtype=np.int64)] = matched["row"].to_numpy()
        return {name: chosen[number_of[name]] for name in names}

    def value(self, name: str, as_of: dt.date, region: str = "") -> float:
        """One parameter's value for one region on one date."""
        return float(self.lookup(name, pd.Series([region]), as_of).iloc[0])

    def lookup(self, name: str, regions: pd.Series, as_of: dt.date) -> pd.Series:
        """A parameter's value for each region code (vectorised over distinct regions)."""
        return self.frame(regions, as_of, [name])[name]

    def frame(self, regions: pd.Series, as_of: dt.date, names: list[str] | None = None
              ) -> pd.DataFrame:
        """Values of several parameters for each region code, one column per parameter.

        Raises
        ------
        ParameterError
            When a region has no value in force for a parameter on ``as_of``.
        """
        names = names or self.names
        codes, distinct = pd.factorize(regions.astype("string").fillna(""))
        distinct = pd.Series(distinct, dtype="string")
        values_of = self.table["value"].to_numpy(dtype="float64")
        columns = {}
        for name, rows in self._chosen_entries(distinct, as_of, names).items():
            if (rows < 0).any():
                origin = self.table.loc[self.table["name"] == name, "origin"]
                where = origin.iloc[0] if len(origin) else "parameters"
                example = distinct[rows < 0].iloc[0]
                raise ParameterError(f"{where}: parameter '{name}': no value in force on "
                                     f"{as_of.isoformat()} for region {example!r}")
            values = values_of[rows]
            columns[name] = values[codes] if len(codes) else values[:0]
        return pd.DataFrame(columns, index=regions.index)
