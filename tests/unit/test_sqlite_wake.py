from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from jobqueue import NewJob
from jobqueue.backends import SQLiteBackend
from jobqueue.backends.sqlite import backend as sqlite_backend
from jobqueue.backends.sqlite.wake import Sent, WakeChannel


async def test_a_notify_wakes_a_listener_of_the_same_database(tmp_path: Path) -> None:
    woken, got_job = asyncio.Event(), asyncio.Event()
    jobs: list[bytes] = []
    listener, sender = WakeChannel(tmp_path / "jobs.db"), WakeChannel(tmp_path / "jobs.db")

    def on_job(message: bytes) -> None:
        jobs.append(message)
        got_job.set()

    listener.listen(woken.set, on_job)
    try:
        sender.notify()
        await asyncio.wait_for(woken.wait(), 5)
        assert listener.address is not None
        assert sender.send_job(listener.address, b'{"job": 1}') is Sent.OK
        await asyncio.wait_for(got_job.wait(), 5)
        assert jobs == [b'{"job": 1}']
    finally:
        listener.close()
        sender.close()
    assert list(listener.folder.iterdir()) == []  # the listener removed its socket


async def test_sockets_of_dead_processes_are_removed(tmp_path: Path) -> None:
    channel = WakeChannel(tmp_path / "jobs.db")
    channel.folder.mkdir()
    stale = channel.folder / "999999-dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(stale))
    sock.close()  # gone without unlinking, like a SIGKILLed worker
    assert channel.send_job(str(stale), b"{}") is Sent.GONE  # a job handed to it comes back
    channel.notify()
    channel.close()
    assert not stale.exists()


async def test_an_enqueue_in_one_backend_wakes_a_waiter_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two backends on one file stand for two processes. With the data_version poll pushed out to a
    # minute, only the wake channel can wake the waiter within the test's timeout.
    monkeypatch.setattr(sqlite_backend, "CROSS_PROCESS_POLL", 60.0)
    async with SQLiteBackend(tmp_path / "jobs.db") as producer, SQLiteBackend(tmp_path / "jobs.db") as worker:
        await worker.wait_for_work(["default"], 0.01)  # starts listening
        waiter = asyncio.create_task(worker.wait_for_work(["default"], 30))
        await asyncio.sleep(0)
        await producer.enqueue([NewJob("x")])
        assert await asyncio.wait_for(waiter, 5) is True


async def test_without_the_wake_channel_a_waiter_notices_another_process_by_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "CROSS_PROCESS_POLL", 0.01)
    async with SQLiteBackend(tmp_path / "jobs.db") as producer, SQLiteBackend(tmp_path / "jobs.db") as worker:
        worker._channel.enabled = False  # no Unix sockets here (Windows)
        await worker.wait_for_work(["default"], 0.01)
        waiter = asyncio.create_task(worker.wait_for_work(["default"], 30))
        await asyncio.sleep(0)
        producer._channel.enabled = False
        await producer.enqueue([NewJob("x")])
        assert await asyncio.wait_for(waiter, 5) is True  # data_version changed: long before 30 s
