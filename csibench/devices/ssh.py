"""A device reached over SSH (paramiko): host keys verified, files content-addressed, the agent run remotely.

Only the device's python and the agent's path ever reach the remote shell, quoted (and, when calibrating at a
thread count, ``env`` with integer BLAS thread variables csibench formats itself); everything else (artifact
paths, device names, settings) travels as JSON on the agent's stdin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import posixpath
import select
import shlex
import socket
import stat
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import paramiko

from csibench import signals
from csibench.devices.agent import calibration_timeout_s
from csibench.devices.base import GroupRequest
from csibench.devices.config import SSHConfig, config_dir
from csibench.devices.local import AGENT, agent_request, parse_reply
from csibench.errors import CsibenchError, RuntimeMissingError
from csibench.files import read_bytes_bounded, sha256_of

RETRIES = 3
GREETING_TIMEOUT_S = 5.0  # an SSH server speaks first, at once: silence this long means it is not one
# paramiko logs each failed handshake with a traceback; with no handler, Python would print it on stderr.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # as LocalDevice.calibrate sets them
BACKOFF_S = 0.5  # doubled after each failed attempt


class TransientError(CsibenchError):
    """A failure worth retrying: refused or dropped connection, timeout while connecting."""


class RevokedHostKey(CsibenchError):
    """The server offered a key marked ``@revoked`` in a known_hosts file."""


_NOTED: set[str] = set()


def _note(message: str) -> None:
    """A note on stderr, once per process (parallel sweeps and retries read the same files)."""
    if message not in _NOTED:
        _NOTED.add(message)
        print(f"note: {message}", file=sys.stderr)


def own_known_hosts() -> Path:
    """Where csibench remembers the keys it learned by trust on first use; the user's known_hosts is never written."""
    return config_dir() / "known_hosts"


def read_known_hosts(path: Path, entries: list, revoked: set[bytes]) -> None:
    """Append ``path``'s usable (host, key) entries to ``entries`` and its ``@revoked`` key blobs to ``revoked``; the file is only read.

    Parsed line by line, so what paramiko cannot handle (``@cert-authority`` lines, security-key types,
    garbage) is skipped with a note instead of failing every device command.
    """
    try:
        text = read_bytes_bounded(path, what="known_hosts file").decode(errors="replace")  # a FIFO or a huge file: one line
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CsibenchError(f"cannot read known_hosts file {path}: {exc.strerror or exc}") from None
    skipped: dict[str, list[int]] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0].startswith("@"):
            marker, fields = fields[0], fields[1:]
            if marker == "@revoked" and len(fields) >= 3:
                try:
                    revoked.add(base64.b64decode(fields[2], validate=True))
                except (binascii.Error, ValueError):
                    skipped.setdefault("unreadable @revoked", []).append(lineno)
                continue
            skipped.setdefault("@cert-authority (host certificates are not supported)" if marker == "@cert-authority"
                               else f"unknown marker {marker}", []).append(lineno)
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(" ".join(fields[:3]), lineno)
            why = f"unsupported key type {fields[1]}" if entry is None and len(fields) >= 3 else "unreadable"
        except Exception:  # noqa: BLE001 -- any line paramiko cannot read is skipped, never fatal
            entry, why = None, "unreadable"
        if entry is None or entry.key is None:
            skipped.setdefault(why, []).append(lineno)
            continue
        entries.extend((host, entry.key) for host in entry.hostnames)
    for why, lines in skipped.items():
        _note(f"{path}: skipped {why} line(s) {', '.join(map(str, lines[:5]))}{' …' if len(lines) > 5 else ''}")


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called for a key found in no known_hosts file: refuse a revoked key, else remember it (trust on first use,
    appended to csibench's own file) or refuse it. A *changed* key never reaches here: paramiko refuses it."""

    def __init__(self, revoked: set[bytes], remember_in: Path | None):
        self.revoked = revoked
        self.remember_in = remember_in

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if key.asbytes() in self.revoked:
            raise RevokedHostKey(f"its host key ({key.get_name()}) is marked @revoked in known_hosts; not connecting")
        known = client.get_host_keys().lookup(hostname)
        if known:  # known under another key type: a new type is a changed key, never trusted on "first" use
            raise paramiko.BadHostKeyException(hostname, key, next(iter(known.values())))
        if self.remember_in is None:
            raise paramiko.SSHException(f"Server {hostname!r} not found in known_hosts")
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.remember_in.parent.mkdir(parents=True, exist_ok=True)
        with open(self.remember_in, "a") as fh:  # appended: other lines (and other processes' keys) are kept
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class NoSftpError(CsibenchError):
    """The device's sshd offers no SFTP subsystem."""


class SSHDevice:
    """A board reached over SSH (a ``Device``): the agent and the artifacts copied there, the agent's lock held there."""

    kind = "ssh"
    runs_torch = False  # the torch worker needs csibench itself, which a board does not have

    def __init__(self, cfg: SSHConfig, connect_timeout_s: float = 10.0):
        self.cfg = cfg
        self.name = cfg.name
        self.profile = cfg.profile  # a board profile its probed facts are checked against
        self.connect_timeout_s = connect_timeout_s
        self.known_hosts = Path(cfg.known_hosts).expanduser() if cfg.known_hosts else Path.home() / ".ssh" / "known_hosts"

    # ------------------------------------------------------------ connection

    @property
    def where(self) -> str:
        return f"device {self.name!r} ({self.cfg.user + '@' if self.cfg.user else ''}{self.cfg.host}:{self.cfg.port})"

    def connect(self) -> paramiko.SSHClient:
        key_file = Path(self.cfg.key_file).expanduser() if self.cfg.key_file else None
        if key_file is not None and not key_file.is_file():
            raise CsibenchError(f"{self.where}: key file {key_file} does not exist; fix --key (csibench devices add --replace)")
        entries: list = []
        revoked: set[bytes] = set()
        own = own_known_hosts()
        for path in dict.fromkeys((self.known_hosts, own)):  # read only; learned keys go to csibench's own file
            read_known_hosts(path, entries, revoked)
        client = paramiko.SSHClient()
        keys = client.get_host_keys()
        for host, key in entries:
            if key.asbytes() not in revoked:  # a revoked key is never "known", so the policy sees and refuses it
                keys.add(host, key.get_name(), key)
        client.set_missing_host_key_policy(HostKeyPolicy(revoked, own if self.cfg.trust_on_first_use else None))
        sock = self._open_socket()
        try:
            client.connect(
                self.cfg.host, port=self.cfg.port, sock=sock, username=self.cfg.user, key_filename=str(key_file) if key_file else None,
                timeout=self.connect_timeout_s, banner_timeout=self.connect_timeout_s, auth_timeout=self.connect_timeout_s,
                look_for_keys=key_file is None, allow_agent=key_file is None,
            )
        except RevokedHostKey as exc:
            client.close()
            raise RevokedHostKey(f"{self.where}: {exc}") from None
        except paramiko.BadHostKeyException:
            client.close()
            raise CsibenchError(f"{self.where}: its host key CHANGED since it was recorded in {self._key_files()}; "
                                "if the device was reinstalled, remove the old key (ssh-keygen -R), else do not connect") from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise CsibenchError(f"{self.where}: authentication refused ({exc}); check --user and --key") from None
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise CsibenchError(f"{self.where}: unknown host key (not in {self._key_files()}); add it with "
                                    "`ssh-keyscan`, or re-add the device with --trust-on-first-use") from None
            raise TransientError(f"{self.where}: SSH failed ({exc})") from None
        except (TimeoutError, OSError, EOFError) as exc:
            client.close()
            raise TransientError(f"{self.where} is unreachable ({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc})") from None
        finally:
            if client.get_transport() is None or not client.get_transport().is_active():
                sock.close()
        return client

    def _open_socket(self) -> socket.socket:
        """A TCP connection whose first bytes say SSH ("SSH-"), checked before paramiko's handshake: a web server or a
        port that accepts and never speaks is one line within GREETING_TIMEOUT_S, not paramiko's banner tracebacks."""
        try:
            sock = socket.create_connection((self.cfg.host, self.cfg.port), timeout=self.connect_timeout_s)
        except OSError as exc:
            raise TransientError(f"{self.where} is unreachable ({exc.strerror or exc})") from None
        try:
            greeting = _peek_greeting(sock, GREETING_TIMEOUT_S)
        except OSError as exc:
            sock.close()
            raise TransientError(f"{self.where} dropped the connection before its SSH greeting ({exc.strerror or exc})") from None
        if greeting is not None and greeting.startswith(b"SSH-"):
            return sock
        sock.close()
        fix = "check --host and --port (csibench devices add --replace)"
        if greeting is None or greeting == b"":
            said = "closed the connection without a word" if greeting == b"" else \
                f"accepted the connection but sent nothing within {GREETING_TIMEOUT_S:g} s"
            raise CsibenchError(f"{self.where} {said}: not an SSH server (an SSH server greets with \"SSH-2.0-…\" at once); {fix}")
        first = greeting.split(b"\n", 1)[0].decode("ascii", "replace").strip()
        shown = "".join(c if c.isprintable() else "?" for c in first)[:60]
        raise CsibenchError(f"{self.where} is not an SSH server: it answered {shown!r} instead of \"SSH-2.0-…\"; {fix}")

    def _key_files(self) -> str:
        own = own_known_hosts()
        return str(self.known_hosts) if own == self.known_hosts else f"{self.known_hosts} or {own}"

    def _with_retries(self, action):
        delay = BACKOFF_S
        for attempt in range(1, RETRIES + 1):
            try:
                return action()
            except TransientError as exc:
                if signals.stopping():  # the drop was ours: Ctrl-C or SIGTERM closed the connection
                    raise signals.StoppedError(f"{self.where}: the run was ended: csibench is stopping on a signal") from None
                if attempt == RETRIES:
                    raise
                print(f"retrying ({attempt}/{RETRIES - 1}) in {delay:g} s: {exc}", file=sys.stderr)
                time.sleep(delay)
                delay *= 2

    # ------------------------------------------------------------ files

    def _remote(self, local: Path, sha: str) -> str:
        return posixpath.join(self.cfg.remote_dir, "cas", sha, local.name)

    def _put(self, sftp: paramiko.SFTPClient, local: Path, remote: str) -> str:
        """Copy ``local`` to ``remote`` through a unique partial file and an atomic rename."""
        partial = f"{remote}.partial-{uuid.uuid4().hex[:12]}"  # unique: parallel sweeps may copy the same file
        try:
            _makedirs(sftp, posixpath.dirname(remote))
            sftp.put(str(local), partial)
            sftp.posix_rename(partial, remote)
        except OSError as exc:
            full = "No space left" in str(exc) or getattr(exc, "errno", None) == 28
            what = "its disk is full" if full else f"copy failed ({exc})"
            raise CsibenchError(f"{self.where}: cannot store {local.name}: {what}") from None
        return remote

    def _agent(self, sftp: paramiko.SFTPClient) -> str:
        """The agent in the device's cache, read back and hashed (it is small): a corrupted copy is replaced."""
        sha = sha256_of(AGENT)
        remote = self._remote(AGENT, sha)
        try:
            with sftp.open(remote, "rb") as fh:
                if hashlib.sha256(fh.read()).hexdigest() == sha:
                    return remote
        except OSError:
            pass
        return self._put(sftp, AGENT, remote)

    def _cache(self, client: paramiko.SSHClient, sftp: paramiko.SFTPClient, agent_path: str,
               files: list[tuple[Path, str]]) -> list[str]:
        """Each ``(local, sha256)`` at ``remote_dir/cas/SHA/NAME``; copied unless the device hashes its copy to SHA."""
        remote = [self._remote(path, sha) for path, sha in files]
        if not files:
            return remote
        found = self._call(client, agent_path, {"op": "hashes", "paths": remote}, 120)["sha256"]
        for (path, sha), where, have in zip(files, remote, found, strict=True):
            if have != sha:  # missing, truncated or corrupted: copied again
                self._put(sftp, path, where)
        return remote

    def _sftp(self, client: paramiko.SSHClient) -> paramiko.SFTPClient:
        try:
            return client.open_sftp()
        except paramiko.SSHException as exc:
            if client.get_transport() is not None and client.get_transport().is_active():
                raise NoSftpError(f"{self.where}: its SSH server offers no SFTP ({exc}); csibench copies files over SFTP: "
                                  "enable it in the device's sshd_config (Subsystem sftp internal-sftp)") from None
            raise TransientError(f"{self.where}: connection dropped while opening SFTP ({exc})") from None

    # ------------------------------------------------------------ agent

    def _call(self, client: paramiko.SSHClient, agent_path: str, request: dict, timeout_s: float,
              threads: int | None = None) -> dict:
        # ``threads`` limits the device's BLAS (numpy reads these before the agent imports it), set through env(1):
        # sshd refuses most variables sent with the channel (AcceptEnv).
        env = ["env", *(f"{v}={int(threads)}" for v in BLAS_THREAD_VARS)] if threads else []
        command = " ".join(shlex.quote(a) for a in (*env, self.cfg.python, agent_path))
        try:
            stdin, stdout, stderr = client.exec_command(command, timeout=timeout_s)
            stdin.write(json.dumps(request))
            stdin.channel.shutdown_write()
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            code = stdout.channel.recv_exit_status()
        except TimeoutError:
            raise CsibenchError(f"{self.where}: the agent did not finish within {timeout_s:g} s") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransientError(f"{self.where}: connection dropped mid-run ({exc or type(exc).__name__})") from None
        if code == 127 or (code != 0 and not out.strip() and "not found" in err):
            raise RuntimeMissingError(f"{self.where}: no Python at {self.cfg.python!r} (set --python to the device's interpreter)")
        if code == -1:
            raise TransientError(f"{self.where}: connection dropped mid-run (no exit status)")
        return parse_reply(out, code, err, self.where)

    def _session(self, make_request, timeout_s: float, files: tuple | list[tuple[Path, str]] = (), threads: int | None = None) -> dict:
        def attempt() -> dict:
            client = self.connect()
            try:
                # Closed at once on Ctrl-C or SIGTERM: sshd then closes the remote agent's pipes and the agent ends itself.
                with signals.child(client.close):
                    with self._sftp(client) as sftp:
                        agent_path = self._agent(sftp)
                        remote = self._cache(client, sftp, agent_path, list(files))
                    return self._call(client, agent_path, make_request(remote), timeout_s, threads)
            finally:
                client.close()

        return self._with_retries(attempt)

    def probe(self) -> dict[str, Any]:
        return self._session(lambda _: {"op": "probe"}, 60)

    def calibrate(self, seconds: float = 1.0, threads: int | None = None, copy_mb: int | None = None) -> dict[str, Any]:
        """The agent's calibration on the device, as the local device's: ``threads`` limits its BLAS (the roofline
        peak at each thread count) and ``copy_mb`` sizes the copy (1 MiB: a working set that stays in cache)."""
        request = {"op": "calibrate", "seconds": seconds, **({"copy_mb": int(copy_mb)} if copy_mb else {})}
        return self._session(lambda _: request, calibration_timeout_s(seconds), threads=threads)

    def require_runtime(self, info) -> None:
        """Checked on the device by the agent, which names what it tried."""

    def max_threads(self) -> int | None:
        return None  # unknown before connecting: its runtime checks the count there

    def measure(self, request: GroupRequest) -> dict:
        if request.runtime == "torch":  # bench asks runs_torch first; a direct caller gets the same one line
            raise RuntimeMissingError(f"{self.where}: the torch runtime runs only on this machine; use litert or onnxruntime")
        return self._run_agent(list(request.artifacts), request.runtime, request.threads, request.seed, request.protocol,
                               request.timeout_s)

    def _run_agent(self, artifacts: list, runtime: str, threads: int, seed: int, protocol: dict, timeout_s: float) -> dict:
        files: list[tuple[Path, str] | None] = []  # per artifact: itself, then its validation data or None
        for a in artifacts:
            files.append((a.path, a.manifest["sha256"]))
            data = a.validation_file()
            files.append((data, a.manifest["validation_data"]["sha256"]) if data else None)
        uploads = [f for f in files if f]

        def request(remote: list[str]) -> dict:
            paths: list[str] = []
            validations: list[str | None] = []
            it = iter(remote)
            for i in range(len(artifacts)):
                paths.append(next(it))
                validations.append(next(it) if files[2 * i + 1] else None)
            lock = posixpath.join(self.cfg.remote_dir, "lock")
            return agent_request(artifacts, paths, validations, runtime, threads, seed, protocol, lock=lock)

        return self._session(request, timeout_s, uploads)

    def describe(self) -> dict[str, Any]:
        return self.cfg.to_dict()


def _peek_greeting(sock: socket.socket, timeout_s: float) -> bytes | None:
    """The server's first bytes, left unread for paramiko: up to a line or 4 bytes ("SSH-" or not), b"" if it closed,
    None if it said nothing within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    seen = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return seen or None
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            return seen or None
        data = sock.recv(256, socket.MSG_PEEK)
        if not data or len(data) >= 4 or b"\n" in data:
            return data
        if data == seen:  # a few bytes and nothing more yet: wait a little for the rest
            time.sleep(0.05)
        seen = data


def _makedirs(sftp: paramiko.SFTPClient, folder: str) -> None:
    parts, path = folder.split("/"), ""
    for part in parts:
        path = posixpath.join(path, part) if path else (part or "/")
        try:
            if not stat.S_ISDIR(sftp.stat(path).st_mode):
                raise CsibenchError(f"remote path {path} exists and is not a directory")
        except FileNotFoundError:
            try:
                sftp.mkdir(path)
            except OSError:  # a parallel sweep may have created it a moment ago
                if not stat.S_ISDIR(sftp.stat(path).st_mode):
                    raise
