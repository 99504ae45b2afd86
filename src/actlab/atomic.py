"""Atomic file writes: write a temporary file beside the target, fsync, then rename.

A job killed mid-write leaves either the old file or no file, never a truncated one that looks
complete. Every output actlab writes goes through here.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True):
    """Yield a temporary path in the target's directory; rename it onto `path` on success.

    The rename alone makes the write atomic for a killed process; `durable` also fsyncs the data
    first and the directory after the rename (the rename is a change to the directory, which may
    otherwise still sit in the page cache), so the new file survives a power loss too (skipped for
    cheap, re-creatable side files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
    try:
        yield Path(tmp)
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(path) -> None:
    """Make a rename or a new file in directory `path` durable (POSIX; Windows cannot open a dir)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path, text: str, durable: bool = True) -> None:
    with atomic_path(path, durable) as tmp:
        tmp.write_text(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def write_csv(path, df, durable: bool = True) -> None:
    """Write a pandas DataFrame as CSV (floats in full precision, so reruns compare bit-for-bit).
    `durable=False` for the rewrites of a table still growing (a run's tables during training): still
    atomic, without the two fsyncs (~3 ms each); its final write is durable."""
    with atomic_path(path, durable) as tmp:
        df.to_csv(tmp, index=False, float_format="%.17g")
