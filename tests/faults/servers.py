"""Private PostgreSQL and Redis servers that fault tests crash, pause and restart (never the
shared ones), each on a free loopback port with its data in a temporary directory.

PostgreSQL: ``initdb`` and ``pg_ctl``; it refuses to run as root, so as root (CI containers) the
server runs as the ``postgres`` user. Redis: a ``redis-server`` child process.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.backends import skip_or_fail


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        self.data = folder / "pgdata"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._as: list[str] = []
        self._own: Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self._as, *cmd], check=True, capture_output=True, timeout=60)

    def create(self) -> PrivatePostgres:
        if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
            skip_or_fail("initdb and pg_ctl are not installed")
        if os.geteuid() == 0:
            # pytest's temporary folders are root's alone (0700): the server gets one of its own.
            user = pwd.getpwnam("postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
            self._own = Path(tempfile.mkdtemp(prefix="jobqueue-pg-"))
            self.data = self._own / "pgdata"
            self.data.mkdir()
            for path in (self._own, self.data):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{self.data}'"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-t", "60", "start", "-l",
                  str(self.data / "server.log"))  # fmt: skip

    def crash(self) -> None:
        """Stop at once, as a power cut would look to clients (``-m immediate``: no checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        subprocess.run([*self._as, "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)  # fmt: skip
        if self._own is not None:
            shutil.rmtree(self._own, ignore_errors=True)


class PrivateRedis:
    """A redis-server process of this test's own, on a free loopback port."""

    def __init__(self, folder: Path, *options: str, tls: tuple[Path, Path] | None = None) -> None:
        self.folder = folder
        self.options = options
        self.tls = tls  # (certificate, key)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            skip_or_fail("redis-server is not installed")
            return
        # With a certificate, the port speaks TLS only.
        listen = ["--port", str(self.port)] if self.tls is None else [
            "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls[0]),
            "--tls-key-file", str(self.tls[1]), "--tls-auth-clients", "no",
        ]  # fmt: skip
        cmd = [binary, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.folder),
               *self.options]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)  # a paused server must be able to die
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def crash(self) -> None:
        """``kill -9``: what is on disk (the AOF, if on) is all that survives."""
        self.kill()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
