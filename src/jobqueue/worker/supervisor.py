"""``jobqueue worker``: run one worker in this process, or supervise several worker processes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from jobqueue.app import JobQueue
from jobqueue.worker.config import WorkerConfig
from jobqueue.worker.worker import Worker

log = logging.getLogger("jobqueue.worker")


#: Set by the supervisor in its children: the pid they must outlive no longer than a moment.
PARENT_PID_ENV = "JOBQUEUE_SUPERVISOR_PID"


async def _stop_when_orphaned(worker: Worker, parent: int) -> None:
    """Stop gracefully once the supervisor is gone (SIGKILLed, say): no orphan keeps running."""
    while os.getppid() == parent:  # noqa: ASYNC110 - the kernel offers no event to await here
        await asyncio.sleep(0.5)
    log.warning("worker.orphaned id=%s: supervisor %d is gone; stopping", worker.id, parent)
    worker.stop()


def run_worker(app: JobQueue, config: WorkerConfig) -> None:
    """Run one worker in this process until SIGTERM/SIGINT (uvloop when installed)."""

    worker = Worker(app, config)

    async def main() -> None:
        parent = os.environ.get(PARENT_PID_ENV)
        watchdog = None if parent is None else asyncio.create_task(_stop_when_orphaned(worker, int(parent)))
        try:
            await worker.run(install_signal_handlers=True)
        finally:
            if watchdog is not None:
                watchdog.cancel()
            await app.close()

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
    exit_past_stuck_threads([worker])


def exit_past_stuck_threads(workers: Sequence[Worker]) -> None:
    """End the process now if handler threads are still running after the workers stopped.

    The interpreter would wait for them at exit (a handler stuck in ``time.sleep(600)`` would
    keep a stopped worker alive for ten minutes past its grace period). Their jobs were released,
    or failed by timeout, so they run again elsewhere under a new lease; what the threads would
    return is discarded. Output is flushed first; nothing else is left to run.
    """
    if any(worker.stuck_threads for worker in workers):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def supervise(child_argv: Sequence[str], processes: int) -> int:
    """Run ``processes`` worker children; restart any that dies; forward SIGTERM/SIGINT to all.

    A child that dies (a handler called ``os._exit``, the OOM killer) is replaced at once; the jobs
    it held come back through lease expiry, each counted as an attempt.
    """
    stopping = False

    def spawn() -> subprocess.Popen[bytes]:
        env = dict(os.environ, **{PARENT_PID_ENV: str(os.getpid())})
        return subprocess.Popen([sys.executable, "-m", "jobqueue", *child_argv], env=env)

    children = [spawn() for _ in range(processes)]

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        alive = False
        for i, child in enumerate(children):
            try:
                code = child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                alive = True
                continue
            if not stopping:
                log.warning("worker process %d exited with %s; starting a new one", child.pid, code)
                children[i] = spawn()
                alive = True
        if not alive:
            return 0
