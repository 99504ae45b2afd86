"""Where the wall time of a finished `snakemake` run went, and how much of it was training.

    python workflow/scripts/pipeline_timing.py [--log .snakemake/log/<run>.snakemake.log]

Reads the run's Snakemake log (default: the newest in .snakemake/log/) for its start and end, the
runs' summary.json-derived results/summary.csv for the training time (train_seconds: the time spent
in training itself, inside the process), and results/benchmarks/ for each job's wall time. Prints:

  wall             first to last timestamp of the Snakemake log
  train_seconds    sum over runs (a vectorised job splits its time evenly over its runs, so the sum is the
                   time its processes spent in trainer.fit)
  share_of_wall    train_seconds / wall  (the training share of the whole pipeline)
  share_of_slots   train_seconds / (wall x cores): the same, per core (2 jobs run at once on 2 cores)
  train_jobs_wall  sum of the training jobs' wall time (benchmarks); train_seconds / it = the share of
                   a training job spent training rather than starting Python, torch and Lightning
  per rule         sum of the benchmarked wall time of each rule's jobs
  load average     of this machine now (1, 5, 15 min): run it right after the run to record how busy
                   the machine was
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


def log_span(log: Path) -> tuple[datetime, datetime]:
    stamps = [
        datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        for m in map(STAMP.match, log.read_text().splitlines())
        if m
    ]
    if len(stamps) < 2:
        raise SystemExit(f"error: {log} has fewer than two job timestamps")
    return stamps[0], stamps[-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--log", type=Path, default=None)
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--cores", type=int, default=None, help="cores the run had (default: this machine's)")
    p.add_argument(
        "--wall",
        type=float,
        default=None,
        help="measured wall seconds (e.g. from /usr/bin/time), instead of the log's first-to-last timestamp",
    )
    args = p.parse_args(argv)
    import os

    log = args.log or max(Path(".snakemake/log").glob("*.snakemake.log"), key=lambda f: f.stat().st_mtime)
    start, end = log_span(log)
    wall = args.wall or (end - start).total_seconds()
    cores = args.cores or os.cpu_count()
    summary = pd.read_csv(args.results / "summary.csv")
    train = float(summary["train_seconds"].sum())
    bench = []
    for f in (args.results / "benchmarks").rglob("*.tsv"):
        rule = f.relative_to(args.results / "benchmarks").parts[0].removesuffix(".tsv")
        bench.append({"rule": rule, "s": float(pd.read_csv(f, sep="\t")["s"].iloc[0])})
    bench = pd.DataFrame(bench)
    train_jobs = float(bench.loc[bench["rule"] == "train", "s"].sum()) if not bench.empty else float("nan")
    print(f"log              {log}")
    print(f"runs             {len(summary)}")
    print(f"wall             {wall:.1f} s")
    print(f"train_seconds    {train:.1f} s (sum over runs)")
    print(f"share_of_wall    {train / wall:.1%}")
    print(f"share_of_slots   {train / (wall * cores):.1%} ({cores} cores)")
    n_jobs = int((bench["rule"] == "train").sum()) if not bench.empty else 0
    print(
        f"train_jobs_wall  {train_jobs:.1f} s over {n_jobs} jobs; training share of the training jobs "
        f"{train / train_jobs:.1%}"
    )
    print("load average     {:.2f} {:.2f} {:.2f} (now: 1, 5, 15 min)".format(*os.getloadavg()))
    if not bench.empty:
        print("per rule (benchmarked job wall time, s):")
        print(bench.groupby("rule")["s"].agg(["count", "sum"]).sort_values("sum", ascending=False).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
