"""A private PostgreSQL server that a fault test may crash and restart (never the shared one).

``initdb`` into the test's temporary directory, ``pg_ctl`` on a free loopback port. PostgreSQL
refuses to run as root: as root (CI containers), the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
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
