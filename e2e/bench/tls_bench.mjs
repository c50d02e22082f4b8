// TLS benchmark: wire_echo --cert/--key next to uWebSockets.js SSLApp and
// `ws` over `https`, each an echo server on 127.0.0.1 with the same throwaway
// P-256 certificate, driven by the same Node client (this process):
//   handshakes/s   new TLS 1.3 connections (no resumption), 8 at a time, and
//                  the server's CPU per handshake;
//   ping-pong      16 wss:// connections each sending a 32-byte message and
//                  waiting for its echo; the server's CPU (utime + stime from
//                  /proc) per message.
// Needs: bash e2e/bench/install.sh --fanout-peers, and build/wire_echo.
// Usage: node e2e/bench/tls_bench.mjs [--seconds S]
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(root, 'e2e/bench/servers/package.json'));
const WebSocket = require('ws');
const uwsPath = path.join(root, 'build/bench-uws/node_modules/uWebSockets.js');
const wsPath = path.join(root, 'e2e/bench/servers/node_modules/ws');
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 4) || 4;
const TICK = 100; // clock ticks per second of /proc/<pid>/stat (Linux USER_HZ)

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wire-tls-bench-'));
const cert = path.join(dir, 'cert.pem');
const key = path.join(dir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
  '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'pipe' });

const uwsServer = `const u = require(${JSON.stringify(uwsPath)});
u.SSLApp({ cert_file_name: ${JSON.stringify(cert)}, key_file_name: ${JSON.stringify(key)} })
  .ws('/*', { maxPayloadLength: 1 << 20, message: (ws, m, b) => { ws.send(m, b); } })
  .listen('127.0.0.1', Number(process.argv[1]), (t) => console.log(t ? 'listening' : 'failed'));`;
const wsServer = `const https = require('https'); const fs = require('fs');
const { WebSocketServer } = require(${JSON.stringify(wsPath)});
const s = https.createServer({ cert: fs.readFileSync(${JSON.stringify(cert)}), key: fs.readFileSync(${JSON.stringify(key)}) });
const w = new WebSocketServer({ server: s });
w.on('connection', (ws) => { ws.on('message', (d, b) => ws.send(d, { binary: b })); ws.on('error', () => {}); });
s.listen(Number(process.argv[1]), '127.0.0.1', () => console.log('listening'));`;

const servers = [
  ['wirecore wire_echo', (p) => [path.join(root, 'build/wire_echo'), ['--port', p, '--cert', cert, '--key', key]]],
  ['uWebSockets.js SSLApp', (p) => [process.execPath, ['-e', uwsServer, p]]],
  ['ws + https', (p) => [process.execPath, ['-e', wsServer, p]]],
];

const cpu = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK; // utime + stime, seconds
};

function start(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', (d) => (String(d).includes('listening') ? resolve(child) : reject(new Error(String(d)))));
    child.once('exit', (c) => reject(new Error(`${cmd} exited ${c}`)));
  });
}

async function handshakes(port, ms) {
  let n = 0;
  const end = Date.now() + ms;
  const one = () => new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    s.once('secureConnect', () => { n++; s.destroy(); resolve(); });
    s.once('error', () => resolve());
  });
  await Promise.all(Array.from({ length: 8 }, async () => { while (Date.now() < end) await one(); }));
  return n;
}

async function pingpong(port, ms) {
  const msg = Buffer.alloc(32, 97);
  const conns = await Promise.all(Array.from({ length: 16 }, () => new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/`, { rejectUnauthorized: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  })));
  let n = 0;
  const end = Date.now() + ms;
  await Promise.all(conns.map((ws) => new Promise((resolve) => {
    ws.on('message', () => { n++; if (Date.now() < end) ws.send(msg); else resolve(); });
    ws.send(msg);
  })));
  for (const ws of conns) ws.terminate();
  return n;
}

const rows = [];
let port = 19443;
for (const [name, make] of servers) {
  if (name.startsWith('uWebSockets') && !fs.existsSync(uwsPath)) { rows.push([name, 'not installed']); continue; }
  const [cmd, args] = make(String(++port));
  const child = await start(cmd, args);
  try {
    let c0 = cpu(child.pid);
    const hs = await handshakes(port, seconds * 1000);
    let c1 = cpu(child.pid);
    const hsCpu = ((c1 - c0) / hs) * 1e6;
    c0 = cpu(child.pid);
    const msgs = await pingpong(port, seconds * 1000);
    c1 = cpu(child.pid);
    rows.push([name, (hs / seconds).toFixed(0), hsCpu.toFixed(0), (msgs / seconds).toFixed(0),
      (((c1 - c0) / msgs) * 1e6).toFixed(2)]);
  } finally {
    child.kill('SIGTERM');
  }
}
fs.rmSync(dir, { recursive: true, force: true });
console.log(`| server | TLS handshakes/s | server CPU µs/handshake | ping-pong msg/s | server CPU µs/msg |`);
console.log(`|---|---:|---:|---:|---:|`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
