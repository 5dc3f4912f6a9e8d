"""This machine as a device: the agent and the torch worker run as fresh local processes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import csibench
from csibench import signals
from csibench.devices.agent import AgentError, calibration_timeout_s, exclusive
from csibench.devices.base import GroupRequest
from csibench.devices.config import LocalConfig, config_dir
from csibench.errors import CsibenchError, RuntimeMissingError

AGENT = Path(__file__).with_name("agent.py")
_PACKAGE_ROOT = str(Path(csibench.__file__).resolve().parent.parent)


def agent_request(artifacts: list, paths: list[str], validations: list[str | None], runtime: str, threads: int, seed: int,
                  protocol: dict, lock: str | None = None) -> dict[str, Any]:
    return {
        "op": "bench", "runtime": runtime, "threads": threads, "seed": seed, "protocol": protocol, "lock": lock,
        "artifacts": [
            {"path": p, "inputs": a.manifest["inputs"], "validation": v, "atol": a.manifest.get("validation_data", {}).get("atol", 1e-4)}
            for a, p, v in zip(artifacts, paths, validations, strict=True)
        ],
    }


def parse_reply(stdout: str, returncode: int, stderr: str, what: str) -> dict:
    """The agent's one JSON line, or a CsibenchError with its one-line reason."""
    reply = None
    for line in reversed(stdout.splitlines()):
        try:
            reply = json.loads(line)
            break
        except json.JSONDecodeError:
            continue
    if isinstance(reply, dict) and "error" not in reply and returncode == 0:
        return reply
    if isinstance(reply, dict) and "error" in reply:
        error = RuntimeMissingError if reply.get("kind") == "runtime_missing" else CsibenchError
        raise error(f"{what} failed: {reply['error']}")
    tail = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    raise CsibenchError(f"{what} failed: exit status {returncode}" + (f": {tail[-1]}" if tail else ""))


def lock_path() -> Path:
    """The lock two csibench processes on this machine take before measuring (a remote device has its own)."""
    return config_dir() / "locks" / "local.lock"


class LocalDevice:
    """This machine (a ``Device``): ``local``, or a name of the user's with a board profile (csibench run on the board)."""

    kind = "local"
    runs_torch = True  # the torch worker imports csibench: only this machine has it
    lock_timeout_s = 3600.0

    def __init__(self, cfg: LocalConfig | None = None):
        self.cfg = cfg or LocalConfig()
        self.name = self.cfg.name
        self.profile = self.cfg.profile  # "local": whatever this machine is, nothing to contradict

    def max_threads(self) -> int | None:
        return os.cpu_count() or 1

    def describe(self) -> dict:
        return self.cfg.to_dict()

    def require_runtime(self, info) -> None:
        """``info``: a csibench.bench.runtimes.RuntimeInfo (passed in: devices sit below bench). find_spec only
        locates the package; importing it here would cost seconds in the parent process."""
        if importlib.util.find_spec(info.import_name) is None:
            raise RuntimeMissingError(f"runtime {info.name!r} is not installed: `pip install {info.pip_package}` provides it")

    def _run(self, argv: list[str], request: dict, timeout_s: float, what: str, env_extra: dict | None = None,
             lock_fds: tuple[int, ...] = ()) -> dict:
        """Run ``argv`` (the agent or the torch worker) on ``request``. The child shares ``lock_fds`` (this machine's
        lock, held while it lives), is ended at once by Ctrl-C or SIGTERM (``signals.child``), and ends itself if
        this process dies (``agent.die_with_parent``)."""
        env = {**os.environ, **(env_extra or {})}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                pass_fds=lock_fds)
        try:
            with signals.child(proc.kill):
                stdout, stderr = proc.communicate(json.dumps(request), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise CsibenchError(f"{what} took longer than {timeout_s:g} s; raise the timeout or lower --min-time") from None
        finally:
            if proc.poll() is None:  # timed out, interrupted or refused: never left running
                proc.kill()
                proc.wait()
        if signals.stopping():
            raise signals.StoppedError(f"{what} was ended: csibench is stopping on a signal")
        return parse_reply(stdout, proc.returncode, stderr, what)

    def probe(self) -> dict:
        return self._run([sys.executable, str(AGENT)], {"op": "probe"}, 60, "probing this machine")

    def _locked(self, argv: list[str], request: dict, timeout_s: float, what: str, env_extra: dict | None = None) -> dict:
        """``_run`` holding this machine's lock, as the agent does on a remote device: two csibench processes never
        time at the same moment. The wait goes into the result (``lock_wait_s``, recorded with each measurement)."""
        path = lock_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CsibenchError(f"cannot create the lock directory {path.parent} ({exc.strerror or exc})") from None
        held: list[int] = []
        try:
            with exclusive(str(path), self.lock_timeout_s, held) as waited:
                t_locked = time.time()
                result = self._run(argv, request, timeout_s, what, env_extra, tuple(held))
                result.update(lock_wait_s=waited, lock_held_unix_s=[t_locked, time.time()])
        except AgentError as exc:
            raise CsibenchError(f"{what} failed: {exc}; another csibench is measuring on this machine") from None
        return result

    def calibrate(self, seconds: float = 1.0, threads: int | None = None, copy_mb: int | None = None) -> dict:
        """The agent's calibration; ``threads`` limits numpy's BLAS (set before the agent imports numpy) and
        ``copy_mb`` sizes the copy (1 MiB: a working set that stays in cache)."""
        request = {"op": "calibrate", "seconds": seconds, **({"copy_mb": copy_mb} if copy_mb else {})}
        env = {v: str(threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")} if threads else None
        return self._locked([sys.executable, str(AGENT)], request, calibration_timeout_s(seconds), "calibrating this machine", env)

    def measure(self, request: GroupRequest) -> dict:
        """The group timed here: torch in csibench's worker, the other runtimes in the agent, holding this machine's lock."""
        if request.runtime == "torch":
            return self._run_torch(list(request.artifacts), request.threads, request.seed, request.protocol, request.timeout_s)
        return self._run_agent(list(request.artifacts), request.runtime, request.threads, request.seed, request.protocol,
                               request.timeout_s)

    def _run_agent(self, artifacts: list, runtime: str, threads: int, seed: int, protocol: dict, timeout_s: float) -> dict:
        paths = [str(a.path.resolve()) for a in artifacts]
        validations = [_validation_file(a) for a in artifacts]
        request = agent_request(artifacts, paths, validations, runtime, threads, seed, protocol)
        return self._locked([sys.executable, str(AGENT)], request, timeout_s, f"measuring {_names(artifacts)} on {runtime}")

    def _run_torch(self, artifacts: list, threads: int, seed: int, protocol: dict, timeout_s: float) -> dict:
        request = {"artifacts": [{"path": str(a.path.resolve()), "manifest": a.manifest} for a in artifacts],
                   "threads": threads, "seed": seed, "protocol": protocol}
        return self._locked([sys.executable, "-m", "csibench.bench._worker"], request, timeout_s,
                            f"measuring {_names(artifacts)} on torch")


def _names(artifacts: list) -> str:
    return ", ".join(a.path.name for a in artifacts)


def _validation_file(artifact) -> str | None:
    path = artifact.validation_file()
    return str(path.resolve()) if path else None
