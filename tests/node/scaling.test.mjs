// new App({ broker }) against a real redis-server, and app.listen({ port,
// workers }) on node:cluster: a real primary with real worker processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { wirecore, packageDir, WebSocket, until, untilAsync, freePort, startRedis } from './helpers.mjs';

const { App, WebSocketResponse, WirecoreError } = wirecore;
const echo = () => new WebSocketResponse({ onMessage: (m) => m });

// One echo through the shared port. A connection the kernel queued on a
// worker's listening socket in the instant that worker closes it is reset
// (SO_REUSEPORT does not move it to the other listeners unless the machine
// sets net.ipv4.tcp_migrate_req): a client retries that once, as this does.
async function echoOnce(port) {
  try {
    return await echoAttempt(port);
  } catch (err) {
    if (err.code !== 'ECONNRESET') throw err;
    return echoAttempt(port);
  }
}

function echoAttempt(port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('timeout')); }, 5000);
    ws.on('open', () => ws.send('hi'));
    ws.on('message', (data) => { clearTimeout(timer); ws.close(); resolve(String(data)); });
    ws.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

test('a broker URL connects to Redis and reports the state once', async (t) => {
  const url = await startRedis(t);
  const app = new App({ broker: url });
  const events = [];
  app.on('broker', (e) => events.push(e));
  app.websocket('/echo', echo);
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  await until(() => app.brokerStats().state === 'up', 5000);
  assert.equal(app.brokerStats().dropped, 0);
  assert.equal(events.length, 1);
  assert.equal(events[0].state, 'up');
  assert.match(events[0].message, /^connected to Redis at 127\.0\.0\.1:/);
  assert.equal(await echoOnce(app.port), 'hi');
});

test('a bad broker URL is refused at once, with the reason', () => {
  assert.throws(() => new App({ broker: 'http://127.0.0.1' }),
    (err) => err instanceof WirecoreError && err.code === 'EINVAL' && /redis:\/\//.test(err.message));
  assert.equal(new App().brokerStats(), null);
});

test('an app with a broker that never listened closes cleanly', async () => {
  const app = new App({ broker: 'redis://127.0.0.1:1' });
  await app.close();
});

function children(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The socket inodes a process holds (from /proc/PID/fd). */
function sockets(pid) {
  const out = new Set();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

test('listen({ workers }) supervises node:cluster workers sharing the port', async (t) => {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wirecore-workers-'));
  const script = path.join(dir, 'served.mjs');
  fs.writeFileSync(script, `
    import { pathToFileURL } from 'node:url';
    const { App, WebSocketResponse } = await import(pathToFileURL(${JSON.stringify(path.join(packageDir, 'index.mjs'))}).href);
    const app = new App();
    app.websocket('/echo', () => new WebSocketResponse({ onMessage: (m) => m }));
    await app.listen({ host: '127.0.0.1', port: ${port}, workers: 2 });
  `);
  let log = '';
  const proc = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => proc.kill('SIGKILL'));
  await until(() => children(proc.pid).length === 2 && (log.match(/started/g) ?? []).length === 2, 10000);
  await untilAsync(async () => (await echoOnce(port).catch(() => '')) === 'hi', 10000);
  const before = children(proc.pid);
  for (let i = 0; i < 10; i++) assert.equal(await echoOnce(port), 'hi');
  // each worker listens on a socket the primary keeps for its place
  const kept = sockets(proc.pid);
  for (const pid of before) {
    assert.ok([...sockets(pid)].some((s) => kept.has(s)), `worker ${pid} listens on the primary's socket`);
  }
  process.kill(before[0], 'SIGKILL');
  // opened while that place has no worker: queued on its socket, served by the replacement
  const queued = await Promise.all(Array.from({ length: 10 }, () => echoOnce(port)));
  assert.deepEqual(queued, Array(10).fill('hi'));
  await until(() => log.includes('restarting in'), 5000);
  await until(() => children(proc.pid).length === 2 && !children(proc.pid).includes(before[0]), 5000);
  process.kill(proc.pid, 'SIGHUP');
  while (!log.includes('all 2 workers replaced')) assert.equal(await echoOnce(port), 'hi');
  await until(() => children(proc.pid).length === 2
    && children(proc.pid).every((p) => !before.includes(p)), 10000);
  assert.equal(await echoOnce(port), 'hi');
  process.kill(proc.pid, 'SIGTERM');
  const { code } = await exited;
  assert.equal(code, 0, log);
  assert.match(log, /all workers stopped/);
});
