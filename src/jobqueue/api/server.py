"""Serving an app with uvicorn inside our own event loop, with our own signal handling.

uvicorn's ``Server.serve`` re-raises the signal that stopped it once it has shut down (so a
SIGTERM ends the process with "killed by signal" and a Ctrl-C with a ``KeyboardInterrupt``
traceback). Here the first SIGINT/SIGTERM starts a graceful shutdown (stop accepting, finish
requests, let running jobs finish within the workers' grace) and the command exits 0; a second
one exits at once, which loses nothing: accepted jobs are stored, and held leases expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

from jobqueue.api.protocol import DEFAULT_LIMITS, ConnectionLimits, guarded_protocol
from jobqueue.errors import ConfigurationError

#: File descriptors kept free of client connections: the store's connections, files, the listener.
RESERVED_FDS = 64

log = logging.getLogger("jobqueue.api")
T = TypeVar("T")


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Our handlers are installed by serve(); keep uvicorn from installing (and re-raising) its own.
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port); clear errors when that fails."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot listen on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {port} on {host} is already in use (another server?): stop it, or choose another "
                "port with --port (0 picks a free one)"
            ) from None
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """The ``http://`` URL a listening socket answers on."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(
    app: ASGIApp,
    sock: socket.socket,
    *,
    log_level: str = "warning",
    limits: ConnectionLimits = DEFAULT_LIMITS,
    access_log: bool = False,
    on_started: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM, or until ``on_started(url)`` returns.

    ``limits`` bound what each client may hold (see :mod:`.protocol`); ``max_connections`` is also
    kept under the process's open-file limit, which is raised to its hard maximum first.
    ``on_started`` runs beside the server once it accepts connections (the demo's scenario); when
    it returns the server shuts down, and a signal cancels it.
    """
    limits = dataclasses.replace(limits, max_connections=min(limits.max_connections, connection_budget()))
    config = uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        lifespan="on",
        log_level=log_level,
        # uvicorn's lines go through the process's own handlers (jobqueue.logs: text or JSON).
        log_config=None,
        access_log=access_log,  # off by default: a line per request costs more than the request
        proxy_headers=False,  # nothing here reads the client address
        server_header=False,  # one header less to check and write on every answer
        timeout_graceful_shutdown=10,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    signals = 0
    extra: asyncio.Task[None] | None = None

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            # Stop the side task first: it may be a live display that owns the terminal, or a
            # client of this very server, which is about to stop answering.
            if extra is not None:
                extra.cancel()
            # sys.__stderr__: a live display may have redirected sys.stderr to itself.
            print("\nshutting down: finishing requests and running jobs (press Ctrl-C again to exit now)",
                  file=sys.__stderr__, flush=True)  # fmt: skip
            server.should_exit = True
        else:
            print("exiting now: running jobs return to their queue when their leases expire", file=sys.__stderr__)
            os._exit(1)

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread: no handlers
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    try:
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        if on_started is not None:
            ready = asyncio.ensure_future(server.ready.wait())
            await asyncio.wait([ready, serving], return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if server.started:
                extra = asyncio.ensure_future(on_started(url_of(sock)))
                extra.add_done_callback(lambda _: setattr(server, "should_exit", True))
        if extra is not None:
            # The side task ends first (it may be a client of this server), then the server.
            try:
                await asyncio.shield(extra)
            except asyncio.CancelledError:
                if not extra.cancelled():
                    raise  # serve() itself was cancelled, not the side task
            except BaseException:
                server.should_exit = True
                await serving
                raise
        await serving
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        sock.close()


def connection_budget() -> int:
    """How many client connections the open-file limit leaves room for, after raising it as far as
    this process may: accepting past it would fail every client, not only the newest."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = max(soft, 65536) if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return max(1, soft - RESERVED_FDS)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when it is installed (the worker does the same), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
