"""End-to-end scaling: real redis-server, real wire_chat processes (one
single-process, one supervisor with --workers 2) attached to it, real
`websockets` clients.

- a publish in any process reaches the room's members in every process, once,
  and a plain `redis-cli PUBLISH` reaches all of them;
- Redis killed and restarted mid-stream: local delivery goes on, every process
  reconnects and re-subscribes by itself, live delivery resumes within seconds;
- a worker killed with SIGKILL is replaced and new connections are served;
- SIGHUP (rolling replace) during a connection storm refuses no connection;
- no descriptor leaks in the long-lived processes across all of it.
"""

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import websockets

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("WIRE_BUILD_DIR", ROOT / "build"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """redis-server on a free port; `options` are its persistence settings
    (none by default), kept for restarts."""

    def __init__(self, options=("--appendonly", "no")):
        self.port = free_port()
        self.options = list(options)
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *self.options, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.02)
        pytest.fail("redis-server did not start")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                           text=True, timeout=10)
        return r.stdout.strip()

    def numsub(self, channel):
        out = self.cli("PUBSUB", "NUMSUB", channel).split("\n")
        return int(out[1]) if len(out) > 1 and out[1] else 0

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


class Chat:
    """build/wire_chat, waited for until it serves."""

    def __init__(self, redis, workers=1):
        self.port = free_port()
        path = BUILD / "wire_chat"
        if not path.exists():
            pytest.fail(f"{path} not built (run scripts/build.sh first)")
        self.errlog = open(f"/tmp/wire_chat_{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [str(path), "--port", str(self.port), "--broker", redis.url, "--workers",
             str(workers)], stdout=self.errlog, stderr=self.errlog)
        self.workers = workers
        deadline = time.time() + 10
        while time.time() < deadline:
            log = self.log()  # every worker listens and has its broker up
            if log.count("connected to Redis") == workers and log.count("listening on") == workers:
                return
            time.sleep(0.05)
        pytest.fail(f"wire_chat did not start: {self.log()}")

    def log(self):
        self.errlog.flush()
        with open(self.errlog.name) as f:
            return f.read()

    def children(self):
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return [int(p) for p in f.read().split()]
        except FileNotFoundError:
            return []

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def url(self, room):
        return f"ws://127.0.0.1:{self.port}/chat/{room}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.errlog.close()


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.kill()


async def recv(ws, timeout=3.0):
    return await asyncio.wait_for(ws.recv(), timeout)


async def nothing_more(ws, wait=0.3):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.recv(), wait)


async def wait_numsub(redis, channel, n, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if redis.numsub(channel) == n:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"{channel}: {redis.numsub(channel)} subscribers, wanted {n}")


async def members(redis, chat, room, channel, want=3, least=4):
    """Clients of `chat` in `room`, at least `least`, and more until Redis
    has `want` subscribers of the channel: the kernel spreads connections
    over the workers by a hash, so a few may all land on one."""
    clients = []
    for _ in range(64):
        clients.append(await websockets.connect(chat.url(room)))
        if len(clients) >= least:
            try:
                await wait_numsub(redis, channel, want, timeout=0.5)
                return clients
            except pytest.fail.Exception:
                pass
    pytest.fail(f"{channel}: {redis.numsub(channel)} subscribers, wanted {want}")


def test_publish_reaches_every_process_once(redis):
    single = Chat(redis)
    workers = Chat(redis, workers=2)
    fds = (single.fds(), workers.fds())

    async def main():
        a = await websockets.connect(single.url("lobby"))
        bs = await members(redis, workers, "lobby", "wirecore:lobby", least=8)
        await a.send("from the single process")
        for ws in [a, *bs]:
            assert await recv(ws) == "from the single process"
        await bs[5].send("from a worker")
        for ws in [a, *bs]:
            assert await recv(ws) == "from a worker"
        assert redis.cli("PUBLISH", "wirecore:lobby", "from redis-cli") == "3"
        for ws in [a, *bs]:
            assert await recv(ws) == "from redis-cli"
        for ws in [a, *bs]:
            await nothing_more(ws, 0.1)
            await ws.close()

    asyncio.run(main())
    assert (single.fds(), workers.fds()) == fds
    assert single.stop() == 0
    assert workers.stop() == 0


def test_redis_restart_mid_stream_resumes_by_itself(redis):
    single = Chat(redis)
    workers = Chat(redis, workers=2)
    fds = (single.fds(), workers.fds())

    async def main():
        a = await websockets.connect(single.url("r"))
        bs = await members(redis, workers, "r", "wirecore:r")
        await a.send("before")
        for ws in [a, *bs]:
            assert await recv(ws) == "before"
        redis.kill()
        await asyncio.sleep(0.3)
        await a.send("during")  # local delivery goes on
        assert await recv(a) == "during"
        for ws in bs:
            await nothing_more(ws, 0.1)
        redis.start()
        # live delivery resumes within seconds, with no help
        deadline = time.time() + 8
        n = 0
        while True:
            n += 1
            await a.send(f"after {n}")
            assert await recv(a) == f"after {n}"
            try:
                got = await recv(bs[0], 0.25)
                break
            except asyncio.TimeoutError:
                assert time.time() < deadline, "delivery did not resume"
        assert got.startswith("after ")
        took = time.time() - (deadline - 8)
        for ws in bs[1:]:
            assert (await recv(ws)).startswith("after ")
        await wait_numsub(redis, "wirecore:r", 3)
        for ws in [a, *bs]:
            await ws.close()
        return took, n + 1

    took, sent = asyncio.run(main())
    assert took < 8
    for chat in (single, workers):
        log = chat.log()
        assert log.count("reconnecting") == chat.workers, log  # once per process, not per message
        assert log.count("reconnected to Redis") == chat.workers, log
    # "during", and the retries sent before the publish connection was back
    dropped = re.search(r"; (\d+) publishes to other processes were dropped", single.log())
    assert dropped and 1 <= int(dropped.group(1)) <= sent, single.log()
    assert (single.fds(), workers.fds()) == fds
    assert single.stop() == 0
    assert workers.stop() == 0


def test_killed_worker_is_replaced_and_serves(redis):
    workers = Chat(redis, workers=2)
    fds = workers.fds()
    before = workers.children()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.time() + 5
    while time.time() < deadline:
        now = workers.children()
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.05)
    assert len(now) == 2 and before[0] not in now and before[1] in now

    async def main():
        for i in range(20):
            async with websockets.connect(workers.url(f"k{i}")) as ws:
                await ws.send("hi")
                assert await recv(ws) == "hi"

    asyncio.run(main())
    assert "was killed by signal 9; restarting" in workers.log()
    assert workers.fds() == fds
    assert workers.stop() == 0


def test_sighup_during_a_connection_storm_refuses_nothing(redis):
    workers = Chat(redis, workers=2)
    fds = workers.fds()
    before = workers.children()
    stats = {"ok": 0, "failed": []}

    async def client(i, stop):
        while not stop.is_set():
            try:
                async with websockets.connect(workers.url(f"s{i}"), open_timeout=5) as ws:
                    await ws.send("x")
                    assert await recv(ws) == "x"
                stats["ok"] += 1
            except Exception as e:  # noqa: BLE001 - every failure is counted
                stats["failed"].append(repr(e))

    async def main():
        stop = asyncio.Event()
        tasks = [asyncio.create_task(client(i, stop)) for i in range(16)]
        await asyncio.sleep(0.5)
        for _ in range(2):
            workers.proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert stats["failed"] == [], f"{len(stats['failed'])} failed of {stats['ok']}"
    assert stats["ok"] > 100
    deadline = time.time() + 10
    while time.time() < deadline and len(workers.children()) != 2:
        time.sleep(0.05)
    after = workers.children()
    assert len(after) == 2 and not set(after) & set(before)
    assert workers.log().count("all 2 workers replaced") == 2
    assert workers.fds() == fds
    assert workers.stop() == 0
