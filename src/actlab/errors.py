"""The errors bad input raises: each reported by the command lines as one line, exit code 2.

The bottom of the package: every module may import it, it imports nothing of actlab.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


class ConfigError(ValueError):
    """A config value that cannot work: reported as one line, exit code 2."""


class DataError(ValueError):
    """Bad or unusable data: missing, truncated, corrupt or failing its checksum."""


class UnknownActivation(ValueError):
    """An activation name that is not in the registry (actlab.activations)."""


class UsageError(ValueError):
    """A bad command-line argument of a script module (actlab.depth, actlab.timing)."""


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument raises UsageError (one line, exit 2 via `main`), not usage + exit."""

    def error(self, message):
        raise UsageError(message)


def main(run: Callable[[list[str]], object], argv: list[str] | None = None) -> None:
    """A script module's entry point: run(argv); a usage error or unknown activation is one line on
    stderr and exit code 2."""
    try:
        run(sys.argv[1:] if argv is None else argv)
    except (UsageError, UnknownActivation) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


# What the command lines report in one line instead of a traceback.
USER_ERRORS = (ConfigError, DataError, UnknownActivation)
