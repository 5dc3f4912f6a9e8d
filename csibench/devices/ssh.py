"""A device reached over SSH (paramiko): host keys verified, files content-addressed, the agent run remotely.

Only two strings ever reach the remote shell, the device's python and the agent's path, both quoted;
everything else (artifact paths, device names, settings) travels as JSON on the agent's stdin.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import socket
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import paramiko

from csibench.devices.agent import AGENT_VERSION
from csibench.devices.config import DeviceConfig
from csibench.devices.local import AGENT, agent_request, parse_reply
from csibench.errors import CsibenchError, RuntimeMissingError
from csibench.files import sha256_of

RETRIES = 3
BACKOFF_S = 0.5  # doubled after each failed attempt


class TransientError(CsibenchError):
    """A failure worth retrying: refused or dropped connection, timeout while connecting."""


class TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Opt-in: remember an unknown host's key in known_hosts. A *changed* key is still refused by paramiko."""

    def __init__(self, known_hosts: Path):
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(self.known_hosts))


class SSHDevice:
    def __init__(self, cfg: DeviceConfig, connect_timeout_s: float = 10.0):
        self.cfg = cfg
        self.name = cfg.name
        self.connect_timeout_s = connect_timeout_s
        self.known_hosts = Path(cfg.known_hosts).expanduser() if cfg.known_hosts else Path.home() / ".ssh" / "known_hosts"

    # ------------------------------------------------------------ connection

    @property
    def where(self) -> str:
        return f"device {self.name!r} ({self.cfg.user + '@' if self.cfg.user else ''}{self.cfg.host}:{self.cfg.port})"

    def connect(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(TrustOnFirstUse(self.known_hosts) if self.cfg.trust_on_first_use else paramiko.RejectPolicy())
        try:
            client.connect(
                self.cfg.host, port=self.cfg.port, username=self.cfg.user, key_filename=self.cfg.key_file,
                timeout=self.connect_timeout_s, banner_timeout=self.connect_timeout_s, auth_timeout=self.connect_timeout_s,
                look_for_keys=self.cfg.key_file is None, allow_agent=self.cfg.key_file is None,
            )
        except paramiko.BadHostKeyException:
            client.close()
            raise CsibenchError(f"{self.where}: its host key CHANGED since it was recorded in {self.known_hosts}; "
                                "if the device was reinstalled, remove the old key (ssh-keygen -R), else do not connect") from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise CsibenchError(f"{self.where}: authentication refused ({exc}); check --user and --key") from None
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise CsibenchError(f"{self.where}: unknown host key (not in {self.known_hosts}); add it with "
                                    "`ssh-keyscan`, or re-add the device with --trust-on-first-use") from None
            raise TransientError(f"{self.where}: SSH failed ({exc})") from None
        except (OSError, socket.timeout, EOFError) as exc:
            client.close()
            raise TransientError(f"{self.where} is unreachable ({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc})") from None
        return client

    def _with_retries(self, action):
        delay = BACKOFF_S
        for attempt in range(1, RETRIES + 1):
            try:
                return action()
            except TransientError:
                if attempt == RETRIES:
                    raise
                time.sleep(delay)
                delay *= 2

    # ------------------------------------------------------------ files

    def _cache(self, sftp: paramiko.SFTPClient, local: Path, sha: str) -> str:
        """Copy ``local`` to ``remote_dir/cas/SHA/NAME`` unless it is already there; return the remote path."""
        folder = posixpath.join(self.cfg.remote_dir, "cas", sha)
        remote = posixpath.join(folder, local.name)
        try:
            if sftp.stat(remote).st_size == local.stat().st_size:
                return remote
        except OSError:
            pass
        partial = f"{remote}.partial-{uuid.uuid4().hex[:12]}"  # unique: parallel sweeps may copy the same file
        try:
            _makedirs(sftp, folder)
            sftp.put(str(local), partial)
            sftp.posix_rename(partial, remote)
        except OSError as exc:
            full = "No space left" in str(exc) or getattr(exc, "errno", None) == 28
            what = "its disk is full" if full else f"copy failed ({exc})"
            raise CsibenchError(f"{self.where}: cannot store {local.name}: {what}") from None
        return remote

    def _agent(self, sftp: paramiko.SFTPClient) -> str:
        return self._cache(sftp, AGENT, sha256_of(AGENT))

    # ------------------------------------------------------------ agent

    def _call(self, client: paramiko.SSHClient, agent_path: str, request: dict, timeout_s: float) -> dict:
        command = " ".join(shlex.quote(a) for a in (self.cfg.python, agent_path))
        try:
            stdin, stdout, stderr = client.exec_command(command, timeout=timeout_s)
            stdin.write(json.dumps(request))
            stdin.channel.shutdown_write()
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            code = stdout.channel.recv_exit_status()
        except socket.timeout:
            raise CsibenchError(f"{self.where}: the agent did not finish within {timeout_s:g} s") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransientError(f"{self.where}: connection dropped mid-run ({exc or type(exc).__name__})") from None
        if code == 127 or (code != 0 and not out.strip() and "not found" in err):
            raise RuntimeMissingError(f"{self.where}: no Python at {self.cfg.python!r} (set --python to the device's interpreter)")
        if code == -1:
            raise TransientError(f"{self.where}: connection dropped mid-run (no exit status)")
        return parse_reply(out, code, err, self.where)

    def _session(self, make_request, timeout_s: float, files: list[tuple[Path, str]] = ()) -> dict:
        def attempt() -> dict:
            client = self.connect()
            try:
                with client.open_sftp() as sftp:
                    agent_path = self._agent(sftp)
                    remote = [self._cache(sftp, path, sha) for path, sha in files]
                return self._call(client, agent_path, make_request(remote), timeout_s)
            finally:
                client.close()

        return self._with_retries(attempt)

    def probe(self) -> dict[str, Any]:
        return self._session(lambda _: {"op": "probe"}, 60)

    def calibrate(self, seconds: float = 1.0) -> dict[str, Any]:
        return self._session(lambda _: {"op": "calibrate", "seconds": seconds}, 120)

    def require_runtime(self, info) -> None:
        """Checked on the device by the agent, which names what it tried."""

    def run_agent(self, artifacts: list, runtime: str, threads: int, seed: int, protocol: dict, timeout_s: float) -> dict:
        files: list[tuple[Path, str]] = []
        for a in artifacts:
            files.append((a.path, a.manifest["sha256"]))
            data = a.validation_file()
            files.append((data, a.manifest["validation_data"]["sha256"]) if data else None)
        uploads = [f for f in files if f]

        def request(remote: list[str]) -> dict:
            paths, validations, it = [], [], iter(remote)
            for i in range(len(artifacts)):
                paths.append(next(it))
                validations.append(next(it) if files[2 * i + 1] else None)
            lock = posixpath.join(self.cfg.remote_dir, "lock")
            return agent_request(artifacts, paths, validations, runtime, threads, seed, protocol, lock=lock)

        return self._session(request, timeout_s, uploads)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.cfg.to_dict(), "agent_version": AGENT_VERSION}


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
