// Hardening options: maxMessageFragments (1009 past it) and sendTimeout
// (1008 for a client that stops reading), real server on 127.0.0.1, ws client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { wirecore, serve, wsConnect, until } from './helpers.mjs';

const { WebSocketResponse } = wirecore;
const echo = () => new WebSocketResponse({ onMessage: (m) => m });

test('maxMessageFragments closes a message of more frames with 1009', async (t) => {
  const app = await serve(t, (a) => a.websocket('/f', echo, { maxMessageFragments: 4 }));
  const ws = wsConnect(t, app.url('/f'));
  await ws.opened;
  for (const [i, part] of ['a', 'b', 'c', 'd'].entries()) ws.send(part, { fin: i === 3 });
  assert.equal((await ws.next()).text, 'abcd');
  for (const [i, part] of ['a', 'b', 'c', 'd', 'e'].entries()) ws.send(part, { fin: i === 4 });
  assert.equal((await ws.closed).code, 1009);
});

test('sendTimeout closes a client that stops reading', async (t) => {
  const app = await serve(t, (a) =>
    a.websocket('/s', echo, { sendTimeout: 300, pongTimeout: 300, maxPayload: 8 << 20 }));
  const sock = net.connect({ host: '127.0.0.1', port: app.port });
  t.after(() => sock.destroy());
  await new Promise((resolve) => sock.once('connect', resolve));
  sock.write('GET /s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  await new Promise((resolve) => sock.once('data', resolve));
  sock.pause(); // never read again
  const payload = Buffer.alloc(6 << 20, 0x78);
  const head = Buffer.alloc(14);
  head[0] = 0x82;
  head[1] = 0xff;
  head.writeBigUInt64BE(BigInt(payload.length), 2); // mask bytes stay 0
  sock.write(Buffer.concat([head, payload]));
  await until(() => app.connectionCount === 0, 5000,
    'the stalled connection was not dropped');
});
