"""A pool of child processes for CPU-bound handlers, where a timeout kills the work.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one running call, and a child that dies
breaks the whole pool; here each child is ours: a call that runs past its timeout (or whose lease
is lost, or whose worker shuts down) kills that child and starts a fresh one, and a child that dies
(a handler calling ``os._exit``, a segfault) fails only the attempt it was running.

Children are started with "spawn" (safe beside the worker's threads) and find the handler by the
module and qualified name of the registered function: names from the worker's own code, never from
job data. Payloads, results and errors cross the pipe as JSON.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jobqueue.errors import PermanentError, Retry
from jobqueue.job import Job, JobState, dump_json, load_json
from jobqueue.task import Task, _current_job

if TYPE_CHECKING:  # multiprocessing is imported when a pool is made: most workers never need it
    import multiprocessing.context
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

log = logging.getLogger("jobqueue.worker")


class ProcessTimeout(Exception):
    """The attempt ran past its timeout; its child process was killed."""


class RemoteFailure(Exception):
    """The handler raised in the child; ``str()`` is ``"<ExceptionType>: <message>"``, and
    ``traceback`` the child's."""

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback


class ChildDied(Exception):
    """The child process running the attempt exited (``os._exit``, a signal, a crash)."""


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` as Python prints it, kept with the failed attempt."""
    return "".join(traceback.format_exception(exc))


def function_ref(fn: Callable[..., Any]) -> tuple[str, str]:
    return fn.__module__, fn.__qualname__


# ---- the child side ----------------------------------------------------------------------


def _resolve(module_name: str, qualname: str) -> Callable[..., Any]:
    if module_name == "__main__" and "__mp_main__" in sys.modules:
        module_name = "__mp_main__"  # spawn imports the parent's script under this name
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    fn: Callable[..., Any] = obj.fn if isinstance(obj, Task) else obj
    return fn


def _run_one(message: dict[str, Any]) -> dict[str, Any]:
    job_fields = message["job"]
    job_fields["state"] = JobState(job_fields["state"])
    job_fields["parents"] = tuple(job_fields["parents"])
    job = Job(**job_fields)
    token = _current_job.set(job)
    try:
        result = _resolve(message["module"], message["qualname"])(job.payload)
        dump_json(result)
    except Retry as exc:
        return {"kind": "retry", "delay": exc.delay, "reason": exc.reason}
    except PermanentError as exc:
        return {"kind": "permanent", "message": str(exc)}
    except TypeError as exc:
        if "not JSON serializable" in str(exc) or "Type is not JSON" in str(exc):
            return {"kind": "permanent", "message": f"handler returned a result that is not JSON: {exc}"}
        return {"kind": "error", "message": f"TypeError: {exc}", "traceback": format_traceback(exc)}
    except Exception as exc:
        text = str(exc)
        described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return {"kind": "error", "message": described, "traceback": format_traceback(exc)}
    finally:
        _current_job.reset(token)
    return {"kind": "ok", "result": result}


def child_main(conn: Connection) -> None:
    """The loop of one child: read a call, run it, answer; exit when the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent worker decides when to stop
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        conn.send_bytes(dump_json(_run_one(load_json(data))))


# ---- the parent side ---------------------------------------------------------------------


class _Child:
    def __init__(self, context: multiprocessing.context.SpawnContext) -> None:
        parent_end, child_end = context.Pipe()
        self.conn = parent_end
        self.process: BaseProcess = context.Process(target=child_main, args=(child_end,), daemon=True)
        self.process.start()
        child_end.close()

    async def receive(self) -> bytes:
        """Wait for the child's answer without holding a thread."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self.conn.fileno()
        loop.add_reader(fd, _resolve_ready, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        return self.conn.recv_bytes()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def _resolve_ready(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


class ProcessPool:
    """``size`` child processes, started on first use and replaced whenever one is killed or dies."""

    def __init__(self, size: int) -> None:
        self.size = size
        import multiprocessing

        self._context = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Child] | None = None
        self._all: set[_Child] = set()
        self.replaced = 0

    async def _start(self) -> asyncio.Queue[_Child]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            children = await asyncio.gather(*(asyncio.to_thread(_Child, self._context) for _ in range(self.size)))
            for child in children:
                self._all.add(child)
                self._idle.put_nowait(child)
        return self._idle

    async def _replace(self, child: _Child) -> None:
        self._all.discard(child)
        await asyncio.to_thread(child.kill)
        fresh = await asyncio.to_thread(_Child, self._context)
        self._all.add(fresh)
        self.replaced += 1
        assert self._idle is not None
        self._idle.put_nowait(fresh)

    async def run(self, fn: Callable[..., Any], job: Job, timeout: float | None) -> Any:
        """Run ``fn(job.payload)`` in a child; raise as the handler did (Retry, PermanentError, ...)."""
        idle = await self._start()
        child = await idle.get()
        module, qualname = function_ref(fn)
        fields = {name: getattr(job, name) for name in job.__slots__}
        fields["state"] = str(job.state)
        try:
            child.conn.send_bytes(dump_json({"module": module, "qualname": qualname, "job": fields}))
            async with asyncio.timeout(timeout):
                data = await child.receive()
        except TimeoutError:
            log.warning("job %s: killing its process after the %g s timeout", job.id, timeout)
            await asyncio.shield(self._replace(child))
            raise ProcessTimeout(f"timed out after {timeout:g} s (process killed)") from None
        except asyncio.CancelledError:
            await asyncio.shield(self._replace(child))  # stop the work: lease lost or shutdown
            raise
        except (EOFError, OSError):
            await asyncio.to_thread(child.process.join, 5)  # reap it to learn how it ended
            code = child.process.exitcode
            await asyncio.shield(self._replace(child))
            raise ChildDied(f"the process running the job exited (exit code {code})") from None
        idle.put_nowait(child)
        return _raise_or_return(load_json(data))

    async def close(self) -> None:
        children, self._all = list(self._all), set()
        self._idle = None
        await asyncio.gather(*(asyncio.to_thread(child.kill) for child in children))


def _raise_or_return(reply: dict[str, Any]) -> Any:
    kind = reply["kind"]
    if kind == "ok":
        return reply["result"]
    if kind == "retry":
        raise Retry(delay=reply["delay"], reason=reply["reason"])
    if kind == "permanent":
        raise PermanentError(reply["message"])
    raise RemoteFailure(reply["message"], reply.get("traceback"))
