"""Run directories: writable, creatable (checked before anything is written), locked while in use."""

from __future__ import annotations

import os
from pathlib import Path

from actlab.errors import ConfigError


def check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"run dir {str(run_dir)!r} is not writable: {e.strerror}") from None


def check_creatable(path: Path, what: str = "run dir") -> None:
    """`path` exists as a directory or can be created (its nearest existing ancestor is a writable
    directory); checked without creating anything."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is not writable: {str(p)!r} is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {str(path)!r} is not writable: permission denied on {str(p)!r}")


_LOCKS: list = []  # the open lock files of this job's dirs (flock is held while a file stays open)


LOCK_FILE = ".actlab.lock"


def lock_dirs(dirs: list[Path]) -> None:
    """Lock each dir (run dirs, the job's Hydra dir) for this process's lifetime, or refuse the job:
    two trainings in one dir would interleave their CSV rows and delete or resume each other's
    checkpoint. fcntl.flock on <dir>/.actlab.lock, which holds the holder's pid; the kernel releases
    it when the process ends, however it ends (nothing stale to clean up). A no-op without fcntl."""
    try:
        import fcntl  # imported here: POSIX only
    except ImportError:
        return
    for d in sorted({Path(d).absolute() for d in dirs}):
        d.mkdir(parents=True, exist_ok=True)
        f = open(d / LOCK_FILE, "a+")  # never truncates: the holder's pid stays readable
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            f.close()
            raise ConfigError(f"run dir {str(d)!r} in use by pid {pid} (another actlab.train)") from None
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        _LOCKS.append(f)
