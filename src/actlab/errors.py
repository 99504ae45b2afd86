"""The errors bad input raises: each reported by the command lines as one line, exit code 2.

The bottom of the package: every module may import it, it imports nothing of actlab.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value that cannot work: reported as one line, exit code 2."""


class DataError(ValueError):
    """Bad or unusable data: missing, truncated, corrupt or failing its checksum."""


class UnknownActivation(ValueError):
    """An activation name that is not in the registry (actlab.activations)."""


# What the command lines report in one line instead of a traceback.
USER_ERRORS = (ConfigError, DataError, UnknownActivation)
