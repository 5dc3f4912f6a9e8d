"""One study run's records, joined once for every table: model entries (label, CR, side, precision), their artifacts
and manifests per format, the newest measurement per setup, trainings by checkpoint sha256, comparisons by row id,
evaluations (payload curves) of the run.

Precision is part of an entry's identity, so an fp32 and an int8 artifact of one model never overwrite each other.
``entries`` holds one entry per (label, CR, side) — its fp32 one where there is one, else its first precision — so
tables written before quantisation read what they always read; ``all_entries`` and ``variants(entry)`` hold every
precision (the precision table, deployability)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from csibench.formats_table import TABLE as FORMAT_TABLE
from csibench.schema import (
    UNVALIDATED_REASON,
    ArtifactRecord,
    Comparison,
    Complexity,
    Evaluation,
    Failure,
    Manifest,
    Measurement,
    StudyData,
    StudyModel,
    Training,
)

FORMAT_ORDER = [r.format for r in FORMAT_TABLE]
RUNTIME_ORDER = [rt for r in FORMAT_TABLE for rt in r.runtimes]
SIDE_ORDER = ["ue", "bs", "all"]
SEED_004_TEMPLATES = ("004-III", "004-IV", "004-ratio", "004-VII", "004-VIII")
PRECISION_ORDER = ["fp32", "fp16", "int8-dynamic", "int8"]  # issue 12's names; a bare graph may say others (bf16, int4)
DEFAULT_PRECISION = "fp32"  # rows that name none: everything csibench exported before quantisation


def cr_key(cr: str | None) -> tuple:
    """Larger CR first (as the papers order them); configs without a CR last."""
    if cr is None:
        return (1, 0.0, "")
    num, _, den = str(cr).partition("/")
    try:
        return (0, -int(num) / int(den or 1), str(cr))
    except (ValueError, ZeroDivisionError):
        return (0, 0.0, str(cr))


def _resolved(path: str | None) -> str:
    return str(Path(path).resolve()) if path else ""


def _index(order: list, value) -> int:
    return order.index(value) if value in order else len(order)


def _precision(named: str | None, manifest: Manifest | None) -> str:
    """A row's precision: its column, else its manifest's, else fp32 (rows from before quantisation)."""
    return named or (manifest.precision if manifest is not None else None) or DEFAULT_PRECISION


@dataclass(frozen=True, order=True)
class Setup:
    """Where a measurement ran: runtime, threads, device."""

    runtime: str
    threads: int
    device: str

    @property
    def label(self) -> str:
        return f"{self.runtime}, {self.threads} thread{'s' if self.threads != 1 else ''}, {self.device}"


@dataclass
class Entry:
    """One model of the study at one CR, side and precision: what the report calls a row of the models table."""

    label: str
    cr: str | None
    side: str | None
    model: str | None
    spec: StudyModel | None
    precision: str = DEFAULT_PRECISION
    artifacts: dict[str, ArtifactRecord] = field(default_factory=dict)  # by format, newest
    manifests: dict[str, Manifest] = field(default_factory=dict)  # by format: the artifact's or a measurement's
    latest: dict[Setup, Measurement] = field(default_factory=dict)
    failures: dict[Setup, Failure] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """(label, CR, side): shared by every precision of the model (``variants`` groups by it)."""
        return (self.label, self.cr, self.side)

    @property
    def formats(self) -> list[str]:
        return sorted({*self.artifacts, *self.manifests}, key=lambda f: (_index(FORMAT_ORDER, f), f))

    @property
    def manifest(self) -> Manifest | None:
        for fmt in self.formats:
            if fmt in self.manifests:
                return self.manifests[fmt]
        return None

    @property
    def complexity(self) -> Complexity | None:
        return next((m.complexity for m in (self.manifests[f] for f in self.formats if f in self.manifests) if m.complexity), None)

    def status(self, fmt: str | None) -> str | None:
        """passed | failed | unvalidated | export-failed for one format (None: nothing recorded)."""
        art = self.artifacts.get(fmt or "")  # no format: nothing recorded under it
        if art is not None:
            return art.status
        m = self.manifests.get(fmt or "")
        if m is None:
            return None
        if m.validation is None:
            return "unvalidated"
        return m.validation.status

    def status_label(self, fmt: str | None) -> str | None:
        art = self.artifacts.get(fmt or "")
        if art is not None:
            return art.status_label
        m = self.manifests.get(fmt or "")
        if m is None:
            return None
        return m.validation.label if m.validation else UNVALIDATED_REASON

    @property
    def weights_label(self) -> str:
        m = self.manifest
        prov = m.provenance if m else None
        method = prov.training_method if prov else None
        if self.spec is not None and self.spec.weights_label:
            words = self.spec.weights_label
            return f"{words} ({method})" if method and method not in words else words
        if (m and m.bare) or (self.spec is not None and self.spec.artifact):
            return "bare artifact (weights as shipped)"
        if prov is None:
            return "–"
        if prov.weights == "checkpoint":
            return f"trained: {method}" if method else f"checkpoint {Path(prov.checkpoint or '?').name}"
        if prov.weights == "seeded random":
            return "untrained (seeded random weights)"
        return prov.weights or "–"

    @property
    def source_label(self) -> str | None:
        m = self.manifest
        kind = m.source_kind if m else None
        if kind is None and self.spec is not None:
            kind = "bare" if self.spec.artifact else None
        return kind

    @property
    def checkpoint_shas(self) -> set[str]:
        return {m.provenance.sha256 for m in self.manifests.values() if m.provenance and m.provenance.sha256}


class StudyView:
    """The joins every table needs, made once."""

    def __init__(self, data: StudyData):
        self.data = data
        self.study = data.study
        self.specs = {s.label: s for s in data.study.models}
        self._entries: dict[tuple, Entry] = {}
        label_of: dict[str, ArtifactRecord] = {}
        by_path: dict[tuple, ArtifactRecord] = {}  # first choice: two labels may export byte-identical files (same sha256)
        art: ArtifactRecord | None  # below: the artifact row a measurement or failure came from, if found
        for art in data.artifacts:  # newest last: a re-run of the sweep supersedes
            entry = self._entry(art.label or art.model or "?", art.cr, art.side, art.model, _precision(art.precision, art.manifest))
            entry.artifacts[art.format or "?"] = art
            if art.manifest is not None:
                entry.manifests[art.format or "?"] = art.manifest
            if art.sha256:
                label_of[art.sha256] = art
            if art.path:
                by_path[(_resolved(art.path), art.sha256)] = art
        self.measurements = {m.id: m for m in data.measurements}
        self._entry_of: dict[int, Entry] = {}
        for m in data.measurements:
            art = by_path.get((_resolved(m.artifact_path), m.artifact_sha256)) or label_of.get(m.artifact_sha256 or "")
            label = art.label if art is not None and art.label else (m.model or "?")
            precision = _precision(art.precision, art.manifest) if art is not None else _precision(m.precision, m.manifest)
            entry = self._entry(label, art.cr if art is not None else m.cr, art.side if art is not None else m.side, m.model, precision)
            if m.manifest is not None and m.format:
                entry.manifests.setdefault(m.format, m.manifest)
            if m.median_s is not None and m.runtime:
                entry.latest[Setup(m.runtime, m.threads or 0, m.device or "?")] = m
            self._entry_of[m.id] = entry
        self.failure_format = {f.id: label_of[f.artifact_sha256].format for f in data.failures if f.artifact_sha256 in label_of}
        for f in data.failures:
            if f.runtime is None:  # the run itself stopped: the preamble says so; no model's row
                continue
            art = by_path.get((_resolved(f.artifact_path), f.artifact_sha256)) or label_of.get(f.artifact_sha256 or "")
            entry = self._entry((art.label or art.model or "?") if art else (f.model or "?"), art.cr if art else f.cr, art.side if art else None, f.model,
                                _precision(art.precision, art.manifest) if art else DEFAULT_PRECISION)
            entry.failures[Setup(f.runtime or "?", f.threads or 0, f.device or "?")] = f
        self._drop_sideless_failures()
        # A failure that a later measurement of the same setup replaced (a resumed run) is history, not a gap.
        self.superseded = {f.id for e in self._entries.values() for setup, f in e.failures.items()
                           if setup in e.latest and (e.latest[setup].created_at or "") >= (f.created_at or "")}
        self.all_entries = sorted(self._entries.values(), key=self._order)
        self._variants: dict[tuple, list[Entry]] = {}
        for e in self.all_entries:
            self._variants.setdefault(e.key, []).append(e)
        self.entries = [group[0] for group in self._variants.values()]  # fp32 first where there is one (_order)
        self.precisions = sorted({e.precision for e in self.all_entries}, key=lambda p: (_index(PRECISION_ORDER, p), p))
        self.evaluations: list[Evaluation] = list(getattr(data, "evaluations", ()))
        devices = list(data.study.definition.get("devices") or [])
        self.setups = sorted({s for e in self.all_entries for s in [*e.latest, *e.failures]},
                             key=lambda s: (_index(RUNTIME_ORDER, s.runtime), s.runtime, s.threads, _index(devices, s.device), s.device))
        self.formats = sorted({f for e in self.all_entries for f in e.formats}, key=lambda f: (_index(FORMAT_ORDER, f), f))
        self.comparisons = list(data.comparisons)
        self._pairs: dict[tuple[int, int], tuple[Comparison, bool]] = {}  # (baseline id, other id) → newest, reversed?
        for c in self.comparisons:  # oldest first: a newer comparison of the same pair replaces an older one
            if c.baseline_id is None or c.other_id is None:  # never written so; a hand-edited row joins nothing
                continue
            self._pairs[(c.baseline_id, c.other_id)] = (c, False)
            self._pairs[(c.other_id, c.baseline_id)] = (c, True)
        labels = [e.label for e in self.entries]
        if data.study.definition:
            self.baseline, self.table_ids = data.study.baseline, data.study.table_ids
        else:  # rows from before studies: the one comparison csibench made then was 004's teacher vs student
            pair = "crnet" in labels and "crnet-se" in labels
            self.baseline = "crnet" if "crnet" in labels else None
            self.table_ids = SEED_004_TEMPLATES if pair else ()

    def _entry(self, label: str, cr: str | None, side: str | None, model: str | None, precision: str = DEFAULT_PRECISION) -> Entry:
        key = (label, cr, side, precision)
        if key not in self._entries:
            spec = self.specs.get(label)
            self._entries[key] = Entry(label, cr, side, model or (spec.model if spec else None), spec, precision=precision)
        entry = self._entries[key]
        if entry.model is None and model is not None:
            entry.model = model
        return entry

    def _drop_sideless_failures(self) -> None:
        """A failure row has no side: fold it into the one entry of that label and CR when there is exactly one."""
        for key, entry in list(self._entries.items()):
            if key[2] is not None or entry.artifacts or entry.manifests:
                continue
            peers = [e for k, e in self._entries.items() if k[:2] == key[:2] and k[3] == key[3] and k[2] is not None]
            if len(peers) == 1:
                for setup, f in entry.failures.items():
                    peers[0].failures.setdefault(setup, f)
                del self._entries[key]

    def _order(self, e: Entry) -> tuple:
        labels = list(self.specs)
        return (_index(labels, e.label), e.label if e.label not in self.specs else "", cr_key(e.cr), _index(SIDE_ORDER, e.side),
                _index(PRECISION_ORDER, e.precision), e.precision)

    # ---------------------------------------------------------------- lookups

    def entry_of(self, measurement: Measurement) -> Entry:
        return self._entry_of[measurement.id]

    def variants(self, entry: Entry) -> list[Entry]:
        """Every precision of ``entry``'s (label, CR, side), fp32 first, then fp16, int8-dynamic, int8, others."""
        return list(self._variants.get(entry.key, [entry]))

    def evaluations_of(self, kind: str) -> list[Evaluation]:
        """This run's evaluations of one kind ("payload"), oldest first."""
        return [ev for ev in self.evaluations if ev.kind == kind]

    def by_model(self, model: str) -> list[Entry]:
        """Entries of one model name (seed templates find 004's teacher and student this way)."""
        return [e for e in self.entries if e.model == model]

    def label_entries(self, label: str) -> list[Entry]:
        return [e for e in self.entries if e.label == label]

    def trainings_for(self, entry: Entry) -> list[Training]:
        """The trainings whose checkpoint the entry's artifacts were exported from (newest row per checkpoint)."""
        shas = entry.checkpoint_shas
        newest: dict[str, Training] = {}
        for t in self.data.trainings:
            if t.checkpoint_sha256 in shas:
                newest[t.checkpoint_sha256] = t
        return sorted(newest.values(), key=lambda t: t.id)

    def comparison(self, baseline: Measurement, other: Measurement) -> tuple[Comparison, bool] | None:
        """The interleaved comparison of these two measurements, newest; ``True`` when it was made the other way round
        (its ratio is then inverted by the caller)."""
        return self._pairs.get((baseline.id, other.id))
