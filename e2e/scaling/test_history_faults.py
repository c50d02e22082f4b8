"""Topic history under faults: 10,000 numbered messages published at a steady
rate while (a) a client reconnects 20 times with its last position (history
in the process; then shared in Redis Streams, alternating between two
servers), (b) Redis is restarted under two processes sharing the topic
through it (without persistence: a new epoch, reported; with `appendonly
yes`: nothing lost, nothing reported), (c) the worker a client is connected
to is killed with SIGKILL (the client recovers from the shared history on
the other worker). Every client must end with every message exactly once
and in order, or see an explicit `truncated` report before any gap: never a
silent one. Each test prints its counts (sent, delivered, duplicates, gaps,
truncated reports).

Servers: e2e/scaling/servers/py_history.py on the Python package (built by
scripts/test.d/20-python.sh into build/py-venv); a real redis-server."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import websockets
from test_scaling import Redis, free_port

ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).resolve().parent / "servers" / "py_history.py"
PY = ROOT / "build" / "py-venv" / "bin" / "python"
TOTAL = 10_000


class HistoryServer:
    """py_history.py, waited for until it accepts."""

    def __init__(self, redis=None, workers=1):
        if not PY.exists():
            pytest.fail(f"{PY} missing: run scripts/test.d/20-python.sh first")
        self.port = free_port()
        self.log = open(f"/tmp/wirecore_history_{self.port}.log", "w+")
        argv = [str(PY), str(SERVER), str(self.port), redis.url if redis else "-", str(workers)]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"py_history.py exited: {self.read_log()}")
            if self.read_log().count("listening") >= workers:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        pytest.fail(f"py_history.py did not start: {self.read_log()}")

    def read_log(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.log.close()


class Subscriber:
    """A client of /feed that keeps its last position, reconnects with it, and
    accounts for every message: numbers seen, duplicates, gaps (and whether a
    truncated report came before each)."""

    def __init__(self, server):
        self.server = server
        self.position = ""
        self.seen = []
        self.duplicates = 0
        self.gaps = 0  # holes in the numbers
        self.silent_gaps = 0  # holes with no truncated report before them
        self.truncated = 0
        self.reported = False  # a truncated report since the last message
        self.reorders = 0
        self.pid = None
        self.ws = None

    async def connect(self):
        url = self.server.url(f"/feed?since={self.position}")
        for _ in range(100):  # a killed worker's port share may refuse for a moment
            try:
                self.ws = await websockets.connect(url, max_queue=None)
                break
            except (OSError, websockets.exceptions.InvalidHandshake):
                await asyncio.sleep(0.05)  # e.g. accepted by the worker being killed
        else:
            pytest.fail("cannot reconnect")

    def take(self, m):
        if "pid" in m:
            self.pid = m["pid"]
            return
        if m.get("type") == "truncated":
            self.truncated += 1
            self.reported = True
            self.position = m["offset"]
            return
        n = m["data"]["n"]
        self.position = m["offset"]
        if self.seen and n <= self.seen[-1]:
            if n in set(self.seen[-2000:]):
                self.duplicates += 1
            else:
                self.reorders += 1
            return
        last = self.seen[-1] if self.seen else 0
        if n != last + 1 and (self.seen or not self.reported):
            self.gaps += 1
            if not self.reported:
                self.silent_gaps += 1
        self.seen.append(n)
        self.reported = False

    async def read(self, until_n=None, count=None, timeout=10.0):
        """Read until message number until_n (or `count` messages, or the
        connection ends). Returns False when the connection ended."""
        got = 0
        try:
            while True:
                if until_n is not None and self.seen and self.seen[-1] >= until_n:
                    return True
                if count is not None and got >= count:
                    return True
                m = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
                self.take(m)
                got += 1
        except websockets.ConnectionClosed:
            return False

    def summary(self, name, sent):
        return (f"{name}: sent {sent}, delivered {len(self.seen)}, duplicates {self.duplicates}, "
                f"gaps {self.gaps} (silent {self.silent_gaps}), truncated reports {self.truncated}, "
                f"reordered {self.reorders}")


async def publish_all(server, rate_batch=20, pause=0.008, total=TOTAL, before_each=None):
    """Send 1..total to /pub at a steady rate (about 2,500 per second)."""
    async with websockets.connect(server.url("/pub")) as pub:
        pid = json.loads(await pub.recv())["pid"]
        for i in range(1, total + 1):
            await pub.send(str(i))
            if i % rate_batch == 0:
                if before_each is not None:
                    await before_each(i)
                await asyncio.sleep(pause)
        await asyncio.sleep(0.2)
    return pid


def test_a_client_reconnecting_20_times_gets_every_message_once_in_order():
    server = HistoryServer()

    async def main():
        sub = Subscriber(server)
        await sub.connect()
        await sub.read(count=1)  # its pid: subscribed
        publisher = asyncio.create_task(publish_all(server))
        for _ in range(20):
            await sub.read(count=400)
            await sub.ws.close()
            await sub.connect()
        reconnects_done_while_publishing = not publisher.done()
        await sub.read(until_n=TOTAL)
        await publisher
        await sub.ws.close()
        print(sub.summary("reconnect x20", TOTAL))
        assert reconnects_done_while_publishing
        assert (sub.duplicates, sub.gaps, sub.reorders, sub.truncated) == (0, 0, 0, 0)
        assert sub.seen == list(range(sub.seen[0], TOTAL + 1))

    try:
        asyncio.run(main())
    finally:
        assert server.stop() == 0


def aof_redis(tmp_path):
    """redis-server with an append-only file fsynced at every write: a
    restart on the same port and directory keeps everything."""
    return Redis(("--appendonly", "yes", "--appendfsync", "always", "--dir", str(tmp_path)))


def test_shared_history_a_client_reconnecting_20_times_to_the_other_server_misses_nothing():
    redis = Redis()
    a = HistoryServer(redis)
    b = HistoryServer(redis)

    async def main():
        sub = Subscriber(b)
        await sub.connect()
        await sub.read(count=1)
        publisher = asyncio.create_task(publish_all(a))
        for k in range(20):  # a, b, a, ...: every reconnect to the other process
            await sub.read(count=400)
            await sub.ws.close()
            sub.server = a if k % 2 == 0 else b
            await sub.connect()
        reconnects_done_while_publishing = not publisher.done()
        await sub.read(until_n=TOTAL)
        await publisher
        await sub.ws.close()
        print(sub.summary("shared history, reconnect x20 across servers", TOTAL))
        assert reconnects_done_while_publishing
        assert (sub.duplicates, sub.gaps, sub.reorders, sub.truncated) == (0, 0, 0, 0)
        assert sub.seen == list(range(sub.seen[0], TOTAL + 1))

    try:
        asyncio.run(main())
    finally:
        codes = (a.stop(), b.stop())
        redis.kill()
    assert codes == (0, 0)


def redis_restart_under_two_servers(redis, label):
    """Publish TOTAL on server A to a subscriber on server B while redis is
    killed (at 3,000) and started again (at 4,000); returns the subscriber
    once it has the last one and both servers stopped cleanly."""
    a = HistoryServer(redis)
    b = HistoryServer(redis)

    async def main():
        sub = Subscriber(b)  # on B; the publisher is on A
        await sub.connect()
        await sub.read(count=1)
        deadline = time.time() + 5
        while redis.numsub("wirecore:feed") < 2 and time.time() < deadline:
            await asyncio.sleep(0.02)

        async def fault(i):
            if i == 3000:
                redis.kill()
            elif i == 4000:
                redis.start()

        publisher = asyncio.create_task(publish_all(a, before_each=fault))
        reader = asyncio.create_task(sub.read(until_n=TOTAL, timeout=15))
        await publisher
        await reader
        await sub.ws.close()
        print(sub.summary(label, TOTAL))
        return sub

    try:
        sub = asyncio.run(main())
    finally:
        codes = (a.stop(), b.stop())
        redis.kill()
    assert codes == (0, 0)
    return sub


def test_shared_history_survives_a_redis_restart_with_appendonly(tmp_path):
    sub = redis_restart_under_two_servers(aof_redis(tmp_path),
                                          "shared history, redis restart (appendonly)")
    assert (sub.duplicates, sub.gaps, sub.reorders, sub.truncated) == (0, 0, 0, 0)
    assert sub.seen == list(range(1, TOTAL + 1))


def test_redis_restarted_under_two_processes_never_leaves_a_silent_gap():
    sub = redis_restart_under_two_servers(Redis(), "shared history, redis restart (no persistence)")
    assert sub.silent_gaps == 0 and sub.duplicates == 0 and sub.reorders == 0
    assert sub.seen[-1] == TOTAL
    assert sub.truncated >= 1, "Redis lost the history: a new epoch was due"


def test_a_sigkilled_worker_never_leaves_a_silent_gap():
    redis = Redis()
    server = HistoryServer(redis, workers=2)

    async def main():
        async with websockets.connect(server.url("/pub")) as probe:
            pub_pid = json.loads(await probe.recv())["pid"]
        sub = Subscriber(server)
        for _ in range(40):  # a subscriber on the other worker than the publisher's
            await sub.connect()
            await sub.read(count=1)
            if sub.pid != pub_pid:
                break
            await sub.ws.close()
        assert sub.pid != pub_pid, "every connection landed on one worker"
        deadline = time.time() + 5
        while redis.numsub("wirecore:feed") < 2 and time.time() < deadline:
            await asyncio.sleep(0.02)
        victim = sub.pid
        killed = False

        async def pub_on(pid_wanted):
            # the publisher must stay on its worker: reconnect until it lands there
            for _ in range(40):
                ws = await websockets.connect(server.url("/pub"))
                if json.loads(await ws.recv())["pid"] == pid_wanted:
                    return ws
                await ws.close()
            pytest.fail("cannot reach the publisher's worker")

        pub = await pub_on(pub_pid)

        async def publish():
            nonlocal killed
            for i in range(1, TOTAL + 1):
                await pub.send(str(i))
                if i % 20 == 0:
                    if i == 3000:
                        os.kill(victim, signal.SIGKILL)
                        killed = True
                    await asyncio.sleep(0.008)

        publisher = asyncio.create_task(publish())
        while True:
            alive = await sub.read(until_n=TOTAL, timeout=15)
            if alive:
                break
            await sub.connect()  # the client comes back with its last position
        await publisher
        await pub.close()
        await sub.ws.close()
        print(sub.summary("shared history, worker SIGKILL", TOTAL))
        assert killed
        assert (sub.duplicates, sub.gaps, sub.reorders, sub.truncated) == (0, 0, 0, 0)
        assert sub.seen == list(range(sub.seen[0], TOTAL + 1))

    try:
        asyncio.run(main())
    finally:
        code = server.stop()
        redis.kill()
    assert code in (0, 1)  # 1: the supervisor saw a worker die (the SIGKILL)
