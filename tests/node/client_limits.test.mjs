// Per-client limits through the package, real server on 127.0.0.1 and `ws`
// clients bound to other loopback addresses (127.0.0.x): connections and
// upgrades per address (429 + Retry-After), message and byte rates (drop or
// close 1008, exact counts), X-Forwarded-For only from trusted proxies, and
// the Origin allow-list (403).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { wirecore, serve, wsConnect, WebSocket } from './helpers.mjs';

const { App, WebSocketResponse } = wirecore;
const echo = () => new WebSocketResponse({ onMessage: (m) => m });

/** A client whose socket is bound to 127.0.0.<host>. */
function from(t, app, path, host, options = {}) {
  return wsConnect(t, app.url(path), { localAddress: `127.0.0.${host}`, ...options });
}

/** The refused upgrade's response. */
function refused(app, path, host, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(app.url(path), { localAddress: `127.0.0.${host}`, ...options });
    ws.once('open', () => { ws.terminate(); reject(new Error('upgraded')); });
    ws.once('error', () => {});
    ws.once('unexpected-response', (req, res) => { resolve(res); req.destroy(); });
  });
}

test('maxConnectionsPerAddress refuses the next with 429 while others connect', async (t) => {
  const app = await serve(t, (a) => a.websocket('/e', echo), { maxConnectionsPerAddress: 2 });
  const a = from(t, app, '/e', 2);
  const b = from(t, app, '/e', 2);
  await Promise.all([a.opened, b.opened]);
  const res = await refused(app, '/e', 2);
  assert.equal(res.statusCode, 429);
  assert.equal(res.headers['retry-after'], '1');
  const c = from(t, app, '/e', 3);
  await c.opened;
  a.close();
  await a.closed;
  const again = from(t, app, '/e', 2);
  await again.opened;
  again.send('back');
  assert.equal((await again.next()).text, 'back');
});

test('handshakeRate allows the burst, then 429', async (t) => {
  const app = await serve(t, (a) => a.websocket('/e', echo), { handshakeRate: 1, handshakeBurst: 2 });
  for (let i = 0; i < 2; i++) {
    const ws = from(t, app, '/e', 4);
    await ws.opened;
    ws.close();
    await ws.closed;
  }
  assert.equal((await refused(app, '/e', 4)).statusCode, 429);
  await from(t, app, '/e', 5).opened;
});

test('messageRate drops exactly the excess', async (t) => {
  const seen = [];
  const app = await serve(t, (a) => a.websocket('/r', () => new WebSocketResponse({
    onMessage: (m) => { seen.push(m.data); return m; },
  }), { messageRate: 1, messageBurst: 3 }));
  const ws = from(t, app, '/r', 2);
  await ws.opened;
  for (const m of 'abcdef') ws.send(m);
  await sleep(1100); // one token back
  ws.send('z');
  const got = [];
  for (let i = 0; i < 4; i++) got.push((await ws.next()).text);
  assert.deepEqual(got, ['a', 'b', 'c', 'z']);
  assert.deepEqual(seen, ['a', 'b', 'c', 'z']);
});

test("rateLimitAction 'close' closes with 1008 rate limit", async (t) => {
  const app = await serve(t, (a) => a.websocket('/r', echo,
    { messageRate: 1, messageBurst: 2, rateLimitAction: 'close' }));
  const ws = from(t, app, '/r', 2);
  await ws.opened;
  for (const m of 'abcd') ws.send(m);
  assert.equal((await ws.next()).text, 'a');
  assert.equal((await ws.next()).text, 'b');
  assert.deepEqual(await ws.closed, { code: 1008, reason: 'rate limit' });
});

test('byteRate counts payload bytes', async (t) => {
  const app = await serve(t, (a) => a.websocket('/b', echo, { byteRate: 10 }));
  const ws = from(t, app, '/b', 2);
  await ws.opened;
  ws.send('123456'); // 6
  ws.send('1234'); // 4: the bucket is empty
  ws.send('123'); // dropped
  ws.send('x'.repeat(20)); // over the burst: never passes
  await sleep(400); // 4 bytes back
  ws.send('2');
  const got = [];
  for (let i = 0; i < 3; i++) got.push((await ws.next()).text);
  assert.deepEqual(got, ['123456', '1234', '2']);
});

test('X-Forwarded-For is honoured only from trusted proxies', async (t) => {
  const clients = [];
  const app = await serve(t, (a) => a.websocket('/w', (request) => {
    clients.push(request.remoteAddress);
    return new WebSocketResponse({ onMessage: (m) => m });
  }), { trustedProxies: ['127.0.0.6', '10.0.0.0/8'], maxConnectionsPerAddress: 1 });
  const headers = { 'X-Forwarded-For': '198.51.100.1, 203.0.113.9, 10.1.2.3' };
  await from(t, app, '/w', 6, { headers }).opened;
  assert.equal((await refused(app, '/w', 6, { headers })).statusCode, 429);
  await from(t, app, '/w', 7, { headers }).opened;
  await from(t, app, '/w', 6, { headers: { Forwarded: 'for="[2001:db8::1]:4711";proto=https' } }).opened;
  assert.deepEqual(clients, ['203.0.113.9', '127.0.0.7', '2001:db8::1']);
});

test('allowedOrigins answers 403 to another origin', async (t) => {
  const app = await serve(t, (a) => a.websocket('/o', echo, { allowedOrigins: ['https://app.example'] }));
  assert.equal((await refused(app, '/o', 2, { origin: 'https://evil.example' })).statusCode, 403);
  await from(t, app, '/o', 2, { origin: 'https://app.example' }).opened;
});

test('bad limits are refused', () => {
  assert.throws(() => new App({ trustedProxies: ['not-an-address'] }), { code: 'EINVAL' });
  assert.throws(() => new App({ handshakeRate: -1 }), TypeError);
  const app = new App();
  assert.throws(() => app.websocket('/x', echo, { rateLimitAction: 'ignore' }), TypeError);
  assert.throws(() => app.websocket('/x', echo, { messageRate: -1 }), TypeError);
});
