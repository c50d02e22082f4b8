// Callback style: app.websocket(path, (request) => new WebSocketResponse({...})).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wirecore, serve, wsConnect, sleep, until } from './helpers.mjs';

const { WebSocketResponse, WebSocketMessage, Reject, HandshakeError } = wirecore;

const echo = (app, path = '/echo') =>
  app.websocket(path, () => new WebSocketResponse({ onMessage: async (msg) => msg }));

test('echoes text and binary messages to the ws client', async (t) => {
  const app = await serve(t, (a) => echo(a));
  const ws = wsConnect(t, app.url('/echo'));
  await ws.opened;
  ws.send('héllo');
  const m1 = await ws.next();
  assert.equal(m1.isBinary, false);
  assert.equal(m1.text, 'héllo');
  ws.send(Buffer.from([0, 1, 2, 255]));
  const m2 = await ws.next();
  assert.equal(m2.isBinary, true);
  assert.deepEqual([...m2.data], [0, 1, 2, 255]);
});

test('echoes through the test client', async (t) => {
  const app = await serve(t, (a) => echo(a));
  const ws = await app.testClient().websocket('/echo');
  ws.send('ping');
  assert.equal(await ws.receiveText(), 'ping');
  ws.sendBytes(Buffer.from('abc'));
  const m = await ws.receive();
  assert.ok(m.isBinary());
  assert.equal(m.asText(), 'abc');
  assert.deepEqual(await ws.close(), { code: 1000, reason: '' });
});

test('message exposes isText, asText, isBinary, asBinary and asJson', async (t) => {
  const seen = [];
  const app = await serve(t, (a) => a.websocket('/m', () => new WebSocketResponse({
    onMessage: (msg) => {
      seen.push({ text: msg.isText(), binary: msg.isBinary(), asText: msg.asText(), bytes: msg.asBinary().length });
      return msg.isText() ? { parsed: msg.asJson() } : undefined;
    },
  })));
  const ws = await app.testClient().websocket('/m');
  ws.sendJson({ a: [1, 2] });
  assert.deepEqual(await ws.receiveJson(), { parsed: { a: [1, 2] } });
  ws.sendBytes(Buffer.from('xyz'));
  await until(() => seen.length === 2);
  assert.deepEqual(seen, [
    { text: true, binary: false, asText: '{"a":[1,2]}', bytes: 11 },
    { text: false, binary: true, asText: 'xyz', bytes: 3 },
  ]);
});

test('payloads stay valid after the handler returns', async (t) => {
  const kept = [];
  const app = await serve(t, (a) => a.websocket('/keep', () => new WebSocketResponse({
    onMessage: (msg) => { kept.push(msg); },
  })));
  const ws = await app.testClient().websocket('/keep');
  for (let i = 0; i < 50; i++) ws.send(i % 2 ? `text-${i}` : Buffer.from(`bin-${i}`));
  await until(() => kept.length === 50);
  await sleep(20);
  kept.forEach((m, i) => assert.equal(m.asText(), i % 2 ? `text-${i}` : `bin-${i}`));
});

test('return values: string is text, bytes are binary, objects are JSON, undefined sends nothing', async (t) => {
  const app = await serve(t, (a) => a.websocket('/r', () => new WebSocketResponse({
    onMessage: (msg) => {
      switch (msg.asText()) {
        case 'str': return 'a string';
        case 'bytes': return new Uint8Array([9, 8]);
        case 'obj': return { ok: true };
        case 'msg': return WebSocketMessage.binary(Buffer.from('m'));
        default: return undefined;
      }
    },
  })));
  const ws = await app.testClient().websocket('/r');
  ws.send('nothing');
  ws.send('str');
  assert.equal(await ws.receiveText(), 'a string');
  ws.send('bytes');
  assert.deepEqual([...(await ws.receiveBytes())], [9, 8]);
  ws.send('obj');
  assert.deepEqual(await ws.receiveJson(), { ok: true });
  ws.send('msg');
  const m = await ws.receive();
  assert.ok(m.isBinary());
  assert.equal(m.asText(), 'm');
});

test('onConnect, onMessage and onClose run in order with the close code', async (t) => {
  const events = [];
  const app = await serve(t, (a) => a.websocket('/life', async (request) => {
    events.push(`factory ${request.path}`);
    return new WebSocketResponse({
      onConnect: async (socket) => { events.push('connect'); socket.send('welcome'); },
      onMessage: (msg) => { events.push(`message ${msg.asText()}`); },
      onClose: (code, reason) => { events.push(`close ${code} ${reason}`); },
    });
  }));
  const ws = wsConnect(t, app.url('/life'));
  await ws.opened;
  assert.equal((await ws.next()).text, 'welcome');
  ws.send('one');
  ws.close(4000, 'bye');
  await ws.closed;
  await until(() => events.length === 4);
  assert.deepEqual(events, ['factory /life', 'connect', 'message one', 'close 4000 bye']);
});

test('async handlers keep per-connection order', async (t) => {
  const app = await serve(t, (a) => a.websocket('/order', () => new WebSocketResponse({
    onMessage: async (msg) => {
      const n = Number(msg.asText());
      await sleep((n * 7) % 5); // later messages may finish first if not serialized
      return String(n);
    },
  })));
  const ws = await app.testClient().websocket('/order');
  for (let i = 0; i < 40; i++) ws.send(String(i));
  for (let i = 0; i < 40; i++) assert.equal(await ws.receiveText(), String(i));
});

test('a handler exception closes that connection with 1011 and others carry on', async (t) => {
  const app = await serve(t, (a) => a.websocket('/boom', () => new WebSocketResponse({
    onMessage: async (msg) => {
      if (msg.asText() === 'boom') throw new Error('kaboom');
      return msg;
    },
  })));
  const client = app.testClient();
  const bad = await client.websocket('/boom');
  const good = await client.websocket('/boom');
  bad.send('boom');
  const closed = await bad.waitClosed();
  assert.equal(closed.code, 1011);
  good.send('still here');
  assert.equal(await good.receiveText(), 'still here');
  assert.equal(app.reported.length, 1);
  assert.equal(app.reported[0].message, 'kaboom');
});

test('a synchronous throw closes with 1011 as well', async (t) => {
  const app = await serve(t, (a) => a.websocket('/sync', () => new WebSocketResponse({
    onMessage: () => { throw new TypeError('sync'); },
  })));
  const ws = wsConnect(t, app.url('/sync'));
  await ws.opened;
  ws.send('x');
  assert.equal((await ws.closed).code, 1011);
});

test('onError handles a handler error and its return value is sent', async (t) => {
  const app = await serve(t, (a) => a.websocket('/handled', () => new WebSocketResponse({
    onMessage: async () => { throw new Error('bad input'); },
    onError: async (err) => ({ error: err.message }),
  })));
  const ws = await app.testClient().websocket('/handled');
  ws.send('x');
  assert.deepEqual(await ws.receiveJson(), { error: 'bad input' });
  ws.send('y');
  assert.deepEqual(await ws.receiveJson(), { error: 'bad input' });
  assert.equal(app.reported.length, 0);
});

test('an onError that rethrows closes with 1011', async (t) => {
  const app = await serve(t, (a) => a.websocket('/rethrow', () => new WebSocketResponse({
    onMessage: () => { throw new Error('first'); },
    onError: (err) => { throw err; },
  })));
  const ws = await app.testClient().websocket('/rethrow');
  ws.send('x');
  assert.equal((await ws.waitClosed()).code, 1011);
});

test('the factory may refuse with Reject before the upgrade', async (t) => {
  const app = await serve(t, (a) => {
    a.websocket('/sync-reject', () => { throw new Reject(401); });
    a.websocket('/async-reject', async () => { await sleep(5); throw new Reject(403); });
    a.websocket('/return-reject', async () => new Reject(429));
  });
  for (const [path, status] of [['/sync-reject', 401], ['/async-reject', 403], ['/return-reject', 429]]) {
    const ws = wsConnect(t, app.url(path));
    await assert.rejects(ws.opened, (err) => err.status === status);
    await assert.rejects(app.testClient().websocket(path), (err) => err instanceof HandshakeError && err.status === status);
  }
});

test('a factory that fails refuses the handshake with 500', async (t) => {
  const app = await serve(t, (a) => a.websocket('/fail', async () => { throw new Error('db down'); }));
  await assert.rejects(app.testClient().websocket('/fail'), (err) => err.status === 500);
  assert.equal(app.reported[0].message, 'db down');
});

test('Reject only takes HTTP error statuses', () => {
  assert.throws(() => new Reject(200), RangeError);
  assert.equal(new Reject(404).status, 404);
});

test('the socket pushes messages outside of replies', async (t) => {
  let pushed;
  const app = await serve(t, (a) => a.websocket('/push', () => new WebSocketResponse({
    onConnect: (socket) => { pushed = socket; },
  })));
  const ws = await app.testClient().websocket('/push');
  await until(() => pushed);
  pushed.sendText('one');
  pushed.sendBinary(Buffer.from('two'));
  pushed.sendJson({ three: 3 });
  assert.equal(await ws.receiveText(), 'one');
  assert.equal((await ws.receiveBytes()).toString(), 'two');
  assert.deepEqual(await ws.receiveJson(), { three: 3 });
  pushed.close(4001, 'done');
  assert.deepEqual(await ws.waitClosed(), { code: 4001, reason: 'done' });
  assert.throws(() => pushed.sendText('late'), wirecore.ConnectionClosedError);
});
