"""``jobqueue serve`` against clients that would hold it hostage: endless headers, half-sent
requests by the thousand, malformed framing. Raw sockets, since an HTTP library would not send
these; a real server process, since the defences live in its HTTP protocol."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.test_serve_process import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    # Few open files, as under `ulimit -n`: the connection budget must follow the limit.
    started = Server(tmp_path / "jobs.db", "--workers", "2", "--max-header-bytes", "8192",
                     "--request-timeout", "2", open_files=256)  # fmt: skip
    try:
        yield started
    finally:
        started.stop()


def connect(server: Server) -> socket.socket:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def answer_of(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body of the one answer a closed connection carried."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), head
    return status, json.loads(body)


def rss_kib(server: Server) -> int:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def test_an_endless_header_is_cut_off_with_431_and_memory_stays_bounded(server: Server) -> None:
    before = rss_kib(server)
    socks = [connect(server) for _ in range(4)]
    chunk = b"a" * 65536
    for sock in socks:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(16 * 40):  # 40 MiB each, unless the server stops reading (it must)
                sock.sendall(chunk)
    for sock in socks:
        status, body = answer_of(sock)
        assert status == 431 and "8192 bytes" in str(body["error"])
        sock.close()
    assert rss_kib(server) - before < 30 * 1024  # 160 MiB were offered
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


def test_half_sent_requests_past_the_file_limit_do_not_lock_out_other_clients(server: Server) -> None:
    # 256 open files: more half-sent requests than the server could keep open.
    attackers = []
    for _ in range(300):
        sock = connect(server)
        sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        attackers.append(sock)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/health").status_code == 200
            assert client.post("/jobs", json={"payload": 1}).status_code == 202
        # The oldest were evicted to make room (503); those left are timed out (408).
        statuses = {answer_of(sock)[0] for sock in attackers}
        assert statuses <= {408, 503} and 503 in statuses, statuses
    finally:
        for sock in attackers:
            sock.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"BREW /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
    ],
    ids=["negative-length", "doubled-length", "length-and-chunked", "unknown-method", "header-without-colon"],
)
def test_malformed_framing_is_answered_400_in_the_error_shape(server: Server, request_bytes: bytes) -> None:
    with connect(server) as sock:
        sock.sendall(request_bytes)
        status, body = answer_of(sock)
    assert status == 400 and str(body["error"]).startswith("malformed HTTP request")
