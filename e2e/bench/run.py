#!/usr/bin/env python3
"""Benchmark runner: the same load against every echo server, in one run.

For each server and each scenario it starts a fresh server process on its own
port, waits until the port accepts connections, runs the C load generator
(build/e2e/bench/loadgen) against it, samples the server's CPU time
(utime and stime of the process and its descendants, from /proc/PID/stat,
reported apart and summed) exactly around the load generator's measured window, and stops the server by
PID. The idle scenario reads the server's RSS before and while N connections
are held open.

Output: e2e/bench/results/latest.md (tables with ratios to the first row),
latest.json (every raw number) and latest.png (matplotlib, Agg backend).

--smoke is for CI: a second or so per server, only the servers that are
installed, never fails on performance, fails only on errors (a server that
does not start or answer, a load generator that reports errors).

--fanout runs the fan-out benchmark instead: chat servers that relay every
message to a room (build/wire_chat and the Python, Node and Ruby packages on
Wirecore's topics, uWebSockets.js and socketify with uWebSockets' topics,
`websockets.broadcast()`, Node `ws` and em-websocket with a loop over the
room), one topic with 1,000 and 10,000 subscribers and 1,000 rooms of 10; it
writes results/fanout.md and fanout.json. Server CPU µs per delivery is its
fair figure.

Usage:
  python3 e2e/bench/run.py [--smoke] [--fanout] [--only NAME,...] [--build DIR] [--out DIR]
                           [--duration S] [--no-pin] [--list]
  WIRE_ECHO_BEFORE=/other/build/wire_echo python3 e2e/bench/run.py --only wire_echo
    (adds a "wire_echo before" row: two builds of the C server in one run)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SERVERS_DIR = HERE / "servers"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- servers --

@dataclass
class Server:
    """One echo server: how to start it and whether it is installed."""
    name: str
    group: str                      # C, Python, Node, Ruby: what the targets compare
    wirecore: bool                  # ours, or a peer
    argv: Callable[[int, "Ctx"], list[str]]
    available: Callable[["Ctx"], str | None]  # None when usable, else why not
    payload: str = "text"           # text (raw echo) or json (typed endpoint)
    path: str = "/"
    idle: bool = True               # worth an idle-memory run (typed rows share the process kind)


@dataclass
class Ctx:
    build: Path
    env: dict = field(default_factory=dict)


def _probe(ctx: Ctx, argv: list[str], cwd: Path | None = None) -> bool:
    try:
        return subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=ctx.env, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _need_file(path: Path, hint: str) -> Callable[[Ctx], str | None]:
    return lambda ctx: None if path.exists() else f"{path} missing ({hint})"


def _need_python(module: str, hint: str) -> Callable[[Ctx], str | None]:
    def check(ctx: Ctx) -> str | None:
        return None if _probe(ctx, [sys.executable, "-c", f"import {module}"]) else \
            f"Python module {module} not installed ({hint})"
    return check


def _need_node(module: str, hint: str) -> Callable[[Ctx], str | None]:
    def check(ctx: Ctx) -> str | None:
        if not shutil.which("node"):
            return "node not found"
        return None if _probe(ctx, ["node", "-e", f"require({json.dumps(module)})"], cwd=SERVERS_DIR) \
            else f"Node module {module} not installed ({hint})"
    return check


def _need_ruby(lib: str, hint: str, extra: list[str] | None = None) -> Callable[[Ctx], str | None]:
    def check(ctx: Ctx) -> str | None:
        if not shutil.which("ruby"):
            return "ruby not found"
        return None if _probe(ctx, ["ruby", *(extra or []), "-e", f"require {json.dumps(lib)}"]) \
            else f"Ruby library {lib} not installed ({hint})"
    return check


def _all(*checks: Callable[[Ctx], str | None]) -> Callable[[Ctx], str | None]:
    def check(ctx: Ctx) -> str | None:
        for c in checks:
            why = c(ctx)
            if why:
                return why
        return None
    return check


NODE_WIRECORE = str(ROOT / "packages" / "node")
BENCH_GEMS = ROOT / "build" / "bench-gems"  # where install.sh puts the Wirecore gem


def server_env() -> dict:
    """The environment of servers and probes: GEM_PATH finds the bench's gem."""
    env = dict(os.environ)
    if BENCH_GEMS.is_dir() and shutil.which("ruby"):
        try:
            default = subprocess.run(["ruby", "-e", "print Gem.path.join(':')"], env=env,
                                     capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            default = ""
        env["GEM_PATH"] = ":".join(p for p in (str(BENCH_GEMS), default) if p)
    return env


def _node_wirecore(ctx: Ctx) -> str | None:
    if _probe(ctx, ["node", "-e", "require('wirecore')"], cwd=SERVERS_DIR) or \
            _probe(ctx, ["node", "-e", f"require({json.dumps(NODE_WIRECORE)})"]):
        return None
    return "Node package wirecore not built (cd packages/node && npm install)"


def _ruby_wirecore(ctx: Ctx) -> str | None:
    if _probe(ctx, ["ruby", "-e", "require 'wirecore'"]):
        return None
    return "Ruby gem wirecore not installed (e2e/bench/install.sh --wirecore)"


def _py(script: str, *extra: str) -> Callable[[int, Ctx], list[str]]:
    return lambda port, ctx: [sys.executable, str(SERVERS_DIR / script), "--port", str(port), *extra]


def _node(script: str, *extra: str) -> Callable[[int, Ctx], list[str]]:
    return lambda port, ctx: ["node", str(SERVERS_DIR / script), "--port", str(port), *extra]


def _ruby(script: str, *extra: str) -> Callable[[int, Ctx], list[str]]:
    return lambda port, ctx: ["ruby", str(SERVERS_DIR / script), "--port", str(port), *extra]


UWS_DIR = ROOT / "build" / "bench-uws" / "node_modules" / "uWebSockets.js"


def _uws(ctx: Ctx) -> str | None:
    if not shutil.which("node"):
        return "node not found"
    if _probe(ctx, ["node", "-e", f"require({json.dumps(str(UWS_DIR))})"]):
        return None
    return "uWebSockets.js not installed or not loadable (e2e/bench/install.sh --fanout-peers)"


PY_HINT = "pip install ./packages/python"
SERVERS: list[Server] = [
    Server("wire_echo", "C", True,
           lambda port, ctx: [str(ctx.build / "wire_echo"), "--port", str(port),
                              "--max-message", str(64 << 20)],
           lambda ctx: None if (ctx.build / "wire_echo").exists()
           else f"{ctx.build / 'wire_echo'} not built"),
    # The metrics pair: the same server answering /metrics and /health on its
    # port (docs/operations.md); the counters themselves are always on.
    Server("wire_echo metrics", "C", True,
           lambda port, ctx: [str(ctx.build / "wire_echo"), "--port", str(port),
                              "--max-message", str(64 << 20), "--metrics"],
           lambda ctx: None if (ctx.build / "wire_echo").exists()
           else f"{ctx.build / 'wire_echo'} not built"),
    Server("wirecore-python", "Python", True, _py("py_wirecore.py"),
           _need_python("wirecore", PY_HINT)),
    Server("wirecore-python typed", "Python", True, _py("py_wirecore.py", "--typed"),
           _need_python("wirecore", PY_HINT), payload="json", path="/chat/bench", idle=False),
    Server("websockets", "Python", False, _py("py_websockets.py"),
           _need_python("websockets", "pip install websockets")),
    Server("websockets typed", "Python", False, _py("py_websockets.py", "--typed"),
           _need_python("websockets", "pip install websockets"), payload="json", idle=False),
    Server("picows", "Python", False, _py("py_picows.py"),
           _need_python("picows", "pip install picows")),
    Server("socketify", "Python", False, _py("py_socketify.py"),
           _need_python("socketify", "pip install socketify")),
    Server("wirecore-node", "Node", True, _node("node_wirecore.js"), _node_wirecore),
    Server("wirecore-node typed", "Node", True, _node("node_wirecore.js", "--typed"),
           _node_wirecore, payload="json", path="/chat/bench", idle=False),
    Server("ws", "Node", False, _node("node_ws.js"),
           _need_node("ws", "cd e2e/bench/servers && npm install")),
    Server("ws typed", "Node", False, _node("node_ws.js", "--typed"),
           _need_node("ws", "cd e2e/bench/servers && npm install"), payload="json", idle=False),
    Server("uWebSockets.js", "Node", False, _node("node_uws.js"), _uws),
    Server("wirecore-ruby", "Ruby", True, _ruby("ruby_wirecore.rb"), _ruby_wirecore),
    Server("wirecore-ruby typed", "Ruby", True, _ruby("ruby_wirecore.rb", "--typed"),
           _ruby_wirecore, payload="json", path="/chat/bench", idle=False),
    Server("em-websocket", "Ruby", False, _ruby("ruby_em.rb"),
           _need_ruby("em-websocket", "apt-get install ruby-em-websocket")),
    Server("faye-websocket (thin)", "Ruby", False,
           lambda port, ctx: ["thin", "--rackup", str(SERVERS_DIR / "ruby_faye.ru"),
                              "--address", "127.0.0.1", "--port", str(port),
                              "--max-conns", "20000", "--max-persistent-conns", "20000", "start"],
           _all(_need_ruby("faye/websocket", "apt-get install ruby-faye-websocket"),
                lambda ctx: None if shutil.which("thin") else "thin not installed")),
]

# A second wire_echo binary, so two builds are compared in one run (e.g. a
# commit before a change): WIRE_ECHO_BEFORE=/path/to/wire_echo adds the row
# "wire_echo before", selected by --only wire_echo too.
_BEFORE = os.environ.get("WIRE_ECHO_BEFORE")
if _BEFORE:
    SERVERS.insert(1, Server(
        "wire_echo before", "C", True,
        lambda port, ctx: [_BEFORE, "--port", str(port), "--max-message", str(64 << 20)],
        lambda ctx: None if Path(_BEFORE).exists() else f"{_BEFORE} not found"))


# Fan-out: chat servers relaying a text message to every connection of its
# room, /chat/<room>; the load generator appends the room to the path.
FANOUT_SERVERS: list[Server] = [
    Server("wire_chat", "C", True,
           lambda port, ctx: [str(ctx.build / "wire_chat"), "--port", str(port)],
           lambda ctx: None if (ctx.build / "wire_chat").exists()
           else f"{ctx.build / 'wire_chat'} not built", path="/chat/"),
    Server("uWebSockets.js", "Node", False, _node("node_uws_chat.js"), _uws, path="/chat/"),
    Server("ws", "Node", False, _node("node_ws_chat.js"),
           _need_node("ws", "cd e2e/bench/servers && npm install"), path="/chat/"),
    Server("wirecore-python", "Python", True, _py("py_wirecore.py", "--chat"),
           _need_python("wirecore", PY_HINT), path="/chat/"),
    Server("wirecore-node", "Node", True, _node("node_wirecore.js", "--chat"), _node_wirecore,
           path="/chat/"),
    Server("wirecore-ruby", "Ruby", True, _ruby("ruby_wirecore.rb", "--chat"), _ruby_wirecore,
           path="/chat/"),
    Server("socketify", "Python", False, _py("py_socketify_chat.py"),
           _need_python("socketify", "e2e/bench/install.sh --fanout-peers"), path="/chat/"),
    Server("websockets.broadcast", "Python", False, _py("py_websockets.py", "--chat"),
           _need_python("websockets", "pip install websockets"), path="/chat/"),
    Server("em-websocket", "Ruby", False, _ruby("ruby_em.rb", "--chat"),
           _need_ruby("em-websocket", "apt-get install ruby-em-websocket"), path="/chat/"),
]


# -------------------------------------------------------------- scenarios --

@dataclass
class Scenario:
    key: str
    title: str
    mode: str          # pingpong, flood, idle, fanout
    conns: int
    size: int = 64
    window: int = 1    # fanout: messages in flight per room
    duration: float = 10.0
    warmup: float = 2.0
    rooms: int = 1     # fanout: connections spread over this many rooms


def scenarios(smoke: bool, duration: float | None) -> list[Scenario]:
    if smoke:
        d = duration or 1.0
        return [Scenario("pp", "ping-pong, 20 connections", "pingpong", 20, duration=d, warmup=0.3),
                Scenario("flood", "flood, 10 connections x 8 in flight", "flood", 10, window=8,
                         duration=d, warmup=0.3),
                Scenario("idle", "idle memory, 200 connections", "idle", 200, duration=1.0)]
    d = duration or 10.0
    return [Scenario("pp100", "ping-pong, 100 connections", "pingpong", 100, duration=d),
            Scenario("pp1000", "ping-pong, 1,000 connections", "pingpong", 1000, duration=d),
            Scenario("flood", "flood, 100 connections x 16 in flight", "flood", 100, window=16,
                     duration=d),
            Scenario("idle", "idle memory, 10,000 connections", "idle", 10000, duration=3.0)]


def fanout_scenarios(smoke: bool, duration: float | None) -> list[Scenario]:
    if smoke:
        d = duration or 1.0
        return [Scenario("fan100", "fan-out, 1 topic x 100 subscribers", "fanout", 100, window=4,
                         duration=d, warmup=0.3),
                Scenario("rooms", "fan-out, 20 rooms x 5 subscribers", "fanout", 100, rooms=20,
                         duration=d, warmup=0.3)]
    d = duration or 10.0
    # One message in flight per room: every delivery is one write of one frame
    # for every server, so CPU per delivery compares like with like (with more
    # in flight, how many frames share a write depends on timing).
    return [Scenario("fan1k", "fan-out, 1 topic x 1,000 subscribers", "fanout", 1000, duration=d),
            Scenario("fan10k", "fan-out, 1 topic x 10,000 subscribers", "fanout", 10000,
                     duration=d),
            Scenario("rooms", "fan-out, 1,000 rooms x 10 subscribers", "fanout", 10000, rooms=1000,
                     duration=d)]


# ----------------------------------------------------------- /proc probes --

def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants that are alive now."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of the process tree in seconds: user and system (kernel)
    time, every thread of each process counted."""
    user = system = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        user += int(fields[11])  # utime (field 14)
        system += int(fields[12])  # stime (field 15)
    return user / CLK_TCK, system / CLK_TCK


def rss_bytes(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            continue
    return total


# ------------------------------------------------------------ processes --

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ServerProcess:
    """A running server: started pinned (optionally), stopped by PID."""

    def __init__(self, argv: list[str], port: int, pin: str | None, log: Path, env: dict):
        self.port = port
        self.log_path = log
        self.log = open(log, "wb")
        if pin and shutil.which("taskset"):
            argv = ["taskset", "-c", pin, *argv]  # taskset execs: the PID stays the server's
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=ROOT, env=env,
                                     preexec_fn=raise_nofile)

    def wait_ready(self, timeout: float) -> str | None:
        """None once the port accepts connections, else why not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with status {self.proc.returncode} before listening"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return None
            except OSError:
                time.sleep(0.05)
        return f"port {self.port} not open after {timeout:.0f} s"

    def stop(self) -> None:
        tree = process_tree(self.proc.pid) if self.proc.poll() is None else []
        for p in tree:
            try:
                os.kill(p, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            for p in tree:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=5)
        self.log.close()

    def log_tail(self, n: int = 5) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-n:])


def run_load(loadgen: Path, server: Server, sc: Scenario, sp: ServerProcess,
             pin: str | None) -> dict:
    """Run one scenario against a ready server; returns the load generator's result
    plus server_cpu_s / cpu_us_per_msg or rss numbers."""
    argv = [str(loadgen), "--port", str(sp.port), "--path", server.path, "--mode", sc.mode,
            "-c", str(sc.conns), "-s", str(sc.size), "-w", str(sc.window),
            "-d", str(sc.duration), "--warmup", str(sc.warmup), "--events",
            "--label", server.name, "--json" if server.payload == "json" else "--text"]
    if sc.mode not in ("idle", "fanout") and server.payload != "json":
        argv.append("--verify")  # fan-out checks every delivery anyway
    if sc.mode == "fanout":
        argv += ["--rooms", str(sc.rooms)]
    if pin and shutil.which("taskset"):
        argv = ["taskset", "-c", pin, *argv]
    out: dict = {}
    pid = sp.proc.pid
    rss_before = rss_bytes(pid)
    cpu_start = cpu_end = None
    lg = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=raise_nofile)
    timeout = sc.duration + sc.warmup + 120
    t0 = time.monotonic()
    assert lg.stdout is not None
    for line in lg.stdout:
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = ev.get("event")
        if kind == "start":
            if sc.mode == "idle":
                time.sleep(min(1.0, sc.duration / 2))  # let the server settle its allocations
                out["rss_before"] = rss_before
                out["rss_after"] = rss_bytes(pid)
            else:
                cpu_start = cpu_seconds(pid)
        elif kind == "end":
            cpu_end = cpu_seconds(pid)
        elif kind == "result":
            out.update(ev)
        if time.monotonic() - t0 > timeout:
            lg.kill()
            break
    try:
        _, stderr = lg.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        lg.kill()
        _, stderr = lg.communicate()
    out["loadgen_status"] = lg.returncode
    out["loadgen_stderr"] = stderr.strip()
    if cpu_start is not None and cpu_end is not None:
        user, system = cpu_end[0] - cpu_start[0], cpu_end[1] - cpu_start[1]
        out["server_cpu_s"] = user + system
        out["server_user_s"], out["server_sys_s"] = user, system
        msgs = out.get("messages", 0)
        out["cpu_us_per_msg"] = (user + system) * 1e6 / msgs if msgs else None
        out["user_us_per_msg"] = user * 1e6 / msgs if msgs else None
        out["sys_us_per_msg"] = system * 1e6 / msgs if msgs else None
        secs = out.get("duration_s") or 0
        out["server_cpu_util"] = (user + system) / secs if secs else None
    if "rss_after" in out and out.get("connected"):
        out["rss_per_conn"] = (out["rss_after"] - out["rss_before"]) / out["connected"]
    return out


def run_one(ctx: Ctx, loadgen: Path, server: Server, sc: Scenario, pins: tuple, logdir: Path,
            ready_timeout: float) -> dict:
    port = free_port()
    log = logdir / f"{server.name.replace(' ', '_').replace('(', '').replace(')', '')}-{sc.key}.log"
    try:
        sp = ServerProcess(server.argv(port, ctx), port, pins[0], log, ctx.env)
    except OSError as exc:
        return {"error": f"cannot start: {exc}"}
    try:
        why = sp.wait_ready(ready_timeout)
        if why:
            return {"error": f"{why}: {sp.log_tail()}"}
        time.sleep(0.3)
        res = run_load(loadgen, server, sc, sp, pins[1])
        if sp.proc.poll() is not None:
            res["error"] = f"server exited during the run: {sp.log_tail()}"
        elif "event" not in res:
            res["error"] = f"load generator gave no result: {res.get('loadgen_stderr', '')[-300:]}"
        elif res.get("errors"):
            res["error"] = (f"{res['errors']} errors (connect {res.get('connect_errors')}, "
                            f"handshake {res.get('handshake_errors')}, closed early "
                            f"{res.get('closed_early')}, mismatches {res.get('mismatches')})")
        elif sc.mode != "idle" and not res.get("messages"):
            res["error"] = "no message echoed"
        return res
    finally:
        sp.stop()


# ---------------------------------------------------------------- report --

def fmt_int(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def fmt_ratio(v: float | None, base: float | None) -> str:
    if v is None or not base:
        return ""
    return f" ({v / base:.2f}×)"


def fmt_us(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def fmt_bytes(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v / 1024:.2f} KiB" if abs(v) >= 1024 else f"{v:.0f} B"


def versions() -> dict:
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                  cwd=SERVERS_DIR).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    v = {"python": platform.python_version(), "kernel": platform.release()}
    v["node"] = out(["node", "--version"])
    v["ruby"] = out(["ruby", "-e", "print RUBY_VERSION"])
    for mod in ("websockets", "picows", "socketify"):
        v[mod] = out([sys.executable, "-c", f"import importlib.metadata as m; print(m.version('{mod}'))"])
    v["ws"] = out(["node", "-e", "console.log(require('ws/package.json').version)"])
    v["uWebSockets.js"] = out(["node", "-e", "console.log(require(%s).version)"
                               % json.dumps(str(UWS_DIR / "package.json"))])
    v["em-websocket"] = out(["ruby", "-e", "require 'em-websocket'; print EM::WebSocket::VERSION"])
    v["faye-websocket"] = out(["ruby", "-e", "require 'faye/websocket'; "
                                             "print Gem.loaded_specs['faye-websocket']&.version"])
    try:
        with open("/proc/cpuinfo") as f:
            v["cpu"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        v["cpu"] = ""
    v["cores"] = str(os.cpu_count())
    v["commit"] = out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    return v


def write_markdown(path: Path, results: dict, scs: list[Scenario], meta: dict) -> None:
    rows = [s for s in SERVERS if s.name in results]
    by = lambda s, k: results[s.name]["scenarios"].get(k, {})  # noqa: E731
    load_keys = [sc.key for sc in scs if sc.mode != "idle"]
    idle_key = next((sc.key for sc in scs if sc.mode == "idle"), None)
    first_key = load_keys[0]
    base = next((s for s in rows if results[s.name].get("status") == "ok"), None)

    def base_of(key: str, field_: str) -> float | None:
        return by(base, key).get(field_) if base else None

    L = []
    L.append("# Wirecore benchmark: smoke run (not for comparison)\n" if meta["smoke"]
             else "# Wirecore benchmark: latest full run\n")
    L.append(f"Run {meta['date']} on {meta['versions'].get('cpu', '?')} "
             f"({meta['versions'].get('cores')} cores), Linux {meta['versions'].get('kernel')}, "
             f"commit {meta['versions'].get('commit')}. Produced by `bash scripts/bench.sh` "
             f"(`python3 e2e/bench/run.py`); best of {meta.get('repeat', 1)} run(s) per load "
             f"scenario; load average before/after the run: {' '.join(meta.get('load_before', []))}"
             f" / {' '.join(meta.get('load_average', []))}.\n")
    L.append("Every server is a fresh process per scenario, pinned to CPU "
             f"{meta['pins'][0]} while the single-threaded load generator runs on CPU "
             f"{meta['pins'][1]}. Messages are {scs[0].size} bytes; raw rows echo text, typed rows "
             "receive `{\"type\":\"chat\",\"user\":…,\"text\":…}` padded to that size, check it "
             "against the chat schema and send it back re-encoded. "
             "**Server CPU µs/msg** (utime+stime of the server's processes during the measured "
             "window ÷ messages echoed) is the fair figure, shown with its **user**-space share "
             "(utime alone; the rest is the kernel's system time, mostly the same socket work "
             "for every server): the load generator shares the machine, "
             "so messages/s of the fastest servers is capped by the client. Ratios in brackets "
             f"are to the first row ({base.name if base else '–'}); for CPU µs/msg lower is better.\n")
    L.append("")
    # The headline table.
    head = ["server"]
    for k in load_keys:
        t = next(sc for sc in scs if sc.key == k)
        head.append(f"{t.title}: msgs/s")
        if k == first_key:
            head.append("p50 / p99 / p99.9 µs")
        head.append(f"{'CPU µs/msg' if k == first_key else 'CPU µs/msg'} ({k})")
    if idle_key:
        head.append("idle RSS/conn")
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for s in rows:
        r = results[s.name]
        cells = [s.name + ("" if r.get("status") == "ok" else f" ({r.get('status')})")]
        for k in load_keys:
            d = by(s, k)
            if d.get("error") or d.get("skipped"):
                cells.append("error" if d.get("error") else "–")
                if k == first_key:
                    cells.append("–")
                cells.append("–")
                continue
            cells.append(fmt_int(d.get("msgs_per_s")) +
                         fmt_ratio(d.get("msgs_per_s"), base_of(k, "msgs_per_s")))
            if k == first_key:
                lat = d.get("latency_us", {})
                cells.append(f"{fmt_us(lat.get('p50'))} / {fmt_us(lat.get('p99'))} / "
                             f"{fmt_us(lat.get('p999'))}")
            cpu, user = d.get("cpu_us_per_msg"), d.get("user_us_per_msg")
            cells.append((f"{cpu:.2f}" if cpu is not None else "–") +
                         fmt_ratio(cpu, base_of(k, "cpu_us_per_msg")) +
                         ("" if user is None else f"; user {user:.2f}" +
                          fmt_ratio(user, base_of(k, "user_us_per_msg"))))
        if idle_key:
            d = by(s, idle_key)
            cells.append("error" if d.get("error") else fmt_bytes(d.get("rss_per_conn")))
        L.append("| " + " | ".join(cells) + " |")
    L.append("")

    L.append("## Targets (reported, never asserted)\n")
    L.extend(target_lines(results, load_keys, idle_key))
    L.append("")

    L.append("## Every scenario\n")
    for sc in scs:
        L.append(f"### {sc.title}\n")
        if sc.mode == "idle":
            L.append("| server | connected | RSS before | RSS with connections | RSS/conn | errors |")
            L.append("|---|---|---|---|---|---|")
        else:
            L.append("| server | msgs/s | mean / p50 / p99 / p99.9 / max µs | server CPU µs/msg "
                     "| user µs/msg | system µs/msg | server CPU use | errors |")
            L.append("|---|---|---|---|---|---|---|---|")
        for s in rows:
            d = by(s, sc.key)
            if not d:
                continue
            if d.get("skipped"):
                continue
            err = d.get("error", "") or "0"
            if sc.mode == "idle":
                L.append(f"| {s.name} | {d.get('connected', '–')} | {fmt_bytes(d.get('rss_before'))} "
                         f"| {fmt_bytes(d.get('rss_after'))} | {fmt_bytes(d.get('rss_per_conn'))} "
                         f"| {err} |")
            else:
                lat = d.get("latency_us", {})
                util = d.get("server_cpu_util")
                cpu = d.get("cpu_us_per_msg")
                lats = " / ".join(fmt_us(lat.get(q)) for q in ("mean", "p50", "p99", "p999", "max"))
                user, system = d.get("user_us_per_msg"), d.get("sys_us_per_msg")
                L.append(f"| {s.name} | {fmt_int(d.get('msgs_per_s'))} | {lats} | "
                         f"{'–' if cpu is None else f'{cpu:.2f}'} | "
                         f"{'–' if user is None else f'{user:.2f}'} | "
                         f"{'–' if system is None else f'{system:.2f}'} | "
                         f"{'–' if util is None else f'{util * 100:.0f} %'} | {err} |")
        L.append("")
        L.append(f"Load: `loadgen --mode {sc.mode} -c {sc.conns} -s {sc.size} -w {sc.window} "
                 f"-d {sc.duration} --warmup {sc.warmup}`.\n")

    skipped = [(s.name, results[s.name]["status"]) for s in SERVERS
               if s.name in results and results[s.name].get("status") != "ok"]
    skipped += [(n, why) for n, why in meta.get("unavailable", [])]
    if skipped:
        L.append("## Not measured\n")
        for n, why in skipped:
            L.append(f"- {n}: {why}")
        L.append("")
    L.append("## Versions\n")
    L.append(", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v and k not in ("cpu",)))
    L.append("")
    path.write_text("\n".join(L))


def target_lines(results: dict, load_keys: list[str], idle_key: str | None) -> list[str]:
    def get(name: str, key: str, field_: str) -> float | None:
        r = results.get(name)
        if not r:
            return None
        d = r["scenarios"].get(key, {})
        return None if d.get("error") else d.get(field_)

    def ratio_line(label: str, ours: str, peer: str, goal: float, keys: list[str]) -> list[str]:
        out = []
        for k in keys:
            a, b = get(ours, k, "msgs_per_s"), get(peer, k, "msgs_per_s")
            ca, cb = get(ours, k, "cpu_us_per_msg"), get(peer, k, "cpu_us_per_msg")
            if a is None or b is None:
                out.append(f"- {label} ({k}): not measured ({ours} or {peer} missing)")
                continue
            tput = a / b
            eff = (cb / ca) if ca and cb else None
            met = "met" if tput >= goal else "not met"
            eff_s = f"; per server CPU µs/msg {eff:.2f}×" if eff else ""
            out.append(f"- {label} ({k}): throughput {tput:.2f}× (goal ≥ {goal:g}×, {met}){eff_s}")
        return out

    lines = []
    pp = [k for k in load_keys if k.startswith("pp")]
    flood = [k for k in load_keys if k.startswith("flood")]
    lines += ratio_line("C core vs ws", "wire_echo", "ws", 2, pp + flood)
    if idle_key:
        v = get("wire_echo", idle_key, "rss_per_conn")
        lines.append(f"- C core idle memory: {fmt_bytes(v)} per connection (goal ≤ 1 KiB, "
                     f"{'met' if v is not None and v <= 1024 else 'not met'})"
                     if v is not None else "- C core idle memory: not measured")
    first = pp[:1] + flood  # the goals name no scenario: ping-pong and the CPU-bound flood
    lines += ratio_line("Python vs websockets", "wirecore-python", "websockets", 5, first)
    lines += ratio_line("Python typed vs websockets typed", "wirecore-python typed",
                        "websockets typed", 5, first)
    lines += ratio_line("Node vs ws", "wirecore-node", "ws", 2, first)
    lines += ratio_line("Node typed vs ws typed", "wirecore-node typed", "ws typed", 2, first)
    lines += ratio_line("Ruby vs em-websocket", "wirecore-ruby", "em-websocket", 3, first)
    lines += ratio_line("Ruby vs faye-websocket", "wirecore-ruby", "faye-websocket (thin)", 3, first)

    def cpu_line(label: str, ours: str, ref: str, goal: float, keys: list[str]) -> list[str]:
        """Server CPU µs/msg of ours ÷ ref (lower is better), with the user-space ratio."""
        out = []
        for k in keys:
            ca, cb = get(ours, k, "cpu_us_per_msg"), get(ref, k, "cpu_us_per_msg")
            ua, ub = get(ours, k, "user_us_per_msg"), get(ref, k, "user_us_per_msg")
            if not ca or not cb:
                out.append(f"- {label} ({k}): not measured ({ours} or {ref} missing)")
                continue
            user = f"; user time {ua / ub:.2f}× ({ua:.2f} / {ub:.2f})" if ua and ub else ""
            out.append(f"- {label} ({k}): server CPU µs/msg {ca / cb:.2f}× ({ca:.2f} / {cb:.2f}; "
                       f"goal ≤ {goal:g}×, {'met' if ca / cb <= goal else 'not met'}){user}")
        return out

    lines += cpu_line("C core vs uWebSockets.js", "wire_echo", "uWebSockets.js", 1, pp + flood)
    lines += cpu_line("Node package vs the C core", "wirecore-node", "wire_echo", 1.2, pp)
    lines += cpu_line("Python package vs the C core", "wirecore-python", "wire_echo", 1.2, pp)
    lines.append("")
    lines.append("In ping-pong every message costs the server one read and one write system "
                 "call, and on loopback the kernel delivers what a write sends within that "
                 "write, so a large, equal share of every server's CPU per message is the "
                 "kernel's; ratios there are bounded by it. Flood batches many messages per "
                 "system call and shows the servers' own cost. When other work runs on the "
                 "2 cores (see the load average above), throughput reflects scheduling and "
                 "server CPU µs/msg is the steadier comparison.")
    return lines


# (package, peer, at least this many times the peer's CPU per delivery, or
# None: within 1.2x of wire_chat's)
PACKAGE_TARGETS = [("wirecore-python", "wire_chat", None), ("wirecore-node", "wire_chat", None),
                   ("wirecore-ruby", "wire_chat", None),
                   ("wirecore-python", "websockets.broadcast", 10.0),
                   ("wirecore-node", "ws", 5.0), ("wirecore-ruby", "em-websocket", 5.0)]


def package_targets(rows: list[Server], scs: list[Scenario], by: Callable) -> list[str]:
    """The packages' goals: within 1.2x of wire_chat's server CPU per delivery,
    and a multiple of their language's peer (reported, never asserted)."""
    names = {s.name: s for s in rows}
    out = []
    for pkg, peer, factor in PACKAGE_TARGETS:
        if pkg not in names or peer not in names:
            continue
        for sc in scs:
            a = by(names[pkg], sc.key).get("cpu_us_per_msg")
            b = by(names[peer], sc.key).get("cpu_us_per_msg")
            if a is None or b is None:
                out.append(f"- {sc.title}: {pkg} vs {peer}: not measured")
                continue
            if factor is None:
                out.append(f"- {sc.title}: {pkg} {a:.3f} vs {peer} {b:.3f} µs/delivery "
                           f"({a / b:.2f}x; goal: at most 1.2x, {'met' if a <= 1.2 * b else 'not met'})")
            else:
                out.append(f"- {sc.title}: {pkg} {a:.3f} vs {peer} {b:.3f} µs/delivery "
                           f"({peer} / {pkg} = {b / a:.1f}; goal: at least {factor:g}, "
                           f"{'met' if b >= factor * a else 'not met'})")
    return out


def write_fanout_markdown(path: Path, results: dict, scs: list[Scenario], meta: dict) -> None:
    """The fan-out report: deliveries/s, publish-to-delivery latency and server CPU
    per delivery for every chat server and scenario."""
    rows = [s for s in FANOUT_SERVERS if s.name in results]
    by = lambda s, k: results[s.name]["scenarios"].get(k, {})  # noqa: E731
    L = ["# Wirecore fan-out benchmark: smoke run (not for comparison)\n" if meta["smoke"]
         else "# Wirecore fan-out benchmark: latest run\n"]
    L.append(f"Run {meta['date']} on {meta['versions'].get('cpu', '?')} "
             f"({meta['versions'].get('cores')} cores), Linux {meta['versions'].get('kernel')}, "
             f"commit {meta['versions'].get('commit')}, by `python3 e2e/bench/run.py --fanout` "
             f"(best of {meta.get('repeat', 1)}); load average before/after: "
             f"{' '.join(meta.get('load_before', []))} / {' '.join(meta.get('load_average', []))}.\n")
    L.append("Each server relays a text message sent on `/chat/<room>` to every connection of "
             "that room, the sender included: `wire_chat` with one `wire_server_publish` "
             "(Wirecore's topics), wirecore-python / -node / -ruby with `app.publish` (the same "
             "topics through each package), uWebSockets.js and socketify with `app.publish` "
             "(uWebSockets' topics), `websockets.broadcast` with `websockets.broadcast()`, "
             "`ws` and em-websocket with a loop over the room's clients. The load generator's "
             "connections are the "
             "subscribers; the first of each room publishes, with the given number of messages "
             "in flight (the next leaves when a message has reached the whole room). "
             f"Messages are {scs[0].size} bytes and carry their send time: latency is publish to "
             "delivery. **Server CPU µs per delivery** (utime+stime of the server during the "
             "window ÷ deliveries) is the fair figure: one client process on the other core "
             "reads every delivery, so deliveries/s is capped by the client.\n")
    head = ["server"]
    for sc in scs:
        head += [f"{sc.title}: deliveries/s", "p50 / p99 ms", "CPU µs/delivery"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for s in rows:
        cells = [s.name]
        for sc in scs:
            d = by(s, sc.key)
            if d.get("error") or not d:
                cells += ["error" if d.get("error") else "–", "–", "–"]
                continue
            lat = d.get("latency_us", {})
            cpu = d.get("cpu_us_per_msg")
            p50, p99 = lat.get("p50"), lat.get("p99")
            cells += [fmt_int(d.get("msgs_per_s")),
                      "–" if p50 is None else f"{p50 / 1000:.2f} / {p99 / 1000:.2f}",
                      "–" if cpu is None else f"{cpu:.3f}"]
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("Load: " + "; ".join(
        f"`loadgen --mode fanout -c {sc.conns} --rooms {sc.rooms} -s {sc.size} -w {sc.window} "
        f"-d {sc.duration} --warmup {sc.warmup} --path /chat/`" for sc in scs) + ".\n")
    L.append("## Target (reported, never asserted)\n")
    for sc in scs:
        a = by(next((s for s in rows if s.name == "wire_chat"), None), sc.key) \
            if any(s.name == "wire_chat" for s in rows) else {}
        b = by(next((s for s in rows if s.name == "uWebSockets.js"), None), sc.key) \
            if any(s.name == "uWebSockets.js" for s in rows) else {}
        ca, cb = a.get("cpu_us_per_msg"), b.get("cpu_us_per_msg")
        if ca is None or cb is None:
            L.append(f"- {sc.title}: not measured (wire_chat or uWebSockets.js missing)")
        else:
            L.append(f"- {sc.title}: wire_chat {ca:.3f}, uWebSockets.js {cb:.3f} server CPU "
                     f"µs/delivery (uWebSockets.js / wire_chat = {cb / ca:.2f}; goal: wire_chat "
                     f"not above uWebSockets.js, {'met' if ca <= cb else 'not met'})")
    L.extend(package_targets(rows, scs, by))
    L.append("")
    errs = [(s.name, sc.key, by(s, sc.key).get("error")) for s in rows for sc in scs
            if by(s, sc.key).get("error")]
    skipped = [(n, why) for n, why in meta.get("unavailable", [])]
    if errs or skipped:
        L.append("## Not measured\n")
        L.extend(f"- {n} / {k}: {e}" for n, k, e in errs)
        L.extend(f"- {n}: {why}" for n, why in skipped)
        L.append("")
    L.append("## Versions\n")
    L.append(", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v and k not in ("cpu",)))
    L.append("")
    path.write_text("\n".join(L))


def write_chart(path: Path, results: dict, scs: list[Scenario]) -> str | None:
    """A PNG: per load scenario, messages/s and server CPU µs per message for every
    server; returns why not when it cannot."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return "matplotlib not installed (pip install matplotlib)"
    rows = [s for s in SERVERS if s.name in results and results[s.name].get("status") == "ok"]
    keys = [sc for sc in scs if sc.mode != "idle"]
    if not rows or not keys:
        return "nothing measured"
    names = [s.name for s in rows][::-1]  # first row on top
    colors = {"C": "#4c72b0", "Python": "#dd8452", "Node": "#55a868", "Ruby": "#c44e52"}
    group = {s.name: s.group for s in rows}
    ours = {s.name: s.wirecore for s in rows}
    fig, axes = plt.subplots(len(keys), 2, figsize=(13, 1.2 + len(keys) * (0.32 * len(names) + 0.9)),
                             squeeze=False)
    for i, sc in enumerate(keys):
        for j, (field_, label, fmt) in enumerate((
                ("msgs_per_s", "messages/s (higher is better)", "{:,.0f}"),
                ("cpu_us_per_msg", "server CPU µs per message (lower is better)", "{:.1f}"))):
            ax = axes[i][j]
            vals = [results[n]["scenarios"].get(sc.key, {}).get(field_) or 0 for n in names]
            bars = ax.barh(range(len(names)), vals,
                           color=[colors.get(group[n], "#888") for n in names],
                           edgecolor="white")
            for bar, n in zip(bars, names):
                if not ours[n]:
                    bar.set_alpha(0.5)
                    bar.set_hatch("//")
            top = max(vals) if vals else 0
            for y, v in enumerate(vals):
                if v:
                    ax.text(v + top * 0.01, y, fmt.format(v), va="center", fontsize=7)
            ax.set_xlim(0, top * 1.18 if top else 1)
            ax.set_yticks(range(len(names)))
            ax.set_yticklabels(names, fontsize=8)
            ax.set_title(f"{sc.title}: {label}", fontsize=9)
            ax.grid(axis="x", alpha=0.3)
            ax.tick_params(axis="x", labelsize=7)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}" if x >= 100
                                                       else f"{x:g}"))
    legend = [Patch(color=c, label=g) for g, c in colors.items() if g in group.values()]
    legend.append(Patch(facecolor="#999", alpha=0.5, hatch="//", label="peer (not Wirecore)"))
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=8, frameon=False)
    fig.suptitle("Wirecore echo benchmark: the same load against every server", fontsize=11)
    fig.tight_layout(rect=(0, 0.03, 1, 0.98))
    tmp = path.with_suffix(".png.tmp")
    fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return None


# ------------------------------------------------------------------ main --

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="short CI run: fail on errors only")
    ap.add_argument("--fanout", action="store_true",
                    help="the fan-out benchmark (chat servers, topics) instead of echo")
    ap.add_argument("--only", help="comma-separated server names (substring match)")
    ap.add_argument("--scenarios", help="comma-separated scenario keys (e.g. pp100,idle)")
    ap.add_argument("--build", default=str(ROOT / "build"), help="build directory")
    ap.add_argument("--out", help="output directory (default e2e/bench/results, "
                                  "smoke: build/bench-smoke)")
    ap.add_argument("--duration", type=float, help="measured seconds per scenario")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each load scenario N times and keep the fastest (default 1)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and client to CPUs")
    ap.add_argument("--list", action="store_true", help="list servers and whether they are usable")
    args = ap.parse_args()

    ctx = Ctx(build=Path(args.build).resolve(), env=server_env())
    loadgen = ctx.build / "e2e" / "bench" / "loadgen"
    pool = FANOUT_SERVERS if args.fanout else SERVERS
    selected = pool
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        selected = [s for s in pool if any(s.name == w or s.name.startswith(w + " ") for w in wanted)]
    usable, unavailable = [], []
    for s in selected:
        why = s.available(ctx)
        (unavailable.append((s.name, why)) if why else usable.append(s))
    if args.list:
        for s in pool:
            why = s.available(ctx)
            print(f"{s.name:24} {'ok' if not why else 'skipped: ' + why}")
        return 0
    if not loadgen.exists():
        print(f"run.py: {loadgen} not built (bash scripts/build.sh build)", file=sys.stderr)
        return 1
    scs = (fanout_scenarios if args.fanout else scenarios)(args.smoke, args.duration)
    if args.scenarios:
        keep = set(args.scenarios.split(","))
        scs = [sc for sc in scs if sc.key in keep]
    out = Path(args.out) if args.out else (ROOT / "build" / "bench-smoke" if args.smoke
                                           else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    logdir = ROOT / "build" / "bench-logs"  # server output, for when a row fails
    logdir.mkdir(parents=True, exist_ok=True)
    pins: tuple = (None, None) if args.no_pin or (os.cpu_count() or 1) < 2 else ("0", "1")
    raise_nofile()
    load_before = open("/proc/loadavg").read().split()[:3]

    for name, why in unavailable:
        print(f"skip {name}: {why}", flush=True)
    results: dict = {}
    failures = []
    for s in usable:
        if s.payload == "json":
            # Typed rows need the core's whole message pipeline (decode, validate,
            # dispatch, encode). One message first: a typed endpoint that cannot
            # answer it is a skipped row with the reason, not a failure of the run.
            probe = Scenario("probe", "probe", "pingpong", 1, duration=0.3, warmup=0.1)
            d = run_one(ctx, loadgen, s, probe, pins, logdir, ready_timeout=30)
            if d.get("error"):
                why = f"the typed endpoint did not answer a chat message: {d['error']}"
                unavailable.append((s.name, why))
                print(f"skip {s.name}: {why}", flush=True)
                continue
        r = results[s.name] = {"group": s.group, "wirecore": s.wirecore, "payload": s.payload,
                               "status": "ok", "scenarios": {}}
        for sc in scs:
            if sc.mode == "idle" and not s.idle:
                r["scenarios"][sc.key] = {"skipped": "typed rows share the raw row's process"}
                continue
            t0 = time.monotonic()
            d = run_one(ctx, loadgen, s, sc, pins, logdir, ready_timeout=30)
            # Best of --repeat runs: on a shared machine, noise only ever slows a run down.
            for _ in range(args.repeat - 1 if sc.mode != "idle" else 0):
                if d.get("error"):
                    break
                again = run_one(ctx, loadgen, s, sc, pins, logdir, ready_timeout=30)
                if again.get("error"):
                    d = again
                    break
                if (again.get("msgs_per_s") or 0) > (d.get("msgs_per_s") or 0):
                    d = again
            r["scenarios"][sc.key] = d
            took = time.monotonic() - t0
            if d.get("error"):
                failures.append(f"{s.name} / {sc.key}: {d['error']}")
                print(f"FAIL {s.name:24} {sc.key:7} {d['error']}", flush=True)
            elif sc.mode == "idle":
                print(f"ok   {s.name:24} {sc.key:7} {d.get('connected')} conns, "
                      f"{fmt_bytes(d.get('rss_per_conn'))}/conn  [{took:.0f} s]", flush=True)
            else:
                lat = d.get("latency_us", {})
                cpu, user = d.get("cpu_us_per_msg"), d.get("user_us_per_msg")
                print(f"ok   {s.name:24} {sc.key:7} {d.get('msgs_per_s', 0):>10,.0f} msg/s  "
                      f"p50 {fmt_us(lat.get('p50'))} p99 {fmt_us(lat.get('p99'))} µs  "
                      f"cpu {cpu if cpu is None else round(cpu, 2)} "
                      f"(user {user if user is None else round(user, 2)}) µs/msg  [{took:.0f} s]",
                      flush=True)
        if any(d.get("error") for d in r["scenarios"].values()):
            r["status"] = "errors"

    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "repeat": args.repeat, "load_before": load_before,
            "load_average": open("/proc/loadavg").read().split()[:3],
            "versions": versions(), "pins": pins if pins[0] else ("any", "any"),
            "smoke": args.smoke, "unavailable": unavailable,
            "scenarios": [sc.__dict__ for sc in scs]}
    if args.fanout:
        (out / "fanout.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        if results:
            write_fanout_markdown(out / "fanout.md", results, scs, meta)
            print(f"wrote {out / 'fanout.md'}")
    else:
        (out / "latest.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    if results and not args.fanout and any(sc.mode != "idle" for sc in scs):
        write_markdown(out / "latest.md", results, scs, meta)
        why = write_chart(out / "latest.png", results, scs)
        if why:
            print(f"no chart: {why}")
        print(f"wrote {out / 'latest.md'}")
    n_ok = sum(1 for s in usable if s.name in results for sc in scs
               if not results[s.name]["scenarios"].get(sc.key, {}).get("error")
               and not results[s.name]["scenarios"].get(sc.key, {}).get("skipped"))
    print(f"bench: {n_ok} passed, {len(failures)} failed, {len(unavailable)} skipped")
    for name, why in unavailable:
        print(f"  skipped {name}: {why}")
    for f in failures:
        print(f"  {f}")
    if not usable:
        print("run.py: no server is available", file=sys.stderr)
        return 1
    return 1 if failures and args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
