// One error taxonomy (the core's categories become the same classes in every
// package) and the connection rules through the addon: fail, invalid, the
// queued-message bound and drain, with the real `ws` client on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';
import { wirecore, wirecoreCjs, packageDir, serve, wsConnect, until } from './helpers.mjs';

const { native } = createRequire(import.meta.url)(path.join(packageDir, 'lib', 'native.js'));
const { WebSocketResponse, WirecoreError } = wirecore;

const CLASSES = {
  internal: 'InternalError',
  config: 'ConfigError',
  protocol: 'ProtocolError',
  too_big: 'MessageTooBigError',
  deserialize: 'DeserializationError',
  serialize: 'SerializationError',
  validation: 'ValidationError',
  unknown_message: 'UnknownMessageError',
  closed: 'ConnectionClosedError',
  backpressure: 'BackpressureError',
  handler: 'HandlerError',
};

test('the classes and codes come from the core list', () => {
  const rows = native.errors();
  assert.equal(rows.length, 23);
  for (const row of rows) {
    assert.equal(CLASSES[row.category], row.className, row.name);
    const Cls = wirecore[row.className];
    assert.equal(typeof Cls, 'function', row.className);
    assert.equal(Cls, wirecoreCjs[row.className]);
    assert.ok(Cls.prototype instanceof WirecoreError);
    assert.equal(native.errorName(row.errno), row.name);
  }
  assert.deepEqual(new Set(rows.map((r) => r.className)), new Set(Object.values(CLASSES)));
  for (const retired of [-12, -13, -22]) assert.equal(native.errorName(retired), 'EUNKNOWN');
});

test('codec and config errors raise their category class', (t) => {
  assert.throws(() => wirecore.encode(NaN), wirecore.SerializationError);
  assert.throws(() => wirecore.decode('{'), wirecore.DeserializationError);
  const app = new wirecore.App();
  t.after(() => app.close());
  assert.throws(() => app.websocket('/x/{', {}, () => {}),
    (err) => err instanceof wirecore.ConfigError && err.code === 'EROUTE');
  assert.throws(() => app.websocket('/s', { messageSchema: { type: 5 } }, () => {}),
    (err) => err instanceof wirecore.ConfigError && err.code === 'ESCHEMA');
});

test('message errors reach onError as their category class through a real client', async (t) => {
  const seen = [];
  const app = await serve(t, (a) => {
    a.websocket('/m', { messageSchema: { type: 'integer' }, maxPayload: 64,
      onError: (err) => { seen.push([err.constructor.name, err.code]); return { class: err.constructor.name }; } },
    (n) => ({ got: n }));
  });
  const ws = wsConnect(t, app.url('/m'));
  await ws.opened;
  ws.send('"text"');
  assert.deepEqual(await ws.nextJson(), { class: 'ValidationError' });
  ws.send('not json');
  assert.deepEqual(await ws.nextJson(), { class: 'DeserializationError' });
  ws.send('1'.repeat(100));
  assert.equal((await ws.closed).code, 1009);
  await until(() => seen.length === 3);
  assert.deepEqual(seen, [
    ['ValidationError', 'EVALIDATION'],
    ['DeserializationError', 'EDESERIALIZE'],
    ['MessageTooBigError', 'ETOOBIG'],
  ]);
});

test('a send on a closed connection throws ConnectionClosedError', async (t) => {
  let socket;
  const app = await serve(t, (a) => a.websocket('/c', (req, s) => {
    socket = s;
    return new WebSocketResponse({});
  }));
  const ws = wsConnect(t, app.url('/c'));
  await ws.opened;
  ws.close();
  await ws.closed;
  await until(() => socket && socket.state === 'closed');
  assert.throws(() => socket.sendText('late'), wirecore.ConnectionClosedError);
});

// ---- the addon's rule calls on a bare native server --------------------------

/** A native server with recording handlers; `on` customizes onMessage. */
function nativeServer(t, options, on = {}) {
  const rec = { conns: [], messages: [], errors: [], drains: 0, closes: [], results: [] };
  const server = new native.Server({});
  server.addEndpoint('/r', { codec: 0, ...options }, {
    onConnect: (conn) => { rec.conns.push(conn); return 0; },
    onMessage: (conn, kind, payload) => { rec.messages.push(String(payload)); on.message?.(conn, payload); },
    onClose: (conn, code) => { rec.closes.push(code); },
    onError: (conn, err) => { rec.errors.push(err); return on.verdict ?? false; },
    onDrain: () => { rec.drains += 1; },
  });
  const port = server.listen('127.0.0.1', 0);
  t.after(() => new Promise((resolve) => server.shutdown(200, () => { setImmediate(() => { server.destroy(); resolve(); }); })));
  rec.url = `ws://127.0.0.1:${port}/r`;
  return rec;
}

test('conn.fail hands onError the error itself, then closes with 1011', async (t) => {
  const boom = new Error('boom');
  const rec = nativeServer(t, {}, { message: (conn) => rec.results.push(conn.fail(boom)) });
  const ws = wsConnect(t, rec.url);
  await ws.opened;
  ws.send('go');
  const closed = await ws.closed;
  assert.equal(closed.code, 1011);
  assert.equal(closed.reason, 'internal error');
  assert.deepEqual(rec.results, [0]);
  assert.equal(rec.errors[0], boom);
});

test('conn.fail handled by onError keeps the connection open', async (t) => {
  const rec = nativeServer(t, {}, {
    verdict: true,
    message: (conn) => { rec.results.push(conn.fail(new Error('x'))); conn.sendText('still here'); },
  });
  const ws = wsConnect(t, rec.url);
  await ws.opened;
  ws.send('go');
  assert.equal((await ws.next()).text, 'still here');
  assert.deepEqual(rec.results, [1]);
});

test('conn.invalid applies the endpoint policy for a JS codec', async (t) => {
  const err = new wirecore.ValidationError('must be a number', { path: '/n', keyword: 'type' });
  const rec = nativeServer(t, {}, { message: (conn) => rec.results.push(conn.invalid(err), conn.invalid({ code: 'EHANDLER' })) });
  const ws = wsConnect(t, rec.url);
  await ws.opened;
  ws.send('x');
  assert.deepEqual(await ws.nextJson(), {
    type: 'error', error: 'validation_failed', path: '/n', keyword: 'type', message: 'must be a number',
  });
  assert.deepEqual(rec.results, [0, native.errors().find((r) => r.name === 'EINVAL').errno]);
  assert.equal(rec.errors[0], err);
});

test('held messages stop reading at maxQueuedMessages and resume at half', async (t) => {
  const rec = nativeServer(t, { maxQueuedMessages: 2 }, { message: (conn) => conn.hold() });
  const ws = wsConnect(t, rec.url);
  await ws.opened;
  ws.send('1');
  await until(() => rec.messages.length === 1);
  ws.send('2');
  await until(() => rec.messages.length === 2);
  for (let i = 3; i <= 7; i++) ws.send(String(i));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(rec.messages.length, 2, 'read past the bound');
  const conn = rec.conns[0];
  assert.equal(conn.queued(), 2);
  assert.equal(conn.consumed(1), 0);
  await until(() => rec.messages.length > 2);
  assert.equal(conn.consumed(conn.queued()), 0);
  await until(() => rec.messages.length === 7);
  assert.deepEqual(rec.messages, ['1', '2', '3', '4', '5', '6', '7']);
  assert.ok(conn.consumed(conn.queued() + 1) < 0);
});

test('onDrain follows a false writable()', async (t) => {
  const chunk = Buffer.alloc(65536, 120);
  const rec = nativeServer(t, { sendHighWater: 16384, maxBackpressure: 64 << 20 }, {
    message: (conn) => {
      for (let i = 0; i < 64; i++) {
        conn.sendBinary(chunk);
        if (!conn.writable()) { rec.results.push('waiting'); return; }
      }
    },
  });
  // uncompressed, so the repetitive chunks fill the socket as sent
  const ws = wsConnect(t, rec.url, { perMessageDeflate: false });
  await ws.opened;
  ws.send('go');
  await until(() => rec.results.length === 1);
  await until(() => rec.drains === 1);
  assert.ok(rec.conns[0].writable());
  assert.equal(rec.drains, 1);
});

test('maxQueuedMessages is an endpoint option', async (t) => {
  const app = await serve(t, (a) => a.websocket('/q', { maxQueuedMessages: 8 }, (m) => m));
  const ws = wsConnect(t, app.url('/q'));
  await ws.opened;
  ws.send('"hi"');
  assert.equal((await ws.next()).text, '"hi"');
});
