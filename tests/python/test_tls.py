"""wss:// from the Python package: app.start/serve/run(ssl=...) with a throwaway
CA made by the `openssl` command, the `websockets` client over TLS, reload, an
encrypted key, SNI, and the clear errors."""

from __future__ import annotations

import pathlib
import ssl
import subprocess
import warnings

import pytest
import websockets

from wirecore import App, ConfigError, TLSConfig, WirecoreError


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=TestCA", cwd=d)
    for name in ("localhost", "other.test"):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                 f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{name}\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                 f"{name}.ext", cwd=d)
    _openssl("pkey", "-in", "localhost.key", "-aes256", "-passout", "pass:secret", "-out",
             "localhost.enc", cwd=d)
    _openssl("req", *ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=a client",
             cwd=d)
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.ext", cwd=d)
    return d


def _app() -> App:
    app = App()

    @app.websocket("/echo")
    async def echo(message: str) -> str:
        return "echo:" + message

    return app


def _client_ctx(pki: pathlib.Path, **kw) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def _peer_cn(ws) -> str:
    cert = ws.transport.get_extra_info("peercert")
    return dict(x[0] for x in cert["subject"])["commonName"]


async def test_wss_echo_with_tls_config(pki):
    app = _app()
    running = await app.start("127.0.0.1", 0, ssl=TLSConfig(
        certfile=str(pki / "localhost.pem"), keyfile=str(pki / "localhost.key")))
    try:
        assert running.url("/echo").startswith("wss://127.0.0.1:")
        url = f"wss://localhost:{running.port}/echo"
        async with websockets.connect(url, ssl=_client_ctx(pki)) as ws:
            await ws.send('"hi"')
            assert await ws.recv() == '"echo:hi"'
            sslobj = ws.transport.get_extra_info("ssl_object")
            assert sslobj.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        await running.stop(1.0)


async def test_dict_encrypted_key_sni_and_reload(pki):
    app = _app()
    running = await app.start("127.0.0.1", 0, ssl={
        "certfile": str(pki / "localhost.pem"),
        "keyfile": str(pki / "localhost.enc"),
        "password": "secret",
        "sni": {"other.test": (str(pki / "other.test.pem"), str(pki / "other.test.key"))},
    })
    try:
        url = f"wss://localhost:{running.port}/echo"
        async with websockets.connect(url, ssl=_client_ctx(pki)) as ws:
            assert _peer_cn(ws) == "localhost"
            await ws.send('"a"')
            assert await ws.recv() == '"echo:a"'
        other = _client_ctx(pki, check_hostname=False)
        async with websockets.connect(url, ssl=other, server_hostname="other.test") as ws:
            assert _peer_cn(ws) == "other.test"
        # reload: other.test's certificate becomes the default
        running.reload_tls(TLSConfig(certfile=str(pki / "other.test.pem"),
                                     keyfile=str(pki / "other.test.key")))
        async with websockets.connect(url, ssl=other) as ws:
            assert _peer_cn(ws) == "other.test"
            await ws.send('"b"')
            assert await ws.recv() == '"echo:b"'
        with pytest.raises(ConfigError, match="does not match"):
            running.reload_tls(TLSConfig(certfile=str(pki / "localhost.pem"),
                                         keyfile=str(pki / "other.test.key")))
    finally:
        await running.stop(1.0)


async def test_cafile_requires_a_client_certificate(pki):
    running = await _app().start("127.0.0.1", 0, ssl=TLSConfig(
        certfile=str(pki / "localhost.pem"), keyfile=str(pki / "localhost.key"),
        cafile=str(pki / "ca.pem")))
    try:
        url = f"wss://localhost:{running.port}/echo"
        mine = _client_ctx(pki)
        mine.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
        async with websockets.connect(url, ssl=mine) as ws:
            await ws.send('"signed"')
            assert await ws.recv() == '"echo:signed"'
        # without one, the server ends the connection before any upgrade
        with pytest.raises((ssl.SSLError, websockets.exceptions.WebSocketException, OSError)):
            async with websockets.connect(url, ssl=_client_ctx(pki)) as ws:
                await ws.recv()
    finally:
        await running.stop(1.0)


async def test_tls11_client_is_refused(pki):
    running = await _app().start("127.0.0.1", 0, ssl={"certfile": str(pki / "localhost.pem"),
                                                      "keyfile": str(pki / "localhost.key")})
    try:
        ctx = _client_ctx(pki)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
        with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
            async with websockets.connect(f"wss://localhost:{running.port}/echo", ssl=ctx):
                pass
    finally:
        await running.stop(1.0)


async def test_bad_tls_options_are_clear(pki):
    app = _app()
    with pytest.raises(TypeError, match="SSLContext"):
        await app.start("127.0.0.1", 0, ssl=ssl.create_default_context())
    with pytest.raises(TypeError, match="certfile"):
        await app.start("127.0.0.1", 0, ssl={"keyfile": "x"})
    with pytest.raises(WirecoreError, match="wrong password"):
        await app.start("127.0.0.1", 0, ssl={"certfile": str(pki / "localhost.pem"),
                                             "keyfile": str(pki / "localhost.enc"),
                                             "password": "nope"})
