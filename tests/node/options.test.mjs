// Limits and negotiation: maxPayload, idleTimeout, maxBackpressure, allowedOrigins,
// subprotocols, maxConnections, invalidMessages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wirecore, serve, wsConnect, sleep, until, withTimeout } from './helpers.mjs';

const { WebSocketResponse } = wirecore;
const echo = () => new WebSocketResponse({ onMessage: (m) => m });

test('maxPayload closes a connection that sends a bigger message with 1009', async (t) => {
  const app = await serve(t, (a) => a.websocket('/small', echo, { maxPayload: 1024 }));
  const ws = wsConnect(t, app.url('/small'));
  await ws.opened;
  ws.send('x'.repeat(1000));
  assert.equal((await ws.next()).text.length, 1000);
  ws.send('y'.repeat(5000));
  assert.equal((await ws.closed).code, 1009);
});

test('App-wide options are defaults that endpoints override', async (t) => {
  const app = await serve(t, (a) => {
    a.websocket('/default', echo);
    a.websocket('/bigger', echo, { maxPayload: 4096 });
  }, { maxPayload: 100 });
  const client = app.testClient();
  const d = await client.websocket('/default');
  d.send('z'.repeat(200));
  assert.equal((await d.waitClosed()).code, 1009);
  const b = await client.websocket('/bigger');
  b.send('z'.repeat(200));
  assert.equal((await b.receiveText()).length, 200);
});

test('allowedOrigins refuses other origins with 403', async (t) => {
  const app = await serve(t, (a) => a.websocket('/o', echo, { allowedOrigins: ['https://good.example'] }));
  const bad = wsConnect(t, app.url('/o'), { origin: 'https://evil.example' });
  await assert.rejects(bad.opened, (err) => err.status === 403);
  const good = wsConnect(t, app.url('/o'), { origin: 'https://good.example' });
  await good.opened;
});

test('subprotocols negotiates the first one the server prefers', async (t) => {
  let seen;
  const app = await serve(t, (a) => a.websocket('/p', (req) => {
    seen = req.subprotocol;
    return echo();
  }, { subprotocols: ['v2.chat', 'v1.chat'] }));
  const ws = wsConnect(t, app.url('/p'), { protocols: ['v1.chat', 'v2.chat'] });
  await ws.opened;
  assert.equal(ws.protocol, 'v2.chat');
  assert.equal(seen, 'v2.chat');
  const tc = await app.testClient().websocket('/p', { protocols: ['v1.chat'] });
  assert.equal(tc.protocol, 'v1.chat');
});

test('idleTimeout pings a silent client', async (t) => {
  const app = await serve(t, (a) => a.websocket('/idle', echo, { idleTimeout: 100 }));
  const ws = wsConnect(t, app.url('/idle'));
  await ws.opened;
  await withTimeout(new Promise((resolve) => ws.once('ping', resolve)), 3000, 'ping');
  ws.send('still alive'); // ws answered the ping itself; the connection stays usable
  assert.equal((await ws.next()).text, 'still alive');
});

test('maxBackpressure closes a connection that does not read', async (t) => {
  let socket;
  const app = await serve(t, (a) => a.websocket('/flood', () => new WebSocketResponse({
    onConnect: (s) => { socket = s; },
  }), { maxBackpressure: 64 * 1024 }));
  const ws = await app.testClient().websocket('/flood');
  ws._socket.pause(); // stop reading on the client side
  await until(() => socket);
  const chunk = Buffer.alloc(16 * 1024, 1);
  let error;
  for (let i = 0; i < 10000 && !error; i++) {
    try {
      socket.sendBinary(chunk);
    } catch (err) {
      error = err;
    }
    if (i % 64 === 63) await sleep(1);
  }
  assert.ok(error, 'sends are refused once the queue is over the limit');
  assert.ok(['EBACKPRESSURE', 'ECLOSED'].includes(error.code), error.code);
  ws._socket.resume();
  await ws.waitClosed();
});

test('maxConnections refuses extra connections with 503', async (t) => {
  const app = await serve(t, (a) => a.websocket('/one', echo), { maxConnections: 1 });
  const client = app.testClient();
  const first = await client.websocket('/one');
  await assert.rejects(client.websocket('/one'), (err) => err.status === 503);
  first.send('ok');
  assert.equal(await first.receiveText(), 'ok');
});

test("invalidMessages: 'close' closes with 1007/1008 instead of replying", async (t) => {
  const app = await serve(t, (a) => a.websocket('/strict', {
    messageSchema: { type: 'integer' }, invalidMessages: 'close',
  }, (n) => n + 1));
  const client = app.testClient();
  const ws = await client.websocket('/strict');
  ws.sendJson(1);
  assert.equal(await ws.receiveJson(), 2);
  ws.sendJson('one');
  assert.equal((await ws.waitClosed()).code, 1008);
  const ws2 = await client.websocket('/strict');
  ws2.sendText('{{');
  assert.equal((await ws2.waitClosed()).code, 1007);
});

test('unknown paths are refused with 404', async (t) => {
  const app = await serve(t, (a) => a.websocket('/here', echo));
  await assert.rejects(app.testClient().websocket('/elsewhere'), (err) => err.status === 404);
});

test('bad option values throw at registration', () => {
  const app = new wirecore.App();
  assert.throws(() => app.websocket('/x', echo, { maxPayload: -1 }), TypeError);
  assert.throws(() => app.websocket('/y', echo, { subprotocols: 'chat' }), TypeError);
  assert.throws(() => app.websocket('/z', echo, { invalidMessages: 'explode' }), TypeError);
  return app.close();
});
