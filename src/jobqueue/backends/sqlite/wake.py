"""Cross-process wake-ups for SQLite: workers in other processes hear of new jobs at once.

SQLite has no LISTEN/NOTIFY. Each process waiting for work binds a Unix datagram socket in a
folder beside the database (``jobs.db`` -> ``jobs.db-wake/``); a process that commits new work
sends one byte to every socket there. A lost or late datagram costs nothing but latency: waiters
still poll ``PRAGMA data_version`` as the fallback. Sockets of processes that died are removed by
the first sender that finds them refusing.

The same sockets carry jobs handed to a waiting worker (see ``waiting_workers`` in schema.sql):
a datagram that starts with ``J`` holds one, sent to the one process whose worker took it.

Where Unix sockets are unavailable (Windows) or the path is too long for one, the channel is
silently off and polling alone remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

#: Longest path a Unix socket address can hold on Linux and macOS.
MAX_SOCKET_PATH = 100
#: Largest message sent: macOS's default limit on one Unix datagram. A job that does not fit is
#: not handed over; a worker claims it.
MAX_MESSAGE = 2048
JOB_MESSAGE = b"J"


class Sent(enum.Enum):
    OK = "ok"
    FULL = "full"  # its buffer is full: the process is alive but behind
    GONE = "gone"  # nobody listens there any more: the process has died


class WakeChannel:
    def __init__(self, database: Path) -> None:
        self.folder = database.with_name(database.name + "-wake")
        self._listener: socket.socket | None = None
        self._path: Path | None = None
        self._peers: list[str] = []
        self._listed_version: int | None = None  # the folder's mtime when last listed
        self._sender: socket.socket | None = None
        self.enabled = hasattr(socket, "AF_UNIX")

    # ---- waiting side -------------------------------------------------------------------

    @property
    def address(self) -> str | None:
        """This process's socket, once listening."""
        return None if self._path is None else str(self._path)

    def listen(self, on_wake: Callable[[], None], on_job: Callable[[bytes], None]) -> None:
        """Start receiving wake-ups and handed jobs on the running loop (idempotent)."""
        if self._listener is not None or not self.enabled:
            return
        path = self.folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        if len(str(path)) > MAX_SOCKET_PATH:
            self.enabled = False
            return
        try:
            self.folder.mkdir(exist_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind(str(path))
        except OSError:
            self.enabled = False
            return
        self._listener, self._path = sock, path

        def drain() -> None:
            woken = False
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while True:
                    message = sock.recv(MAX_MESSAGE)
                    if message[:1] == JOB_MESSAGE:
                        on_job(message[1:])
                    else:
                        woken = True
            if woken:
                on_wake()

        asyncio.get_running_loop().add_reader(sock.fileno(), drain)

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(RuntimeError, ValueError):
                asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
            self._path = None
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    # ---- sending side -------------------------------------------------------------------

    def send_job(self, address: str, message: bytes) -> Sent:
        """Send one handed job to the process listening at ``address``."""
        sender = self._sender_socket()
        try:
            sender.sendto(JOB_MESSAGE + message, address)
        except BlockingIOError:
            return Sent.FULL
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(OSError):
                os.unlink(address)
            return Sent.GONE
        except OSError:
            return Sent.GONE
        return Sent.OK

    def _sender_socket(self) -> socket.socket:
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        return self._sender

    def notify(self) -> None:
        """Wake every waiting process (call after the commit that made work available)."""
        if not self.enabled:
            return
        # A socket added or removed changes the folder's mtime: list it again only then.
        try:
            version = os.stat(self.folder).st_mtime_ns
        except OSError:
            return  # no folder: nobody has ever waited
        if version != self._listed_version:
            try:
                self._peers = [entry.path for entry in os.scandir(self.folder) if entry.name.endswith(".sock")]
            except OSError:
                self._peers = []
            self._listed_version = version
        if not self._peers:
            return
        sender = self._sender_socket()
        own = self.address
        for peer in self._peers:
            if peer == own:
                continue
            try:
                sender.sendto(b"!", peer)
            except BlockingIOError:
                pass  # its buffer is full of wake-ups already: it is awake
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(peer)  # a process that died without cleaning up
            except OSError:
                pass
