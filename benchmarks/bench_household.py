"""How long the household file (一户一档) takes to answer, on a home's lake.

    python benchmarks/bench_household.py --home /path/to/home [--households 20] [--commands 3]

Picks households from the newest registry delivery (half of them with
warnings, when the home has runs), and times, in this process, the library's
answer for each: the lake read with Parquet filters
(:func:`monitor.io.household.read_household`), the file put together
(:func:`monitor.reports.household.household_file`: facts, rules, score and its
factors) and the text rendered; then ``monitor household`` as a separate
process for a few of them, which adds the interpreter and the imports
(scikit-learn's alone is about 0.7 s, paid to unpickle the model). Prints
medians and maxima. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds

from monitor.io.config import load_parameters, load_rule_definitions, load_scoring
from monitor.io.home import Home
from monitor.io.household import read_household, run_dates
from monitor.io.lake import lake_view
from monitor.io.models import load_latest_model
from monitor.policy.rules import parse_rules
from monitor.policy.scoring import RulesOnlyScore
from monitor.reports.household import household_file
from monitor.reports.household_views import household_html, household_json, household_text


def _households(home: Path, as_of, count: int, seed: int = 7) -> list[str]:
    """``count`` households: half with warnings on record (if any run), half from the registry."""
    view = lake_view(home, as_of, moves=False)
    registry = [str(home / "lake" / "registry" / f"{stem}.parquet")
                for stem in view.entries["registry"]["lake_file"]]
    everyone = ds.dataset(registry).to_table(columns=["household_id"]).column(0)
    chosen = np.random.default_rng(seed).choice(len(everyone), count, replace=False)
    picked = [everyone[int(row)].as_py() for row in chosen]
    state = Home.of(home).warning_state / f"{as_of.isoformat()}.parquet"
    if state.exists():
        warned = ds.dataset(str(state)).to_table(columns=["household_id"]).column(0)
        rows = np.random.default_rng(seed).choice(len(warned), count // 2, replace=False)
        picked[:count // 2] = [warned[int(row)].as_py() for row in rows]
    return list(dict.fromkeys(picked))


def _line(label: str, times: list[float]) -> str:
    return (f"{label:<34} median {statistics.median(times):6.2f} s   "
            f"max {max(times):6.2f} s   ({len(times)} households)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--households", type=int, default=20)
    parser.add_argument("--commands", type=int, default=3,
                        help="How many of them to time as `monitor household` processes.")
    args = parser.parse_args()
    home = args.home
    as_of = run_dates(home)[-1]
    households = _households(home, as_of, args.households)
    started = time.perf_counter()
    params = load_parameters(home, as_of)
    rules = parse_rules(load_rule_definitions())
    scoring = RulesOnlyScore.from_definition(load_scoring())
    model = load_latest_model(home, as_of)
    print(f"{home} as of {as_of}; model: {None if model is None else model.version}; "
          f"configuration and model loaded in {time.perf_counter() - started:.2f} s")
    reads, builds, texts, answers, pages = [], [], [], [], []
    for household in households:
        started = time.perf_counter()
        rows = read_household(home, household, as_of)
        read = time.perf_counter()
        file = household_file(household, rows.sources, rows.income_history, rows.state,
                              rows.events, as_of, rows.run_date, params, rules, scoring, model)
        built = time.perf_counter()
        household_text(file)
        household_json(file)
        done = time.perf_counter()
        household_html(file)  # without the font: its subset is the font's business
        pages.append(time.perf_counter() - done)
        reads.append(read - started)
        builds.append(built - read)
        texts.append(done - built)
        answers.append(done - started)
    print(_line("read (Parquet filters)", reads))
    print(_line("facts, rules, score, history", builds))
    print(_line("text and JSON", texts))
    print(_line("html page (font apart)", pages))
    print(_line("answer (read + file + text)", answers))
    monitor = str(Path(sys.executable).with_name("monitor"))
    commands = []
    for household in households[:args.commands]:
        started = time.perf_counter()
        subprocess.run([monitor, "household", "--home", str(home), "--id", household],
                       check=True, capture_output=True)
        commands.append(time.perf_counter() - started)
    if commands:
        print(_line("`monitor household` process", commands))


if __name__ == "__main__":
    main()
