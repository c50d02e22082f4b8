// Metrics, health and logs (docs/operations.md): /metrics and /health over
// real HTTP against traffic made here, app.stats(), health 503 while
// draining on a metrics port, handler timing of async handlers, and the
// 'log' event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { wirecore, serve, wsConnect, until, sleep } from './helpers.mjs';

const { WebSocketResponse } = wirecore;

function get(port, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
}

/** The value of one sample line: `name{labels} value`. */
function sample(text, series) {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const echo = (app) => app.websocket('/echo', () => new WebSocketResponse({ onMessage: (m) => m }));

test('metrics count connections, messages, bytes and close codes exactly', async (t) => {
  const app = await serve(t, echo, { metricsPath: '/metrics', healthPath: '/health' });
  for (let i = 0; i < 3; i++) {
    const ws = wsConnect(t, app.url('/echo'));
    await ws.opened;
    for (let k = 0; k < 4; k++) {
      ws.send('hello');
      assert.equal((await ws.next()).text, 'hello');
    }
    ws.close(i === 2 ? 4001 : 1000);
    await ws.closed;
  }
  await until(() => app.stats().connections === 0);
  const r = await get(app.port, '/metrics');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(sample(r.body, 'wirecore_connections_total{path="/echo"}'), 3);
  assert.equal(sample(r.body, 'wirecore_messages_received_total{path="/echo"}'), 12);
  assert.equal(sample(r.body, 'wirecore_received_bytes_total{path="/echo"}'), 60);
  assert.equal(sample(r.body, 'wirecore_sent_bytes_total{path="/echo"}'), 60);
  assert.equal(sample(r.body, 'wirecore_connections_closed_total{path="/echo",code="1000"}'), 2);
  assert.equal(sample(r.body, 'wirecore_connections_closed_total{path="/echo",code="app"}'), 1);
  assert.equal(sample(r.body, 'wirecore_handshakes_total{status="101"}'), 3);
  assert.equal(sample(r.body, 'wirecore_handler_duration_seconds_count{path="/echo"}'), 12);
  const stats = app.stats();
  assert.equal(stats.connections_total, 3);
  assert.equal(stats.messages_out, 12);
  assert.deepEqual(stats.endpoints['/echo'].close_codes, { 1000: 2, app: 1 });
  assert.equal(stats.broker, null);
  assert.match(app.metrics(), /^# HELP wirecore_workers/);
  const h = await get(app.port, '/health');
  assert.equal(h.status, 200);
  assert.deepEqual(JSON.parse(h.body), { status: 'ok', connections: 0, broker: 'none' });
});

test('an async handler is timed until its promise settles', async (t) => {
  const app = await serve(t, (a) => a.websocket('/slow', () => new WebSocketResponse({
    onMessage: async (m) => { await sleep(30); return m; },
  })));
  const ws = wsConnect(t, app.url('/slow'));
  await ws.opened;
  for (let k = 0; k < 3; k++) {
    ws.send('x');
    await ws.next();
  }
  const ep = app.stats().endpoints['/slow'];
  assert.equal(ep.handler_count, 3);
  assert.ok(ep.handler_seconds >= 0.08, `handler_seconds ${ep.handler_seconds}`);
});

test('a metrics port answers 503 on /health while the app drains', async (t) => {
  const app = await serve(t, echo, { metricsPort: 0 });
  assert.ok(app.metricsPort > 0 && app.metricsPort !== app.port);
  const ws = wsConnect(t, app.url('/echo'));
  await ws.opened;
  assert.equal((await get(app.metricsPort, '/health')).status, 200);
  assert.equal((await get(app.metricsPort, '/echo')).status, 404);
  assert.equal((await get(app.port, '/metrics')).status, 400); // no paths on the WebSocket port
  const drained = app.drain({ timeout: 5000 });
  const h = await get(app.metricsPort, '/health');
  assert.equal(h.status, 503);
  assert.deepEqual(JSON.parse(h.body), { status: 'draining', connections: 1, broker: 'none' });
  ws.close();
  await drained;
});

test("'log' events report open, close, reject and error", async (t) => {
  const events = [];
  const app = await serve(t, (a) => {
    echo(a);
    a.on('log', (e) => events.push(e));
  });
  const ws = wsConnect(t, app.url('/echo'));
  await ws.opened;
  ws.send('abc');
  await ws.next();
  ws.close(1000);
  await ws.closed;
  const bad = wsConnect(t, app.url('/missing'));
  await assert.rejects(bad.opened, /HTTP 404/);
  await until(() => events.some((e) => e.event === 'close') && events.some((e) => e.event === 'reject'));
  const open = events.find((e) => e.event === 'open');
  assert.equal(open.level, 'info');
  assert.equal(open.path, '/echo');
  assert.equal(open.remote, '127.0.0.1');
  const close = events.find((e) => e.event === 'close');
  assert.equal(close.code, 1000);
  assert.equal(close.bytesIn, 3);
  assert.equal(close.bytesOut, 3);
  assert.ok(close.duration >= 0);
  assert.equal(events.find((e) => e.event === 'reject').status, 404);
});

test('bad metrics paths are refused at construction', () => {
  assert.throws(() => new wirecore.App({ metricsPath: 'metrics' }), /EINVAL|invalid/);
});
