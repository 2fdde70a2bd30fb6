"""Delivery health: what each department is expected to deliver, and whether it did.

Pure: takes the parsed ``rules/deliveries.yaml`` (with a home's
``deliveries.yaml`` on top), manifest entries and dates. Three questions:

* **Held?** A new delivery that looks broken is ingested but *held*: a
  snapshot with far fewer rows in some county than the previous accepted
  one, or none at all; a file with too many rows quarantined; a column whose
  share of empty values jumps. It does not become the state until an
  operator releases it (:func:`hold_reasons`).
* **Stale?** A source whose newest accepted delivery is older than its
  ``max_age_days`` on the run date. The rules that read it
  (:func:`rules_reading`, from the facts they name) do not close their open
  warnings while it is: a warning must not close because data stopped
  arriving (:func:`delivery_health`).
* **What does the operator see?** One row per source: last delivery, age,
  rows, status (ok, stale, held, never delivered).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.contract import regions
from monitor.contract.asof import HOLD, LIVE_STATUSES, is_live
from monitor.contract.sources import SNAPSHOT, SOURCES, Source
from monitor.policy.facts import FACTS_FROM_EVERY_SOURCE, FACTS_FROM_SOURCE
from monitor.policy.params import ParameterError, parse_entries
from monitor.policy.rules import Rule
from monitor.triage.lifecycle import CONTINUING, NEW

DEFAULTS = "defaults"
#: A source's status on a run date.
OK, STALE, HELD, NEVER = "ok", "stale", "held", "never delivered"
#: The manifest's ``hold`` of a delivery's files: waiting for an operator (HELD), rejected by
#: one, or superseded by a later delivery before anyone decided.
REJECTED, SUPERSEDED = "rejected", "superseded"
#: The county partition of rows the registry did not know: not a county, never judged.
UNMATCHED = "unmatched"
#: Manifest columns that hold each accepted file's profile (JSON text).
PROFILE_COLUMNS = ("rows_by_county", "empty_by_column")
#: Shares and ratios at a bound count as within it, whatever binary fractions make of them.
_SLACK = 1e-9
#: A setting entry with no start: in force on every date (a plain number in an override).
ALWAYS = pd.Timestamp("1900-01-01")


class DeliveryExpectationError(ParameterError):
    """A delivery expectations file that cannot be used (names the file and the entry)."""


@dataclass(frozen=True)
class Setting:
    """What one setting of ``deliveries.yaml`` may be."""

    unit: str
    minimum: float
    maximum: float | None
    whole: bool = False
    #: Whether zero itself is allowed (ratios above zero, shares from zero).
    minimum_allowed: bool = True
    #: Whether a plain ``null`` is allowed (a source that is never stale).
    nullable: bool = False

    def problem(self, value: float | None) -> str | None:
        """Why ``value`` is out of range, or None."""
        if value is None:
            return None if self.nullable else "must be a number"
        low = value >= self.minimum if self.minimum_allowed else value > self.minimum
        high = self.maximum is None or value <= self.maximum
        whole = not self.whole or float(value).is_integer()
        if low and high and whole:
            return None
        bound = ((">= " if self.minimum_allowed else "> ") + f"{self.minimum:g}"
                 + ("" if self.maximum is None else f" and <= {self.maximum:g}"))
        return f"{value:g} is out of range (a {'whole ' if self.whole else ''}{self.unit} {bound})"


SETTINGS: dict[str, Setting] = {
    "max_age_days": Setting("number of days", 1, None, whole=True, nullable=True),
    "min_rows_ratio": Setting("ratio", 0, 1, minimum_allowed=False),
    "max_quarantined_share": Setting("share", 0, 1),
    "max_empty_share_jump": Setting("share", 0, 1, minimum_allowed=False),
    "min_rows_judged": Setting("number of rows", 0, None, whole=True),
}
#: Settings every deployment must have a value of (the shipped defaults give them).
REQUIRED_DEFAULTS = ("min_rows_ratio", "max_quarantined_share", "max_empty_share_jump",
                     "min_rows_judged")


@dataclass(frozen=True)
class Entry:
    """One dated value of a setting."""

    start: pd.Timestamp
    value: float | None
    source: str
    origin: str


def _scope_entries(scope: str, raw: object, origin: str) -> dict[tuple[str, str], tuple]:
    """The settings of one scope (``defaults`` or a source) of a deliveries file."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise DeliveryExpectationError(
            f"{origin}: '{scope}': expected a mapping of settings "
            f"({', '.join(SETTINGS)}), got {type(raw).__name__}")
    parsed = {}
    for setting, value in raw.items():
        name = f"{scope}.{setting}"
        if setting not in SETTINGS:
            raise DeliveryExpectationError(
                f"{origin}: setting '{name}': unknown setting (known: {', '.join(SETTINGS)})")
        rule = SETTINGS[setting]
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            entries = [Entry(ALWAYS, None if value is None else float(value), origin, origin)]
        else:
            try:
                rows = parse_entries(name, value, origin, what="setting")
            except ParameterError as error:
                raise DeliveryExpectationError(str(error)) from None
            if any(row["region"] for row in rows):
                raise DeliveryExpectationError(
                    f"{origin}: setting '{name}': 'region' is not used here (a delivery "
                    "covers every county)")
            entries = [Entry(row["from"], row["value"], row["source"], origin) for row in rows]
        for number, entry in enumerate(entries, start=1):
            problem = rule.problem(entry.value)
            if problem:
                raise DeliveryExpectationError(
                    f"{origin}: setting '{name}': entry {number}: {problem}")
        parsed[(scope, setting)] = tuple(sorted(entries, key=lambda entry: entry.start))
    return parsed


def _document_entries(document: object, origin: str) -> dict[tuple[str, str], tuple]:
    """Every setting of a deliveries file, by (scope, setting)."""
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise DeliveryExpectationError(f"{origin}: expected a mapping of sources to settings")
    entries = {}
    for scope, raw in document.items():
        if scope != DEFAULTS and scope not in SOURCES:
            raise DeliveryExpectationError(
                f"{origin}: '{scope}': unknown source (known: {DEFAULTS}, "
                f"{', '.join(SOURCES)})")
        entries.update(_scope_entries(str(scope), raw, origin))
    return entries


@dataclass(frozen=True)
class DeliveryExpectations:
    """Every source's expected deliveries, after a deployment's overrides.

    Examples
    --------
    >>> expectations = DeliveryExpectations.from_files({
    ...     "defaults": {"min_rows_ratio": 0.8, "max_quarantined_share": 0.05,
    ...                  "max_empty_share_jump": 0.3, "min_rows_judged": 50},
    ...     "medical": {"max_age_days": [{"from": dt.date(2024, 1, 1), "value": 35}]}},
    ...     "shipped")
    >>> expectations.value("medical", "max_age_days", dt.date(2026, 6, 30))
    35.0
    >>> expectations.value("medical", "min_rows_ratio", dt.date(2026, 6, 30))
    0.8
    >>> expectations.value("feedback", "max_age_days", dt.date(2026, 6, 30)) is None
    True
    """

    entries: dict[tuple[str, str], tuple[Entry, ...]]

    @classmethod
    def from_files(cls, shipped: object, shipped_origin: str, override: object = None,
                   override_origin: str | None = None) -> DeliveryExpectations:
        """The shipped expectations with a deployment's override applied."""
        base = cls(_document_entries(shipped, shipped_origin))
        missing = [name for name in REQUIRED_DEFAULTS if (DEFAULTS, name) not in base.entries]
        if missing:
            raise DeliveryExpectationError(f"{shipped_origin}: '{DEFAULTS}' must set "
                                           f"{', '.join(missing)}")
        if override is None:
            return base
        return cls({**base.entries, **_document_entries(override, override_origin or "override")})

    def entry(self, source: str, setting: str, on: dt.date) -> Entry | None:
        """The entry in force for ``source`` on ``on``: the source's own, else the default.

        Before every entry has started (a delivery dated before the first
        ``from``, a backfill), the earliest entry applies: a check must not
        lapse, nor a run fail, because a file's date is older than the rules.
        """
        scopes = [self.entries.get((source, setting), ()),
                  self.entries.get((DEFAULTS, setting), ())]
        for entries in scopes:
            started = [entry for entry in entries if entry.start <= pd.Timestamp(on)]
            if started:
                return started[-1]
        return next((entries[0] for entries in scopes if entries), None)

    def value(self, source: str, setting: str, on: dt.date) -> float | None:
        """The value in force, or None (a setting without a value: never stale)."""
        entry = self.entry(source, setting, on)
        return None if entry is None else entry.value


# --------------------------------------------------------------------------- held deliveries


def profile_text(counts: Mapping[str, int]) -> str:
    """A profile's counts as the manifest keeps them: JSON text, keys sorted.

    Examples
    --------
    >>> profile_text({"500102": 3, "500101": 12})
    '{"500101": 12, "500102": 3}'
    """
    return json.dumps({str(key): int(value) for key, value in counts.items()}, sort_keys=True)


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _summed(texts: list[object]) -> dict[str, int] | None:
    """The sum of JSON count profiles; None if any is missing (ingested before profiles)."""
    total: dict[str, int] = {}
    for text in texts:
        if _missing(text):
            return None
        for key, value in json.loads(text).items():
            total[key] = total.get(key, 0) + int(value)
    return total


@dataclass(frozen=True)
class DeliveryProfile:
    """What one delivery (every file of one source and date) holds."""

    delivery_date: str
    #: (file, rows read, rows quarantined) of each file.
    files: tuple[tuple[str, int, int], ...]
    rows_accepted: int
    #: Accepted rows per county partition; None when not recorded.
    rows_by_county: dict[str, int] | None
    #: Accepted rows with each column empty; None when not recorded.
    empty_by_column: dict[str, int] | None

    @classmethod
    def of(cls, entries: list[dict]) -> DeliveryProfile:
        """The profile of a delivery from its manifest entries (duplicates resolved)."""
        return cls(str(entries[0]["delivery_date"]),
                   tuple((entry["file"], int(entry["rows_read"]), int(entry["rows_quarantined"]))
                         for entry in entries),
                   sum(int(entry["rows_accepted"]) for entry in entries),
                   **{column: _summed([entry.get(column) for entry in entries])
                      for column in PROFILE_COLUMNS})


@dataclass(frozen=True)
class HoldReason:
    """Why a delivery is held, for the operator (English) and the report (Chinese)."""

    check: str
    text: str
    text_zh: str


def _county_reasons(current: DeliveryProfile, previous: DeliveryProfile, ratio: float,
                    judged: float) -> list[HoldReason]:
    names = regions.county_names()
    reasons = []
    for county, before in sorted(previous.rows_by_county.items()):
        now = current.rows_by_county.get(county, 0)
        if county == UNMATCHED or before < judged or now >= ratio * before - _SLACK:
            continue
        name = names.get(county, county)
        if now == 0:
            reasons.append(HoldReason(
                "county_missing",
                f"county {county} ({name}) is missing: {before:,} rows in the "
                f"{previous.delivery_date} delivery, none in this one",
                f"缺少{name}（{county}）的数据：上次（{previous.delivery_date}）{before:,}行，"
                "本次0行"))
        else:
            reasons.append(HoldReason(
                "county_rows",
                f"county {county} ({name}) has {now:,} rows, {now / before:.0%} of the "
                f"{before:,} in the {previous.delivery_date} delivery (at least {ratio:.0%} "
                "expected)",
                f"{name}（{county}）仅{now:,}行，为上次（{previous.delivery_date}）{before:,}行的"
                f"{now / before:.0%}，低于{ratio:.0%}"))
    return reasons


def _empty_reasons(source: Source, current: DeliveryProfile, previous: DeliveryProfile,
                   jump: float, judged: float) -> list[HoldReason]:
    if current.rows_accepted < max(judged, 1) or previous.rows_accepted < max(judged, 1):
        return []
    zh = {spec.name: spec.zh for spec in source.columns}
    reasons = []
    for column in sorted(set(current.empty_by_column) | set(previous.empty_by_column)):
        now = current.empty_by_column.get(column, 0) / current.rows_accepted
        before = previous.empty_by_column.get(column, 0) / previous.rows_accepted
        if now - before > jump + _SLACK:
            reasons.append(HoldReason(
                "empty_share",
                f"column {column} ({zh.get(column, column)}) is empty in {now:.0%} of the rows, "
                f"against {before:.0%} in the {previous.delivery_date} delivery (a rise of at "
                f"most {jump:.0%} expected)",
                f"字段{zh.get(column, column)}空值占{now:.0%}，上次（{previous.delivery_date}）"
                f"为{before:.0%}，上升超过{jump:.0%}"))
    return reasons


def hold_reasons(source: Source, current: DeliveryProfile, previous: DeliveryProfile | None,
                 expectations: DeliveryExpectations, on: dt.date) -> list[HoldReason]:
    """Why a delivery should be held (an empty list: it may become the state).

    ``previous`` is the source's accepted delivery before it (None: the first
    one); ``on`` the delivery date, which picks the settings in force.
    """
    def setting(name: str) -> float:
        return float(expectations.value(source.name, name, on))

    judged = setting("min_rows_judged")
    reasons = []
    limit = setting("max_quarantined_share")
    for file, read, quarantined in current.files:
        if read >= max(judged, 1) and quarantined / read > limit + _SLACK:
            reasons.append(HoldReason(
                "quarantined_share",
                f"{file}: {quarantined:,} of {read:,} rows quarantined ({quarantined / read:.1%}; "
                f"at most {limit:.0%} expected)",
                f"{file}：{read:,}行中隔离{quarantined:,}行（{quarantined / read:.1%}），"
                f"超过{limit:.0%}"))
    if previous is None:
        return reasons
    if (source.kind == SNAPSHOT and current.rows_by_county is not None
            and previous.rows_by_county is not None):
        reasons += _county_reasons(current, previous, setting("min_rows_ratio"), judged)
    if current.empty_by_column is not None and previous.empty_by_column is not None:
        reasons += _empty_reasons(source, current, previous, setting("max_empty_share_jump"),
                                  judged)
    return reasons


# --------------------------------------------------------------------------- stale sources


HEALTH_COLUMNS = {
    "source": "string", "department": "string", "kind": "string", "status": "string",
    "last_delivery": "string", "age_days": "Int64", "max_age_days": "Int64", "rows": "Int64",
    "files": "Int64", "stale": "bool", "held_deliveries": "string", "hold_reasons": "string",
}
def delivery_health(manifest: pd.DataFrame, expectations: DeliveryExpectations, as_of: dt.date,
                    held_reasons: Mapping[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """One row per source on ``as_of``: its last accepted delivery, age, rows and status.

    Parameters
    ----------
    manifest : pandas.DataFrame
        The ingest manifest.
    expectations : DeliveryExpectations
        ``max_age_days`` of each source.
    as_of : datetime.date
        The run date: deliveries dated after it do not count.
    held_reasons : mapping, optional
        Why each held delivery was held, by (source, delivery date).

    Returns
    -------
    pandas.DataFrame
        :data:`HEALTH_COLUMNS`, in contract source order. ``status`` is
        ``held`` when a delivery waits for an operator, else ``stale`` when the
        last accepted delivery is more than ``max_age_days`` old, ``never
        delivered`` when none was accepted, else ``ok``.
    """
    held_reasons = held_reasons or {}
    dated = manifest[pd.to_datetime(manifest["delivery_date"]) <= pd.Timestamp(as_of)]
    rows = []
    for name, source in SOURCES.items():
        entries = dated[dated["source"] == name]
        live = entries[is_live(entries)]
        held = sorted(set(entries.loc[(entries[HOLD] == HELD).fillna(False).to_numpy(dtype=bool),
                                      "delivery_date"]))
        max_age = expectations.value(name, "max_age_days", as_of)
        last = age = count = files = None
        if len(live):
            last = str(live["delivery_date"].max())
            latest = live[live["delivery_date"] == last]
            age = (as_of - dt.date.fromisoformat(last)).days
            # A file with the bytes of an earlier one holds that one's rows.
            count = DeliveryProfile.of(_with_originals(
                latest.to_dict("records"), entries.to_dict("records"))).rows_accepted
            files = len(latest)
        stale = max_age is not None and age is not None and age > max_age
        status = HELD if held else STALE if stale else NEVER if last is None else OK
        rows.append({
            "source": name, "department": source.department, "kind": source.kind,
            "status": status, "last_delivery": last, "age_days": age,
            "max_age_days": None if max_age is None else int(max_age), "rows": count,
            "files": files, "stale": stale, "held_deliveries": ", ".join(held) or None,
            "hold_reasons": "; ".join(f"{day}: {held_reasons[(name, day)]}" for day in held
                                      if (name, day) in held_reasons) or None,
        })
    return pd.DataFrame(rows, columns=list(HEALTH_COLUMNS)).astype(HEALTH_COLUMNS)


def rule_names(rule: Rule) -> frozenset[str]:
    """Every fact or parameter a rule uses: its condition, evidence and reason."""
    return frozenset({*rule.condition.names, *rule.evidence, *rule.reason_fields})


def rules_reading(rules: list[Rule]) -> dict[str, tuple[str, ...]]:
    """The rule codes that read each source, from the facts the rules name.

    Every rule reads the registry; a rule that reads the model's score, or
    depends on the other rules' hits, reads every source.

    Examples
    --------
    >>> from monitor.io.config import load_rule_definitions
    >>> from monitor.policy.rules import parse_rules
    >>> reading = rules_reading(parse_rules(load_rule_definitions()))
    >>> reading["medical"]
    ('SINGLE_PERSON', 'MEDICAL_BURDEN', 'MODEL_RISK')
    >>> len(reading["registry"])
    20
    """
    reading = {}
    for source in SOURCES:
        facts = FACTS_FROM_SOURCE.get(source)
        reading[source] = tuple(
            rule.code for rule in rules
            if source == "registry" or (facts is not None and (
                rule.after_other_rules or rule_names(rule) & (facts | FACTS_FROM_EVERY_SOURCE))))
    return reading


def stale_rules(health: pd.DataFrame, rules: list[Rule]) -> dict[str, tuple[str, ...]]:
    """For each rule that reads a stale source, the stale sources it reads."""
    reading = rules_reading(rules)
    stale = [source for source in health.loc[health["stale"], "source"]]
    found: dict[str, list[str]] = {}
    for source in stale:
        for code in reading[source]:
            found.setdefault(code, []).append(source)
    return {code: tuple(sources) for code, sources in found.items()}


def stale_remarks(health: pd.DataFrame) -> dict[str, str]:
    """For each stale source, the words that end a referral row resting on it (Chinese).

    Examples
    --------
    >>> health = pd.DataFrame({"source": ["medical"], "department": ["医保结算（医保）"],
    ...                        "last_delivery": ["2026-03-31"], "age_days": [91],
    ...                        "stale": [True]})
    >>> stale_remarks(health)["medical"]
    '医保结算（医保）数据最后报送于2026-03-31（已91天未更新）'
    """
    stale = health[health["stale"].to_numpy(dtype=bool)]
    return {source: f"{department}数据最后报送于{last}（已{age}天未更新）"
            for source, department, last, age in zip(
                stale["source"], stale["department"], stale["last_delivery"], stale["age_days"],
                strict=True)}


def stale_note(sources: list[str], remarks: Mapping[str, str]) -> str:
    """The note that ends a referral row whose warnings rest on stale sources.

    Examples
    --------
    >>> stale_note(["medical"], {"medical": "医保数据最后报送于2026-03-31"})
    '（注：医保数据最后报送于2026-03-31，相关预警暂不关闭）'
    """
    known = [remarks[source] for source in dict.fromkeys(sources) if source in remarks]
    return f"（注：{'；'.join(known)}，相关预警暂不关闭）" if known else ""


# --------------------------------------------------------------------------- decisions


#: What a decision did to a delivery (the decisions log's ``decision``).
ACCEPTED, RELEASED = "accepted", "released"
BY_INGEST, BY_OPERATOR = "ingest", "operator"


@dataclass(frozen=True)
class Decision:
    """One entry of the delivery decisions log: what was decided about a delivery, and why."""

    source: str
    delivery_date: str
    decision: str
    reasons: str
    reasons_zh: str
    decided_by: str
    note: str = ""


def _with_originals(entries: list[dict], every: list[dict]) -> list[dict]:
    """Entries with each duplicate replaced by the entry of the file whose bytes it repeats.

    ``every`` holds the source's manifest entries (a duplicate repeats a file
    of its own source).
    """
    if not any(entry["status"] == "duplicate" for entry in entries):
        return entries
    originals = {entry["lake_file"]: entry for entry in every if entry["status"] == "accepted"}
    return [originals.get(entry["lake_file"]) if entry["status"] == "duplicate" else entry
            for entry in entries if entry["status"] != "duplicate"
            or entry["lake_file"] in originals]


def _entry_is_live(entry: dict) -> bool:
    return entry["status"] in LIVE_STATUSES and _missing(entry[HOLD])


def judge_delivery(manifest: pd.DataFrame, source: Source, delivery_date: str,
                   expectations: DeliveryExpectations, operator_decided: bool = False,
                   new_files: set[str] | None = None) -> tuple[pd.DataFrame, list[Decision]]:
    """Hold or accept a delivery that an ingest added files to; return the manifest and why.

    The delivery (every accepted file of the source and date, earlier runs'
    included, but for those an operator rejected) is compared with the
    source's accepted delivery before it (:func:`hold_reasons`). Failing,
    its files are held. Passing, a delivery held before is accepted (a later
    file completed it), and a snapshot supersedes the source's older
    deliveries still held. Files an operator has released stay as they
    decided: with ``operator_decided``, only the ``new_files`` can be held.
    """
    # A source's entries are few (one per file delivered): plain records, one pass each.
    own = manifest[(manifest["source"] == source.name).to_numpy(dtype=bool)]
    entries = own.to_dict("records")
    labels = own.index.to_numpy()
    members = [number for number, entry in enumerate(entries)
               if entry["delivery_date"] == delivery_date and entry["status"] in LIVE_STATUSES
               and entry[HOLD] not in (REJECTED, SUPERSEDED)]
    if not members or (operator_decided and new_files is not None
                       and not any(entries[n]["file"] in new_files for n in members)):
        return manifest, []
    current = DeliveryProfile.of(_with_originals([entries[n] for n in members], entries))
    earlier = [entry for entry in entries
               if _entry_is_live(entry) and entry["delivery_date"] < delivery_date]
    previous = None
    if earlier:
        latest = max(entry["delivery_date"] for entry in earlier)
        previous = DeliveryProfile.of(_with_originals(
            [entry for entry in earlier if entry["delivery_date"] == latest], entries))
    reasons = hold_reasons(source, current, previous, expectations,
                           dt.date.fromisoformat(delivery_date))
    if reasons:
        if operator_decided:
            # What the operator released stays released; the files added since wait.
            members = [n for n in members if new_files is None or entries[n]["file"] in new_files]
        manifest = manifest.copy()
        manifest.loc[labels[members], HOLD] = HELD
        return manifest, [Decision(source.name, delivery_date, HELD,
                                   "; ".join(reason.text for reason in reasons),
                                   "；".join(reason.text_zh for reason in reasons), BY_INGEST)]
    was_held = any(entries[n][HOLD] == HELD for n in members)
    older = [number for number, entry in enumerate(entries)
             if source.kind == SNAPSHOT and entry[HOLD] == HELD
             and entry["delivery_date"] < delivery_date]
    decisions = []
    if not was_held and not older:
        return manifest, decisions
    manifest = manifest.copy()
    if was_held:
        manifest.loc[labels[members], HOLD] = pd.NA
        decisions.append(Decision(source.name, delivery_date, ACCEPTED,
                                  "passes its checks with the files delivered since it was held",
                                  "补充文件后通过校验", BY_INGEST))
    for day in sorted({entries[n]["delivery_date"] for n in older}):
        decisions.append(Decision(source.name, day, SUPERSEDED,
                                  f"superseded by the {delivery_date} delivery, which passes "
                                  "its checks", f"已被{delivery_date}的交付取代", BY_INGEST))
    manifest.loc[labels[older], HOLD] = SUPERSEDED
    return manifest, decisions


def decide(manifest: pd.DataFrame, source: str, delivery_date: str, release: bool,
           note: str) -> tuple[pd.DataFrame, Decision]:
    """An operator's decision on a held delivery: release it (it may become the state) or reject it.

    Raises
    ------
    ValueError
        When the source has no held delivery of that date (the message lists
        the ones that are held).
    """
    held = ((manifest["source"] == source) & (manifest[HOLD] == HELD)).fillna(False).to_numpy(
        dtype=bool)
    members = held & (manifest["delivery_date"] == delivery_date).to_numpy(dtype=bool)
    if not members.any():
        waiting = sorted(set(manifest.loc[held, "delivery_date"]))
        raise ValueError(f"{source} has no held delivery dated {delivery_date}"
                         + (f" (held: {', '.join(waiting)})" if waiting else
                            " (none of its deliveries is held)"))
    manifest = manifest.copy()
    manifest.loc[members, HOLD] = pd.NA if release else REJECTED
    decision = RELEASED if release else REJECTED
    return manifest, Decision(source, delivery_date, decision,
                              "released by an operator" if release else "rejected by an operator",
                              "人工放行" if release else "人工拒收", BY_OPERATOR, note)


# --------------------------------------------------------------------------- what the operator sees


#: How far back the report's chart of rows per delivery looks.
HISTORY_DAYS = 400


def _plain(value: object) -> object:
    """A value as JSON can hold it (missing as None, numpy numbers as Python's)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def health_records(health: pd.DataFrame) -> list[dict]:
    """:func:`delivery_health`'s rows as plain dicts (missing values as None), for JSON."""
    return [{key: _plain(value) for key, value in row.items()}
            for row in health.to_dict("records")]


def deliveries_summary(health: pd.DataFrame, decisions: list[Decision], hits: pd.DataFrame
                       ) -> dict:
    """The run manifest's ``deliveries`` section (also the report's and the artifact's).

    Each source's health, the held and stale sources, what this run's
    ingest decided, and the listed warnings kept open because they rest on
    stale data, by rule and by source.
    """
    resting = hits[hits["stale_sources"].notna().to_numpy(dtype=bool)] \
        if "stale_sources" in hits else hits.iloc[:0]
    if "status" in resting:
        resting = resting[resting["status"].isin([NEW, CONTINUING]).to_numpy(dtype=bool)]
    sources = (resting["stale_sources"].str.split(";").explode() if len(resting)
               else pd.Series(dtype="string"))
    return {
        "sources": health_records(health),
        "held": [f"{source} {day}" for source, days in zip(
            health["source"], health["held_deliveries"], strict=True)
            if isinstance(days, str) for day in days.split(", ")],
        "stale": [str(source) for source in health.loc[health["stale"], "source"]],
        "never_delivered": [str(source) for source in health.loc[
            health["status"] == NEVER, "source"]],
        "decisions": [vars(decision) for decision in decisions],
        "warnings_kept_open": {
            "total": len(resting),
            "by_rule": {str(key): int(value) for key, value in
                        resting["rule"].value_counts().sort_index().items()},
            "by_source": {str(key): int(value) for key, value in
                          sources.value_counts().sort_index().items()},
        },
    }


def attention_line(section: dict) -> str | None:
    """One line naming the held and stale sources (None when every source is ok).

    Examples
    --------
    >>> attention_line({"held": ["registry 2026-06-30"], "stale": ["medical"],
    ...                 "warnings_kept_open": {"total": 12}})
    'Deliveries: held registry 2026-06-30; stale medical (12 warnings kept open)'
    >>> attention_line({"held": [], "stale": [], "warnings_kept_open": {"total": 0}}) is None
    True
    """
    parts = []
    if section["held"]:
        parts.append(f"held {', '.join(section['held'])}")
    if section["stale"]:
        parts.append(f"stale {', '.join(section['stale'])} "
                     f"({section['warnings_kept_open']['total']:,} warnings kept open)")
    return "Deliveries: " + "; ".join(parts) if parts else None


def delivery_rows(manifest: pd.DataFrame, as_of: dt.date, days: int = HISTORY_DAYS
                  ) -> pd.DataFrame:
    """Accepted rows per delivery of each source over the last ``days``, held ones marked."""
    start = pd.Timestamp(as_of) - pd.Timedelta(days=days)
    dates = pd.to_datetime(manifest["delivery_date"])
    read = manifest[((dates > start) & (dates <= pd.Timestamp(as_of))).to_numpy(dtype=bool)
                    & manifest["status"].isin(LIVE_STATUSES).to_numpy(dtype=bool)]
    columns = {"source": "string", "department": "string", "delivery_date": "string",
               "files": "int64", "rows": "int64", "held": "bool"}
    if read.empty:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in columns.items()})
    read = read.assign(held=read[HOLD].notna().to_numpy(dtype=bool))
    rows = read.groupby(["source", "delivery_date"], sort=True).agg(
        files=("file", "size"), rows=("rows_accepted", "sum"), held=("held", "any")
    ).reset_index()
    rows.insert(1, "department", rows["source"].map({name: source.department
                                                     for name, source in SOURCES.items()}))
    return rows.astype(columns)
