"""`python -m actlab.train`: the command line of a training job (actlab.runner).

Every check that needs no file runs before Hydra makes its output dir, so bad input leaves nothing
behind and is reported in one line (`error: ...`, exit code 2); so is a full disk.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from actlab.checks import check_values
from actlab.config import CONF_DIR, check_group_overrides, compose, default_job_dir, is_multi, job_configs
from actlab.errors import USER_ERRORS, ConfigError
from actlab.rundir import check_creatable, lock_dirs
from actlab.runner import run_seeds
from actlab.summary import finished_summary


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        run_seeds(cfg)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a full disk: one line, not Hydra's traceback (the other OSErrors are bugs)
        if not _disk_full(e):
            raise
        print(_disk_full_line(e), file=sys.stderr)
        sys.exit(2)


def check_composes(argv: list[str]) -> DictConfig:
    """Compose the config once before Hydra runs (actlab.config.compose: one line for a misspelt key or a
    malformed override). Returns the composed config."""
    return compose([a for a in argv if not a.lstrip("+~").startswith("hydra.") and "=" in a])


def check_job(cfg: DictConfig, argv: list[str]) -> None:
    """Every check of a job that needs no file written, before Hydra creates its output dir, so that
    bad input leaves nothing behind: its values (check_values) and that the run dirs and Hydra's dir
    can be made."""
    for c in check_values(cfg):
        check_creatable(Path(c.run_dir))
        finished_summary(c)  # a finished run of another config there: refused unless overwrite=true
    given = [a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")]
    hydra_dir = given[-1] if given else default_job_dir(cfg)
    check_creatable(Path(hydra_dir), "output dir (hydra.run.dir)")


def job_dirs(cfg: DictConfig, argv: list[str]) -> list[Path]:
    """Every dir the job writes: its run dirs and, for several runs, Hydra's job dir."""
    dirs = [Path(c.run_dir) for c in (job_configs(cfg) if is_multi(cfg) else [cfg])]
    given = [a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")]
    return [*dirs, Path(given[-1] if given else default_job_dir(cfg))]


def _disk_full(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


def _disk_full_line(e: OSError) -> str:
    where = e.filename2 or e.filename
    return (
        f"error: {e.strerror}"
        + (f" writing {str(where)!r}" if where else "")
        + " (free space and rerun: the run resumes from its last checkpoint)"
    )


def single_run_dir(cfg: DictConfig, argv: list[str]) -> list[str]:
    """`argv`, with ``run_dir=X`` added when a single run is given ``hydra.run.dir=X``: a run's dir IS
    Hydra's output dir, so overriding either moves every file of the run. (A job of several runs keeps
    one run dir per run from the ``run_dir`` pattern; ``hydra.run.dir`` is then the job's own dir.)"""
    if is_multi(cfg):
        return argv
    given = [a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")]
    if not given:
        return argv
    runs = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith("run_dir=")]
    if runs and runs[-1] != given[-1]:
        raise ConfigError(
            f"run_dir={runs[-1]} and hydra.run.dir={given[-1]} differ; a run's dir is Hydra's output dir: give one"
        )
    return argv if runs else [*argv, f"run_dir={given[-1]}"]


def main() -> None:
    argv = sys.argv[1:]
    try:
        check_group_overrides(argv)
        cfg = check_composes(argv)
        new = single_run_dir(cfg, argv)
        if new != argv:
            argv, sys.argv = new, [sys.argv[0], *new]  # Hydra reads its overrides from sys.argv
            cfg = check_composes(argv)
        if not any(a.startswith("-") for a in argv):  # not for Hydra's own flags (--help, --cfg, -m)
            check_job(cfg, argv)
            lock_dirs(job_dirs(cfg, argv))
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a full disk while making the dirs
        if not _disk_full(e):
            raise
        print(_disk_full_line(e), file=sys.stderr)
        sys.exit(2)
    _hydra_main()
