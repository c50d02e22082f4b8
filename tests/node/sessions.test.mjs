// The session rules of docs/sessions.md against the real `ws` client: flow
// control of awaited sends, the backpressure limit of sends that are not
// awaited, and the bounded inbox of a stream handler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageDir, serve, wsConnect, withTimeout, sleep } from './helpers.mjs';

const MESSAGES = 2000;
const SIZE = 4096;

/** A process's resident set size in bytes, from /proc. */
function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

function pushRoutes(options = {}) {
  return (a) => {
    a.websocket('/push', { stream: true, ...options }, async (socket) => {
      await socket.receive();
      const filler = 'x'.repeat(SIZE - 5);
      for (let i = 0; i < MESSAGES; i++) await socket.sendText(String(i).padStart(5, '0') + filler);
      await socket.sendText('done');
      for await (const _ of socket); // eslint-disable-line no-unused-vars
    });
    a.websocket('/flood', { stream: true }, async (socket) => {
      await socket.receive();
      const filler = 'y'.repeat(SIZE);
      for (let i = 0; i < MESSAGES * 4; i++) socket.sendText(filler); // not awaited
    });
  };
}

/** Reads every message, pausing the socket 2 ms after every 20: a slow reader. */
function slowReader(ws) {
  const got = [];
  let resolveDone;
  const done = new Promise((resolve) => { resolveDone = resolve; });
  ws.on('message', (data) => {
    const text = data.toString('utf8');
    if (text === 'done') {
      resolveDone(got);
      return;
    }
    got.push(text);
    if (got.length % 20 === 0) {
      ws.pause();
      setTimeout(() => ws.resume(), 2);
    }
  });
  return done;
}

for (const [name, options] of [['default options', {}], ['a large limit', { maxBackpressure: 64 << 20 }]]) {
  test(`awaited sends reach a slow reader in full with ${name}`, async (t) => {
    const app = await serve(t, pushRoutes(options));
    const ws = wsConnect(t, app.url('/push'));
    await ws.opened;
    const done = slowReader(ws);
    ws.send('go');
    const got = await withTimeout(done, 30000, 'not every message arrived');
    assert.equal(got.length, MESSAGES);
    got.forEach((text, i) => {
      assert.equal(text.length, SIZE);
      assert.equal(text.slice(0, 5), String(i).padStart(5, '0'));
    });
  });
}

test('sends that are not awaited past maxBackpressure close with 1008', async (t) => {
  const app = await serve(t, pushRoutes());
  // uncompressed, so the repetitive messages fill the socket as sent
  const ws = wsConnect(t, app.url('/flood'), { perMessageDeflate: false });
  await ws.opened;
  let received = 0;
  ws.on('message', () => { received++; });
  ws.pause(); // not reading: the server's queue fills up
  ws.send('go');
  await sleep(500);
  ws.resume();
  const { code } = await withTimeout(ws.closed, 30000, 'no close');
  assert.equal(code, 1008);
  assert.ok(received < MESSAGES * 4);
});

// The server runs in a child process so that its RSS is measured apart from
// the client's. It checks the order itself and answers 'all' or what broke.
const SLOW_SERVER = `
  const { App } = await import(process.env.WIRECORE_PKG);
  const total = Number(process.env.TOTAL);
  const app = new App();
  app.websocket('/slow', { stream: true }, async (socket) => {
    let n = 0;
    await new Promise((r) => setTimeout(r, 1000)); // the peer floods meanwhile
    for await (const msg of socket) {
      if (Number(msg.asText().slice(0, 6)) !== n) { socket.sendText('out of order at ' + n); return; }
      n++;
      if (n % 1000 === 0) await new Promise((r) => setTimeout(r, 5)); // slower than its peer
      if (n === total) socket.sendText('all');
    }
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  console.log(app.port);
`;

test('a flooded slow stream handler stays bounded and gets everything in order', async (t) => {
  const total = 100000;
  const child = spawn(process.execPath, ['--input-type=module', '-e', SLOW_SERVER], {
    env: {
      ...process.env,
      WIRECORE_PKG: path.join(packageDir, 'index.mjs'),
      TOTAL: String(total),
      // Under AddressSanitizer (30-node.sh runs the suite again so) freed
      // memory sits in a quarantine that is not the server's to bound.
      ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=0'].filter(Boolean).join(':'),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => child.kill());
  const port = await withTimeout(new Promise((resolve) => {
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
  }), 10000, 'the server did not start');
  const ws = wsConnect(t, `ws://127.0.0.1:${port}/slow`);
  await ws.opened;
  const base = rss(child.pid);
  let peak = base;
  const filler = 'f'.repeat(1018);
  for (let i = 0; i < total; i++) {
    ws.send(String(i).padStart(6, '0') + filler); // 1 KiB each
    if (i % 2000 === 0) peak = Math.max(peak, rss(child.pid));
    while (ws.bufferedAmount > 1 << 20) await sleep(1); // the client's own flow control
  }
  assert.equal((await ws.next(60000)).text, 'all');
  peak = Math.max(peak, rss(child.pid));
  t.diagnostic(`server RSS grew by ${(peak - base) >> 10} KiB over ${total} messages`);
  assert.ok(peak - base < 64 * 1024 * 1024, `RSS grew by ${(peak - base) >> 20} MiB`);
});

function errorRoutes(a) {
  const echoUntilBoom = async (socket) => {
    for await (const msg of socket) {
      if (msg.asText() === 'boom') throw new RangeError('boom');
      await socket.send(msg);
    }
  };
  a.websocket('/handled', { stream: true, onError: (err) => `handled ${err.message}` }, echoUntilBoom);
  a.websocket('/bare', { stream: true }, echoUntilBoom);
  a.websocket('/typed', {
    messageSchema: { type: 'object' },
    onError: () => { throw new Error('the error handler itself fails'); },
  }, (message) => message);
}

test('a stream exception goes to onError, then the connection closes with 1000', async (t) => {
  const app = await serve(t, errorRoutes);
  const ws = wsConnect(t, app.url('/handled'));
  await ws.opened;
  ws.send('a');
  assert.equal((await ws.next()).text, 'a');
  ws.send('boom');
  assert.equal((await ws.next()).text, 'handled boom');
  assert.equal((await withTimeout(ws.closed, 5000)).code, 1000);
});

test('an unhandled exception closes only its connection with 1011', async (t) => {
  const app = await serve(t, errorRoutes);
  const a = wsConnect(t, app.url('/bare'));
  const b = wsConnect(t, app.url('/bare'));
  await Promise.all([a.opened, b.opened]);
  a.send('boom');
  assert.equal((await withTimeout(a.closed, 5000)).code, 1011);
  b.send('still here');
  assert.equal((await b.next()).text, 'still here');
});

test('an onError that throws leaves the invalid message to the policy', async (t) => {
  const app = await serve(t, errorRoutes);
  const ws = wsConnect(t, app.url('/typed'));
  await ws.opened;
  ws.send('5');
  const reply = await ws.nextJson();
  assert.equal(reply.type, 'error');
  assert.equal(reply.error, 'validation_failed');
  ws.send('{"n":1}');
  assert.deepEqual(await ws.nextJson(), { n: 1 });
});
