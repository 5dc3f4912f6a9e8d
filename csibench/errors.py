"""Domain errors. The CLI maps UsageError to exit 2 and every other CsibenchError to exit 1, one line, no traceback."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class CsibenchError(Exception):
    """A failure csibench can explain in one line (exit code 1)."""

    exit_code = 1
    # What a --json caller still needs when the command fails: a run id, the report written, the resume command.
    # Set on the instance (``exc.details = {...}``) where a command had recorded something before it failed.
    details: Mapping[str, Any] = MappingProxyType({})


class UsageError(CsibenchError):
    """The user asked for something invalid: unknown name, malformed value (exit code 2)."""

    exit_code = 2


class Interrupted(CsibenchError):
    """Ctrl-C during a long run: completed records are kept and the message says how to resume (exit 130)."""

    exit_code = 130


class ArtifactError(CsibenchError):
    """An artifact is missing, corrupt, truncated or has no valid manifest."""


class InvalidArtifactError(ArtifactError):
    """An artifact whose validation against PyTorch failed; bench refuses it."""


class RuntimeMissingError(CsibenchError):
    """The runtime an artifact needs is not installed."""


class ExportError(CsibenchError):
    """A converter could not turn the module into the requested format."""


class ValidationError(CsibenchError):
    """The exported artifact disagrees with PyTorch (base of the three checks below)."""


class OutputMatchError(ValidationError):
    """Input or output names of the artifact differ from the reference."""


class ShapeError(ValidationError):
    """An output shape of the artifact differs from the reference."""


class AtolError(ValidationError):
    """Values of the artifact differ from the reference beyond tolerance."""


def suggest(name: str, valid: list[str]) -> str:
    """Close matches for an unknown name, phrased for an error message (never applied)."""
    import difflib

    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"valid: {', '.join(valid)}{hint}"
