// Shared helpers of the Node test suite: the package under test (the
// repository's packages/node, or WIRECORE_PACKAGE), the real `ws` client and
// small waiting utilities with timeouts, so a failing test never hangs; free
// ports and a real redis-server for the tests that start processes.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
export const packageDir = process.env.WIRECORE_PACKAGE
  ? path.resolve(process.env.WIRECORE_PACKAGE)
  : path.resolve(here, '..', '..', 'packages', 'node');
export const wirecore = await import(pathToFileURL(path.join(packageDir, 'index.mjs')).href);
export const wirecoreCjs = createRequire(import.meta.url)(path.join(packageDir, 'index.js'));
export { WebSocket };

/** An App listening on 127.0.0.1:<free port>, closed by t.after. */
export async function serve(t, setup, options = {}) {
  const app = new wirecore.App(options);
  const reported = [];
  app.on('error', (err) => reported.push(err));
  app.reported = reported;
  setup(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close({ timeout: 1000 }));
  return app;
}

/** A connected `ws` client with a message queue: await c.next(). */
export function wsConnect(t, url, options = {}) {
  const { protocols, ...rest } = options;
  const ws = new WebSocket(url, protocols, rest);
  const queue = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary, text: isBinary ? undefined : data.toString('utf8') };
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.next = (timeout = 5000) => {
    if (queue.length) return Promise.resolve(queue.shift());
    return withTimeout(new Promise((resolve) => waiters.push(resolve)), timeout, 'no message');
  };
  ws.nextJson = async (timeout) => JSON.parse((await ws.next(timeout)).text);
  ws.opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => {
      const err = new Error(`HTTP ${res.statusCode}`);
      err.status = res.statusCode;
      reject(err);
      req.destroy();
    });
  });
  t.after(() => ws.terminate());
  return ws;
}

export function withTimeout(promise, ms, what = 'timed out') {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once fn() is truthy (polled), or rejects after `ms`. */
export async function until(fn, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await sleep(5);
  }
}

/** Like until(), for an async condition. */
export async function untilAsync(fn, ms, what = 'condition') {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for servers started
 * as processes; an App in the test listens on port 0 itself). */
export async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A real redis-server on a free port, without persistence, killed by
 * t.after; resolves to its 'redis://127.0.0.1:PORT/0' URL once it accepts. */
export async function startRedis(t) {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' });
  t.after(() => proc.kill('SIGKILL'));
  await untilAsync(() => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  }), 5000);
  return `redis://127.0.0.1:${port}/0`;
}
