"""Time and peak memory to evaluate every rule for a whole ingested lake.

    python benchmarks/bench_rules.py --home HOME --date 2026-06-30     # an ingested home
    python benchmarks/bench_rules.py --households 100000                # builds one first

Prints the seconds of each stage (read the sources as of the date, build the
facts, evaluate the rules) and the process's peak resident memory. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path

RUN_DATE = dt.date(2026, 6, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an ingested home (default: build one)")
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=RUN_DATE)
    args = parser.parse_args()

    from monitor.io.config import load_parameters, load_rule_definitions
    from monitor.io.ingest import ingest_landing
    from monitor.io.lake import read_as_of
    from monitor.policy.facts import SOURCE_COLUMNS, build_facts, history_needed
    from monitor.policy.rules import evaluate, parse_rules

    home = args.home
    if home is None:
        from monitor.io.sample_writer import write_sample

        home = Path(tempfile.mkdtemp(prefix="bench-rules-"))
        write_sample(home, args.households, args.seed, args.date)
        ingest_landing(home, args.date)

    timings = {}
    started = time.perf_counter()
    params = load_parameters(home, args.date)
    rules = parse_rules(load_rule_definitions())
    sources = read_as_of(home, args.date, columns=SOURCE_COLUMNS,
                         since=history_needed(params, args.date))
    timings["read"] = time.perf_counter() - started
    mark = time.perf_counter()
    facts = build_facts(sources, args.date, params)
    timings["facts"] = time.perf_counter() - mark
    mark = time.perf_counter()
    hits = evaluate(rules, facts, params)
    timings["rules"] = time.perf_counter() - mark
    total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"households={len(facts.households):,} persons={len(facts.persons):,} "
          f"hits={len(hits):,} households_hit={hits['household_id'].nunique():,}")
    print("  " + "  ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timings.items())
          + f"  total {total:.1f} s  peak {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
