// A handler that never finishes learns that its connection ended through
// socket.signal (an AbortSignal): the client floods it, then resets or closes
// (the core stops reading the paused connection yet notices its peer leave).
// Also the messageTimeout and maxBufferedBytes options. Real server on
// 127.0.0.1, raw sockets and the ws client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { wirecore, serve, wsConnect, until } from './helpers.mjs';

const { WebSocketResponse } = wirecore;

const UPGRADE = 'GET /hang HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** A masked client frame (a zero mask keeps the payload as is). */
function frame(payload, { opcode = 0x1, fin = true } = {}) {
  const n = payload.length;
  const head = n < 126 ? Buffer.alloc(6) : n < 65536 ? Buffer.alloc(8) : Buffer.alloc(14);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (n < 126) head[1] = 0x80 | n;
  else if (n < 65536) { head[1] = 0x80 | 126; head.writeUInt16BE(n, 2); }
  else { head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(n), 2); }
  return Buffer.concat([head, payload]);
}

/** An endpoint whose handler waits for ever unless its socket's signal aborts. */
function hungApp(options = {}) {
  const seen = { started: 0, aborted: [] };
  const setup = (a) => a.websocket('/hang', () => new WebSocketResponse({
    onMessage: (m, socket) => new Promise((resolve, reject) => {
      seen.started++;
      socket.signal.addEventListener('abort', () => {
        seen.aborted.push(socket.signal.reason);
        reject(socket.signal.reason);
      });
    }),
  }), options);
  return { seen, setup };
}

async function rawClient(t, port) {
  const sock = net.connect({ host: '127.0.0.1', port });
  t.after(() => sock.destroy());
  await new Promise((resolve) => sock.once('connect', resolve));
  sock.write(UPGRADE);
  const head = await new Promise((resolve) => sock.once('data', resolve));
  assert.match(head.toString('latin1'), /^HTTP\/1\.1 101/);
  return sock;
}

test('a hung handler is aborted when its client resets after a flood', async (t) => {
  const { seen, setup } = hungApp();
  const app = await serve(t, setup);
  const sock = await rawClient(t, app.port);
  sock.write(frame(Buffer.from('first')));
  await until(() => seen.started === 1, 5000, 'the handler did not start');
  const big = frame(Buffer.alloc(64 * 1024 - 2, 0x78));
  for (let i = 0; i < 200; i++) sock.write(big); // the core parks them and stops reading
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(seen.aborted.length, 0);
  sock.resetAndDestroy(); // RST
  await until(() => seen.aborted.length === 1, 5000, 'the reset went unnoticed');
  assert.ok(seen.aborted[0] instanceof wirecore.ConnectionClosedError);
  assert.equal(seen.aborted[0].closeCode, 1006);
  await until(() => app.connectionCount === 0, 5000, 'the connection stayed');
});

test('a hung handler is aborted when its client closes', async (t) => {
  const { seen, setup } = hungApp({ pongTimeout: 500 });
  const app = await serve(t, setup);
  const ws = wsConnect(t, app.url('/hang'));
  await ws.opened;
  ws.send('first');
  await until(() => seen.started === 1, 5000, 'the handler did not start');
  ws.send('second'); // waits in the core behind the hung handler
  await new Promise((resolve) => setTimeout(resolve, 100));
  ws.close(1000);
  // ws waits 30 s for the close reply the hung server cannot read; give up
  // sooner (as browsers do), which sends our FIN behind the close frame
  await new Promise((resolve) => setTimeout(resolve, 100));
  ws.terminate();
  await until(() => seen.aborted.length === 1, 5000, 'the handler was not aborted');
});

test('signal is not aborted while the connection is open, and is once it closed', async (t) => {
  let socketSeen;
  const app = await serve(t, (a) => a.websocket('/e', () => new WebSocketResponse({
    onMessage: (m, socket) => { socketSeen = socket; return m; },
  })));
  const ws = wsConnect(t, app.url('/e'));
  await ws.opened;
  ws.send('x');
  assert.equal((await ws.next()).text, 'x');
  assert.equal(socketSeen.signal.aborted, false);
  ws.close(1000);
  await until(() => socketSeen.signal.aborted, 5000, 'signal not aborted at the close');
  assert.equal(socketSeen.signal.reason.closeCode, 1000);
});

test('messageTimeout closes a message kept open with 1008', async (t) => {
  const app = await serve(t, (a) => a.websocket('/hang', () => new WebSocketResponse({
    onMessage: (m) => m,
  }), { messageTimeout: 200 }));
  const sock = await rawClient(t, app.port);
  sock.write(frame(Buffer.from('ab'), { fin: false }));
  await new Promise((resolve) => setTimeout(resolve, 400));
  const reply = new Promise((resolve) => sock.once('data', resolve));
  sock.write(frame(Buffer.from('c'), { opcode: 0x0 }));
  const data = await reply;
  assert.equal(data[0], 0x88);
  assert.equal(data.readUInt16BE(2), 1008);
});

test('maxBufferedBytes is an app option (Infinity: no budget)', async (t) => {
  for (const maxBufferedBytes of [1 << 20, Infinity]) {
    const app = await serve(t, (a) => a.websocket('/e', () => new WebSocketResponse({
      onMessage: (m) => m,
    })), { maxBufferedBytes });
    const ws = wsConnect(t, app.url('/e'));
    await ws.opened;
    ws.send('x');
    assert.equal((await ws.next()).text, 'x');
  }
  assert.throws(() => new wirecore.App({ maxBufferedBytes: -1 }), /maxBufferedBytes/);
});
