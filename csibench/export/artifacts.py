"""Open any artifact csibench can run: an exported one (its manifest) or a bare .onnx/.tflite (csibench.export.bare).

Above manifest and bare, which both build an ``Artifact``, so neither imports the other's opener.
"""

from __future__ import annotations

from pathlib import Path

from csibench.export.bare import open_bare
from csibench.export.manifest import BARE_FORMATS, FORMAT_RUNTIMES, Artifact, check_artifact_path, manifest_path, open_exported


def load_artifact(path: str | Path, *, bare_ok: bool = False, reference: str | Path | None = None) -> Artifact:
    """Open an artifact and its manifest, checking format, presence, size and sha256 (corrupt/truncated files).

    With ``bare_ok``, an .onnx/.tflite without a manifest opens as a bare artifact (csibench.export.bare), validated
    against ``reference`` (an .npz) when given, else labelled unvalidated. ``reference`` is for bare files only.
    """
    path = Path(path)
    check_artifact_path(path, FORMAT_RUNTIMES, "an artifact csibench can run")
    if bare_ok and path.suffix in BARE_FORMATS and not manifest_path(path).exists():
        return open_bare(path, reference=reference)
    return open_exported(path, reference=reference)
