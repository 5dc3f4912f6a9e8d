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
