"""A board leased from a Ray cluster: the Ray custom resource ``board:<name>`` (capacity 1) is the lease.

The node that offers ``board:<name>`` (``csibench devices serve``, or ``ray start --resources='{"board:pi-03": 1}'``)
holds the board's SSH keys and its csibench devices file. On the driver, :class:`RayBoard` implements
``devices.base.Device``: each ``measure`` (and probe, calibrate) creates a :class:`BoardProxy` actor that needs the
board's resource, so it starts only when no other driver holds the board, waits (and says who holds it) otherwise,
and the lease ends when the proxy is killed, or when its driver dies. The proxy runs on the board's node with
``num_cpus=0`` and drives the board there as that node's ``get_device(name)``: over SSH, or the node's own machine.
Artifacts travel as bytes and are staged in a node-local content-addressed folder, so no file system is shared.

Ray is imported only inside functions: the devices file and the CLI read :class:`RayBoardConfig` without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import itertools
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from csibench import signals
from csibench.devices.base import GroupRequest
from csibench.devices.config import load_devices
from csibench.devices.profiles import PROFILES, get_profile
from csibench.errors import CsibenchError, UsageError
from csibench.files import CAP_REFERENCE, read_bytes_bounded, sha256_bytes, sha256_of, write_bytes_atomic

NAMESPACE = "csibench"  # leases are named actors here: `devices cluster` lists their holders
RESOURCE_PREFIX = "board:"
LEASE_PREFIX = "lease:"
CONNECT_TIMEOUT_S = 30.0  # ray.init retries a silent address forever; bounded here
WAIT_NOTE_S = 2.0  # a lease not granted within this long is announced once, with its holder
_BOARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")  # usable in a Ray resource name and an actor name


# ---- config (the devices file; no Ray) --------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class RayBoardConfig:
    """A board of a Ray cluster: ``devices add pi-03 --kind ray-board --ray-address HEAD:6379 --profile rpi4``."""

    kind: ClassVar[str] = "ray-board"
    name: str
    profile: str = field(default="local", metadata={
        "flag": "--profile", "help": "Board profile, e.g. rpi4 (default: the profile the board's node configured)."})
    address: str | None = field(default=None, metadata={
        "flag": "--ray-address", "help": "The Ray cluster offering board:NAME (default: RAY_ADDRESS, else a local cluster)."})

    def to_dict(self) -> dict:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def summary(self) -> str:
        """Where it is, for `devices list`."""
        return f"{RESOURCE_PREFIX}{self.name} of the Ray cluster at {self.address or 'RAY_ADDRESS or this machine'}"

    def check_options(self) -> None:
        check_board_name(self.name)
        get_profile(self.profile)
        if self.address is not None:
            check_address(self.address)

    def check_entry(self) -> None:
        if not _BOARD_NAME.fullmatch(self.name):
            raise TypeError(f"device {self.name!r}: {board_name_rule()}")
        if self.profile not in PROFILES:
            raise TypeError(f"device {self.name!r} has unknown profile {self.profile!r} (valid: {', '.join(PROFILES)})")
        if self.address is not None and _split_address(self.address) is None and self.address != "auto":
            raise TypeError(f"device {self.name!r}: address {self.address!r} is not HOST:PORT or auto")


def board_name_rule() -> str:
    return "a board name becomes the Ray resource board:NAME: 1–63 letters, digits, '.', '_', '-', starting with a letter or digit"


def check_board_name(name: str) -> str:
    if not isinstance(name, str) or not _BOARD_NAME.fullmatch(name):
        raise UsageError(f"invalid board name {name!r}: {board_name_rule()}")
    return name


def resource_of(board: str) -> str:
    return RESOURCE_PREFIX + check_board_name(board)


def check_address(address: str) -> str:
    """HOST:PORT (a Ray head's GCS address), or "auto" (the cluster started on this machine)."""
    if address == "auto" or _split_address(address) is not None:
        return address
    raise UsageError(f"invalid --ray-address {address!r}: HOST:PORT of a Ray head (e.g. 10.0.0.5:6379), or auto")


def address_ok(address: str) -> bool:
    """Whether ``address`` is what --ray-address takes (a study file's ``[execution] address`` too)."""
    return address == "auto" or _split_address(address) is not None


def not_listening(address: str, timeout_s: float) -> str | None:
    """Why nothing accepts a connection at HOST:PORT ``address`` (e.g. "Connection refused"), or None; None too for an
    address that is not HOST:PORT ("auto")."""
    where = _split_address(address)
    if where is None:
        return None
    try:
        socket.create_connection(where, timeout=timeout_s).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _split_address(address: str) -> tuple[str, int] | None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):
        return None
    return host.strip("[]"), int(port)


def holder_id() -> str:
    """Who holds a lease, as `devices cluster` shows it: user@host:pid of the driver."""
    return f"{getpass.getuser()}@{socket.gethostname()}:{os.getpid()}"


# ---- connecting ------------------------------------------------------------------------------------------------------

_CONNECT_LOCK = threading.Lock()
_JOINED: dict[str, str] = {}  # "dashboard": the joined cluster's dashboard address (empty when it runs none)


def dashboard_url() -> str:
    return _JOINED.get("dashboard", "")


def connect(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S):
    """Join the cluster at ``address`` (None: $RAY_ADDRESS, else "auto") once per process; returns Ray's context.
    A nothing-listening or silent address is one line within ``timeout_s``, never a hang."""
    with _CONNECT_LOCK:
        if "ray" in sys.modules and sys.modules["ray"].is_initialized():
            return sys.modules["ray"].get_runtime_context()
        address = check_address(address or os.environ.get("RAY_ADDRESS") or "auto")
        refused = not_listening(address, min(timeout_s, 5.0))  # checked before Ray is imported: a wrong address costs no second
        if refused:
            raise CsibenchError(f"no Ray cluster at {address}: {refused}; start one with `csibench devices serve` "
                                "(or `ray start --head`) and pass its address to --ray-address")
        prefer_token_auth()
        ray = import_ray()

        outcome: dict[str, Any] = {}

        def init() -> None:
            try:
                outcome["context"] = ray.init(address=address, namespace=NAMESPACE, logging_level="ERROR", log_to_driver=False,
                                              configure_logging=True)
            except Exception as exc:  # noqa: BLE001 -- ConnectionError, AuthenticationError, RuntimeError…: reported below
                outcome["error"] = exc

        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        with _stderr_captured() as said:  # Ray's C++ client logs its retries on fd 2; the reason is given in one line below
            thread = threading.Thread(target=init, daemon=True, name="ray-connect")
            thread.start()
            thread.join(timeout_s)
        if thread.is_alive():
            raise CsibenchError(f"the Ray cluster at {address} did not answer within {timeout_s:g} s (is it a Ray head's "
                                "GCS port? its dashboard port is not)")
        if "error" in outcome:
            why = first_line(RuntimeError("auth token rejected")) if "InvalidAuthToken" in said() else first_line(outcome["error"])
            raise CsibenchError(f"cannot join the Ray cluster at {address}: {why}") from None
        if threading.current_thread() is threading.main_thread():
            # Ray's core worker puts its own C++ handler on SIGTERM (it aborts the process, exit -6): csibench's come
            # back, so SIGTERM ends a run as everywhere else (exit 143, the run recorded, its resume command printed)
            for sig, handler in handlers.items():
                if callable(handler):
                    signal.signal(sig, handler)
        _JOINED["dashboard"] = getattr(outcome["context"], "dashboard_url", None) or ""
        return outcome["context"]


@contextlib.contextmanager
def _stderr_captured():
    """File descriptor 2 into a temporary file for the block (C++ logging bypasses Python's sys.stderr); yields a
    function returning what was written (readable after the block too)."""
    sys.stderr.flush()
    saved, kept = os.dup(2), {"text": ""}
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: kept["text"]
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept["text"] = sink.read(1 << 20).decode("utf-8", "replace")


def prefer_token_auth() -> None:
    """Send the token at hand (RAY_AUTH_TOKEN, else ~/.ray/auth_token): a `ray start --head` cluster asks for one, and
    a driver sends it only in token mode. Set before Ray is first imported (it reads the mode then); an explicit
    RAY_AUTH_MODE is kept."""
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def import_ray():
    """Ray, or one line naming the extra that installs it."""
    try:
        import ray
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "ray":
            raise
        raise UsageError("this needs Ray, which is not installed: pip install 'csibench[ray]'") from None
    return ray


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if "auth" in text.lower() and "token" in text.lower():
        return ("its authentication token differs or is missing; copy the head's token (`ray get-auth-token` there) "
                "into RAY_AUTH_TOKEN or ~/.ray/auth_token")
    if "Could not find any running Ray instance" in text:
        return "no Ray cluster is running on this machine; pass --ray-address HOST:PORT or start one with `csibench devices serve`"
    return (text.splitlines() or [type(exc).__name__])[0][:300]


# ---- what the cluster offers ---------------------------------------------------------------------------------------

def offered_boards() -> dict[str, str]:
    """board name → the address of the (alive) node that offers it."""
    import ray

    boards = {}
    for node in ray.nodes():
        if node.get("Alive"):
            for resource in node.get("Resources", {}):
                if resource.startswith(RESOURCE_PREFIX):
                    boards[resource.removeprefix(RESOURCE_PREFIX)] = node.get("NodeManagerAddress", "?")
    return boards


def leases(answer_s: float = 2.0) -> dict[str, dict[str, list[str]]]:
    """board → {"held_by": [holder], "waiting": [holder, …]}, from the named proxy actors (``lease:BOARD:HOLDER#N``):
    a proxy that answers within ``answer_s`` was created, so it holds its board; one that does not still waits for it
    (a proxy answers while it measures: it runs two calls at once)."""
    import ray

    refs: dict[Any, str] = {}
    for entry in ray.util.list_named_actors(all_namespaces=True):
        name = entry["name"] if isinstance(entry, dict) else entry
        if (isinstance(entry, dict) and entry.get("namespace") != NAMESPACE) or not name.startswith(LEASE_PREFIX):
            continue
        try:
            refs[ray.get_actor(name, namespace=NAMESPACE).holder.remote()] = name
        except ValueError:  # ended since it was listed
            continue
    answered, _ = ray.wait(list(refs), num_returns=len(refs), timeout=answer_s) if refs else ([], [])
    found: dict[str, dict[str, list[str]]] = {}
    for ref, name in refs.items():
        board, _, rest = name.removeprefix(LEASE_PREFIX).partition(":")
        slot = found.setdefault(board, {"held_by": [], "waiting": []})
        slot["held_by" if ref in answered else "waiting"].append(rest.rpartition("#")[0] or rest)
    return found


def cluster_boards(address: str | None) -> list[dict]:
    """The boards the cluster offers and who holds each lease: one dict per board (for `devices cluster`)."""
    connect(address)
    held = leases()
    return [{"board": b, "resource": RESOURCE_PREFIX + b, "node": node, "held_by": (held.get(b) or {}).get("held_by", []),
             "waiting": (held.get(b) or {}).get("waiting", [])} for b, node in sorted(offered_boards().items())]


def require_offered(board: str) -> str:
    offered = offered_boards()
    if board not in offered:
        listed = ", ".join(sorted(offered)) or "none"
        raise UsageError(f"no node of the Ray cluster offers board {board!r} (resource {RESOURCE_PREFIX}{board}); boards offered: "
                         f"{listed}; offer it with `csibench devices serve {board}` on the node that holds its SSH key")
    return offered[board]


# ---- serving boards (`csibench devices serve`) -------------------------------------------------------------------------

def boards_to_serve(names: list[str] | None) -> list[str]:
    """The boards this node offers: those named (each resolvable here), else every configured device plus local;
    a ray-board entry is another node's board, never served from here."""
    from csibench.devices.lookup import get_device

    devices = load_devices()
    if not names:
        return ["local", *sorted(n for n, d in devices.items() if d.kind != "ray-board" and _BOARD_NAME.fullmatch(n))]
    for name in names:
        check_board_name(name)
        if get_device(name).kind == "ray-board":
            raise UsageError(f"device {name!r} is a board of a Ray cluster already; serve it on the node that holds it")
    return list(dict.fromkeys(names))


def serve(names: list[str] | None, *, address: str | None, port: int, dashboard_host: str, dashboard_port: int,
          num_cpus: int | None) -> dict:
    """Start (or, with ``address``, join) a Ray node on this machine offering ``board:NAME`` for each board; its
    workers read this process's devices file (CSIBENCH_CONFIG_DIR), so the proxies drive the boards from here."""
    import subprocess

    boards = boards_to_serve(names)
    if address is not None:
        refused = not_listening(check_address(address), 5.0)  # ray start would retry a closed or silent port for minutes
        if refused:
            raise CsibenchError(f"no Ray cluster at {address}: {refused}; start its head first (`csibench "
                                "devices serve` there, without --ray-address)")
    for what, value in (("--port", port), ("--dashboard-port", dashboard_port)):
        if not 0 < value < 65536:
            raise UsageError(f"invalid {what} {value}: must be 1–65535")
    resources = "{" + ", ".join(f'"{RESOURCE_PREFIX}{b}": 1' for b in boards) + "}"
    argv = [str(Path(sys.executable).with_name("ray")), "start", f"--resources={resources}", "--disable-usage-stats",
            "--log-style=record", "--log-color=false", *([f"--num-cpus={num_cpus}"] if num_cpus is not None else [])]
    argv += [f"--address={address}"] if address else ["--head", f"--port={port}", f"--dashboard-host={dashboard_host}",
                                                        f"--dashboard-port={dashboard_port}", "--include-dashboard=true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    except FileNotFoundError:
        raise UsageError("`csibench devices serve` needs Ray, which is not installed: pip install 'csibench[ray]'") from None
    except subprocess.TimeoutExpired:
        raise CsibenchError("ray start did not finish within 180 s; see /tmp/ray/session_latest/logs") from None
    text = done.stdout + done.stderr
    if done.returncode != 0:
        reason = [ln.split(" -- ", 1)[-1].strip() for ln in text.splitlines() if ln.strip()]
        raise CsibenchError(f"ray start failed (exit status {done.returncode}): {reason[-1] if reason else 'no output'}")
    joined = address or (re.search(r"ray start --address='([^']+)'", text) or [None, f"<this host>:{port}"])[1]
    return {"address": joined, "boards": boards, "resources": [RESOURCE_PREFIX + b for b in boards],
            "dashboard": None if address else f"{dashboard_host}:{dashboard_port}",
            "connect": f"csibench run STUDY --engine ray --ray-address {joined}",
            "token": "the head's token: `ray get-auth-token` there; on another machine put it in RAY_AUTH_TOKEN",
            "stop": "ray stop (on this machine: it ends every Ray process here)"}


# ---- on the board's node ---------------------------------------------------------------------------------------------

def stage_dir() -> Path:
    """Where a node keeps the artifacts proxies receive: content-addressed, so a rerun sends nothing."""
    base = os.environ.get("CSIBENCH_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "csibench")
    return Path(base) / "ray-stage"


@dataclass(frozen=True)
class StagedArtifact:
    """An artifact as a device reads it (``path``, ``manifest``, ``validation_file()``), staged on the board's node."""

    path: Path
    manifest: dict
    validation: Path | None = None

    def validation_file(self) -> Path | None:
        return self.validation


class BoardProxy:
    """The lease holder: lives on the node that offers ``board:<name>``, drives the board as that node's device."""

    def __init__(self, board: str, holder: str):
        from csibench.devices.lookup import get_device

        self.board, self.holder_id = board, holder
        self.device = get_device(board)

    def holder(self) -> str:
        return self.holder_id

    def facts(self) -> dict:
        d = self.device
        return {"kind": d.kind, "profile": d.profile, "runs_torch": d.runs_torch, "max_threads": d.max_threads(),
                "describe": d.describe(), "node": socket.gethostname()}

    def missing(self, files: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (sha256, name) this node has no intact copy of."""
        return [(sha, name) for sha, name in files if not _intact(stage_dir() / sha / name, sha)]

    def stage(self, sha: str, name: str, data: bytes) -> None:
        """Store ``data`` as stage/SHA/NAME, atomically, after checking its digest (retries and duplicates are harmless)."""
        if sha256_bytes(data) != sha:
            raise CsibenchError(f"{name} arrived damaged on the node of board {self.board!r} (sha256 differs); run it again")
        if not re.fullmatch(r"[0-9a-f]{64}", sha) or "/" in name or name in ("", ".", ".."):
            raise CsibenchError(f"refusing to stage {name!r} ({sha}): not a plain file name and digest")
        (stage_dir() / sha).mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(stage_dir() / sha / name, data)

    def probe(self) -> dict:
        return self.device.probe()

    def calibrate(self, seconds: float, threads: int | None, copy_mb: int | None) -> dict:
        return self.device.calibrate(seconds, threads=threads, copy_mb=copy_mb)

    def measure(self, staged: list[dict], runtime: str, threads: int, seed: int, protocol: dict, timeout_s: float) -> dict:
        """The device's reply for the group, with the time this proxy held the board around it (unix seconds)."""
        artifacts = tuple(StagedArtifact(stage_dir() / s["sha256"] / s["name"], s["manifest"],
                                         stage_dir() / s["validation"][0] / s["validation"][1] if s["validation"] else None)
                          for s in staged)
        start = time.time()
        reply = self.device.measure(GroupRequest(artifacts, runtime, threads, seed, protocol, timeout_s))
        reply.setdefault("lock_held_unix_s", [start, time.time()])
        return reply


def _intact(path: Path, sha: str) -> bool:
    try:
        return path.is_file() and sha256_of(path) == sha
    except OSError:
        return False


_PROXY_CLASS = None


def proxy_class():
    """BoardProxy as a Ray actor class (made once, when first needed)."""
    global _PROXY_CLASS
    if _PROXY_CLASS is None:
        import ray

        # two calls at once: `devices cluster` asks who holds the board while the proxy measures
        _PROXY_CLASS = ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0, max_concurrency=2)(BoardProxy)
    return _PROXY_CLASS


# ---- on the driver ---------------------------------------------------------------------------------------------------

_SERIAL = itertools.count(1)


class RayBoard:
    """``devices.base.Device`` for a board of a Ray cluster: every call takes the board's lease for its duration.
    Built from a devices file entry it connects on first use; the Ray engine builds it connected (:meth:`on_cluster`)."""

    kind = "ray-board"

    def __init__(self, cfg: RayBoardConfig, *, lease_note=None):
        self.cfg = cfg
        self.name = cfg.name
        self.profile = cfg.profile
        self.runs_torch = False  # until the board's node says its device runs torch (this machine's csibench)
        self.note = lease_note or (lambda message: print(f"note: {message}", file=sys.stderr))
        self.node: str | None = None
        self.serves: str | None = None  # the kind of device the node drives for it: "ssh", "local"
        self._max_threads: int | None = None

    lease_cpus: float = 0  # CPUs of the board's node its lease takes (all of them where the board is that node)

    @classmethod
    def on_cluster(cls, cfg: RayBoardConfig, *, lease_note=None) -> RayBoard:
        """A board of the cluster this process has joined, checked offered and described by its node now."""
        board = cls(cfg, lease_note=lease_note)
        board._ensure()
        return board

    def _ensure(self) -> None:
        """Joined, offered and described by the board's node (once)."""
        if self.node is not None:
            return
        check_board_name(self.name)
        connect(self.cfg.address)
        node = require_offered(self.name)
        facts = self._facts()
        if self.cfg.profile == "local":  # not said in this config: the node's own devices file knows the board
            self.profile = facts["profile"]
        self.runs_torch = bool(facts["runs_torch"])
        self._max_threads = facts["max_threads"]
        self.serves = facts["kind"]
        self.node = node
        # A board that is its node's own machine is leased with every CPU of that node: no chain of any driver runs
        # there while it measures (a measurement has the machine to itself); a board over SSH takes none.
        cpus = next((n["Resources"].get("CPU", 0) for n in import_ray().nodes() if n.get("Alive") and resource_of(self.name) in n.get("Resources", {})), 0)
        self.lease_cpus = cpus if self.serves == "local" else 0

    def max_threads(self) -> int | None:
        return self._max_threads

    def describe(self) -> dict:
        return self.cfg.to_dict()

    def require_runtime(self, info) -> None:
        """Checked on the board's node, by its own device, when the group runs there."""

    def _facts(self) -> dict:
        """What the board's node knows about it (kind, profile, cores), asked without taking the lease: a task placed
        on that node that resolves the name there."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        resource = resource_of(self.name)
        node_id = next(n["NodeID"] for n in ray.nodes() if n.get("Alive") and resource in n.get("Resources", {}))
        task = ray.remote(num_cpus=0, max_retries=1)(_facts_on_node)
        return self._call(lambda: task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(self.name),
                          "asking the node of")

    # ---- the lease

    def _lease(self, held: dict):
        """A proxy holding the board's resource (also put in ``held``, for a signal to end it); waits while another
        holder has the board and says who (once)."""
        import ray

        self._ensure()
        require_offered(self.name)  # a board whose node left: one line, not an endless wait
        name = f"{LEASE_PREFIX}{self.name}:{holder_id()}#{next(_SERIAL)}"
        proxy = proxy_class().options(name=name, namespace=NAMESPACE, resources={resource_of(self.name): 1},
                                      num_cpus=self.lease_cpus).remote(self.name, holder_id())
        held["proxy"] = proxy
        ready = proxy.facts.remote()
        announced = False
        while not ray.wait([ready], timeout=WAIT_NOTE_S)[0]:
            if signals.stopping():
                raise signals.StoppedError(f"stopped waiting for board {self.name!r}: csibench is stopping on a signal")
            if not announced:
                others = [h for h in leases().get(self.name, {}).get("held_by", []) if h != holder_id()]
                self.note(f"board {self.name!r} is leased by {', '.join(others) or 'another driver'}; waiting for it "
                          "(a board runs one measurement group at a time, across every driver)")
                announced = True
            if self.name not in offered_boards():
                raise CsibenchError(f"board {self.name!r} left the Ray cluster while this run waited for it")
        self._unwrap(ready)
        return proxy

    def _with_lease(self, action, what: str):
        """``action(proxy)`` while holding the lease; the lease ends after it, on a signal at once, and with this driver."""
        import ray

        held: dict = {}
        with signals.child(lambda: held.get("proxy") and ray.kill(held["proxy"])):
            try:
                proxy = self._lease(held)
                return self._call(lambda: action(proxy), what)
            finally:
                if held.get("proxy") is not None:
                    ray.kill(held["proxy"])

    def _call(self, submit, what: str):
        return self._unwrap(submit(), what)

    def _unwrap(self, ref, what: str = "leasing"):
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayError:
            if signals.stopping():  # the proxy was ended by our signal: not the board's failure
                raise signals.StoppedError(f"board {self.name!r}: the run was ended: csibench is stopping on a signal") from None
            return self._raise_for(what)

    def _raise_for(self, what: str):
        """The exception being handled as one line: the board's own CsibenchError, or what happened to it."""
        import ray

        try:
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
            if isinstance(cause, CsibenchError):
                raise cause from None
            raise CsibenchError(f"{what} board {self.name!r} failed on its node: {first_line(cause or exc)}") from None
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            raise CsibenchError(f"board {self.name!r} went away mid-call ({type(exc).__name__}: its proxy or node died); "
                                "its group is recorded as failed, the rest of the study goes on") from None
        except ray.exceptions.RayError as exc:
            raise CsibenchError(f"{what} board {self.name!r} failed: {first_line(exc)}") from None

    # ---- Device

    def probe(self) -> dict:
        return self._with_lease(lambda p: p.probe.remote(), "probing")

    def calibrate(self, seconds: float = 1.0, threads: int | None = None, copy_mb: int | None = None) -> dict:
        return self._with_lease(lambda p: p.calibrate.remote(seconds, threads, copy_mb), "calibrating")

    def measure(self, request: GroupRequest) -> dict:
        files, staged = _files_of(request.artifacts)

        def run(proxy):
            self._send_missing(proxy, files)
            return proxy.measure.remote(staged, request.runtime, request.threads, request.seed, request.protocol, request.timeout_s)

        return self._with_lease(run, "measuring on")

    def _send_missing(self, proxy, files: dict[tuple[str, str], Path]) -> None:
        missing = self._unwrap(proxy.missing.remote(list(files)), "staging on")
        refs = [proxy.stage.remote(sha, name, read_bytes_bounded(files[(sha, name)], what="artifact", cap=CAP_REFERENCE))
                for sha, name in missing]
        for ref in refs:
            self._unwrap(ref, "staging on")


def _facts_on_node(board: str) -> dict:
    return BoardProxy(board, holder="facts").facts()


def _files_of(artifacts) -> tuple[dict[tuple[str, str], Path], list[dict]]:
    """The files a group needs on the board's node, by (sha256, name), and each artifact's staged description."""
    files: dict[tuple[str, str], Path] = {}
    staged = []
    for a in artifacts:
        sha = a.manifest.get("sha256") or sha256_of(a.path)
        files[(sha, a.path.name)] = a.path
        validation = None
        data = a.validation_file()
        if data is not None:
            vsha = (a.manifest.get("validation_data") or {}).get("sha256") or sha256_of(data)
            files[(vsha, data.name)] = data
            validation = (vsha, data.name)
        staged.append({"sha256": sha, "name": a.path.name, "manifest": a.manifest, "validation": validation})
    return files, staged
