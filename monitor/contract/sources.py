"""The 12 contract sources: kind (snapshot or events), key, schema and header aliases.

Column facts (aliases, parsers, code lists) are read off the pandera models in
:mod:`monitor.contract.schemas`, so this module adds only what a schema cannot say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import pandera.pandas as pa

from monitor.contract import schemas

SNAPSHOT = "snapshot"
EVENTS = "events"


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a source as ingest sees it."""

    name: str
    zh: str
    parse: str
    required: bool
    codes: tuple | None = None


@dataclass(frozen=True)
class Source:
    """A contract source: how its deliveries combine and how its rows are keyed.

    ``county_by`` names the column through which a row is placed in a county
    of the lake, its ``county_code`` (directly for the registry, through the
    registry for the others).
    """

    name: str
    department: str
    kind: Literal["snapshot", "events"]
    key: tuple[str, ...]
    model: type[schemas.SourceModel]
    county_by: Literal["region_code", "household_id", "id_number"]
    date_columns_may_be_future: tuple[str, ...] = field(default=())

    @cached_property
    def schema(self) -> pa.DataFrameSchema:
        """The pandera schema of the parsed table."""
        return self.model.to_schema()

    @cached_property
    def columns(self) -> tuple[ColumnSpec, ...]:
        """Every column in contract order."""
        specs = []
        for name, column in self.schema.columns.items():
            codes = next(
                (tuple(check.statistics["allowed_values"]) for check in column.checks
                 if check.name == "isin"),
                None,
            )
            meta = column.metadata
            specs.append(ColumnSpec(name, meta["zh"], meta["parse"], meta["required"], codes))
        return tuple(specs)

    @cached_property
    def required_columns(self) -> tuple[str, ...]:
        """Columns that must be present in every delivered file."""
        return tuple(spec.name for spec in self.columns if spec.required)

    @cached_property
    def header_aliases(self) -> dict[str, str]:
        """Map of normalised header text (lower-case English or Chinese) to column name."""
        aliases = {}
        for spec in self.columns:
            aliases[spec.name.lower()] = spec.name
            aliases[spec.zh] = spec.name
        return aliases


SOURCES: dict[str, Source] = {
    source.name: source
    for source in [
        # Registry first: every other source is placed in a county through it.
        Source("registry", "户籍人口（公安）", SNAPSHOT, ("id_number",), schemas.Registry,
               "region_code"),
        Source("assistance", "救助对象（民政）", SNAPSHOT, ("id_number", "program", "start_date"),
               schemas.Assistance, "household_id",
               # A planned end of a spell (e.g. the end of a 渐退期) may lie ahead.
               date_columns_may_be_future=("end_date",)),
        Source("income", "家庭收入核算（民政）", SNAPSHOT, ("household_id",), schemas.Income,
               "household_id"),
        Source("rural_revitalization", "脱贫户与监测对象（乡村振兴）", SNAPSHOT, ("household_id",),
               schemas.RuralRevitalization, "household_id"),
        Source("medical", "医保结算（医保）", EVENTS, ("claim_id",), schemas.Medical, "id_number"),
        Source("disability", "残疾人证（残联）", SNAPSHOT, ("id_number",), schemas.Disability,
               "id_number"),
        Source("employment", "就业失业（人社）", EVENTS, ("id_number", "event_date", "event_type"),
               schemas.Employment, "id_number"),
        Source("education", "学籍（教育）", EVENTS, ("id_number", "event_date"), schemas.Education,
               "id_number"),
        Source("housing", "农房安全鉴定（住建）", SNAPSHOT, ("household_id",), schemas.Housing,
               "household_id"),
        Source("disaster", "受灾（应急管理）", EVENTS, ("event_id",), schemas.Disaster,
               "household_id"),
        Source("assets", "家庭经济状况核对", SNAPSHOT, ("id_number", "asset_type", "asset_ref"),
               schemas.Assets, "id_number"),
        Source("feedback", "处置反馈（乡镇）", EVENTS, ("warning_id",), schemas.Feedback,
               "household_id"),
    ]
}
