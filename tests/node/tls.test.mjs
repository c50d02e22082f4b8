// wss:// from the Node package: new App({ tls: { cert, key } }) with PEM strings
// and Buffers, a throwaway CA made by the `openssl` command, the real `ws`
// client over TLS, SNI, an encrypted key, reloadTls, tls.ca (client
// certificates), and the clear errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { wirecore, WebSocket } from './helpers.mjs';

const { App, WebSocketResponse, ConfigError } = wirecore;
let dir;
const pem = (name) => fs.readFileSync(path.join(dir, name));

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wire-tls-'));
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=TestCA');
  for (const n of ['localhost', 'other.test']) {
    ssl('req', ...ec, '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', `/CN=${n}`);
    fs.writeFileSync(path.join(dir, `${n}.ext`), `subjectAltName=DNS:${n}\n`);
    ssl('x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${n}.pem`, '-days', '2', '-extfile', `${n}.ext`);
  }
  ssl('pkey', '-in', 'localhost.key', '-aes256', '-passout', 'pass:secret', '-out', 'localhost.enc');
  ssl('req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=a client');
  fs.writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'client.pem', '-days', '2', '-extfile', 'client.ext');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function echoApp(t, tlsOpt) {
  const app = new App({ tls: tlsOpt });
  app.websocket('/e', () => new WebSocketResponse({ onMessage: (m) => m }));
  const { port } = await app.listen({ port: 0 });
  t.after(() => app.close());
  return { app, port };
}

function open(url, opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const once = (ws, ev) => new Promise((resolve) => ws.once(ev, (...a) => resolve(a)));

function peerCn(ws) {
  return ws._socket.getPeerCertificate().subject.CN;
}

test('wss:// echo with PEM Buffers, verified against the CA', async (t) => {
  const { app, port } = await echoApp(t, { cert: pem('localhost.pem'), key: pem('localhost.key') });
  assert.equal(app.url('/e'), `wss://127.0.0.1:${port}/e`);
  const ws = await open(`wss://localhost:${port}/e`, { ca: pem('ca.pem') });
  assert.equal(ws._socket.alpnProtocol, false); // ws offers no ALPN
  ws.send(JSON.stringify({ a: 1 }));
  const [data] = await once(ws, 'message');
  assert.deepEqual(JSON.parse(data), { a: 1 });
  const big = 'x'.repeat(1 << 19); // more than one TLS record and one socket write
  ws.send(JSON.stringify(big));
  const [back] = await once(ws, 'message');
  assert.equal(JSON.parse(back), big);
  ws.close();
  await once(ws, 'close');
});

test('encrypted key, SNI and reloadTls', async (t) => {
  const { app, port } = await echoApp(t, {
    cert: pem('localhost.pem').toString(),
    key: pem('localhost.enc').toString(),
    passphrase: 'secret',
    sni: { 'other.test': { cert: pem('other.test.pem'), key: pem('other.test.key') } },
  });
  const ca = pem('ca.pem');
  let ws = await open(`wss://localhost:${port}/e`, { ca });
  assert.equal(peerCn(ws), 'localhost');
  ws.close();
  ws = await open(`wss://localhost:${port}/e`, { ca, servername: 'other.test', checkServerIdentity: () => undefined });
  assert.equal(peerCn(ws), 'other.test');
  ws.close();
  app.reloadTls({ cert: pem('other.test.pem'), key: pem('other.test.key') });
  ws = await open(`wss://localhost:${port}/e`, { ca, checkServerIdentity: () => undefined });
  assert.equal(peerCn(ws), 'other.test');
  ws.close();
  assert.throws(() => app.reloadTls({ cert: pem('localhost.pem'), key: pem('other.test.key') }),
    (err) => err instanceof ConfigError && /does not match/.test(err.message));
});

test('tls.ca: a client needs a certificate the CA signed', async (t) => {
  const { port } = await echoApp(t, { cert: pem('localhost.pem'), key: pem('localhost.key'),
    ca: pem('ca.pem').toString() });
  const url = `wss://localhost:${port}/e`;
  const ws = await open(url, { ca: pem('ca.pem'), cert: pem('client.pem'), key: pem('client.key') });
  ws.send('"signed"');
  const [data] = await once(ws, 'message');
  assert.equal(String(data), '"signed"');
  ws.close();
  await once(ws, 'close');
  // without one, the server ends the TLS connection before any upgrade
  await assert.rejects(open(url, { ca: pem('ca.pem') }));
});

test('TLS 1.1 is refused', async (t) => {
  const { port } = await echoApp(t, { cert: pem('localhost.pem'), key: pem('localhost.key') });
  const err = await new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, minVersion: 'TLSv1', maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0', rejectUnauthorized: false });
    s.once('error', resolve);
    s.once('secureConnect', () => resolve(null));
  });
  assert.ok(err, 'TLS 1.1 was accepted');
  assert.match(String(err.code ?? err.message), /PROTOCOL_VERSION|VERSION/);
});

test('bad tls options are clear errors', async () => {
  assert.throws(() => new App({ tls: { cert: pem('localhost.pem') } }), /needs cert and key/);
  assert.throws(() => new App({ tls: { cert: 1, key: 2 } }), /PEM text/);
  const app = new App({ tls: { cert: pem('localhost.pem'), key: pem('localhost.enc'), passphrase: 'no' } });
  await assert.rejects(app.listen({ port: 0 }), (err) => err instanceof ConfigError && /password/.test(err.message));
  assert.throws(() => new App({ tls: { cert: pem('localhost.pem'), key: pem('localhost.key'), ca: 5 } }),
    /tls\.ca must be PEM text/);
  const badCa = new App({ tls: { cert: pem('localhost.pem'), key: pem('localhost.key'), ca: 'no CA' } });
  await assert.rejects(badCa.listen({ port: 0 }),
    (err) => err instanceof ConfigError && /cannot load CA/.test(err.message));
});
