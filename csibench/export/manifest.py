"""The manifest written beside every artifact (``ARTIFACT.json``) and the checks made before trusting one."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from csibench.errors import ArtifactError, InvalidArtifactError, UsageError
from csibench.files import MIB, check_regular_file, read_bytes_bounded, sha256_of, write_json_atomic, write_text_atomic  # noqa: F401 - re-exported
from csibench.formats_table import TABLE

MANIFEST_VERSION = 1
CAP_ARTIFACT = 2048 * MIB  # an artifact csibench opens (a CSI-feedback model is KiB to a few hundred MiB)
DIGEST_KEY = "manifest_sha256"  # the manifest's digest of its own content (without this key); absent before issue 10


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys, compact, UTF-8) without its own digest field: a manifest
    edited by hand (its ``model`` changed, a validation status flipped) no longer matches."""
    import hashlib

    body = {k: v for k, v in manifest.items() if k != DIGEST_KEY}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def with_digest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as JSON will give it back, with its digest added (what the exporter writes)."""
    body = json.loads(json.dumps({k: v for k, v in manifest.items() if k != DIGEST_KEY}, allow_nan=False))
    return {**body, DIGEST_KEY: manifest_digest(body)}

QUANT_AGAINST = "fp32 PyTorch (codeword; NMSE, ρ, SGCS with the fp32 BS decoder on held-out CSI)"


@dataclass(frozen=True)
class QuantValidation:
    """The validation block of a quantised artifact's manifest (csibench.export.quant_validate writes it, reports and
    the CLI read it): one type both ways. Errors are against the fp32 PyTorch encoder's codeword c:
    ``codeword_rel_error`` = ‖c_q − c‖₂/‖c‖₂ (unitless), ``codeword_max_abs_error`` (codeword units); NMSE in dB
    (global mean, CsiNet convention) of the fp32 BS decoder's reconstruction, ``delta_nmse_db`` = NMSE − NMSE_fp32
    (positive is worse). A figure that could not be computed, or was not finite, is None."""

    runtime: str
    precision: str
    samples: int  # held-out samples, run one at a time (batch 1)
    tolerance: dict[str, float]
    status: str = "failed"  # passed | failed
    error: str | None = None
    error_type: str | None = None  # ValidationError subclass, e.g. NonFiniteError
    against: str = QUANT_AGAINST
    inputs: dict[str, Any] = field(default_factory=dict)  # {"source": "dataset", "split", "samples", "sha256"}
    checks: tuple[dict[str, Any], ...] = ()
    nmse_label: str | None = None
    nmse_db_fp32: float | None = None
    rho_fp32: float | None = None
    sgcs_fp32: float | None = None
    codeword_max_abs_error: float | None = None
    codeword_rel_error: float | None = None
    max_abs_error: float | None = None  # = codeword_max_abs_error, under the name every validation block uses
    nmse_db: float | None = None
    delta_nmse_db: float | None = None
    rho: float | None = None
    sgcs: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checks"] = [dict(c) for c in self.checks]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantValidation:
        """From a manifest's validation block; unknown keys (a newer writer) are ignored, missing ones take defaults."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["checks"] = tuple(dict(c) for c in d.get("checks") or ())
        return cls(**values)


# Artifact suffix → (format name, runtimes able to run it; the first is the default), from csibench.formats_table.
FORMAT_RUNTIMES: dict[str, tuple[str, tuple[str, ...]]] = {r.suffix: (r.format, r.runtimes) for r in TABLE}
BARE_FORMATS = {".onnx": "onnx", ".tflite": "tflite"}  # what may come without a manifest (csibench.export.bare)


def manifest_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".json")


@dataclass
class Artifact:
    """An artifact file whose bytes match its manifest."""

    path: Path
    manifest: dict[str, Any]
    notes: tuple[str, ...] = ()  # what the reader should know, e.g. a manifest from before manifests had a digest

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

    @property
    def status(self) -> str:
        """"passed", "failed" or "unvalidated" (a bare artifact with no reference to check it against)."""
        return (self.manifest.get("validation") or {}).get("status") or "failed"

    @property
    def bare(self) -> bool:
        return bool(self.manifest.get("bare"))

    def validation_label(self) -> str:
        """How far its numbers can be trusted, in words, for every place that shows a result."""
        v = self.manifest.get("validation") or {}
        if self.status == "unvalidated":
            return v.get("reason") or "unvalidated"
        against = v.get("against") or "PyTorch"
        return f"validated against {against}" if self.status == "passed" else f"validation against {against} failed"

    def require_valid(self) -> Artifact:
        """Accepts "passed" and (labelled as such) "unvalidated"; refuses an artifact whose check failed."""
        if self.status in ("passed", "unvalidated"):
            return self
        v = self.manifest.get("validation") or {}
        why = v.get("error") or "it was never validated"
        if self.bare:  # the user's own file: nothing csibench can re-export
            raise InvalidArtifactError(f"refusing {self.path}: status failed, its outputs differ from "
                                       f"{v.get('against', 'the reference')} ({why})")
        against = v.get("against") or "PyTorch"
        fix = ("re-export it, or loosen --tolerance if the accuracy cost is acceptable" if self.manifest.get("precision", "fp32") != "fp32"
               else "re-export it")
        raise InvalidArtifactError(f"refusing {self.path}: its {self.manifest.get('precision', 'fp32')} validation against {against} "
                                   f"failed ({why}); {fix}")


def check_artifact_path(path: Path, suffixes, what: str) -> None:
    """A directory or a wrong suffix is a usage error (exit 2); a missing file a failure (exit 1)."""
    valid = ", ".join(suffixes)
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give an artifact file ({valid})")
    if path.suffix not in suffixes:
        raise UsageError(f"{path}: not {what} (valid suffixes: {valid})")
    if not path.exists():
        raise ArtifactError(f"{path}: no such artifact file")
    # Before any runtime opens it: a FIFO named x.onnx would block onnxruntime's open for ever, a device never end.
    check_regular_file(path, what="artifact", cap=CAP_ARTIFACT)


def open_exported(path: Path, *, reference: str | Path | None = None) -> Artifact:
    """An exported artifact and its manifest, checking presence, size and sha256 (corrupt/truncated files); ``path``
    has passed ``check_artifact_path``. csibench.export.artifacts.load_artifact is the entry point (bare files too)."""
    mpath = manifest_path(path)
    if reference is not None and mpath.exists():
        raise UsageError(f"--reference is for files without a csibench manifest; {path} has {mpath.name} "
                         "(validated against PyTorch at export)")
    try:
        manifest = json.loads(read_bytes_bounded(mpath, what="manifest").decode("utf-8"))
    except FileNotFoundError:
        how = ("`csibench bench` and `csibench profile` take it as a bare artifact (labelled unvalidated, or checked with "
               "--reference FILE.npz)" if path.suffix in BARE_FORMATS else "a .safetensors artifact needs it to rebuild "
               "the module")
        raise ArtifactError(f"{path}: manifest {mpath.name} is missing; {how}, or export it again with "
                            "`csibench export MODEL --format FORMAT --out DIR`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: manifest {mpath.name} is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(manifest, dict) or manifest.get("csibench_manifest") != MANIFEST_VERSION:
        raise ArtifactError(f"{path}: {mpath.name} is not a csibench manifest (version {MANIFEST_VERSION})")
    recorded = manifest.get(DIGEST_KEY)
    notes: tuple[str, ...] = ()
    if recorded is None:  # written before manifests carried a digest: accepted, and said so
        notes = (f"{mpath.name} has no digest of its own content (written by an older csibench): hand edits to it "
                 "cannot be detected; export again to add one",)
    elif recorded != manifest_digest(manifest):
        raise ArtifactError(f"{path}: {mpath.name} was edited after export (its content no longer matches its "
                            f"{DIGEST_KEY}); its model, config or validation cannot be trusted — export the artifact again")
    size = path.stat().st_size
    if size != manifest.get("size_bytes"):
        raise ArtifactError(f"{path}: file is {size} bytes but its manifest says {manifest.get('size_bytes')} (truncated or replaced)")
    if sha256_of(path) != manifest.get("sha256"):
        raise ArtifactError(f"{path}: sha256 differs from its manifest (the file is corrupt or was modified)")
    return Artifact(path, manifest, notes)
