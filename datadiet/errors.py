"""Exception tree: one root, each subclass also inherits the matching builtin."""

from __future__ import annotations

__all__ = [
    "DatadietError",
    "ConfigError",
    "InputError",
    "MissingColumnError",
    "ModelError",
    "BudgetError",
    "StageError",
]


class DatadietError(Exception):
    """Root of every error datadiet raises on purpose."""


class ConfigError(DatadietError, ValueError):
    """A recipe or constructor parameter is wrong; raised before any compute."""


class BudgetError(ConfigError):
    """A budget is malformed (none or several limits, zero or negative)."""


class InputError(DatadietError, OSError):
    """An input path, file or format cannot be used."""


class MissingColumnError(DatadietError, KeyError):
    """A configured column is absent from an input file."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ModelError(DatadietError, OSError):
    """A model directory is missing, incomplete or needs remote code that was not allowed."""


class StageError(DatadietError, RuntimeError):
    """A pipeline stage failed on a shard; the message names the shard."""
