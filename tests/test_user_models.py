"""Bring your own model: file.py:Name, package.module:Name and entry-point plugins, through the real CLI.

Modules are written by the tests into temp dirs; profile counts are checked against hand computation, exports are
validated on onnxruntime/LiteRT/torch, and the torch artifacts are timed in csibench's fresh worker process, which
must rebuild the user's module from the manifest's source. Plugins run in subprocesses (a temp distribution on
PYTHONPATH), so the registry of this test process never sees them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, invoke

REPO = Path(__file__).resolve().parents[1]
SHORT = ("--min-time", "0.05", "--min-samples", "8")

# Conv 2→4 (3×3, pad 1) on 2×32×32, ReLU, dense 4096→codeword. By hand:
#   conv: 32·32·4 outputs × 2·9 MAC = 73,728 MAC; 4·2·9 + 4 = 76 params
#   dense: 4096·64 = 262,144 MAC; 4096·64 + 64 = 262,208 params
#   paper-004: conv 2·32·32·(2·9+1)·4 = 155,648 FLOP; dense (2·4096−1)·64 = 524,224 FLOP
ENCODER = textwrap.dedent('''
    import torch
    from torch import nn
    from csibench.models.base import CsiModel, SideSpec, TensorSpec


    class Encoder(nn.Module):
        """A conv + dense encoder."""

        def __init__(self, codeword: int = 64):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 32 * 32, codeword)

        def forward(self, csi):
            return self.fc(torch.relu(self.conv(csi)).flatten(1))


    class WithExample(Encoder):
        example_input = torch.zeros(8, 2, 32, 32)  # the first dim is the batch; artifacts take batch 1


    def make_encoder():
        return Encoder(codeword=32)


    class TinyAE(CsiModel):
        """UE: dense 2048→32; BS: dense 32→2048."""

        def __init__(self):
            super().__init__(ue=nn.Sequential(nn.Flatten(), nn.Linear(2048, 32)),
                             bs=nn.Sequential(nn.Linear(32, 2048), nn.Unflatten(1, (2, 32, 32))))

        def side_specs(self):
            csi, cw = TensorSpec("csi", (1, 2, 32, 32)), TensorSpec("codeword", (1, 32))
            return {"ue": SideSpec("ue", "encoder", (csi,), (cw,)),
                    "bs": SideSpec("bs", "decoder", (cw,), (TensorSpec("csi_hat", (1, 2, 32, 32)),))}


    class NeedsArgs(nn.Module):
        def __init__(self, width):
            super().__init__()


    class RaisesInInit(nn.Module):
        def __init__(self):
            raise RuntimeError("no weights [here]")


    class Untraceable(nn.Module):
        example_input = torch.zeros(1, 4)

        def forward(self, x):
            return x * 2 if float(x.sum()) > 0 else x  # data-dependent: torch.export refuses it


    class ReturnsList(nn.Module):
        example_input = torch.zeros(1, 4)

        def forward(self, x):
            return [x]


    class NotModule:
        pass


    def returns_int():
        return 3


    instance = Encoder()
''')

PLUGIN_MODELS = textwrap.dedent('''
    import torch
    from torch import nn


    class Enc(nn.Module):
        """A plugin's conv encoder."""

        example_input = torch.zeros(1, 2, 32, 32)

        def __init__(self, width: int = 4):
            super().__init__()
            self.conv = nn.Conv2d(2, width, 3, padding=1)

        def forward(self, x):
            return self.conv(x).flatten(1)
''')

PLUGIN_REGISTERED = textwrap.dedent('''
    from dataclasses import dataclass
    from fractions import Fraction

    from torch import nn

    from csibench.models import register_model
    from csibench.models.base import CodewordAutoencoder


    @dataclass(frozen=True)
    class Cfg:
        cr: Fraction = Fraction(1, 16)


    @register_model("plug-ae", paper="plugin-paper", summary="a registered plugin autoencoder", cfg_cls=Cfg)
    def build(cfg):
        n = int(2048 * cfg.cr)
        return CodewordAutoencoder(nn.Sequential(nn.Flatten(), nn.Linear(2048, n)),
                                   nn.Sequential(nn.Linear(n, 2048), nn.Unflatten(1, (2, 32, 32))), n)
''')




@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("byo")
    (root / "enc.py").write_text(ENCODER)
    (root / "broken.py").write_text("import torch\nraise ValueError('boom at import')\n")
    (root / "syntax.py").write_text("def f(:\n")
    (root / "notes.txt").write_text("not python\n")
    pkg = root / "pkgs" / "userpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(ENCODER)
    return root


def exported_json(result) -> list[dict]:
    """`export --json` output: stdout is the JSON document alone (torch.onnx's print()ed progress goes to stderr
    while a --json command runs, even under CliRunner, which swaps sys.stdout)."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def profile_json(*args: str) -> dict:
    result = invoke("profile", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


ENCODER_COUNTS = {"macs": 335_872, "flops": 671_744, "paper-004": 155_648 + 524_224, "thop": 335_872}


def test_profile_plain_module_with_input_shape(user_dir):
    data = profile_json(f"{user_dir}/enc.py:Encoder", "--input-shape", "1,2,32,32")
    assert data["model"] == "enc.Encoder" and data["config"] == {"codeword": 64}
    assert data["inputs"] == [{"name": "csi", "shape": [1, 2, 32, 32], "dtype": "float32"}]
    assert data["params"] == 76 + 262_208
    assert {c: v["value"] for c, v in data["counts"].items()} == ENCODER_COUNTS
    assert data["cross_checks"]["fvcore"]["agrees_with_macs"]


def test_profile_example_input_factory_and_set(user_dir):
    assert {c: v["value"] for c, v in profile_json(f"{user_dir}/enc.py:WithExample")["counts"].items()} == ENCODER_COUNTS
    # --set changes the class's own parameter: dense 4096→32 is 131,072 MAC
    narrow = profile_json(f"{user_dir}/enc.py:WithExample", "--set", "codeword=32", "--convention", "macs")
    assert narrow["config"] == {"codeword": 32} and narrow["counts"]["macs"]["value"] == 73_728 + 131_072
    factory = profile_json(f"{user_dir}/enc.py:make_encoder", "--input-shape", "1x2x32x32", "--convention", "macs")
    assert factory["counts"]["macs"]["value"] == 73_728 + 131_072 and factory["config"] == {}


def test_profile_csimodel_subclass_both_sides(user_dir):
    ue = profile_json(f"{user_dir}/enc.py:TinyAE", "--convention", "macs")
    assert ue["counts"]["macs"]["value"] == 2048 * 32 and ue["params"] == 2048 * 32 + 32
    both = profile_json(f"{user_dir}/enc.py:TinyAE", "--side", "all", "--convention", "macs")
    assert both["counts"]["macs"]["value"] == 2 * 2048 * 32 and both["params"] == 2048 * 32 + 32 + 32 * 2048 + 2048


def test_same_file_name_in_two_dirs_never_collides(tmp_path):
    for width, sub in ((2, "a"), (3, "b")):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "model.py").write_text(textwrap.dedent(f'''
            from torch import nn
            class M(nn.Module):
                example_input = __import__("torch").zeros(1, 5)
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(5, {width})
                def forward(self, x):
                    return self.fc(x)
        '''))
    assert profile_json(f"{tmp_path}/a/model.py:M", "--convention", "macs")["counts"]["macs"]["value"] == 10
    assert profile_json(f"{tmp_path}/b/model.py:M", "--convention", "macs")["counts"]["macs"]["value"] == 15


def _bench(artifact: Path, db: Path, *extra: str) -> dict:
    result = invoke("bench", str(artifact), *SHORT, "--db", str(db), "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["measurements"][0]


@pytest.mark.slow
def test_export_every_format_and_bench_plain_module(user_dir, tmp_path):
    out, db = tmp_path / "art", tmp_path / "r.db"
    result = invoke("export", f"{user_dir}/enc.py:Encoder", "--input-shape", "1,2,32,32", "--format", "onnx,tflite,torch",
                    "--out", str(out), "--json")
    exported = {m["manifest"]["format"]: (Path(m["path"]), m["manifest"]) for m in exported_json(result)}
    assert sorted(exported) == ["onnx", "tflite", "torch"]
    sha = hashlib.sha256((user_dir / "enc.py").read_bytes()).hexdigest()
    for path, m in exported.values():
        assert m["validation"]["status"] == "passed", m["validation"]
        assert path.name.startswith("enc.Encoder_ue.")
        assert m["model"] == "enc.Encoder" and m["paper"] == "user" and m["config"] == {"codeword": 64}
        assert m["source"] == {"kind": "user", "ref": f"{(user_dir / 'enc.py').resolve()}:Encoder", "sha256": sha,
                               "input_shape": [1, 2, 32, 32], "path": os.getcwd()}  # the import root: the working directory
        assert m["inputs"] == [{"name": "csi", "shape": [1, 2, 32, 32], "dtype": "float32"}]
        assert m["outputs"] == [{"name": "output", "shape": [1, 64], "dtype": "float32"}]
        assert m["complexity"]["counts"]["macs"]["value"] == ENCODER_COUNTS["macs"]
    # The torch runtime rebuilds the module from the manifest's source in a fresh worker process.
    torch_rec = _bench(exported["torch"][0], db)
    assert torch_rec["runtime"] == "torch" and torch_rec["model"] == "enc.Encoder" and torch_rec["summary"]["n"] >= 8
    onnx_rec = _bench(exported["onnx"][0], db)
    assert onnx_rec["runtime"] == "onnxruntime" and onnx_rec["model"] == "enc.Encoder"


@pytest.mark.slow
def test_export_and_bench_example_input_and_csimodel(user_dir, tmp_path):
    out, db = tmp_path / "art", tmp_path / "r.db"
    for ref in ("WithExample", "TinyAE"):
        result = invoke("export", f"{user_dir}/enc.py:{ref}", "--format", "torch", "--out", str(out), "--json")
        assert result.exit_code == 0, result.output
        (item,) = json.loads(result.stdout)
        assert item["manifest"]["validation"]["status"] == "passed"
        assert item["manifest"]["source"]["input_shape"] is None  # rebuilt from example_input / side_specs
        assert _bench(Path(item["path"]), db)["model"] == f"enc.{ref}"


@pytest.mark.slow
def test_changed_file_is_refused_by_the_torch_worker(user_dir, tmp_path):
    mine = tmp_path / "mine.py"
    mine.write_text(ENCODER)
    result = invoke("export", f"{mine}:WithExample", "--format", "torch", "--out", str(tmp_path / "art"), "--json")
    assert result.exit_code == 0, result.output
    artifact = Path(json.loads(result.stdout)[0]["path"])
    mine.write_text(ENCODER + "\n# edited\n")
    assert_one_line_error(invoke("bench", str(artifact), *SHORT, "--db", str(tmp_path / "r.db")), 1,
                          "changed since the artifact was exported")


@pytest.mark.slow
def test_package_module_reference_and_worker_path(user_dir, tmp_path, monkeypatch):
    """pkg.mod:Name found on sys.path; the worker (which lacks that path) finds it through the manifest's source."""
    monkeypatch.setattr(sys, "path", [*sys.path, str(user_dir / "pkgs")])
    data = profile_json("userpkg.nets:WithExample", "--convention", "macs")
    assert data["model"] == "userpkg.nets.WithExample" and data["counts"]["macs"]["value"] == ENCODER_COUNTS["macs"]
    result = invoke("export", "userpkg.nets:WithExample", "--format", "torch", "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)
    assert item["manifest"]["source"]["ref"] == "userpkg.nets:WithExample"
    assert item["manifest"]["source"]["path"] == str((user_dir / "pkgs").resolve())
    assert "pkgs" not in os.environ.get("PYTHONPATH", "")
    assert _bench(Path(item["path"]), tmp_path / "r.db")["model"] == "userpkg.nets.WithExample"


def test_module_in_the_working_directory(user_dir, monkeypatch):
    """As with `python -m`, a module in the working directory is importable by name (the console script lacks it)."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd(), str(user_dir))])
    monkeypatch.chdir(user_dir)
    monkeypatch.delitem(sys.modules, "enc", raising=False)  # restored afterwards: no stray top-level "enc"
    data = profile_json("enc:WithExample", "--convention", "macs")
    assert data["model"] == "enc.WithExample" and data["counts"]["macs"]["value"] == ENCODER_COUNTS["macs"]


def test_checkpoint_for_a_user_model(user_dir, tmp_path):
    """Weights from a csibench checkpoint (sidecar names the model) or a bare safetensors state_dict."""
    import torch
    from safetensors.torch import save_file

    from csibench.models import resolve_model
    from csibench.models.checkpoint import save_checkpoint

    ref = f"{user_dir}/enc.py:WithExample"
    trained = resolve_model(ref, seed=7)
    save_checkpoint(trained, tmp_path / "ckpt.safetensors", side="ue")
    loaded = resolve_model(ref, seed=0, checkpoint=tmp_path / "ckpt.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(trained.ue.state_dict().values(), loaded.ue.state_dict().values(), strict=True))
    assert loaded.provenance["weights"] == "checkpoint"
    save_file(trained.ue.state_dict(), str(tmp_path / "bare.safetensors"))
    bare = resolve_model(ref, checkpoint=tmp_path / "bare.safetensors")
    assert torch.equal(bare.ue.fc.weight, trained.ue.fc.weight)
    assert_one_line_error(invoke("profile", ref, "--set", "codeword=32", "--checkpoint", str(tmp_path / "ckpt.safetensors")),
                          2, "has codeword=64, not 32")


BAD = [
    (["{d}/missing.py:Encoder"], 2, ["no such file", "missing.py"]),
    (["{d}/notes.txt:Encoder"], 2, ["not a .py file"]),
    (["{d}/enc.py:"], 2, ["invalid model reference", "file.py:Name"]),
    (["no-such:Name"], 2, ["neither a .py file nor a package.module"]),
    (["nosuchpkg.mod:Encoder"], 2, ["no module named 'nosuchpkg'", "PYTHONPATH"]),
    (["{d}/broken.py:Encoder"], 1, ["importing", "broken.py failed", "ValueError: boom at import"]),
    (["{d}/syntax.py:Encoder"], 1, ["importing", "SyntaxError"]),
    (["{d}/enc.py:Encodr"], 2, ["has no 'Encodr'", "Encoder", "TinyAE", "did you mean Encoder"]),
    (["{d}/enc.py:NotModule"], 2, ["NotModule is a class but not a torch.nn.Module"]),
    (["{d}/enc.py:instance"], 2, ["instance is an nn.Module instance", "name its class"]),
    (["{d}/enc.py:returns_int"], 2, ["returned int, not a torch.nn.Module"]),
    (["{d}/enc.py:NeedsArgs"], 2, ["needs argument(s) width"]),
    (["{d}/enc.py:RaisesInInit"], 1, ["building", "RuntimeError: no weights [here]"]),
    (["{d}/enc.py:Encoder"], 2, ["plain nn.Module", "--input-shape", "example_input"]),
    (["{d}/enc.py:Encoder", "--input-shape", "1,3,32,32"], 1, ["forward fails on input shape 1x3x32x32", "RuntimeError"]),
    (["{d}/enc.py:Encoder", "--input-shape", "1,2,a,32"], 2, ["invalid --input-shape '1,2,a,32'", "positive integers"]),
    (["{d}/enc.py:Encoder", "--input-shape", "1,0,32,32"], 2, ["invalid --input-shape", "positive integers"]),
    (["{d}/enc.py:Encoder", "--input-shape", "1,-2,32,32"], 2, ["invalid --input-shape", "positive integers"]),
    (["{d}/enc.py:Encoder", "--input-shape", "nan"], 2, ["invalid --input-shape 'nan'"]),
    (["{d}/enc.py:Encoder", "--input-shape", "1.5,2"], 2, ["invalid --input-shape '1.5,2'"]),
    (["{d}/enc.py:Encoder", "--input-shape", ""], 2, ["invalid --input-shape ''"]),
    (["{d}/enc.py:Encoder", "--input-shape", "4,2,32,32"], 2, ["first dim is the batch and must be 1"]),
    (["crnet", "--input-shape", "1,2,32,32"], 2, ["--input-shape is for a plain nn.Module", "crnet"]),
    (["{d}/enc.py:TinyAE", "--input-shape", "1,2,32,32"], 2, ["--input-shape is for a plain nn.Module"]),
    (["{d}/enc.py:WithExample", "--set", "width=3"], 2, ["has no parameter width", "valid: codeword"]),
    (["{d}/enc.py:WithExample", "--side", "bs"], 2, ["no side 'bs'", "valid: ue"]),
    (["{d}/enc.py:ReturnsList"], 2, ["forward returned list", "tuple of tensors"]),
    (["{d}/enc.py:Untraceable"], 1, ["torch.export cannot trace Untraceable"]),
]


@pytest.mark.parametrize("args, code, fragments", BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_references_one_line(user_dir, args, code, fragments):
    assert_one_line_error(invoke("profile", *(a.format(d=user_dir) for a in args)), code, *fragments)


# ---- config values are coerced and range-checked as the zoo's (type, range, NaN) ----------------------------------

TYPED = textwrap.dedent('''
    from __future__ import annotations

    import torch
    from torch import nn


    class Typed(nn.Module):
        example_input = torch.zeros(1, 8)

        def __init__(self, width: int = 4, slope: float = 0.1, offset: int = 0, shift=-2, bias: bool = True,
                     ratio: float = 1 / 16, tag: str = "a", extra: int | None = None, anything=None):
            super().__init__()
            self.fc = nn.Linear(8, width, bias=bias)

        def forward(self, x):
            return self.fc(x)
''')


@pytest.fixture(scope="module")
def typed(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("typed") / "typed.py"
    path.write_text(TYPED)
    return f"{path}:Typed"


@pytest.mark.parametrize("setting, fragments", [
    ("width=abc", ["width='abc'", "a whole number"]),
    ("width=2.5", ["width=2.5", "a whole number"]),
    ("width=true", ["width=True", "a whole number"]),
    ("width=0", ["width=0", "a whole number ≥ 1"]),
    ("width=-3", ["width=-3", "≥ 1"]),
    ("width=1e400", ["width=inf", "a whole number"]),
    ("offset=-1", ["offset=-1", "≥ 0"]),  # a default of 0 allows 0, not below
    ("slope=abc", ["slope='abc'", "a finite number"]),
    ("slope=nan", ["slope='nan'", "not NaN or infinity"]),
    ("slope=-Infinity", ["slope=-inf", "not NaN or infinity"]),
    ("ratio=1/0", ["ratio='1/0'", "a finite number"]),
    ("bias=maybe", ["bias='maybe'", "true or false"]),
    ("bias=2", ["bias=2", "true or false"]),
    ("tag=[1,2]", ["tag=[1, 2]", "text"]),
    ("extra=x", ["extra='x'", "a whole number"]),
])
def test_user_config_values_are_typed_and_checked(typed, setting, fragments):
    assert_one_line_error(invoke("profile", typed, "--set", setting), 2, f"for model {typed!r}", *fragments)


def test_user_config_values_are_coerced_to_the_parameters_types(typed):
    config = profile_json(typed, "--set", "width=8", "--set", "slope=-0.5", "--set", "offset=0", "--set", "shift=-7",
                          "--set", "bias=false", "--set", "ratio=1/32", "--set", "tag=7", "--set", "extra=none",
                          "--set", "anything=[1, 2]", "--convention", "macs")["config"]
    assert config == {"width": 8, "slope": -0.5, "offset": 0, "shift": -7, "bias": False, "ratio": 1 / 32, "tag": "7",
                      "extra": None, "anything": [1, 2]}
    assert type(config["slope"]) is float and type(config["width"]) is int


def test_export_refuses_a_side_the_module_lacks(user_dir, tmp_path):
    assert_one_line_error(invoke("export", f"{user_dir}/enc.py:WithExample", "--side", "all", "--format", "onnx",
                                 "--out", str(tmp_path)), 2, "unknown side 'all'", "valid: ue")
    assert not any(tmp_path.iterdir())


# ---- plugins: a real distribution on PYTHONPATH, seen by fresh processes only -----------------------------------------

@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A distribution `byo-plugins` 1.2 with three entry points: an nn.Module class, a module that registers a
    model with @register_model, and a module that raises on import."""
    site = tmp_path_factory.mktemp("site")
    pkg = site / "byo_plugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(PLUGIN_MODELS)
    (pkg / "registered.py").write_text(PLUGIN_REGISTERED)
    (pkg / "bad.py").write_text("raise RuntimeError('plugin broken on purpose')\n")
    info = site / "byo_plugins-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: byo-plugins\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(
        "[csibench.models]\nplug-enc = byo_plugins.nets:Enc\nplug-ae = byo_plugins.registered\nplug-bad = byo_plugins.bad\n")
    return site


def csibench(*args: str, site: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (REPO, site) if p)
    return subprocess.run([sys.executable, "-m", "csibench", *args], capture_output=True, text=True, env=env, timeout=300)


def test_plugins_are_listed_and_a_broken_one_only_warns(plugin_site):
    proc = csibench("models", "--json", site=plugin_site)
    assert proc.returncode == 0, proc.stderr
    listing = {m["name"]: m for m in json.loads(proc.stdout)}
    assert "crnet" in listing and listing["crnet"]["plugin"] is None
    enc, ae = listing["plug-enc"], listing["plug-ae"]
    assert enc["plugin"] == {"entry_point": "plug-enc = byo_plugins.nets:Enc", "distribution": "byo-plugins", "version": "1.2"}
    assert enc["paper"] == "plugin" and enc["parameters"] == {"width": 4} and enc["summary"] == "A plugin's conv encoder."
    assert enc["sides"]["ue"]["inputs"] == [{"name": "x", "shape": [1, 2, 32, 32], "dtype": "float32"}]
    assert enc["sides"]["ue"]["outputs"] == [{"name": "output", "shape": [1, 4096], "dtype": "float32"}]
    assert ae["paper"] == "plugin-paper" and ae["parameters"] == {"cr": "1/16"} and ae["plugin"]["distribution"] == "byo-plugins"
    assert "plug-bad" not in listing
    warnings = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(warnings) == 1 and "plug-bad" in warnings[0] and "byo-plugins 1.2" in warnings[0], proc.stderr
    assert "RuntimeError: plugin broken on purpose" in warnings[0] and "Traceback" not in proc.stderr


def test_plugin_usable_by_name_and_broken_one_fails_in_one_line(plugin_site):
    proc = csibench("profile", "plug-enc", "--set", "width=8", "--json", site=plugin_site)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # conv 2→8 3×3 on 32×32: 32·32·8·18 MAC, 8·18 + 8 params
    assert data["counts"]["macs"]["value"] == 147_456 and data["params"] == 152 and data["config"] == {"width": 8}
    proc = csibench("profile", "plug-ae", "--cr", "1/32", "--convention", "macs", "--json", site=plugin_site)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"]["macs"]["value"] == 2048 * 64
    proc = csibench("profile", "plug-bad", site=plugin_site)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "plugin 'plug-bad'" in lines[0] and "plug-bad = byo_plugins.bad" in lines[0] and "byo-plugins 1.2" in lines[0]
    proc = csibench("profile", "plug-nope", site=plugin_site)
    assert proc.returncode == 2 and "unknown model 'plug-nope'" in proc.stderr and "plug-enc" in proc.stderr


@pytest.mark.slow
def test_plugin_torch_artifact_rebuilt_by_a_worker_without_the_plugin_path(plugin_site, tmp_path):
    proc = csibench("export", "plug-ae", "--format", "torch", "--out", str(tmp_path), "--json", site=plugin_site)
    assert proc.returncode == 0, proc.stderr
    (item,) = json.loads(proc.stdout)
    assert item["manifest"]["paper"] == "plugin-paper"
    assert item["manifest"]["source"] == {"kind": "plugin", "name": "plug-ae", "distribution": "byo-plugins", "version": "1.2",
                                          "path": str(plugin_site.resolve())}
    # bench in a process whose PYTHONPATH lacks the distribution: the manifest's source says where it was found
    proc = csibench("bench", item["path"], *SHORT, "--db", str(tmp_path / "r.db"), "--json", site=None)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["measurements"][0]["model"] == "plug-ae"


# ---- issue 16: a model file inside a repository imports from the repository root ----------------------------------

REPO_UTILS = "def logger(message):\n    return message\n"
REPO_ENCODER = textwrap.dedent('''
    import torch
    from torch import nn
    from utils import logger  # as the repository's own scripts import it, run from the repository root


    class RepoEnc(nn.Module):
        example_input = torch.zeros(1, 2, 32, 32)

        def __init__(self, width: int = 4):
            super().__init__()
            logger("building")
            self.conv = nn.Conv2d(2, width, 3, padding=1)

        def forward(self, x):
            return self.conv(x).flatten(1)
''')
REPO_MACS = 32 * 32 * 4 * 2 * 9  # conv 2→4, 3×3, pad 1, on 2×32×32: 73,728 MAC


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """repo/utils.py + repo/models/enc.py (`from utils import logger`); sys.path, sys.modules and the import-root
    variable restored afterwards, so no other test sees this repository's `utils`."""
    root = tmp_path / "repo"
    (root / "models").mkdir(parents=True)
    (root / "utils.py").write_text(REPO_UTILS)
    (root / "models" / "enc.py").write_text(REPO_ENCODER)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    monkeypatch.setenv("CSIBENCH_IMPORT_PATH", "")  # recorded first, so the undo removes what --import-path sets
    monkeypatch.delenv("CSIBENCH_IMPORT_PATH")
    sys.modules.pop("utils", None)
    yield root
    sys.modules.pop("utils", None)


def test_model_file_imports_from_the_repository_root(repo, monkeypatch):
    """Run from the repository root, `models/enc.py:RepoEnc` finds `utils` as the repository's scripts do."""
    monkeypatch.chdir(repo)
    data = profile_json("models/enc.py:RepoEnc", "--convention", "macs")
    assert data["model"] == "enc.RepoEnc" and data["counts"]["macs"]["value"] == REPO_MACS


def test_model_file_outside_its_root_needs_import_path(repo, tmp_path, monkeypatch):
    """From elsewhere, `utils` is not found (one line saying where csibench looked and what to pass); with
    --import-path (or CSIBENCH_IMPORT_PATH) naming the repository root it is."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ref = f"{repo}/models/enc.py:RepoEnc"
    assert_one_line_error(invoke("profile", ref), 1, "No module named 'utils'", f"resolved from {repo / 'models'} and {elsewhere}",
                          "--import-path DIR")
    result = invoke("--import-path", str(repo), "profile", ref, "--convention", "macs", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["macs"]["value"] == REPO_MACS
    assert os.environ["CSIBENCH_IMPORT_PATH"] == str(repo.resolve())  # what the measuring worker inherits


@pytest.mark.parametrize("where, fragment", [("file", "a file, not a directory"), ("missing", "no such directory")])
def test_import_path_must_be_a_directory(repo, where, fragment):
    target = repo / "utils.py" if where == "file" else repo / "nope"
    assert_one_line_error(invoke("--import-path", str(target), "profile", "crnet"), 2, f"--import-path {target}: {fragment}",
                          "the repository root")


@pytest.mark.slow
def test_torch_worker_rebuilds_a_repository_model_from_another_directory(repo, tmp_path, monkeypatch):
    """The manifest records the import root; a bench run elsewhere (whose fresh worker process rebuilds the module
    from the manifest's source) still finds `utils`."""
    monkeypatch.chdir(repo)
    result = invoke("export", "models/enc.py:RepoEnc", "--format", "torch", "--out", str(tmp_path / "art"), "--json")
    (item,) = exported_json(result)
    assert item["manifest"]["source"]["path"] == str(repo.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    sys.modules.pop("utils", None)
    record = _bench(Path(item["path"]), tmp_path / "r.db")
    assert record["model"] == "enc.RepoEnc" and record["runtime"] == "torch" and record["summary"]["n"] >= 8
