'use strict';
// Workers on node:cluster conventions. The primary forks N workers that run
// the same script, each with its own App; they listen on the same port with
// SO_REUSEPORT (WIRECORE_REUSEPORT=1, read by the core). The listening
// sockets are the primary's, one per worker place (WIRECORE_LISTEN_FD): a
// replacement takes over the very socket of the worker it replaces, so what
// waits in its queue is served, never reset. The primary restarts a worker
// that dies (backoff while they keep dying young), passes SIGINT/SIGTERM on
// and exits once all are gone, and on SIGHUP replaces the workers one at a
// time: a replacement first listens, then the old one drains (app.drain():
// the backlog is served, nothing is refused).
const cluster = require('node:cluster');
const fs = require('node:fs');
const { native } = require('./native');

const YOUNG_MS = 1000;
const KEEP_QUEUE_MS = 1000; // a place restarting later than this closes its socket
const log = (line) => console.error(`wirecore: ${line}`);

function isPrimary() {
  return cluster.isPrimary;
}

/** In a worker: report listening to the primary, drain or close on its signals. */
function listening(app) {
  if (!cluster.isWorker || process.env.WIRECORE_REUSEPORT !== '1') return;
  process.send({ wirecore: 'listening' });
  const exit = (p) => p.then(() => process.exit(0));
  process.once('SIGHUP', () => exit(app.drain()));
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => exit(app.close()));
}

/**
 * In the primary: fork and supervise n workers until SIGINT/SIGTERM.
 * Resolves once every worker listens.
 */
function supervise(n, { restartMin = 100, restartMax = 5000, host = '127.0.0.1', port } = {}) {
  const slots = Array.from({ length: n }, () => ({ worker: null, delay: restartMin, started: 0, fd: -1 }));
  const closeSocket = (slot) => {
    if (slot.fd >= 0) fs.closeSync(slot.fd);
    slot.fd = -1;
  };
  // A worker inherits the usual stdio and IPC channel, then its place's socket.
  const base = cluster.settings.stdio ??
    (cluster.settings.silent ? ['pipe', 'pipe', 'pipe', 'ipc'] : [0, 1, 2, 'ipc']);
  for (const slot of slots) slot.fd = native.listenSocket(host, port); // throws EADDRINUSE etc. at once
  let stopping = false;
  let rolling = false;
  let hupPending = false;
  let firstReady = null;
  const ready = new Promise((resolve) => { firstReady = resolve; });

  const spawn = (i) => new Promise((resolve) => {
    const env = { WIRECORE_REUSEPORT: '1', WIRECORE_WORKER_INDEX: String(i) };
    try {
      if (slots[i].fd < 0) slots[i].fd = native.listenSocket(host, port);
    } catch (err) { // the worker binds a socket of its own
      log(`worker ${i}: no listening socket kept for it (${err.message})`);
    }
    if (slots[i].fd >= 0) env.WIRECORE_LISTEN_FD = String(base.length);
    cluster.setupPrimary({ stdio: slots[i].fd >= 0 ? [...base, slots[i].fd] : base });
    const w = cluster.fork(env);
    w.wirecoreSlot = i;
    w.once('message', (m) => { if (m && m.wirecore === 'listening') resolve(w); });
    w.once('exit', () => resolve(null));
    log(`worker ${i} started (pid ${w.process.pid})`);
    slots[i].started = Date.now();
    slots[i].worker = w;
  });

  cluster.on('exit', (w, code, signal) => {
    const i = w.wirecoreSlot;
    const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
    if (w.wirecoreRetired) { log(`drained worker (pid ${w.process.pid}) ${how}`); return; }
    if (slots[i].worker !== w) return;
    slots[i].worker = null;
    if (stopping) {
      log(`worker ${i} (pid ${w.process.pid}) ${how}`);
      if (slots.every((s) => s.worker === null)) { log('all workers stopped'); process.exit(0); }
      return;
    }
    const young = Date.now() - slots[i].started < YOUNG_MS;
    slots[i].delay = young ? Math.min(slots[i].delay * 2, restartMax) : restartMin;
    if (slots[i].delay > KEEP_QUEUE_MS) closeSocket(slots[i]); // crashing: the other places take the port
    log(`worker ${i} (pid ${w.process.pid}) ${how}; restarting in ${slots[i].delay} ms`);
    setTimeout(() => { if (!stopping && slots[i].worker === null) spawn(i); }, slots[i].delay);
  });

  const stop = (sig) => {
    if (stopping) return;
    stopping = true;
    for (const s of slots) closeSocket(s); // the workers close theirs as they stop
    const live = slots.filter((s) => s.worker);
    log(`${sig}: stopping ${live.length} workers`);
    if (live.length === 0) process.exit(0);
    for (const s of live) s.worker.process.kill('SIGTERM');
  };
  const roll = async () => {
    if (rolling) { hupPending = true; return; }
    rolling = true;
    log('SIGHUP: replacing the workers one at a time');
    for (let i = 0; i < n && !stopping; i++) {
      const old = slots[i].worker;
      const fresh = await spawn(i);
      if (!fresh) { slots[i].worker = old; continue; } // the replacement died: keep the old one
      if (old) {
        old.wirecoreRetired = true;
        old.process.kill('SIGHUP');
        log(`worker ${i} replaced: pid ${old.process.pid} drains, pid ${fresh.process.pid} serves`);
      }
    }
    log(`all ${n} workers replaced`);
    rolling = false;
    if (hupPending) { hupPending = false; roll(); }
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => { if (!stopping) roll(); });

  log(`supervising ${n} workers (pid ${process.pid})`);
  Promise.all(slots.map((_, i) => spawn(i))).then(() => firstReady());
  return ready;
}

module.exports = { isPrimary, listening, supervise };
