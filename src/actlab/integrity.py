"""The integrity record of a finished run: ``SHA256SUMS`` beside its ``summary.json``.

A finished run directory holds what the trainer wrote (config.yaml, metrics.csv and, with the probes
enabled, dead_units.csv and grad_flow.csv), then ``SHA256SUMS``, then ``summary.json``, the last file,
whose presence still means "finished". ``SHA256SUMS`` is in the format of coreutils' ``sha256sum``:

    3f1c...e9  config.yaml
    a07b...41  metrics.csv
    ...
    9d2e...0c  summary.json

one line per data file the run wrote plus one for summary.json itself. Its summary.json line is the
SHA-256 of the exact bytes written next (``write_summary`` renders the JSON once, hashes those
bytes, writes SHA256SUMS, then writes the same bytes to summary.json, each atomically), so the record
covers every file of the run, summary.json included, and ``cd RUN && sha256sum -c SHA256SUMS`` checks
a run by hand. Why a separate file rather than a field inside summary.json: summary.json keeps its
schema (and its readers their columns), the check needs no canonical-JSON convention, and standard
tools can verify it. A kill between the two writes leaves SHA256SUMS without summary.json: an
unfinished run, as before.

``verify(run_dir)`` raises IntegrityError (one line, the reason) when the record is missing or
malformed, when a file it lists is missing or differs from its hash (edited, truncated, damaged), or
when a data file exists that it does not list (added after the run finished). This detects hand
edits and damage, not an adversary, who could rewrite SHA256SUMS too. Not covered: train.log and
.hydra/ (logs; train.log is appended to after summary.json) and the resume checkpoint (deleted when
the job ends).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from actlab import atomic

RECORD = "SHA256SUMS"
SUMMARY = "summary.json"
DATA_FILES = ("config.yaml", "metrics.csv", "dead_units.csv", "grad_flow.csv")  # the run's data, if written
REQUIRED = ("config.yaml", "metrics.csv", SUMMARY)  # every run writes these
_LINE = re.compile(r"([0-9a-f]{64}) [ *](\S+)")  # sha256sum's output: hash, space, space or '*', name


class IntegrityError(ValueError):
    """A run whose files are not what its trainer wrote; the message says which file and how."""


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def summary_text(summary: dict) -> str:
    """summary.json's exact text (as actlab.atomic.write_json writes JSON)."""
    return json.dumps(summary, indent=2, sort_keys=True, allow_nan=True) + "\n"


def write_summary(run_dir, summary: dict) -> None:
    """Finish a run: SHA256SUMS of its data files and of summary.json's text, then summary.json.

    Call it last, once every data file of the run is final: a file changed afterwards fails verify()."""
    run_dir = Path(run_dir)
    text = summary_text(summary)
    sums = {name: sha256(run_dir / name) for name in DATA_FILES if (run_dir / name).is_file()}
    sums[SUMMARY] = hashlib.sha256(text.encode()).hexdigest()
    atomic.write_text(run_dir / RECORD, "".join(f"{digest}  {name}\n" for name, digest in sums.items()))
    atomic.write_text(run_dir / SUMMARY, text)


def read_record(run_dir) -> dict[str, str]:
    """{file name: SHA-256 hex} from the run's SHA256SUMS."""
    path = Path(run_dir) / RECORD
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise IntegrityError(f"no {RECORD} (the run's integrity record)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise IntegrityError(f"cannot read {RECORD} ({getattr(e, 'strerror', None) or e})") from None
    sums = {}
    for n, line in enumerate(lines, 1):
        m = _LINE.fullmatch(line)
        if not m or m.group(2) not in (*DATA_FILES, SUMMARY) or m.group(2) in sums:
            raise IntegrityError(f"{RECORD} line {n} is malformed: {line[:80]!r}")
        sums[m.group(2)] = m.group(1)
    return sums


def verify(run_dir) -> None:
    """Raise IntegrityError unless every file of the finished run is exactly what its trainer wrote."""
    run_dir = Path(run_dir)
    sums = read_record(run_dir)
    unlisted = [name for name in REQUIRED if name not in sums]
    if unlisted:
        raise IntegrityError(f"{RECORD} does not list {', '.join(unlisted)}")
    for name, digest in sums.items():
        path = run_dir / name
        if not path.is_file():
            raise IntegrityError(f"{name} is missing (listed in {RECORD})")
        if sha256(path) != digest:
            raise IntegrityError(
                f"{name} does not match its SHA-256 in {RECORD} (edited or damaged after the run finished)"
            )
    extra = [name for name in DATA_FILES if name not in sums and (run_dir / name).exists()]
    if extra:
        raise IntegrityError(f"{', '.join(extra)} not listed in {RECORD} (added after the run finished)")
