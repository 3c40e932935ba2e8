"""A TCP proxy between jobqueue and its store that can blackhole, delay and cut connections.

It runs on a thread and event loop of its own, so that a test can steer it from synchronous code
and so that a test's own loop, blocked or not, never stalls the traffic.

- ``blackhole()``: from now on bytes are read and dropped, in both directions, and new
  connections are accepted and then hang: what a network partition looks like to both ends (no
  FIN, no RST). ``heal()`` ends it; connections made meanwhile stay hung.
- ``delay(seconds)``: every chunk is forwarded that much later.
- ``cut()``: close every open connection at once (as a restart of the store would).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._blackholed = False
        self._delay = 0.0
        self.port = 0

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def blackhole(self) -> None:
        self._blackholed = True

    def heal(self) -> None:
        self._blackholed = False

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def cut(self) -> None:
        self._call(self._cut())

    @contextlib.contextmanager
    def partition(self) -> Iterator[None]:
        """Blackholed inside the block, healed after it."""
        self.blackhole()
        try:
            yield
        finally:
            self.heal()

    # ---- on the proxy's loop ------------------------------------------------------------

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, family=socket.AF_INET)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()
        # Connections accepted while blackholed, and pipes still delaying a chunk, end here rather
        # than being destroyed pending with the loop.
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _cut(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(OSError):
                sock = transport.get_extra_info("socket")
                if sock is not None:  # RST rather than FIN: the other end learns of it at once
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            transport.abort()
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        if self._blackholed:
            await _drain_forever(client_reader)  # accepted, never answered
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.add(server_writer)
        await asyncio.gather(
            self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self._blackholed:
                    continue  # dropped: a partition loses packets, it does not close
                if self._delay:
                    await asyncio.sleep(self._delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


async def _drain_forever(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while await reader.read(65536):
            pass
