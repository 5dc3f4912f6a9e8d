"""Import layering: the low layer stays light, and models/data/devices never reach up into export.

Checked in fresh interpreters (this test process has torch loaded already) and on the source's AST.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import csibench
from tests.sshd import SSHD, Sshd

PACKAGE = Path(csibench.__file__).resolve().parent
HEAVY = ("torch", "numpy", "csibench.export", "csibench.models")
# After the script runs (and whatever sys.exit the CLI calls), print which heavy modules it imported.
REPORT = f"import atexit, json, sys\natexit.register(lambda: print('LOADED', json.dumps([m for m in {HEAVY!r} if m in sys.modules])))\n"


def loaded_by(script: str, env: dict | None = None) -> tuple[list[str], subprocess.CompletedProcess]:
    proc = subprocess.run([sys.executable, "-c", REPORT + script], capture_output=True, text=True, env=env, timeout=120)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("LOADED "))
    return json.loads(line.removeprefix("LOADED ")), proc


def test_light_modules_import_neither_torch_nor_export():
    modules = ["csibench.files", "csibench.formats_table", "csibench.devices.config", "csibench.devices.ssh",
               "csibench.devices.local", "csibench.devices.calibration", "csibench.cli_devices", "csibench.bench.runtimes"]
    loaded, proc = loaded_by("".join(f"import {m}\n" for m in modules))
    assert proc.returncode == 0, proc.stderr
    assert loaded == []


def test_files_and_format_table_use_only_the_standard_library():
    for name in ("files.py", "formats_table.py"):
        for module in imported_modules(PACKAGE / name):
            top = module.split(".")[0]
            assert top in sys.stdlib_module_names or module.startswith("csibench.errors"), f"{name} imports {module}"


@pytest.mark.parametrize("layer", ["models", "data", "devices"])
def test_lower_layers_never_import_export(layer):
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in imported_modules(path):
            assert not module.startswith("csibench.export"), f"{path.relative_to(PACKAGE)} imports {module}"


def imported_modules(path: Path) -> list[str]:
    """Every module an ``import``/``from … import`` names, at any depth (lazy imports inside functions count too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def run_cli(argvs: list[list[str]], env: dict) -> subprocess.CompletedProcess:
    """Run each ``csibench ARGV`` in a fresh interpreter; assert it succeeded without importing anything heavy."""
    for argv in argvs:
        loaded, proc = loaded_by(f"sys.argv = ['csibench', *{argv!r}]\nfrom csibench.cli import main\nmain()\n", env)
        assert proc.returncode == 0, proc.stderr
        assert loaded == [], f"`csibench {' '.join(argv[:2])}` imported {loaded}"
    return proc


def test_devices_help_and_local_check_do_not_load_torch(tmp_path):
    env = {**os.environ, "CSIBENCH_CONFIG_DIR": str(tmp_path / "config")}
    proc = run_cli([["devices", "--help"], ["devices", "check", "--help"], ["devices", "list"], ["devices", "check", "local"]], env)
    assert "local: reachable" in proc.stdout


@pytest.mark.skipif(not Path(SSHD).exists(), reason="openssh-server missing: `make test` and .ci/run install it")
def test_devices_check_over_ssh_does_not_load_torch(tmp_path):
    """`csibench devices check` hashes the agent it uploads; that must not pull in torch (or the export stack)."""
    (tmp_path / "sshd").mkdir()
    sshd = Sshd(tmp_path / "sshd").start()
    try:
        env = {**os.environ, "CSIBENCH_CONFIG_DIR": str(tmp_path / "config")}
        add = ["devices", "add", "pi", "--host", "127.0.0.1", "--port", str(sshd.port), "--user", sshd.user, "--key",
               str(sshd.client_key), "--python", sys.executable, "--known-hosts", str(sshd.known_hosts),
               "--remote-dir", str(tmp_path / "remote")]
        proc = run_cli([add, ["devices", "check", "pi"]], env)
        assert "pi: reachable" in proc.stdout
    finally:
        sshd.stop()


def test_one_format_runtime_table_feeds_every_view():
    from csibench.bench.runtimes import RUNTIMES
    from csibench.export.formats import FORMATS
    from csibench.export.manifest import FORMAT_RUNTIMES
    from csibench.formats_table import BY_FORMAT, TABLE, format_runtimes, runtime_format, runtime_names

    runtimes = [rt for row in TABLE for rt in row.runtimes]
    assert len(runtimes) == len(set(runtimes)), "a runtime listed under two formats makes runtime_format ambiguous"
    assert set(RUNTIMES) == set(runtime_names()) and set(FORMATS) == set(BY_FORMAT)
    for row in TABLE:
        assert FORMAT_RUNTIMES[row.suffix] == (row.format, row.runtimes)
        assert FORMATS[row.format].suffix == row.suffix and FORMATS[row.format].runtime == row.default_runtime
        assert all(RUNTIMES[rt].format == row.format and runtime_format(rt) == row.format for rt in row.runtimes)
    assert format_runtimes("onnx") == ("onnxruntime",) and format_runtimes("nope") == ()
    assert runtime_format("litert") == "tflite" and runtime_format("torch") == "torch"


def test_unknown_runtime_is_one_usage_line():
    from csibench.errors import UsageError
    from csibench.formats_table import runtime_format

    with pytest.raises(UsageError, match=r"unknown runtime 'onnxruntim'; valid: .*did you mean onnxruntime"):
        runtime_format("onnxruntim")


# --- import graph: packages depend one way, and imports sit at module top -------------------------------------------
# A package is the first name under csibench (csibench/bench/latency.py -> "bench", csibench/cli.py -> "cli", the root
# csibench/__init__.py -> "__init__"). The data flows study -> artifact (export) -> measurement (bench, devices) ->
# report, and the CLI drives it all; a package may import only packages in a layer below its own. The last layer is
# the low layer (standard library plus csibench.errors), importable by all and by each other.
LAYERS: list[tuple[str, ...]] = [
    ("__main__", "records"),      # records: the list of every JSON record type, for tests/test_records.py
    ("cli",),
    ("cli_bare", "cli_devices", "cli_studies", "cli_train"),
    ("cli_util",),
    ("studies",),                 # runs the whole pipeline: train, export, measure, report
    ("reports",),                 # reads the results database; draws tables and figures
    ("tables",),                  # the seed papers' published tables, recounted
    ("bench",),                   # times artifacts on devices, keeps the results database
    ("export", "devices"),        # export: model -> artifact; devices: where artifacts run (neither knows the other)
    ("quant",),
    ("complexity", "train"),      # counts a model's MACs and parameters; trains a model on a dataset
    ("data", "models"),
    ("__init__", "config", "errors", "files", "formats_table", "import_path", "precisions", "quiet", "schema", "signals"),
]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}

# Function-local imports of csibench's own modules that stay local, each with its reason. Keys: (file under csibench/,
# module imported); anything else is imported at module top. STARTUP: `csibench --help` and the light commands
# (`devices list`, `studies list`) must not pay for it at startup (torch, numpy, the export stack, paramiko, SQLite
# and the records are seconds or tens of ms); TORCH: the caller is torch-free on a path that must stay so (a bare
# .onnx/.tflite, a measurement whose peak RSS is recorded, a table read from the count cache).
STARTUP = "lazy for startup: a CLI module imports it only in the command that needs it"
TORCH = "optional heavy dependency: pulls in torch, which this torch-free path must not load"
LAZY_IMPORTS: dict[tuple[str, str], str] = {
    **{("cli.py", m): STARTUP for m in (
        "csibench.bench.latency", "csibench.bench.results", "csibench.bench.runtimes", "csibench.bench.stats", "csibench.complexity",
        "csibench.devices.lookup", "csibench.export", "csibench.export.artifacts", "csibench.export.manifest",
        "csibench.models", "csibench.models.plugins", "csibench.models.registry", "csibench.reports",
        "csibench.reports.render", "csibench.tables")},
    ("cli_bare.py", "csibench.export.bare"): STARTUP,
    **{("cli_devices.py", m): STARTUP for m in (
        "csibench.bench.results", "csibench.devices.calibration", "csibench.devices.config", "csibench.devices.lookup")},
    **{("cli_studies.py", m): STARTUP for m in (
        "csibench.bench.results", "csibench.config", "csibench.reports.render", "csibench.studies", "csibench.studies.resume")},
    **{("cli_train.py", m): STARTUP for m in (
        "csibench.data", "csibench.data.mu_dataset", "csibench.data.sionna_mu", "csibench.files", "csibench.models",
        "csibench.models.checkpoint", "csibench.train", "csibench.train.system")},
    ("devices/config.py", "csibench.devices.registry"): "import cycle: the registry's rows name config's classes, and"
                                                         " reading the devices file asks the registry for an entry's kind",
    ("devices/ray_board.py", "csibench.devices.lookup"): "import cycle: lookup builds devices from the registry, whose"
                                                         " ray-board row names this module's config class",
    ("cli_util.py", "csibench.files"): STARTUP + " (importlib.metadata for tool versions: ~25 ms)",
    ("studies/__init__.py", "csibench.studies.runner"): STARTUP + " (`studies list/validate` read specs only; the runner"
                                                                    " pulls in export and bench)",
    ("studies/resume.py", "csibench.bench.latency"): TORCH + " (bench.latency pulls in the export stack; resume parses"
                                                             " `run --resume` options, and needs it only to check a new --min-time)",
    ("studies/engine_local.py", "csibench.studies.prepare"): TORCH + " (a spawned worker imports this module before its"
                                                                 " initializer sets its torch/BLAS thread counts)",
    ("studies/spec.py", "csibench.models"): TORCH + " (`studies validate` checks a spec without building a model)",
    ("studies/templates.py", "csibench.reports.registry"): STARTUP + " (every table builder, ~80 ms: only a spec naming"
                                                                     " tables needs it)",
    **{("studies/recipes.py", m): TORCH + " (spec validation reads RECIPES; training needs torch, data, Sionna)" for m in (
        "csibench.data", "csibench.data.sionna_mu", "csibench.models", "csibench.train", "csibench.train.system")},
    ("reports/study.py", "csibench.reports.plots"): "optional heavy dependency: matplotlib, only when a report is written",
    ("reports/tables/seed000_modules.py", "csibench.models"): TORCH + " (a report that does not build this table)",
    ("reports/tables/seed003.py", "csibench.models.transnet"): TORCH + " (a report that does not build this table)",
    ("bench/_worker.py", "csibench.bench.runtimes.torch_rt"): "the worker imports torch inside run(), so that a missing"
                                                               " torch is its one JSON error line",
    **{("export/bare.py", m): TORCH + " (a bare .onnx/.tflite is opened, counted and timed without torch)" for m in (
        "csibench.export.formats", "csibench.export.onnx_format", "csibench.export.tflite_format")},
    ("export/bare.py", "csibench.export.graph_counts"): "optional heavy dependency: onnx-tool and the TFLite schema, only"
                                                        " when a bare graph is counted",
    ("export/reference.py", "csibench.export.validate"): TORCH + " (checking a bare artifact against its .npz)",
    ("tables/base.py", "csibench.complexity"): TORCH + " (a count in the count cache is read without it)",
    ("tables/base.py", "csibench.models"): TORCH + " (a count in the count cache is read without it)",
    ("tables/paper_003.py", "csibench.models.transnet"): TORCH + " (a count in the count cache is read without it)",
    **{("models/registry.py", m): "plugins registers into this registry at import (plugins -> registry), so the registry"
                                  " reaches plugins and the zoo only when asked for a name" for m in (
        "csibench.models", "csibench.models.plugins")},
}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def csibench_imports(path: Path) -> list[tuple[str, bool, int]]:
    """(module, inside a function, line) for each import of a csibench module in ``path``; ``if TYPE_CHECKING:``
    blocks are skipped (they never run)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    is_package = path.name == "__init__.py"
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            local = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend((a.name, local, child.lineno) for a in child.names if a.name.split(".")[0] == "csibench")
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolved against this module's package
                    anchor = module.split(".")[: len(module.split(".")) - child.level + is_package]
                    base = ".".join([*anchor, *([child.module] if child.module else [])])
                if base == "csibench":  # from csibench import signals: the submodule
                    found.extend((f"csibench.{a.name}", local, child.lineno) for a in child.names)
                elif base.startswith("csibench."):
                    found.append((base, local, child.lineno))
            visit(child, local)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def package_edges(*, lazy_too: bool) -> dict[tuple[str, str], str]:
    """(importer, imported) package pairs, each with one place that makes it."""
    edges: dict[tuple[str, str], str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = package_of(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for module, local, line in csibench_imports(path):
            if (lazy_too or not local) and package_of(module) != importer:
                edges.setdefault((importer, package_of(module)), f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    return edges


def find_cycle(edges) -> list[str] | None:
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := walk(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := walk(start, [])):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({("bench", "devices"), ("devices", "bench")}) == ["bench", "devices", "bench"]
    assert find_cycle({("a", "b"), ("b", "c"), ("c", "a"), ("a", "d")}) == ["a", "b", "c", "a"]
    assert find_cycle({("cli", "bench"), ("bench", "devices"), ("cli", "devices")}) is None


def test_no_import_cycle_among_packages():
    edges = package_edges(lazy_too=False)
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle) + "; " + "; ".join(
        edges[(a, b)] for a, b in zip(cycle, cycle[1:], strict=False))


def test_every_package_has_a_layer():
    packages = {package_of(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    assert packages - set(RANK) == set(), "add the new package to LAYERS"


def test_imports_point_down_the_layers():
    """Lazy imports count too: a function-local import up the layers is the same cycle, hidden."""
    low = RANK["errors"]
    upward = [where for (a, b), where in package_edges(lazy_too=True).items()
              if not (RANK[b] > RANK[a] or RANK[a] == RANK[b] == low)]
    assert upward == []


def test_csibench_imports_sit_at_module_top_unless_allowed():
    local = {(str(path.relative_to(PACKAGE)), module): line
             for path in sorted(PACKAGE.rglob("*.py")) for module, is_local, line in csibench_imports(path) if is_local}
    unexplained = sorted(f"{file}:{line} imports {module}" for (file, module), line in local.items() if (file, module) not in LAZY_IMPORTS)
    assert unexplained == [], "import at module top, or add it to LAZY_IMPORTS with its reason"
    stale = sorted(key for key in LAZY_IMPORTS if key not in local)
    assert stale == [], "LAZY_IMPORTS lists imports that are no longer local: drop them"
