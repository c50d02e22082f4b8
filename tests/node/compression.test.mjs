// permessage-deflate through the Node package: the `ws` client with
// perMessageDeflate negotiates each mode, large messages round-trip, the
// server's frames are compressed on the wire, bad options are refused.
// Real server on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import { wirecore, serve, wsConnect, until } from './helpers.mjs';

const { WebSocketResponse, ProtocolError } = wirecore;
const echo = () => new WebSocketResponse({ onMessage: (m) => m });
const SHARED = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

function chat(n) {
  const items = [];
  while (JSON.stringify(items).length < n) {
    const i = items.length;
    items.push({ user: `user${i % 7}`, room: 'lobby', text: `message number ${i} here` });
  }
  return JSON.stringify(items);
}

/** The Sec-WebSocket-Extensions header of the 101 ('' when none). */
const answered = (ws) =>
  new Promise((resolve) => ws.once('upgrade', (res) => resolve(res.headers['sec-websocket-extensions'] ?? '')));

test('shared mode is negotiated by default and large messages round-trip', async (t) => {
  const app = await serve(t, (a) => a.websocket('/e', echo));
  const ws = wsConnect(t, app.url('/e'), { perMessageDeflate: true, maxPayload: 0 });
  const answer = answered(ws);
  await ws.opened;
  assert.equal(ws.extensions, 'permessage-deflate');
  assert.equal(await answer, SHARED);
  for (const n of [10, 2000, 200000]) {
    const msg = chat(n);
    ws.send(msg);
    assert.equal((await ws.next()).text, msg);
  }
  const bin = Buffer.alloc(50000, 7);
  ws.send(bin);
  assert.deepEqual((await ws.next()).data, bin);
  ws.close();
});

test('dedicated mode keeps context takeover', async (t) => {
  const app = await serve(t, (a) =>
    a.websocket('/d', echo, { compression: 'dedicated', compressionWindowBits: 11 }));
  const ws = wsConnect(t, app.url('/d'), { perMessageDeflate: true });
  const answer = answered(ws);
  await ws.opened;
  assert.equal(ws.extensions, 'permessage-deflate');
  assert.equal(await answer, 'permessage-deflate; client_max_window_bits=11');
  for (let i = 0; i < 5; i++) {
    const msg = chat(3000);
    ws.send(msg);
    assert.equal((await ws.next()).text, msg);
  }
  ws.close();
});

test("compression: 'off' declines", async (t) => {
  const app = await serve(t, (a) => a.websocket('/o', echo, { compression: 'off' }));
  const ws = wsConnect(t, app.url('/o'), { perMessageDeflate: true });
  await ws.opened;
  assert.equal(ws.extensions, '');
  ws.send('plain');
  assert.equal((await ws.next()).text, 'plain');
  ws.close();
});

/** Handshake with an offer, one masked text frame; the 101 and the reply frame. */
async function rawExchange(port, offer, payload) {
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => sock.once('connect', resolve));
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
  const wait = async (pred) => {
    for (let i = 0; i < 500 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(pred(), 'no reply');
  };
  sock.write('GET /e HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
    `Sec-WebSocket-Extensions: ${offer}\r\n\r\n`);
  await wait(() => buf.indexOf('\r\n\r\n') >= 0);
  const end = buf.indexOf('\r\n\r\n') + 4;
  const head = buf.subarray(0, end).toString();
  buf = buf.subarray(end);
  const h = Buffer.from([0x81, 0xfe, payload.length >> 8, payload.length & 255, 0, 0, 0, 0]);
  sock.write(Buffer.concat([h, payload])); // a zero mask
  await wait(() => buf.length >= 4 && buf.length >= 4 + buf.readUInt16BE(2));
  sock.destroy();
  return { head, b0: buf[0], body: buf.subarray(4, 4 + buf.readUInt16BE(2)) };
}

test('the server frame is compressed on the wire', async (t) => {
  const app = await serve(t, (a) => a.websocket('/e', echo));
  const msg = Buffer.from(chat(4000));
  const { head, b0, body } = await rawExchange(app.port, 'permessage-deflate', msg);
  assert.ok(head.includes(`Sec-WebSocket-Extensions: ${SHARED}`), head);
  assert.equal(b0, 0xc1);
  assert.ok(body.length < msg.length / 3, `${body.length} of ${msg.length}`);
  const out = zlib.inflateRawSync(Buffer.concat([body, Buffer.from([0, 0, 0xff, 0xff])]),
    { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual(out, msg);
});

test('compressionThreshold keeps shorter messages plain', async (t) => {
  const app = await serve(t, (a) => a.websocket('/e', echo, { compressionThreshold: 100000 }));
  const msg = Buffer.from(chat(4000));
  const { b0, body } = await rawExchange(app.port, 'permessage-deflate', msg);
  assert.equal(b0, 0x81);
  assert.deepEqual(body, msg);
});

/** Handshake offering permessage-deflate, one short masked frame (first byte
 * b0); the server's first frame, assumed short (a close). */
async function rawShortFrame(port, b0, payload) {
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => sock.once('connect', resolve));
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
  sock.write('GET /e HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
    'Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n');
  await until(() => buf.indexOf('\r\n\r\n') >= 0, 5000, 'the 101');
  buf = buf.subarray(buf.indexOf('\r\n\r\n') + 4);
  sock.write(Buffer.concat([Buffer.from([b0, 0x80 | payload.length, 0, 0, 0, 0]), payload]));
  await until(() => buf.length >= 2 && buf.length >= 2 + (buf[1] & 0x7f), 5000, 'a reply frame');
  sock.destroy();
  return { b0: buf[0], body: buf.subarray(2, 2 + (buf[1] & 0x7f)) };
}

test('corrupt compressed data closes 1007 and reaches onError as corrupt, not as bad UTF-8', async (t) => {
  const errors = [];
  const app = await serve(t, (a) => a.websocket('/e', () => new WebSocketResponse({
    onMessage: (m) => m,
    onError: (err) => { errors.push(err); },
  })));
  const junk = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x11]);
  const { b0, body } = await rawShortFrame(app.port, 0xc1, junk);
  assert.equal(b0, 0x88);
  assert.equal(body.readUInt16BE(0), 1007);
  await until(() => errors.length === 1);
  assert.ok(errors[0] instanceof ProtocolError);
  assert.equal(errors[0].code, 'EPROTOCOL');
  assert.match(errors[0].message, /permessage-deflate: the compressed data is corrupt/);
});

test('bad compression options are refused', async (t) => {
  const app = new wirecore.App();
  assert.throws(() => app.websocket('/x', echo, { compression: 'fast' }), /compression must be/);
  assert.throws(() => app.websocket('/y', echo, { compression: 'dedicated', compressionWindowBits: 20 }));
});
