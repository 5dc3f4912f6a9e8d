"""SSH devices respect the user's files, and bad device inputs are one line: against a real sshd on 127.0.0.1.

Nothing SSH is mocked: known_hosts files are real files read by csibench, the "device" cache is a real directory
written over SFTP by a real OpenSSH server, and the server without SFTP is a real sshd with the subsystem removed.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from csibench.cli import app
from csibench.devices.config import SSHConfig, add_device
from csibench.devices.local import AGENT
from csibench.devices.ssh import SSHDevice, sha256_of
from csibench.errors import CsibenchError
from tests.sshd import SSHD, Sshd, free_port, keygen

pytestmark = pytest.mark.skipif(not Path(SSHD).exists(), reason="openssh-server missing: `make test` and .ci/run install it")
runner = CliRunner()

# Lines paramiko cannot load, as found in real users' known_hosts files.
CERT_AUTHORITY = "@cert-authority *.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ca\n"
SK_KEY = ("host.example.org sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIGxM2v1xRz2Ah0CxT7m2wb0"
          "bBm4jKyNnnxKqvBaqt0LuAAAABHNzaDo= user@key\n")
HASHED = "|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
GARBAGE = "this line is not a host key at all\nhost.example.org ssh-ed25519 !!!not-base64!!!\n"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = Sshd(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def no_sftp(tmp_path_factory):
    server = Sshd(tmp_path_factory.mktemp("nosftp"), sftp=False).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CSIBENCH_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def device(server: Sshd, tmp_path: Path, **overrides) -> SSHConfig:
    fields = dict(name="pi", profile="rpi4", host="127.0.0.1", port=server.port, user=server.user, key_file=str(server.client_key),
                  python=sys.executable, known_hosts=str(server.known_hosts), remote_dir=str(tmp_path / "remote cache"))
    return SSHConfig(**{**fields, **overrides})


def host_line(server: Sshd) -> str:
    kind, blob = server.host_key.with_name(server.host_key.name + ".pub").read_text().split()[:2]
    return f"[127.0.0.1]:{server.port} {kind} {blob}\n"


def stderr_lines(result) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.strip()]


# ------------------------------------------------------------------ known_hosts


def test_unparseable_known_hosts_lines_are_skipped_with_a_note(sshd, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("# my hosts\n" + CERT_AUTHORITY + SK_KEY + GARBAGE + HASHED + host_line(sshd))
    before = known.read_bytes()
    add_device(device(sshd, tmp_path, known_hosts=str(known)))
    result = runner.invoke(app, ["devices", "check", "pi"])
    assert result.exit_code == 0, result.output
    assert "reachable" in result.stdout and "Traceback" not in result.output
    assert "@cert-authority" in result.stderr and "skipped" in result.stderr  # said once, not fatal
    assert known.read_bytes() == before  # read, never written


@pytest.mark.parametrize("also_known", [True, False], ids=["revoked-and-listed", "revoked-only"])
def test_revoked_host_key_is_refused(sshd, tmp_path, also_known):
    known = tmp_path / "known_hosts"
    kind, blob = host_line(sshd).split()[1:3]
    known.write_text(f"@revoked * {kind} {blob}\n" + (host_line(sshd) if also_known else ""))
    with pytest.raises(CsibenchError, match="marked @revoked"):
        SSHDevice(device(sshd, tmp_path, known_hosts=str(known), trust_on_first_use=True)).probe()
    assert not (tmp_path / "config" / "known_hosts").exists()  # a revoked key is never learned


def test_trust_on_first_use_never_writes_the_users_known_hosts(sshd, tmp_path, config_dir):
    known = tmp_path / "known_hosts"
    known.write_text("# keep this comment\n" + HASHED + CERT_AUTHORITY + SK_KEY + "\n")
    before = known.read_bytes()
    assert SSHDevice(device(sshd, tmp_path, known_hosts=str(known), trust_on_first_use=True)).probe()["runtimes"]
    assert known.read_bytes() == before
    own = (config_dir / "known_hosts").read_text()
    assert own == host_line(sshd)  # learned into csibench's own file, once
    # Later lookups read both files: no trust needed any more, and nothing appended twice.
    assert SSHDevice(device(sshd, tmp_path, known_hosts=str(known))).probe()["runtimes"]
    assert (config_dir / "known_hosts").read_text() == own and known.read_bytes() == before


def test_a_changed_key_in_csibench_own_file_is_still_refused(sshd, tmp_path, config_dir):
    impostor = keygen(tmp_path / "impostor").with_name("impostor.pub").read_text().split()
    config_dir.mkdir(parents=True)
    (config_dir / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {impostor[0]} {impostor[1]}\n")
    with pytest.raises(CsibenchError, match="host key CHANGED"):
        SSHDevice(device(sshd, tmp_path, known_hosts=str(tmp_path / "none"), trust_on_first_use=True)).probe()


def test_a_new_key_type_for_a_known_host_is_a_changed_key(sshd, tmp_path, config_dir):
    rsa = tmp_path / "rsa_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa)], check=True)
    kind, blob = rsa.with_name("rsa_key.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")  # the server offers only ed25519
    with pytest.raises(CsibenchError, match="host key CHANGED"):
        SSHDevice(device(sshd, tmp_path, known_hosts=str(known), trust_on_first_use=True)).probe()
    assert not (config_dir / "known_hosts").exists()


# ------------------------------------------------------------------ device cache


def test_corrupted_cache_is_copied_again(sshd, tmp_path):
    dev = SSHDevice(device(sshd, tmp_path))
    payload = tmp_path / "model.bin"
    payload.write_bytes(os.urandom(200_000))
    sha = sha256_of(payload)
    hashes = lambda remote: {"op": "hashes", "paths": remote}  # noqa: E731 -- the real agent op, over the real session

    assert dev._session(hashes, 60, [(payload, sha)])["sha256"] == [sha]
    cached = Path(dev.cfg.remote_dir) / "cas" / sha / payload.name
    assert cached.read_bytes() == payload.read_bytes()
    intact = cached.stat().st_mtime_ns
    dev._session(hashes, 60, [(payload, sha)])
    assert cached.stat().st_mtime_ns == intact  # verified by sha256 on the device: not copied again

    damaged = bytearray(payload.read_bytes())
    damaged[1000] ^= 0xFF  # same size, different bytes
    cached.write_bytes(bytes(damaged))
    assert dev._session(hashes, 60, [(payload, sha)])["sha256"] == [sha]
    assert cached.read_bytes() == payload.read_bytes()

    agent = Path(dev.cfg.remote_dir) / "cas" / sha256_of(AGENT) / AGENT.name
    agent.write_bytes(b"#" * agent.stat().st_size)  # a corrupted agent of the same size
    assert dev.probe()["runtimes"]
    assert hashlib.sha256(agent.read_bytes()).hexdigest() == sha256_of(AGENT)


def test_device_without_sftp_is_one_line(no_sftp, tmp_path):
    with pytest.raises(CsibenchError, match="no SFTP") as caught:
        SSHDevice(device(no_sftp, tmp_path)).probe()
    assert "\n" not in str(caught.value) and "Subsystem sftp" in str(caught.value)


def test_retries_after_a_dropped_connection_are_reported(sshd, tmp_path):
    add_device(device(sshd, tmp_path, name="gone", port=free_port()))
    result = runner.invoke(app, ["devices", "check", "gone"])
    assert result.exit_code == 1
    lines = stderr_lines(result)
    assert [ln.split(":")[0] for ln in lines[:-1]] == ["retrying (1/2) in 0.5 s", "retrying (2/2) in 1 s"]
    assert "unreachable" in lines[-1] and "Traceback" not in result.output


# ------------------------------------------------------------------ calibration


def test_ssh_calibration_per_thread_count_and_cache_like_the_local_device(sshd, tmp_path, config_dir):
    """`devices calibrate` of an SSH device measures the peak at each thread count (the device's BLAS limited by
    the env csibench sets on the remote command) and the cache copy bandwidth, and stores it in the database only."""
    import json

    from csibench.bench.results import ResultsDB
    from csibench.devices.calibration import CACHE_COPY_MB, fingerprint_digest, thread_counts

    log = tmp_path / "blas-threads.log"  # the device's python, wrapped: it notes the thread limit each agent run got
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "${{OPENBLAS_NUM_THREADS:-all}} ${{OMP_NUM_THREADS:-all}} ${{MKL_NUM_THREADS:-all}}" >> "{log}"\n'
                       f'exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    add_device(device(sshd, tmp_path, python=str(wrapper)))
    db = tmp_path / "r.db"
    result = runner.invoke(app, ["devices", "calibrate", "pi", "--seconds", "0.1", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    cal = json.loads(result.stdout)
    cores = cal["host"]["logical_cores"]
    assert sorted(map(int, cal["peak_gflops_by_threads"])) == thread_counts(cores)
    assert cal["peak_gflops_by_threads"][str(cores)] == cal["peak_gflops"]
    assert cal["cache_bytes"] == 2 * CACHE_COPY_MB * 2**20 and cal["cache_bandwidth_gbs"] > 0
    # One agent run per probe: all cores, each smaller thread count (every BLAS variable set to it), the cache copy.
    below = [str(t) for t in thread_counts(cores) if t != cores]
    assert log.read_text().splitlines() == ["all all all", *(f"{t} {t} {t}" for t in below), "all all all"]
    with ResultsDB(db) as results:
        [stored] = results.calibrations(["pi"])
    assert stored["id"] == cal["calibration_id"] and stored["fingerprint_sha256"] == fingerprint_digest(cal["host"])
    assert stored["peak_gflops_by_threads"] == cal["peak_gflops_by_threads"] and "saved_to" not in cal
    assert not (config_dir / "calibrations").exists()  # the database is the only record


# ------------------------------------------------------------------ the CLI


def test_devices_show_a_builtin_profile_and_remove_json(sshd, tmp_path):
    shown = runner.invoke(app, ["devices", "show", "rpi4"])
    assert shown.exit_code == 0 and "Cortex-A72" in shown.stdout and "device:" not in shown.stdout
    add_device(device(sshd, tmp_path, name="spare"))
    removed = runner.invoke(app, ["devices", "remove", "spare", "--json"])
    assert removed.exit_code == 0 and '"removed": "spare"' in removed.stdout


@pytest.fixture
def configured(sshd, no_sftp, tmp_path):
    """Devices that fail in each way the table below exercises."""
    revoked = tmp_path / "revoked_hosts"
    kind, blob = host_line(sshd).split()[1:3]
    revoked.write_text(f"@revoked * {kind} {blob}\n" + host_line(sshd))
    add_device(device(sshd, tmp_path, name="revoked", known_hosts=str(revoked)))
    add_device(device(no_sftp, tmp_path, name="nosftp"))
    lost = keygen(tmp_path / "lost_key")
    add_device(device(sshd, tmp_path, name="nokey", key_file=str(lost)))
    lost.unlink()
    (tmp_path / "hosts dir").mkdir()
    add_device(device(sshd, tmp_path, name="khdir", known_hosts=str(tmp_path / "hosts dir")))
    return {"missing": str(tmp_path / "no such key")}


BAD = [
    # (args, exit code, message fragment)
    (["devices", "calibrate", "local", "--seconds", "-1"], 2, "invalid --seconds -1"),
    (["devices", "calibrate", "local", "--seconds", "0"], 2, "invalid --seconds 0"),
    (["devices", "calibrate", "local", "--seconds", "nan"], 2, "invalid --seconds nan"),
    (["devices", "calibrate", "local", "--seconds", "inf"], 2, "invalid --seconds inf"),
    (["devices", "calibrate", "local", "--seconds", "-inf"], 2, "invalid --seconds -inf"),
    (["devices", "calibrate", "local", "--seconds", "601"], 2, "at most 600"),
    (["devices", "calibrate", "local", "--seconds", "1e9"], 2, "at most 600"),
    (["devices", "calibrate", "pi", "--seconds", "-1"], 2, "invalid --seconds"),  # refused before the device is looked up
    (["devices", "add", "pi,pi2", "--host", "127.0.0.1"], 2, "without commas"),
    (["devices", "add", "x", "--host", "127.0.0.1", "--key", "{missing}"], 2, "no such file"),
    (["devices", "remove", "local"], 2, "built in and cannot be removed"),
    (["devices", "remove", "rpi4"], 2, "built in and cannot be removed"),
    (["devices", "remove", "nope", "--json"], 2, "unknown device 'nope'"),
    (["devices", "show", "nope"], 2, "unknown device 'nope'"),
    (["devices", "check", "revoked"], 1, "marked @revoked"),
    (["devices", "check", "nosftp"], 1, "offers no SFTP"),
    (["devices", "check", "nokey"], 1, "does not exist"),
    (["devices", "check", "khdir"], 2, "known_hosts file"),  # a directory where a file belongs (exit 2: the wrong thing named)
    (["devices", "add", "a, b", "--host", "127.0.0.1", "--json"], 2, "without commas"),
]


@pytest.mark.parametrize("args, code, fragment", BAD, ids=[" ".join(a[1:4]) for a, _, _ in BAD])
def test_bad_device_input_is_one_line(configured, config_dir, args, code, fragment):
    before = (config_dir / "devices.json").read_bytes()
    result = runner.invoke(app, [a.format(**configured) for a in args])
    assert result.exit_code == code, result.output
    lines = stderr_lines(result)
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert (config_dir / "devices.json").read_bytes() == before  # nothing saved
    assert not (config_dir / "calibrations").exists()


# ------------------------------------------------------------------ endpoints that are not SSH servers


def _server(reply: bytes | None) -> tuple[socket.socket, threading.Event]:
    """A real TCP server on 127.0.0.1 that accepts, writes ``reply`` (None: never a byte) and keeps the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        held = []
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            if reply is not None:
                conn.sendall(reply)
            held.append(conn)  # open, silent, until the test ends
        for conn in held:
            conn.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, done


@pytest.mark.parametrize("reply, fragment, bound_s", [
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
     "is not an SSH server: it answered 'HTTP/1.1 400 Bad Request' instead of \"SSH-2.0-…\"", 2.0),
    (None, "accepted the connection but sent nothing within 5 s: not an SSH server (an SSH server greets with \"SSH-2.0-…\" at once)",
     7.0),
], ids=["http", "silent"])
@pytest.mark.parametrize("command", ["check", "bench"])
def test_endpoint_that_is_not_ssh_is_one_prompt_line(tmp_path, reply, fragment, bound_s, command, config_dir):
    listener, done = _server(reply)
    port = listener.getsockname()[1]
    try:
        add_device(SSHConfig(name="nonssh", profile="rpi4", host="127.0.0.1", port=port))
        args = ["devices", "check", "nonssh"] if command == "check" else \
            ["bench", str(tmp_path / "missing.onnx"), "--device", "nonssh", "--db", str(tmp_path / "r.db")]
        if command == "bench":  # a real artifact, so the device is reached
            args[1] = str(_bare_onnx(tmp_path))
        t0 = time.monotonic()
        result = runner.invoke(app, args)
        elapsed = time.monotonic() - t0
    finally:
        done.set()
    assert result.exit_code == 1, result.output
    assert stderr_lines(result) == [f"error: device 'nonssh' (127.0.0.1:{port}) {fragment}"
                                    + "; check --host and --port (csibench devices add --replace)"
                                    + ("; recorded as failure 1 in " + str(tmp_path / "r.db") if command == "bench" else "")]
    assert elapsed < bound_s, f"{elapsed:.1f} s"  # once, no retries: 5 s of silence is the bound


def _bare_onnx(tmp_path: Path) -> Path:
    import torch

    path = tmp_path / "tiny.onnx"
    torch.onnx.export(torch.nn.Linear(4, 2), (torch.zeros(1, 4),), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    return path
