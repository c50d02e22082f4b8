// The request view, socket state, the remaining options and error classes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { wirecore, serve, wsConnect, until, withTimeout } from './helpers.mjs';

const { WebSocketResponse, WebSocketMessage, ProtocolError } = wirecore;

test('the request carries path, target, params, query, queryList, headers and the peer', async (t) => {
  let seen;
  const app = await serve(t, (a) => a.websocket('/files/{name}/{rest:path}', (request) => {
    seen = request;
    return new WebSocketResponse({});
  }));
  const ws = await app.testClient().websocket('/files/a%20b/x/y.txt?k=1&k=2&sp=a+b', {
    headers: { 'X-One': 'first', 'X-Multi': 'a' },
  });
  await ws.close();
  assert.equal(seen.path, '/files/a b/x/y.txt');
  assert.equal(seen.target, '/files/a%20b/x/y.txt?k=1&k=2&sp=a+b');
  assert.deepEqual(seen.params, { name: 'a b', rest: 'x/y.txt' });
  assert.deepEqual(seen.query, { k: '1', sp: 'a b' });
  assert.deepEqual(seen.queryList, [['k', '1'], ['k', '2'], ['sp', 'a b']]);
  assert.equal(seen.headers['x-one'], 'first');
  assert.equal(seen.headers.upgrade, 'websocket');
  assert.equal(seen.remoteAddress, '127.0.0.1');
  assert.ok(seen.remotePort > 0);
  assert.equal(seen.subprotocol, null);
});

test('socket state: id, isOpen, bufferedAmount, closed', async (t) => {
  const sockets = [];
  const app = await serve(t, (a) => a.websocket('/s', () => new WebSocketResponse({
    onConnect: (s) => { sockets.push(s); },
  })));
  const client = app.testClient();
  const a = await client.websocket('/s');
  await client.websocket('/s');
  await until(() => sockets.length === 2);
  const [s1, s2] = sockets;
  assert.notEqual(s1.id, s2.id);
  assert.equal(s1.isOpen, true);
  assert.equal(s1.state, 'open');
  assert.equal(typeof s1.bufferedAmount, 'number');
  await a.close(4321, 'x');
  assert.deepEqual(await withTimeout(s1.closed, 5000, 'closed'), { code: 4321, reason: 'x' });
  assert.equal(s1.isOpen, false);
  assert.equal(s1.state, 'closed');
  assert.equal(s1.bufferedAmount, 0);
});

test('WebSocketMessage constructors and accessors', () => {
  const t = WebSocketMessage.text('héllo');
  assert.ok(t.isText());
  assert.equal(t.length, 6);
  assert.deepEqual(t.asBinary(), Buffer.from('héllo'));
  const b = WebSocketMessage.binary(new Uint8Array([104, 105]));
  assert.ok(b.isBinary());
  assert.ok(Buffer.isBuffer(b.asBinary()));
  assert.equal(b.asText(), 'hi');
  assert.deepEqual(WebSocketMessage.json({ a: [1] }).asJson(), { a: [1] });
  assert.throws(() => WebSocketMessage.text('{').asJson(), SyntaxError);
  assert.throws(() => new WebSocketMessage(42), TypeError);
});

test("invalidMessages: 'ignore' drops invalid messages without a reply", async (t) => {
  const app = await serve(t, (a) => a.websocket('/quiet', {
    messageSchema: { type: 'integer' }, invalidMessages: 'ignore',
  }, (n) => n * 2));
  const ws = await app.testClient().websocket('/quiet');
  ws.sendJson('not a number');
  ws.sendJson(21);
  assert.equal(await ws.receiveJson(), 42);
});

test('formatAssert makes the format keyword assert', async (t) => {
  const schema = { type: 'string', format: 'email' };
  const app = await serve(t, (a) => {
    a.websocket('/annotate', { messageSchema: schema }, (s) => ({ ok: s }));
    a.websocket('/assert', { messageSchema: schema, formatAssert: true }, (s) => ({ ok: s }));
  });
  const client = app.testClient();
  const loose = await client.websocket('/annotate');
  loose.sendJson('not-an-email');
  assert.deepEqual(await loose.receiveJson(), { ok: 'not-an-email' });
  const strict = await client.websocket('/assert');
  strict.sendJson('not-an-email');
  const r = await strict.receiveJson();
  assert.equal(r.type, 'error');
  assert.equal(r.keyword, 'format');
});

test('handshakeTimeout drops a client that never finishes its request', async (t) => {
  const app = await serve(t, (a) => a.websocket('/e', () => new WebSocketResponse({})), { handshakeTimeout: 200 });
  const s = net.connect(app.port, '127.0.0.1');
  s.on('error', () => {});
  s.write('GET /e HTTP/1.1\r\nHost: x\r\n');
  const started = Date.now();
  await withTimeout(new Promise((resolve) => s.on('close', resolve)), 5000, 'close');
  assert.ok(Date.now() - started >= 150, 'not before the timeout');
});

test('maxHandshakeSize answers an oversized request head with 431', async (t) => {
  const app = await serve(t, (a) => a.websocket('/e', () => new WebSocketResponse({})), { maxHandshakeSize: 1024 });
  const err = await app.testClient().websocket('/e', { headers: { 'X-Big': 'y'.repeat(2000) } }).catch((e) => e);
  assert.equal(err.status, 431);
});

test('protocol errors reach onError as ProtocolError', async (t) => {
  const errors = [];
  const app = await serve(t, (a) => a.websocket('/p', () => new WebSocketResponse({
    onError: (err) => { errors.push(err); },
  })));
  const ws = wsConnect(t, app.url('/p'));
  await ws.opened;
  // Invalid UTF-8 in a text frame: ws sends it as given when asked for text.
  ws.send(Buffer.from([0xff, 0xfe]), { binary: false });
  assert.equal((await ws.closed).code, 1007);
  await until(() => errors.length === 1);
  assert.ok(errors[0] instanceof ProtocolError);
  assert.equal(errors[0].code, 'EUTF8');
});
