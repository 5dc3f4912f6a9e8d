"""A real OpenSSH server on 127.0.0.1 for device tests: its own host and client keys, in a temp dir."""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@dataclass
class Sshd:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    sftp: bool = True  # False: a server without the SFTP subsystem

    def __post_init__(self) -> None:
        self.host_key = keygen(self.root / "host_key")
        self.client_key = keygen(self.root / "client_key")
        (self.root / "authorized_keys").write_text(self.client_key.with_suffix(".pub").read_text())
        self.known_hosts = self.root / "known_hosts"
        self.trust(self.host_key)
        self.user = getpass.getuser()

    def trust(self, host_key: Path) -> None:
        """Write known_hosts with ``host_key`` as this server's key."""
        public = host_key.with_name(host_key.name + ".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n")

    def config(self) -> Path:
        path = self.root / "sshd_config"
        path.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}", f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}", "UsePAM no", "StrictModes no", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
            *(["Subsystem sftp internal-sftp"] if self.sftp else []), "LogLevel ERROR", "MaxStartups 100",
        ]) + "\n")
        return path

    def start(self) -> Sshd:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation directory
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config())], stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"sshd exited with {self.proc.returncode}") from None  # the refused connect says nothing more
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        """Kill the server and its per-connection children: running sessions drop, as when a Pi loses power."""
        if self.proc and self.proc.poll() is None:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            self.proc.kill()
            self.proc.wait()
