// App lifecycle (listen, close, unref), entry points, value conversion and the test client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { wirecore, wirecoreCjs, packageDir, serve, wsConnect, until } from './helpers.mjs';

const { App, WebSocketResponse } = wirecore;
const echo = () => new WebSocketResponse({ onMessage: (m) => m });

function runNode(code, { esm = false, timeout = 10000 } = {}) {
  const args = esm ? ['--input-type=module', '-e', code] : ['-e', code];
  return spawnSync(process.execPath, args, { encoding: 'utf8', timeout, env: { ...process.env, WIRECORE_PKG: packageDir } });
}

test('listen resolves with the bound port and url() names it', async (t) => {
  const app = new App();
  app.websocket('/e', echo);
  const where = await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  assert.equal(where.host, '127.0.0.1');
  assert.ok(where.port > 0);
  assert.equal(app.port, where.port);
  assert.equal(app.url('/e'), `ws://127.0.0.1:${where.port}/e`);
});

test('listening on a taken port fails with EADDRINUSE', async (t) => {
  const a = new App();
  const { port } = await a.listen({ port: 0 });
  t.after(() => a.close());
  const b = new App();
  await assert.rejects(b.listen({ host: '127.0.0.1', port }), (err) => err.code === 'EADDRINUSE');
  await b.close();
});

test('close() says goodbye with 1001, drains and resolves', async (t) => {
  const app = new App();
  app.websocket('/e', echo);
  await app.listen({ port: 0 });
  const ws = wsConnect(t, app.url('/e'));
  await ws.opened;
  const tc = await app.testClient().websocket('/e');
  assert.equal(app.connectionCount, 2);
  await app.close({ timeout: 2000 });
  assert.equal((await ws.closed).code, 1001);
  assert.equal((await tc.waitClosed()).code, 1001);
  assert.equal(app.connectionCount, 0);
  await assert.rejects(app.listen({ port: 0 }), (err) => err.code === 'ESTATE');
  assert.equal(app.close(), app.close(), 'close() is idempotent');
});

test('the process exits once close() resolves', () => {
  const code = `
    const { App, WebSocketResponse } = require(process.env.WIRECORE_PKG);
    const app = new App();
    app.websocket('/e', () => new WebSocketResponse({}));
    app.listen({ port: 0 }).then(() => app.close()).then(() => console.log('closed'));`;
  const r = runNode(code);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'closed');
});

test('an unref()ed app does not keep the process alive', () => {
  const code = `
    const { App } = require(process.env.WIRECORE_PKG);
    const app = new App({ unref: true });
    app.listen({ port: 0 }).then(({ port }) => console.log('listening', port > 0));`;
  const r = runNode(code, { timeout: 5000 });
  assert.equal(r.signal, null, 'exited by itself');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'listening true');
  const r2 = runNode(`
    const { App } = require(process.env.WIRECORE_PKG);
    const app = new App();
    app.listen({ port: 0 }).then(() => { app.unref(); console.log('unref'); });`, { timeout: 5000 });
  assert.equal(r2.status, 0, r2.stderr);
});

test('a listening app keeps the process alive until closed', () => {
  const r = runNode(`
    const { App } = require(process.env.WIRECORE_PKG);
    const app = new App();
    app.listen({ port: 0 }).then(() => setTimeout(() => { console.log('still alive'); app.close(); }, 200));`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'still alive');
});

test('CommonJS and ESM entry points export the same API', async () => {
  const names = ['App', 'WebSocketResponse', 'WebSocketMessage', 'WebSocketEndpoint', 'Reject',
    'ValidationError', 'UnknownMessageError', 'DeserializationError', 'SerializationError',
    'ConnectionClosedError', 'WirecoreError', 'TestClient', 'encode', 'decode', 'version'];
  for (const n of names) {
    assert.ok(wirecore[n] !== undefined, `ESM exports ${n}`);
    assert.equal(wirecore[n], wirecoreCjs[n], `${n} is the same object in both`);
  }
  assert.equal(wirecore.default, wirecoreCjs);
  assert.match(wirecore.version, /^\d+\.\d+\.\d+$/);
  const pkg = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
  assert.equal(pkg.exports['.'].import, './index.mjs');
  assert.equal(pkg.exports['.'].require, './index.js');
  const dts = fs.readFileSync(path.join(packageDir, pkg.types), 'utf8');
  for (const n of names) assert.match(dts, new RegExp(`export (declare )?(class|function|const) ${n}\\b`), `types declare ${n}`);
});

test('values convert between JS and the core losslessly', () => {
  const { encode, decode } = wirecore;
  const value = {
    s: 'text ✓', n: 1.5, i: -42, big: 2n ** 62n, huge: 2n ** 64n - 1n, t: true, f: false, z: null,
    a: [1, [2, [3]], {}], o: { nested: { deep: 'yes' } },
  };
  for (const codec of ['json', 'msgpack']) {
    assert.deepEqual(decode(encode(value, codec), codec), value, codec);
  }
  assert.deepEqual(decode(encode({ b: Buffer.from('bin') }, 'msgpack'), 'msgpack'), { b: Buffer.from('bin') });
  assert.equal(encode({ u: undefined, f() {}, d: new Date(0), v: [undefined] }).toString(),
    '{"d":"1970-01-01T00:00:00.000Z","v":[null]}');
  assert.equal(decode('9007199254740993'), 9007199254740993n, 'integers beyond 2^53 become BigInt');
  assert.equal(decode('3'), 3);
  for (const codec of ['json', 'msgpack']) {
    const v = decode(encode(JSON.parse('{"__proto__": {"x": 1}}'), codec), codec);
    assert.equal(Object.getPrototypeOf(v), Object.prototype, `${codec}: __proto__ stays an own key`);
    assert.deepEqual(Object.keys(v), ['__proto__']);
  }
  assert.equal(encode(3).toString(), '3');
});

test('unencodable values throw SerializationError, undecodable bytes DeserializationError', () => {
  const { encode, decode, SerializationError, DeserializationError } = wirecore;
  const cyclic = {};
  cyclic.self = cyclic;
  assert.throws(() => encode(cyclic), SerializationError);
  assert.throws(() => encode(2n ** 70n), SerializationError);
  assert.throws(() => encode(() => 1), SerializationError);
  assert.throws(() => encode(NaN), SerializationError);
  assert.throws(() => encode(Buffer.from('x'), 'json'), SerializationError);
  assert.throws(() => decode('{"a":'), (err) => err instanceof DeserializationError && err.offset >= 0);
  assert.throws(() => decode(Buffer.from([0xc1]), 'msgpack'), DeserializationError);
  assert.throws(() => encode(1, 'yaml'), TypeError);
});

test('the test client reports refused handshakes with status and body', async (t) => {
  const app = await serve(t, (a) => a.websocket('/e', echo));
  const err = await app.testClient().websocket('/missing').catch((e) => e);
  assert.ok(err instanceof wirecore.HandshakeError);
  assert.equal(err.status, 404);
  assert.equal(typeof err.body, 'string');
});

test('the test client sends fragmented messages and answers pings', async (t) => {
  const app = await serve(t, (a) => a.websocket('/e', echo, { idleTimeout: 100 }));
  const ws = await app.testClient().websocket('/e');
  ws.sendFragments(['frag', 'men', 'ted']);
  assert.equal(await ws.receiveText(), 'fragmented');
  await new Promise((r) => setTimeout(r, 400)); // a ping came and was answered
  ws.send('alive');
  assert.equal(await ws.receiveText(), 'alive');
});

test('the test client listens on its own when the app is not listening', async (t) => {
  const app = new App();
  app.websocket('/e', echo);
  t.after(() => app.close());
  const ws = await app.testClient().websocket('/e');
  ws.send('auto');
  assert.equal(await ws.receiveText(), 'auto');
  assert.ok(app.port > 0);
});

test('protocol errors from the client close the connection', async (t) => {
  const closes = [];
  const app = await serve(t, (a) => a.websocket('/e', () => new WebSocketResponse({
    onMessage: (m) => m,
    onClose: (code) => closes.push(code),
    onError: (err) => { closes.push(err.code); },
  })));
  const ws = await app.testClient().websocket('/e');
  ws.sendRaw([0x81, 0x02, 0x68, 0x69]); // an unmasked client frame
  const { code } = await ws.waitClosed();
  assert.equal(code, 1002);
  await until(() => closes.includes(1002) || closes.length >= 2);
});

test('connections and apps survive garbage collection and use after close', () => {
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', `
    const { App, WebSocketResponse, ConnectionClosedError } = await import(process.env.WIRECORE_PKG + '/index.mjs');
    const kept = [];
    for (let round = 0; round < 3; round++) {
      const app = new App();
      app.websocket('/e', () => new WebSocketResponse({
        onConnect: (s) => { if (kept.length < 50) kept.push(s); },
        onMessage: async (m) => { await null; return m; },
      }));
      const client = app.testClient();
      for (let i = 0; i < 60; i++) {
        const ws = await client.websocket('/e');
        ws.send('x' + i);
        if ((await ws.receiveText()) !== 'x' + i) process.exit(2);
        if (i % 3 === 0) await ws.close(); else ws.terminate();
        if (i % 10 === 0) globalThis.gc();
      }
      await app.close();
      globalThis.gc();
    }
    for (const s of kept) {
      try { s.sendText('late'); process.exit(3); } catch (e) { if (!(e instanceof ConnectionClosedError)) process.exit(4); }
    }
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 50));
    globalThis.gc();
    console.log('ok');`], { encoding: 'utf8', timeout: 60000, env: { ...process.env, WIRECORE_PKG: packageDir } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ok');
});

test('the addon works in worker threads beside the main thread (per-instance data)', async (t) => {
  const { Worker } = await import('node:worker_threads');
  const app = await serve(t, (a) => a.websocket('/main', echo));
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { App, WebSocketResponse } = require(workerData.pkg);
    (async () => {
      const app = new App();
      app.websocket('/w', () => new WebSocketResponse({ onMessage: (m) => 'worker:' + m.asText() }));
      const ws = await app.testClient().websocket('/w');
      ws.send(String(workerData.n));
      const reply = await ws.receiveText();
      await ws.close();
      await app.close();
      parentPort.postMessage(reply);
    })().catch((err) => parentPort.postMessage('error: ' + err.message));`;
  const run = (n) => new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { pkg: packageDir, n } });
    w.once('message', resolve);
    w.once('error', reject);
  });
  const replies = await Promise.all([run(1), run(2)]);
  assert.deepEqual(replies.sort(), ['worker:1', 'worker:2']);
  const ws = await app.testClient().websocket('/main');
  ws.send('main');
  assert.equal(await ws.receiveText(), 'main');
});

test('a worker terminated while its app listens with open connections tears down cleanly', async () => {
  const { Worker } = await import('node:worker_threads');
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { App, WebSocketResponse } = require(workerData.pkg);
    const app = new App();
    app.websocket('/w', () => new WebSocketResponse({ onMessage: (m) => m, onClose: () => {} }));
    app.testClient().websocket('/w').then(async (ws) => {
      ws.send('x');
      await ws.receiveText();
      parentPort.postMessage('ready');
    });`;
  for (let i = 0; i < 3; i++) {
    const w = new Worker(code, { eval: true, workerData: { pkg: packageDir } });
    const errors = [];
    w.on('error', (e) => errors.push(e));
    assert.equal(await new Promise((resolve) => w.once('message', resolve)), 'ready');
    assert.equal(await w.terminate(), 1);
    assert.deepEqual(errors, []);
  }
});

test('a handshake still waiting for onConnect when the app closes is answered safely later', () => {
  const r = runNode(`
    const { App, WebSocketResponse, Reject } = require(process.env.WIRECORE_PKG);
    const net = require('node:net');
    const later = (ms) => new Promise((r) => setTimeout(r, ms));
    const app = new App();
    let settled = 0, started = 0;
    app.websocket('/slow', async () => { started++; await later(300); settled++; return new WebSocketResponse({}); });
    app.websocket('/slow-no', async () => { started++; await later(300); settled++; throw new Reject(403); });
    (async () => {
      const { port } = await app.listen({ port: 0 });
      for (const path of ['/slow', '/slow-no']) {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        s.write('GET ' + path + ' HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n');
      }
      for (let i = 0; i < 500 && started < 2; i++) await later(10); // both handshakes wait in onConnect
      await app.close({ timeout: 100 });
      await later(20); // destroy() has freed the core server by now
      if (global.gc) global.gc();
      await later(400);
      console.log('settled', settled);
    })();`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'settled 2');
});
