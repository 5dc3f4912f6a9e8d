"""The local engine: a study's chains in worker processes of this machine, its devices as configured.

Chains are independent (each owns its training run and artifacts), so ``workers`` processes prepare them at once,
one chain per process at a time; each worker's torch uses ``cores // workers`` threads, so together they never ask
for more than the machine has. With one worker or one chain everything runs in this process, as before engines.
Workers are spawned (never forked: torch's thread pools do not survive a fork) and ignore SIGINT: Ctrl-C reaches the
driver, which ends them at once (``csibench.signals``). Measurements start after every chain is done, so a local
measurement has the machine to itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from csibench import signals
from csibench.devices.lookup import get_device
from csibench.errors import CsibenchError, UsageError

if TYPE_CHECKING:
    from csibench.studies.prepare import Chain, ChainResult, PrepareJob

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def default_workers() -> int:
    """One chain per core. The driver only waits and appends rows while chains run, so leaving it a core of its own
    (cores - 1) would idle one: on a 2-core machine that is one worker, no parallelism at all."""
    return os.cpu_count() or 1


_RELAY: Any = None  # in a worker process: the pipe end its chains' progress goes to (set by _start_worker)


def require_cuda() -> str:
    """``"cuda"`` where torch sees a CUDA device here, else one line (checked when the run starts, before any work)."""
    import torch

    if not torch.cuda.is_available():
        raise UsageError(f"--gpu: torch {torch.__version__} sees no CUDA device on this machine; drop --gpu (training "
                         "runs on the CPU) or run on a Ray cluster with a GPU node (--engine ray)")
    return "cuda"


def _start_worker(threads: int, relay: Any) -> None:
    """In each worker, before any chain: Ctrl-C is the driver's to handle; torch and BLAS get their share of cores;
    progress goes to ``relay`` (a pipe end the driver reads)."""
    global _RELAY
    _RELAY = relay
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


class LocalEngine:
    """Chains in ``workers`` spawned processes (default: one per core); devices from ``csibench devices``."""

    name = "local"

    def __init__(self, *, address: str | None = None, workers: int | None = None, gpu: bool | None = None,
                 console: Any = None) -> None:
        self.workers = workers or default_workers()
        self.console = console
        self.train_device = require_cuda() if gpu else "cpu"  # CPU as before engines; --gpu: this machine's CUDA device

    def device(self, name: str) -> Any:
        return get_device(name)

    def prepare(self, chains: list[Chain], job: PrepareJob, on_result: Callable[[Chain, ChainResult], None],
                on_error: Callable[[Chain, CsibenchError], None], progress: Any = None) -> None:
        from csibench.studies.prepare import prepare_chain

        job = dataclasses.replace(job, train_device=self.train_device)
        if self.workers == 1 or len(chains) <= 1:
            for chain in chains:
                try:
                    result = prepare_chain(chain, job, progress)
                except CsibenchError as exc:
                    on_error(chain, exc)
                    continue
                on_result(chain, result)
            return
        self._in_pool(chains, job, on_result, on_error, progress)

    def _in_pool(self, chains: list[Chain], job: PrepareJob, on_result, on_error, progress: Any) -> None:
        workers = min(self.workers, len(chains))
        threads = max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")
        # A pipe, not a queue: no semaphores for a stopped command's os._exit to leak (the resource tracker would print
        # them after the interrupt line), and no lock a killed worker could die holding. Each message is one small write.
        reader, writer = context.Pipe(duplex=False)
        shown = threading.Event()
        shower = threading.Thread(target=_show_progress, args=(reader, progress, shown), daemon=True)
        shower.start()
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(threads, writer))
        stopped: BaseException | None = None
        try:
            with signals.child(lambda: _end_workers(pool)):  # a signal ends the workers at once, then interrupts here
                pending: dict[Future, Chain] = {pool.submit(_prepare_relayed, chain, job): chain for chain in chains}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        chain = pending.pop(future)
                        try:
                            _deliver(future, chain, on_result, on_error)
                        except Exception as exc:  # the driver stops the study: nothing new starts, what runs finishes
                            if stopped is None:
                                stopped = exc
                                for waiting in pending:
                                    waiting.cancel()
                    pending = {f: c for f, c in pending.items() if not f.cancelled()}
        except BaseException:  # KeyboardInterrupt/Terminated (or a bug): the workers end now, not when their chains do
            _end_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            # Freed now, not at exit: a stopped command exits with os._exit, and queues still alive then make the
            # multiprocessing resource tracker print leaked-semaphore warnings after the one-line interrupt message.
            pool = None  # type: ignore[assignment]
            shown.set()  # the workers are gone: nothing more comes
            shower.join(timeout=2)
            writer.close()
            reader.close()
            gc.collect()
        if stopped is not None:
            raise stopped

    def close(self) -> None:
        pass


def _prepare_relayed(chain: Chain, job: PrepareJob) -> ChainResult:
    """``prepare_chain`` in a worker, its progress sent to the driver."""
    from csibench.studies.prepare import ProgressRelay, prepare_chain

    return prepare_chain(chain, job, ProgressRelay(_RELAY.send, chain.name()) if _RELAY is not None else None)


def _show_progress(reader: Any, progress: Any, done: threading.Event) -> None:
    """The driver's thread that shows the workers' progress messages until ``done``."""
    from csibench.studies.prepare import show_relayed

    tasks: dict = {}
    while not done.is_set():
        try:
            if not reader.poll(0.2):
                continue
            message = reader.recv()
        except (EOFError, OSError):  # the pipe closed: the workers are gone
            return
        if progress is not None:
            with contextlib.suppress(Exception):  # a display hiccup never stops a study
                show_relayed(progress, message, tasks)


def _deliver(future: Future, chain: Chain, on_result, on_error) -> None:
    try:
        result = future.result()
    except CsibenchError as exc:
        on_error(chain, exc)
        return
    except BrokenProcessPool as exc:  # a worker killed (out of memory, a signal from outside): its chain is lost
        raise CsibenchError(f"the worker process preparing {chain.name()} died ({exc}); rerun the study: finished "
                            "trainings and artifacts are reused from the cache") from None
    on_result(chain, result)


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate every worker process now (a chain's cache writes are atomic: a killed one leaves nothing half-written
    that a later run would take as done)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):  # the executor has no public kill
        with contextlib.suppress(Exception):
            process.terminate()
