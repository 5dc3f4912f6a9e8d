"""Every record csibench writes as JSON and reads back: one frozen dataclass each, whose ``to_dict`` writes it and
whose ``from_dict`` reads it (tolerant of what older csibench versions wrote). tests/test_records.py round-trips each
one and fails when a class with ``to_dict`` is in neither list below."""

from __future__ import annotations

from csibench.export.manifest import QuantValidation
from csibench.schema import LatencySummary, RatioCI, Verdict
from csibench.studies.recipes import TrainingDone
from csibench.studies.resume import Overrides, RunOptions
from csibench.studies.spec import ModelSpec, Study

RECORD_TYPES: tuple[type, ...] = (
    LatencySummary,  # a measurement's summary (bench/stats → record_json, measurements columns, reports)
    Verdict,  # a measurement's verdict (bench/stats → verdict_json → reports)
    RatioCI,  # an interleaved latency ratio (bench/stats → comparisons)
    QuantValidation,  # a quantised artifact's manifest validation block
    Study, ModelSpec,  # a study definition (studies.definition_json)
    Overrides, RunOptions,  # how a study run was started (studies.options_json, read by --resume)
    TrainingDone,  # a finished vanilla/system training (its folder's done.json)
)

# Classes with ``to_dict`` that are not round-tripped records here, and why, by "module:Class" (output only, or
# provenance nested inside another record and never read back as that class).
NOT_RECORDS: dict[str, str] = {
    "csibench.tables.base:CellResult": "a published-table check's row, printed as JSON output only",
    "csibench.train.trainer:TrainConfig": "kept inside training records for provenance; training reads its arguments",
    "csibench.train.trainer:StageResult": "kept inside training records for provenance",
    "csibench.train.vanilla:TrainResult": "`csibench train` output; a study's recipes store its fields as TrainingDone",
    "csibench.train.distill:KDConfig": "kept inside training records for provenance",
    "csibench.models.plugins:Plugin": "a `models list --json` entry",
    "csibench.models.base:TensorSpec": "a manifest's inputs/outputs entry (read as schema.Manifest)",
    "csibench.data.sionna_gen:GenConfig": "a dataset's metadata for provenance (the content hash keys the cache)",
    "csibench.data.sionna_mu:MuGenConfig": "a dataset's metadata for provenance (the content hash keys the cache)",
    "csibench.reports.table:Table": "a report's table in report.json (output; reports are rebuilt from the database)",
    "csibench.reports.figure:Figure": "a report's figure entry in report.json (output)",
    "csibench.devices.config:SSHConfig": "devices.json entry of kind ssh, read back by devices.config.config_from_dict "
                                         "(each field checked against its annotation); tests/test_device_protocol.py round-trips it",
    "csibench.devices.config:LocalConfig": "devices.json entry of kind local, read back as SSHConfig is",
    "csibench.devices.ray_board:RayBoardConfig": "devices.json entry of kind ray-board, read back as SSHConfig is",
    "csibench.devices.profiles:BoardProfile": "a `devices profiles --json` entry",
}
