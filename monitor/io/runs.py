"""What a run says of itself: its manifest, its lines of progress, and what each flow returns.

The nightly flow, the training and the tune (``flows/``) only wire the
library's steps; what their manifests hold and what they give back to the
command line is put together here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from monitor.contract.regions import BUREAU_REGION
from monitor.io.config import Configuration
from monitor.io.ingest import IngestReport
from monitor.io.outputs import code_version, masked
from monitor.model.risk import ModelSettings
from monitor.policy.params import Parameters
from monitor.triage.evaluation import CountyEvaluation
from monitor.validation.idcard import mask_numbers_in_line


@dataclass
class NightlyRun:
    """What a night gives back: where its outputs are, its summary, and how it went."""

    out: Path
    summary: dict
    stage_seconds: dict[str, float]
    ingest: IngestReport
    #: Which model scored the run (the run manifest's model entry).
    model: dict
    notices: list[str] = field(default_factory=list)
    #: The delivery health section of the summary.
    deliveries: dict = field(default_factory=dict)


@dataclass
class TrainingRun:
    """What a training gives back: the model written and its validation figures."""

    folder: Path
    version: str
    chosen: str
    validation: dict
    rows: dict
    stage_seconds: dict[str, float]


@dataclass
class TuneRun:
    """What a tune gives back: its report folder, tables and what it was about."""

    folder: Path
    tables: dict[str, pd.DataFrame]
    about: dict


def unanswered_rows(manifest: pd.DataFrame, run_date: dt.date) -> int:
    """Rows of the township workbooks this date's run took in that nobody answered."""
    took = (manifest["source"] == "feedback") & (manifest["ingested_on"] == run_date.isoformat())
    return int(manifest.loc[took.to_numpy(dtype=bool), "rows_unanswered"].sum())



def delivered_inputs(manifest: pd.DataFrame, run_date: dt.date) -> list[dict]:
    """Every landing file delivered up to the run date, with its hash and row counts."""
    manifest = manifest[pd.to_datetime(manifest["delivery_date"]) <= pd.Timestamp(run_date)]
    columns = ["source", "delivery_date", "file", "sha256", "status", "rows_read",
               "rows_accepted", "rows_quarantined", "rows_unanswered", "message"]
    return manifest.sort_values(["delivery_date", "source", "file"])[columns].to_dict("records")



def ingest_line(report: IngestReport) -> str:
    """The ingest in one line: files, rows accepted and quarantined, files rejected."""
    by_source = report.by_source()
    if by_source.empty:
        return "ingested: nothing new"
    return (f"ingested: {int(by_source['files'].sum()):,} files, "
            f"{int(by_source['rows_accepted'].sum()):,} rows accepted, "
            f"{int(by_source['rows_quarantined'].sum()):,} quarantined, "
            f"{int(by_source['rejected'].sum()):,} files rejected")



def health_line(health: pd.DataFrame) -> str:
    """Sources by status (ok, stale, held, never delivered), in one line."""
    if "status" not in health or health.empty:
        return "no sources"
    return ", ".join(f"{count} {status}" for status, count in
                     health["status"].value_counts(sort=False).items())



def run_manifest(run_date: dt.date, configuration: Configuration, counties: list[str],
                  results: list[CountyEvaluation], ingest_report: IngestReport,
                  ingest_manifest: pd.DataFrame, summary: dict) -> dict:
    """``run_manifest.json`` but for the report's notices and the stage timings."""
    return {
        "run_date": run_date.isoformat(),
        "code_version": code_version(),
        "rules_and_parameters": configuration.versions,
        "model": configuration.model_manifest,
        "counties": len(counties),
        "households_evaluated": sum(result.households_evaluated for result in results),
        "persons_evaluated": sum(result.persons_evaluated for result in results),
        "ingested_this_run": ingest_report.by_source().to_dict("records"),
        # What departments sent may name a person (a file named after one): masked here, so
        # that the report drawn from these lines shows them masked too.
        "notices": [mask_numbers_in_line(notice) for notice in ingest_report.notices],
        "rejected_files": [mask_numbers_in_line(outcome.message)
                           for outcome in ingest_report.files if outcome.status == "rejected"],
        "inputs": masked(delivered_inputs(ingest_manifest, run_date)),
        **summary,
    }


def tune_manifest(tune_date: dt.date, dates: list[dt.date], wanted: list[dt.date],
                  candidate: Path, candidate_text: bytes, capacity: int,
                  settings: ModelSettings, parameters: dict[str, Parameters]) -> dict:
    """What a tune was about (its report's ``about.json``): dates, candidate, capacity, model."""
    return {
        "tune_date": tune_date.isoformat(),
        "as_of_dates": [day.isoformat() for day in dates],
        # Months asked for before the first registry delivery: nothing to evaluate there.
        "dates_before_any_delivery": [day.isoformat() for day in wanted if day not in dates],
        "candidate": str(candidate),
        "candidate_sha256": hashlib.sha256(candidate_text).hexdigest(),
        "capacity_per_township": capacity,
        "horizon_months": settings.label.horizon_months,
        "programs_entered": list(settings.label.programs_entered),
        # Bureau-wide (a region's own entry may differ): marked on the capacity curve.
        "model_threshold": {side: params.value("model_threshold", tune_date, BUREAU_REGION)
                            for side, params in parameters.items()},
        "code_version": code_version(),
    }
