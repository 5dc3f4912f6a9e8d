"""The Ray engine: a study's chains as Ray tasks, its devices as boards leased from the cluster.

Each chain is one task running ``prepare.prepare_chain`` (retried ``max_retries`` times if its worker or node dies;
its cache writes are atomic and content-addressed, so a retried chain leaves one valid artifact). A chain that trains
asks for a GPU where the cluster has one; the others run on this driver's node, whose cache they write. The driver
alone appends records to the results database, as each chain completes. Measurements go to
``devices.ray_board.RayBoard``: the study's device ``pi-03`` is the cluster's resource ``board:pi-03``, one group at a
time across every driver. Imported only by ``engine.open_engine`` (the local engine never imports Ray).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from csibench.devices.ray_board import RayBoard, RayBoardConfig, connect, dashboard_url, first_line, not_listening, prefer_token_auth
from csibench.errors import CsibenchError, UsageError
from csibench.studies.prepare import Chain, ChainResult, PrepareJob, prepare_chain

prefer_token_auth()  # before Ray is imported: it reads RAY_AUTH_MODE then
import ray  # noqa: E402

MAX_RETRIES = 3  # a chain whose worker or node dies is run again this many times
# what a chain's worker needs from the driver's environment (a worker inherits its node's, not the driver's)
PASSED_ENV = ("CSIBENCH_CACHE_DIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG")
_DASHBOARD_SHOWN: set[str] = set()


class RayEngine:
    """Chains as tasks of the Ray cluster at ``address`` (None: $RAY_ADDRESS, else the one on this machine)."""

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None, gpu: bool | None = None,
                 console: Any = None) -> None:
        self.address = address
        self.console = console
        connect(address)
        offered = ray.cluster_resources()
        if gpu and offered.get("GPU", 0) <= 0:
            shown = ", ".join(f"{k} {v:g}" for k, v in sorted(offered.items()) if k in ("CPU", "GPU") or k.startswith("board:"))
            raise UsageError(f"--gpu: no node of the Ray cluster at {address or 'RAY_ADDRESS or this machine'} has a GPU (it "
                             f"offers {shown}); join a GPU node there (`ray start --address=HEAD:PORT`) or drop --gpu")
        self.gpus = offered.get("GPU", 0) > 0 and gpu is not False  # None: train on a GPU where the cluster has one
        self.node_id = ray.get_runtime_context().get_node_id()
        self.gcs = ray.get_runtime_context().gcs_address or ""
        mine: dict = next((n for n in ray.nodes() if n.get("NodeID") == self.node_id), {})
        self.node_cpus = mine.get("Resources", {}).get("CPU", 0)
        url = dashboard_url()
        if url and url not in _DASHBOARD_SHOWN:  # once per driver, however many engines it opens
            _DASHBOARD_SHOWN.add(url)
            self._say(f"Ray cluster {address or os.environ.get('RAY_ADDRESS') or 'on this machine'}: dashboard http://{url}")

    def _say(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=sys.stderr)

    def device(self, name: str) -> RayBoard:
        return RayBoard.on_cluster(RayBoardConfig(name=name, address=self.address))

    def _options(self, chain: Chain) -> dict:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        options: dict[str, Any] = {"max_retries": MAX_RETRIES, "retry_exceptions": False, "num_cpus": 1,
                                   "runtime_env": {"env_vars": env} if env else None}
        if chain.trains and self.gpus:  # on whichever node has one (the cache path must be shared with it), trained there
            options["num_gpus"] = 1
        else:  # on this node: the artifacts land in the driver's own cache
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(self.node_id, soft=False)
        return options

    def prepare(self, chains: list[Chain], job: PrepareJob, on_result: Callable[[Chain, ChainResult], None],
                on_error: Callable[[Chain, CsibenchError], None], progress: Any = None) -> None:
        task = ray.remote(prepare_chain)
        here = [c for c in chains if not (c.trains and self.gpus)]
        if here and self.node_cpus <= 0:
            raise UsageError(f"this driver's Ray node offers no CPU (it was started with --num-cpus=0), and {len(here)} chain(s) "
                             "run on the driver's node (their artifacts land in its cache); run the driver on a node with CPUs")
        on_gpu = dataclasses.replace(job, train_device="cuda")  # a chain given a GPU trains on it, not beside it
        pending = {task.options(**self._options(c)).remote(c, on_gpu if c.trains and self.gpus else job): c for c in chains}
        stopped: BaseException | None = None
        try:
            lost_since: float | None = None
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                if not done:  # Ray's own client gives up on a lost cluster only after 60 s, and then ends this process
                    lost_since = None if not_listening(self.gcs, 1.0) is None else (lost_since or time.monotonic())
                    if lost_since is not None and time.monotonic() - lost_since > LOST_AFTER_S:
                        raise CsibenchError(f"the Ray cluster at {self.address or 'this machine'} stopped answering while "
                                            f"{len(pending)} chain(s) were prepared")
                    continue
                for ref in done:
                    chain = pending.pop(ref)
                    try:
                        _deliver(ref, chain, on_result, on_error)
                    except ray.exceptions.TaskCancelledError:
                        continue
                    except Exception as exc:  # the driver stops the study: nothing new starts
                        if stopped is None:
                            stopped = exc
                            for waiting in pending:
                                ray.cancel(waiting, force=False)
        except BaseException:  # Ctrl-C, SIGTERM: the tasks end now
            for waiting in pending:
                ray.cancel(waiting, force=True)
            raise
        if stopped is not None:
            raise stopped

    def close(self) -> None:
        """Leave the cluster (its leases of this driver end with it)."""
        if ray.is_initialized():
            ray.shutdown()


LOST_AFTER_S = 5.0  # the cluster's GCS port refusing this long: the cluster is gone


def _deliver(ref, chain: Chain, on_result, on_error) -> None:
    try:
        result = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, CsibenchError):
            on_error(chain, cause)
            return
        if isinstance(cause, BaseException):
            raise cause from None  # a bug in a chain is the same bug as in the local engine
        raise CsibenchError(f"preparing {chain.name()} failed on the Ray cluster: {first_line(exc)}") from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError) as exc:
        raise CsibenchError(f"the Ray worker preparing {chain.name()} died {MAX_RETRIES + 1} times ({type(exc).__name__}); "
                            "rerun the study: finished trainings and artifacts are reused from the cache") from None
    except ray.exceptions.TaskCancelledError:  # this driver cancelled it (it is stopping): not a failure
        raise
    except ray.exceptions.RayError as exc:  # unschedulable, cancelled by the cluster, …: one line, never a traceback
        raise CsibenchError(f"the Ray cluster could not prepare {chain.name()}: {type(exc).__name__}: {first_line(exc)}") from None
    on_result(chain, result)


def per_task_overhead_s(n: int = 200) -> dict[str, float]:
    """Ray's cost per empty task on the joined cluster (s): pipelined (n at once) and one round trip at a time."""
    noop = ray.remote(num_cpus=1)(_noop)  # a CPU each: as many workers as CPUs (with none Ray starts a worker per task)
    ray.get([noop.remote() for _ in range(int(ray.cluster_resources().get("CPU", 1)))])  # the workers started
    start = time.perf_counter()
    ray.get([noop.remote() for _ in range(n)])
    pipelined = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for _ in range(n // 4):
        ray.get(noop.remote())
    return {"pipelined_s": pipelined, "round_trip_s": (time.perf_counter() - start) / (n // 4)}


def _noop() -> None:
    return None
