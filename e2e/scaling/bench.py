"""Fan-out across processes through Redis vs one process.

  python3 e2e/scaling/bench.py [--duration S] [--build DIR]

Runs build/e2e/bench/loadgen --mode fanout (closed loop: a room's next
message leaves when every member has the last one) against build/wire_chat:

- local:   one process, no broker;
- broker:  one process with --broker (every publish also goes to Redis);
- remote:  two processes on one Redis; publishers on A, subscribers on B
           (loadgen --sub-port): latency is A -> Redis -> B only;
- workers: wire_chat --workers 2 --broker, connections spread by the kernel.

Reports deliveries/s, server CPU per delivery (all server processes),
Redis CPU per publish and publish-to-delivery latency p50/p99.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def wait_port(port):
    for _ in range(500):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    sys.exit(f"nothing listens on {port}")


def chat(build, port, broker=None, workers=1):
    args = [str(build / "wire_chat"), "--port", str(port)]
    if broker:
        args += ["--broker", broker]
    if workers > 1:
        args += ["--workers", str(workers)]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    time.sleep(0.5 if workers > 1 or broker else 0.1)
    return p


def run(build, name, port, servers, redis_pid, duration, sub_port=None, rooms=10, conns=110):
    pids = [q for p in servers for q in ([p.pid] + children(p.pid))]
    cmd = [str(build / "e2e/bench/loadgen"), "--port", str(port), "--path", "/chat/", "--mode",
           "fanout", "-c", str(conns), "--rooms", str(rooms), "-s", "64", "-w", "1", "-d",
           str(duration), "--warmup", "1"]
    if sub_port:
        cmd += ["--sub-port", str(sub_port)]
    cpu0 = sum(cpu_s(p) for p in pids)
    r0 = cpu_s(redis_pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    cpu1 = sum(cpu_s(p) for p in pids)
    r1 = cpu_s(redis_pid)
    res = json.loads(next(ln for ln in out.splitlines() if '"event":"result"' in ln))
    deliveries = res["messages_total"]
    publishes = res["sent"]
    return {
        "scenario": name,
        "deliveries_per_s": round(res["msgs_per_s"]),
        "server_cpu_us_per_delivery": round((cpu1 - cpu0) * 1e6 / max(deliveries, 1), 3),
        "redis_cpu_us_per_publish": round((r1 - r0) * 1e6 / max(publishes, 1), 2),
        "p50_us": res["latency_us"]["p50"],
        "p99_us": res["latency_us"]["p99"],
        "errors": res["errors"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--build", default=str(ROOT / "build"))
    a = ap.parse_args()
    build = Path(a.build)
    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(rport)
    url = f"redis://127.0.0.1:{rport}/0"
    results = []
    try:
        for rooms, conns, label in ((10, 110, ""), (1, 11, " (1 room x 10)")):
            port = free_port()
            s = chat(build, port)
            results.append(run(build, "local" + label, port, [s], redis.pid, a.duration,
                               rooms=rooms, conns=conns))
            s.terminate(), s.wait()
            port = free_port()
            s = chat(build, port, url)
            results.append(run(build, "broker" + label, port, [s], redis.pid, a.duration,
                               rooms=rooms, conns=conns))
            s.terminate(), s.wait()
            pa, pb = free_port(), free_port()
            sa, sb = chat(build, pa, url), chat(build, pb, url)
            results.append(run(build, "remote" + label, pa, [sa, sb], redis.pid, a.duration,
                               sub_port=pb, rooms=rooms, conns=conns))
            sa.terminate(), sb.terminate(), sa.wait(), sb.wait()
            port = free_port()
            s = chat(build, port, url, workers=2)
            results.append(run(build, "workers" + label, port, [s], redis.pid, a.duration,
                               rooms=rooms, conns=conns))
            s.terminate(), s.wait()
    finally:
        redis.kill()
        redis.wait()
    keys = list(results[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in results:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
