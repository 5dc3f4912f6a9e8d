"""A real one-node Ray cluster for engine tests: `ray start --head --block` in its own process group and temp dir.

Its boards are custom resources (``board:<name>``); its workers see the test's devices file through
CSIBENCH_CONFIG_DIR, as a lab's head node sees its own. Token authentication is on (Ray's default) with a token of
the test's own, passed to every driver through ``env``: nothing is read from or written to ~/.ray.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.sshd import free_port

RAY = str(Path(sys.executable).with_name("ray"))


@dataclass
class RayCluster:
    config_dir: Path  # CSIBENCH_CONFIG_DIR of the head node: the devices its boards resolve
    boards: tuple[str, ...] = ("local",)
    num_cpus: int = 2
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    address: str | None = None
    dashboard: str | None = None
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        # a short path: Ray's unix sockets live under it (at most 107 bytes)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="csibench-ray-", dir="/tmp"))
        self.log = self.temp_dir / "head.log"

    @property
    def env(self) -> dict[str, str]:
        """What a driver (or `csibench run --engine ray`) needs to join: the token, and no proxy surprises."""
        return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, "RAY_USAGE_STATS_ENABLED": "0",
                "CSIBENCH_CONFIG_DIR": str(self.config_dir)}

    def start(self, timeout_s: float = 90) -> RayCluster:
        dashboard_port = free_port()
        argv = [RAY, "start", "--head", "--block", f"--port={free_port()}", f"--num-cpus={self.num_cpus}", "--num-gpus=0",
                f"--resources={json.dumps({f'board:{b}': 1 for b in self.boards})}", "--disable-usage-stats",
                f"--temp-dir={self.temp_dir}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dashboard_port}", "--object-store-memory=100000000"]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            text = self.log.read_text(errors="replace")
            found = re.search(r"ray start --address='([^']+)'", text)
            if found:
                self.address = found.group(1)
                self.dashboard = f"127.0.0.1:{dashboard_port}"
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.proc.returncode}: {text[-2000:]}")
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the Ray head did not start within {timeout_s:g} s")

    def stop(self) -> None:
        """This cluster's processes only (its process group), never `ray stop`, which ends every Ray on the machine."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=3)  # `ray start --block` drains for up to 30 s; its node is ours alone
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)  # its logs and sockets (hundreds of MB over a few runs)
