"""End-to-end TLS: build/wire_echo --cert/--key against clients nobody here
wrote: the `openssl s_client` command (TLS 1.1 refused by the server, 1.2 and
1.3 accepted with ALPN http/1.1, --ca asking for a client certificate) and
the Python `websockets` client over wss://; SIGHUP reloads the certificate.
The CA and certificates are made here with the `openssl` command.
"""

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import websockets

from helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("WIRE_BUILD_DIR", ROOT / "build"))
ECHO = BUILD / "wire_echo"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA; server certificates for localhost (two, for the reload); a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=e2e CA", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, cn, ext in (("server", "first", "server.ext"), ("server2", "second", "server.ext"),
                          ("client", "a client", "client.ext")):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={cn}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext, cwd=d)
    return d


@pytest.fixture
def tls_echo(pki):
    """Start wire_echo with TLS (extra arguments appended); its process and port."""
    if not ECHO.exists():
        pytest.fail(f"{ECHO} not built (run scripts/build.sh first)")
    procs = []

    def start(*extra, cert="server"):
        port = free_port()
        proc = subprocess.Popen(
            [str(ECHO), "--port", str(port), "--cert", str(pki / f"{cert}.pem"), "--key",
             str(pki / f"{cert}.key"), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        line = proc.stdout.readline()
        assert line.strip() == f"listening on 127.0.0.1:{port} (TLS)", line
        return proc, port

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


def s_client(port, *args):
    """Run `openssl s_client` to 127.0.0.1:port; (exit status, its output)."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input="", capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout + r.stderr


def client_ctx(pki, cert=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return ctx


def peer_cn(port, pki):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_ctx(pki).wrap_socket(raw, server_hostname="localhost") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


def test_s_client_tls11_is_refused_by_the_server(tls_echo):
    _, port = tls_echo()
    # SECLEVEL=0 lets this client offer TLS 1.1 at all: the refusal is the server's.
    status, out = s_client(port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert status != 0, out
    assert "alert protocol version" in out, out


@pytest.mark.parametrize("flag,name", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_s_client_tls12_and_tls13_with_alpn(tls_echo, pki, flag, name):
    _, port = tls_echo()
    status, out = s_client(port, flag, "-alpn", "http/1.1", "-CAfile", str(pki / "ca.pem"),
                           "-verify_return_error", "-servername", "localhost")
    assert status == 0, out
    assert f"Protocol  : {name}" in out or f"New, {name}" in out, out
    assert "ALPN protocol: http/1.1" in out, out
    assert "Verify return code: 0 (ok)" in out, out


def test_websockets_client_over_wss(tls_echo, pki):
    _, port = tls_echo()

    async def go():
        async with websockets.connect(f"wss://localhost:{port}/x", ssl=client_ctx(pki)) as ws:
            await ws.send("over TLS")
            assert await ws.recv() == "over TLS"
            big = os.urandom(1 << 20)
            await ws.send(big)
            assert await ws.recv() == big

    asyncio.run(asyncio.wait_for(go(), 20))


def test_ca_asks_for_a_client_certificate(tls_echo, pki):
    _, port = tls_echo("--ca", str(pki / "ca.pem"))
    url = f"wss://localhost:{port}/"

    async def with_cert():
        async with websockets.connect(url, ssl=client_ctx(pki, "client")) as ws:
            await ws.send("mine")
            assert await ws.recv() == "mine"

    async def without_cert():
        async with websockets.connect(url, ssl=client_ctx(pki)) as ws:
            await ws.send("anyone?")
            await ws.recv()

    asyncio.run(asyncio.wait_for(with_cert(), 20))
    # TLS 1.3: the client's handshake ends first; the server's refusal ends the connection
    with pytest.raises((ssl.SSLError, websockets.exceptions.WebSocketException, OSError)):
        asyncio.run(asyncio.wait_for(without_cert(), 20))


def test_sighup_reloads_the_certificate(tls_echo, pki, tmp_path):
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    cert.write_bytes((pki / "server.pem").read_bytes())
    key.write_bytes((pki / "server.key").read_bytes())
    port = free_port()
    proc = subprocess.Popen([str(ECHO), "--port", str(port), "--cert", str(cert), "--key", str(key)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("listening on")
        assert peer_cn(port, pki) == "first"
        cert.write_bytes((pki / "server2.pem").read_bytes())
        key.write_bytes((pki / "server2.key").read_bytes())
        proc.send_signal(signal.SIGHUP)
        assert "TLS certificate reloaded" in proc.stderr.readline()
        assert peer_cn(port, pki) == "second"
        key.write_text("not a key")  # a bad reload keeps the old certificate
        proc.send_signal(signal.SIGHUP)
        assert "TLS reload failed" in proc.stderr.readline()
        assert peer_cn(port, pki) == "second"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_workers_serve_tls_and_sighup_replaces_them(pki):
    """--workers 2 with --cert: every worker serves wss://; SIGHUP to the
    supervisor drains and replaces them (the backlog is served as TLS)."""
    port = free_port()
    proc = subprocess.Popen(
        [str(ECHO), "--port", str(port), "--workers", "2", "--cert", str(pki / "server.pem"),
         "--key", str(pki / "server.key")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert peer_cn(port, pki) == "first"
                break
            except (ConnectionRefusedError, ssl.SSLError):
                assert time.monotonic() < deadline, "no worker serves TLS"
                time.sleep(0.1)

        async def echo_many(n):
            for i in range(n):
                async with websockets.connect(f"wss://localhost:{port}/",
                                              ssl=client_ctx(pki)) as ws:
                    await ws.send(f"m{i}")
                    assert await ws.recv() == f"m{i}"

        asyncio.run(asyncio.wait_for(echo_many(10), 30))
        proc.send_signal(signal.SIGHUP)  # rolling replace
        asyncio.run(asyncio.wait_for(echo_many(30), 60))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
