"""The default `snakemake --cores all` sweep end to end, from scratch, and its training share.

    python benchmarks/bench_pipeline.py            # fresh clone of HEAD in a temporary dir
    python benchmarks/bench_pipeline.py --keep     # keep the clone (its path is printed)

Clones this repository's HEAD (committed files only, as CI sees them) into a temporary directory,
runs the README's pipeline command there with this interpreter's environment (the installed
actlab is pointed at the clone's src/ through PYTHONPATH), times it, and prints
`workflow/scripts/pipeline_timing.py`'s account of the run: wall, the training seconds inside the
processes, the training share of the whole pipeline and of the training jobs, time per rule.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary clone")
    ap.add_argument("--cores", default="all")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="actlab-bench-pipeline-"))
    clone = tmp / "actlab"
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        bindir = Path(sys.executable).parent
        env = {
            **os.environ,
            "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(clone / "src"),
        }
        t0 = time.perf_counter()
        run = subprocess.run(
            [str(bindir / "snakemake"), "--cores", args.cores], cwd=clone, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - t0
        if run.returncode:
            sys.stderr.write(run.stderr[-4000:])
            raise SystemExit(f"error: snakemake failed (exit {run.returncode}) in {clone}")
        print(
            f"snakemake --cores {args.cores}: {wall:.1f} s from a fresh clone of {ROOT.name} "
            f"({subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=clone, capture_output=True, text=True).stdout.strip()})"
        )
        subprocess.run([sys.executable, "workflow/scripts/pipeline_timing.py"], cwd=clone, env=env, check=True)
    finally:
        if args.keep:
            print(f"clone kept: {clone}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
