"""The manifest written beside every artifact (``ARTIFACT.json``) and the checks made before trusting one."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csibench.errors import ArtifactError, InvalidArtifactError

MANIFEST_VERSION = 1

# Artifact suffix → (format name, runtimes able to run it; the first is the default).
FORMAT_RUNTIMES: dict[str, tuple[str, tuple[str, ...]]] = {
    ".onnx": ("onnx", ("onnxruntime",)),
    ".tflite": ("tflite", ("litert",)),
    ".safetensors": ("torch", ("torch",)),
}


def manifest_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".json")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    """Write so that a crash leaves either the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


@dataclass
class Artifact:
    """An artifact file whose bytes match its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def format(self) -> str:
        return self.manifest["format"]

    @property
    def validated(self) -> bool:
        return self.manifest.get("validation", {}).get("status") == "passed"

    def validation_file(self) -> Path | None:
        """The reference batch beside the artifact (for re-validation on a device), checked against its sha256."""
        data = self.manifest.get("validation_data")
        if not data:
            return None
        path = self.path.with_name(data["file"])
        if not path.is_file() or sha256_of(path) != data["sha256"]:
            raise ArtifactError(f"{path}: validation data is missing or differs from its manifest; re-export the artifact")
        return path

    def require_valid(self) -> Artifact:
        if not self.validated:
            v = self.manifest.get("validation") or {}
            why = v.get("error") or "it was never validated"
            raise InvalidArtifactError(f"refusing {self.path}: its validation against PyTorch failed ({why}); re-export it")
        return self


def load_artifact(path: str | Path) -> Artifact:
    """Open an artifact and its manifest, checking format, presence, size and sha256 (corrupt/truncated files)."""
    path = Path(path)
    suffixes = ", ".join(FORMAT_RUNTIMES)
    if path.suffix not in FORMAT_RUNTIMES:
        raise ArtifactError(f"{path}: not an artifact csibench can run (valid suffixes: {suffixes})")
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact file")
    mpath = manifest_path(path)
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: manifest {mpath.name} is missing; export artifacts with `csibench export`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: manifest {mpath.name} is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(manifest, dict) or manifest.get("csibench_manifest") != MANIFEST_VERSION:
        raise ArtifactError(f"{path}: {mpath.name} is not a csibench manifest (version {MANIFEST_VERSION})")
    size = path.stat().st_size
    if size != manifest.get("size_bytes"):
        raise ArtifactError(f"{path}: file is {size} bytes but its manifest says {manifest.get('size_bytes')} (truncated or replaced)")
    if sha256_of(path) != manifest.get("sha256"):
        raise ArtifactError(f"{path}: sha256 differs from its manifest (the file is corrupt or was modified)")
    return Artifact(path, manifest)
