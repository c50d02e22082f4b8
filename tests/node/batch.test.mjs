// Messages that arrive in one read (the client corks its socket, so many
// frames reach the server in one TCP write): the addon runs them in one
// callback scope (docs/node.md, "Ordering and async handlers"). Replies,
// promise jobs and nextTicks of every message still run, in order; async
// handlers keep per-connection order; the handler histogram counts every
// message with its own time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wirecore, serve, wsConnect } from './helpers.mjs';

const { WebSocketResponse } = wirecore;

/** Send texts in one write: the server reads them together. */
function sendCorked(ws, texts) {
  ws._socket.cork();
  for (const s of texts) ws.send(s);
  ws._socket.uncork();
}

async function collect(ws, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await ws.next()).text);
  return out;
}

const range = (n, f) => Array.from({ length: n }, (_, i) => f(i));

test('one read of many messages: replies, promise jobs and nextTicks all run, in order', async (t) => {
  const app = await serve(t, (a) => a.websocket('/b', () => new WebSocketResponse({
    onMessage: (m, socket) => {
      queueMicrotask(() => socket.send(`m${m.data}`));
      process.nextTick(() => socket.send(`t${m.data}`));
      return `r${m.data}`;
    },
  })));
  const ws = wsConnect(t, app.url('/b'));
  await ws.opened;
  const n = 50;
  sendCorked(ws, range(n, String));
  const got = await collect(ws, 3 * n);
  for (const p of ['r', 'm', 't']) {
    assert.deepEqual(got.filter((s) => s[0] === p), range(n, (i) => `${p}${i}`), `${p} replies`);
  }
  for (let i = 0; i < n; i++) {
    assert.ok(got.indexOf(`r${i}`) < got.indexOf(`m${i}`), `m${i} before r${i}`);
  }
  assert.deepEqual(app.reported, []);
});

test('async handlers over one read keep the order of their connection', async (t) => {
  let running = 0;
  let overlap = false;
  const app = await serve(t, (a) => a.websocket('/a', () => new WebSocketResponse({
    onMessage: async (m) => {
      overlap ||= running > 0;
      running++;
      await null;
      if (Number(m.data) % 7 === 0) await new Promise((r) => setImmediate(r));
      running--;
      return m.data;
    },
  })));
  const ws = wsConnect(t, app.url('/a'));
  await ws.opened;
  const n = 100;
  sendCorked(ws, range(n, String));
  assert.deepEqual(await collect(ws, n), range(n, String));
  assert.equal(overlap, false, 'two handlers of one connection ran at once');
});

test('the handler histogram counts every message of a read with its own time', async (t) => {
  const busy = (ms) => { const end = performance.now() + ms; while (performance.now() < end); };
  const app = await serve(t, (a) => a.websocket('/h', () => new WebSocketResponse({
    onMessage: (m) => { if (m.data.startsWith('slow')) busy(3); return m; },
  })));
  const ws = wsConnect(t, app.url('/h'));
  await ws.opened;
  // Fast ones after slow ones: a fast handler must not be charged a slow one's time.
  const texts = range(20, (i) => (i % 2 ? `fast${i}` : `slow${i}`));
  sendCorked(ws, texts);
  assert.deepEqual(await collect(ws, 20), texts);
  const text = app.metrics();
  const value = (series) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return Number(line.slice(series.length + 1));
  };
  assert.equal(value('wirecore_handler_duration_seconds_count{path="/h"}'), 20);
  // 10 handlers took 3 ms, 10 far less (2.5 ms leaves room for a busy machine).
  assert.equal(value('wirecore_handler_duration_seconds_bucket{path="/h",le="0.0025"}'), 10);
  const sum = value('wirecore_handler_duration_seconds_sum{path="/h"}');
  assert.ok(sum >= 0.03 && sum < 1, `sum ${sum}`);
});
