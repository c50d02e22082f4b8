// Drives the chat page in two headless Chromium pages against a real chat
// server: join, send, receive in the other page, leave. Saves screenshot.png.
//
// The chat server is the Python package's chat example
// (packages/python/examples/chat.py); WIRE_CHAT_SERVER=wire_chat runs the C
// example build/wire_chat instead (it only relays, so the join/leave/typing
// checks are skipped for it).
//
// Once, the chat also runs over wss://: build/wire_chat with --cert/--key (a
// certificate made here by the openssl command), which Chromium trusts through
// --ignore-certificate-errors-spki-list (the certificate's SPKI hash).
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const HERE = __dirname;
const ROOT = path.resolve(HERE, '..', '..');
const PY = process.env.PYTHON || 'python3';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_MS = 15000;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Resolves once host:port accepts a TCP connection; rejects when the process
// exits first or the deadline passes.
async function waitForPort(port, proc, what, ms = 30000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${what} exited (${proc.exitCode}): ${proc.output}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not open port ${port}: ${proc.output}`);
}

function start(argv, opts = {}) {
  const proc = spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  proc.output = '';
  const keep = (d) => { proc.output = (proc.output + d).slice(-4000); };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  return proc;
}

function stop(proc) {
  if (!proc || proc.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => { proc.kill('SIGKILL'); }, 5000);
    proc.once('exit', () => { clearTimeout(t); resolve(); });
    proc.kill('SIGTERM');
  });
}

function pythonHasWirecore() {
  return spawnSync(PY, ['-c', 'import wirecore'], { stdio: 'ignore' }).status === 0;
}

// Which chat server to run, and how (argv for a given port).
// `announces`: the server sends join/leave/typing events (the relay does not).
function chooseServer() {
  const example = process.env.WIRE_CHAT_EXAMPLE || path.join(ROOT, 'packages', 'python', 'examples', 'chat.py');
  const wireChat = path.join(ROOT, 'build', 'wire_chat');
  if (process.env.WIRE_CHAT_SERVER === 'wire_chat') {
    if (!fs.existsSync(wireChat)) throw new Error(`${wireChat} is not built (bash scripts/build.sh)`);
    return { name: 'build/wire_chat', announces: false, argv: (p) => [wireChat, '--port', String(p)] };
  }
  if (process.env.WIRE_CHAT_SERVER && process.env.WIRE_CHAT_SERVER !== 'python')
    throw new Error('WIRE_CHAT_SERVER must be python or wire_chat');
  if (!fs.existsSync(example)) throw new Error(`the Python chat example is missing: ${example}`);
  if (!pythonHasWirecore()) throw new Error(`${PY} cannot import wirecore (e2e/bench/install.sh --python)`);
  return { name: 'Python package chat example', announces: true, argv: (p) => [PY, example, '--port', String(p)] };
}

let chatProc, httpProc, context, userDataDir, pageUrl, serverName, announces, chatUrl;
let tlsDir, tlsSpki;

// A self-signed certificate for 127.0.0.1 made with the openssl command:
// { cert, key } paths and its SPKI hash (base64 SHA-256) for Chromium.
function makeCertificate(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const spkiDer = new crypto.X509Certificate(fs.readFileSync(cert)).publicKey
    .export({ type: 'spki', format: 'der' });
  return { cert, key, spki: crypto.createHash('sha256').update(spkiDer).digest('base64') };
}

before(async () => {
  const chosen = chooseServer();
  serverName = chosen.name;
  announces = chosen.announces;
  const chatPort = await freePort();
  chatProc = start(chosen.argv(chatPort));
  await waitForPort(chatPort, chatProc, chosen.name);
  chatUrl = `ws://127.0.0.1:${chatPort}`;

  const httpPort = await freePort();
  httpProc = start([PY, '-m', 'http.server', String(httpPort), '--bind', '127.0.0.1',
    '--directory', HERE]);
  await waitForPort(httpPort, httpProc, 'the static file server');
  pageUrl = `http://127.0.0.1:${httpPort}/?server=${encodeURIComponent(`ws://127.0.0.1:${chatPort}`)}`;
  console.log(`# chat server: ${serverName} on port ${chatPort}; page: ${pageUrl}`);

  tlsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wirecore-tls-'));
  tlsSpki = makeCertificate(tlsDir);
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wirecore-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
      `--ignore-certificate-errors-spki-list=${tlsSpki.spki}`],
    viewport: { width: 720, height: 760 },
    timeout: 60000,
  });
  context.setDefaultTimeout(STEP_MS);
});

after(async () => {
  if (context) await context.close().catch(() => {});
  await Promise.all([stop(chatProc), stop(httpProc)]);
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  if (tlsDir) fs.rmSync(tlsDir, { recursive: true, force: true });
});

async function openAndJoin(name, room, url = pageUrl) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.errors = errors;
  await page.goto(url);
  await page.getByTestId('name').fill(name);
  await page.getByTestId('room').fill(room);
  await page.getByTestId('join').click();
  await page.getByTestId('chat').waitFor({ state: 'visible' });
  assert.equal(await page.getByTestId('status').textContent(), 'connected');
  assert.equal(await page.getByTestId('room-name').textContent(), room);
  return page;
}

async function say(page, text) {
  await page.getByTestId('text').fill(text);
  await page.getByTestId('send').click();
  // The line shows at once in the sender's page.
  await page.locator('.msg.mine .text', { hasText: text }).first().waitFor();
}

// Waits until `page` shows `text` from `user` as somebody else's line.
async function expectLine(page, user, text) {
  const line = page.locator('.msg.theirs', { hasText: text });
  await line.first().waitFor();
  assert.equal(await line.first().locator('.who').textContent(), user);
  assert.equal(await line.first().locator('.text').textContent(), text);
}

test('two browser pages chat through the server: join, send, receive, leave', async () => {
  const room = `room-${process.pid}`;
  const alice = await openAndJoin('alice', room);
  const bob = await openAndJoin('bob', room);

  if (announces) {
    await alice.getByTestId('members').filter({ hasText: '2 here: alice, bob' }).waitFor();
    await alice.locator('.msg.system', { hasText: 'bob joined' }).waitFor();
    // Typing in one page shows in the other.
    await bob.getByTestId('text').pressSequentially('Hi');
    await alice.getByTestId('typing').filter({ hasText: 'bob is typing' }).waitFor();
    await bob.getByTestId('text').fill('');
  }

  await say(alice, 'Grüße from Alice 👋');
  await expectLine(bob, 'alice', 'Grüße from Alice 👋');

  await say(bob, 'Hi Alice, Bob here. <b>not bold</b>');
  await expectLine(alice, 'bob', 'Hi Alice, Bob here. <b>not bold</b>');
  // Markup in messages is text, never HTML.
  assert.equal(await alice.locator('.messages b').count(), 0);

  // Long enough to go out compressed (permessage-deflate, 1 KiB threshold):
  // Chromium inflates the frame the server compressed once for the room.
  const long = `${'A long line about the weather, the sea and the mountains. '.repeat(33)}end`;
  await say(alice, long);
  await expectLine(bob, 'alice', long);

  await say(alice, 'See you!');
  await expectLine(bob, 'alice', 'See you!');
  // Her own lines came back from the server: none is still pending.
  if (announces) await alice.locator('.msg.pending').first().waitFor({ state: 'detached' });
  await alice.screenshot({ path: path.join(HERE, 'screenshot.png') });

  // Bob leaves: his page is back at the join form and no longer connected.
  await bob.getByTestId('leave').click();
  await bob.getByTestId('join-form').waitFor({ state: 'visible' });
  assert.equal(await bob.getByTestId('status').textContent(), 'not connected');
  assert.equal(await bob.getByTestId('chat').isHidden(), true);

  if (announces) {
    await alice.locator('.msg.system', { hasText: 'bob left' }).waitFor();
    await alice.getByTestId('members').filter({ hasText: '1 here: alice' }).waitFor();
  }

  // Alice carries on; what she sends now never reaches Bob's closed page.
  await say(alice, 'Anyone still here?');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await bob.locator('.msg', { hasText: 'Anyone still here?' }).count(), 0);

  await alice.getByTestId('leave').click();
  await alice.getByTestId('join-form').waitFor({ state: 'visible' });
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

test('Chromium negotiates permessage-deflate with the server', async () => {
  const page = await context.newPage();
  await page.goto(pageUrl);
  const ext = await page.evaluate((url) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/chat/deflate-check?user=probe`);
    ws.onopen = () => { resolve(ws.extensions); ws.close(); };
    ws.onerror = () => reject(new Error('no connection'));
  }), chatUrl);
  assert.match(ext, /^permessage-deflate/);
  assert.match(ext, /server_no_context_takeover/);
  assert.match(ext, /client_no_context_takeover/);
  await page.close();
});

test('a server that is not there shows an error on the join form', async () => {
  const deadPort = await freePort();
  const page = await context.newPage();
  await page.goto(pageUrl.replace(/server=[^&]*/, `server=${encodeURIComponent(`ws://127.0.0.1:${deadPort}`)}`));
  await page.getByTestId('name').fill('carol');
  await page.getByTestId('join').click();
  await page.getByTestId('join-error').filter({ hasText: 'Could not connect' }).waitFor();
  assert.equal(await page.getByTestId('chat').isHidden(), true);
  await page.close();
});

test('two browser pages chat over wss:// (build/wire_chat with TLS)', async () => {
  const wireChat = path.join(ROOT, 'build', 'wire_chat');
  assert.ok(fs.existsSync(wireChat), `${wireChat} is not built (bash scripts/build.sh)`);
  const port = await freePort();
  const proc = start([wireChat, '--port', String(port), '--cert', tlsSpki.cert, '--key', tlsSpki.key]);
  try {
    await waitForPort(port, proc, 'build/wire_chat --cert');
    const url = pageUrl.replace(/server=[^&]*/, `server=${encodeURIComponent(`wss://127.0.0.1:${port}`)}`);
    const room = `tls-${process.pid}`;
    const alice = await openAndJoin('alice', room, url);
    const bob = await openAndJoin('bob', room, url);
    assert.equal(await alice.getByTestId('server').inputValue(), `wss://127.0.0.1:${port}`);
    await say(alice, 'over TLS 🔒');
    await expectLine(bob, 'alice', 'over TLS 🔒');
    await say(bob, 'encrypted both ways');
    await expectLine(alice, 'bob', 'encrypted both ways');
    for (const page of [alice, bob]) {
      await page.getByTestId('leave').click();
      await page.getByTestId('join-form').waitFor({ state: 'visible' });
    }
    assert.deepEqual([...alice.errors, ...bob.errors], []);
    await Promise.all([alice.close(), bob.close()]);
  } finally {
    await stop(proc);
  }
});

// How many lines of `page` carry exactly `text`.
async function linesWith(page, text) {
  return page.locator('.msg .text').filter({ hasText: new RegExp(`^${text}$`) }).count();
}

// (The relay, WIRE_CHAT_SERVER=wire_chat, keeps no history: not run for it.)
if (process.env.WIRE_CHAT_SERVER !== 'wire_chat') test('pages reconnect by themselves and show every message once: a dropped connection, a killed server', async (t) => {
  const port = await freePort();
  const argv = chooseServer().argv(port);
  let server = start(argv);
  await waitForPort(port, server, serverName);
  t.after(() => stop(server));
  const url = pageUrl.replace(/server=[^&]*/, `server=${encodeURIComponent(`ws://127.0.0.1:${port}`)}`);
  const room = `resume-${process.pid}`;
  const open = async (name, routed) => {
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(String(e)));
    page.routes = [];
    // bob's socket goes through a route the test can cut, as a network drop would
    if (routed) await page.routeWebSocket(/\/chat\//, (ws) => page.routes.push(ws.connectToServer()));
    await page.goto(url);
    await page.getByTestId('name').fill(name);
    await page.getByTestId('room').fill(room);
    await page.getByTestId('join').click();
    await page.getByTestId('chat').waitFor({ state: 'visible' });
    return page;
  };
  const alice = await open('alice', false);
  const bob = await open('bob', true);
  await alice.getByTestId('members').filter({ hasText: '2 here: alice, bob' }).waitFor();
  await say(alice, 'one');
  await expectLine(bob, 'alice', 'one');

  // bob's connection drops; alice goes on; bob comes back with his offset
  bob.routes.at(-1).close();
  await say(alice, 'two');
  await say(alice, 'three');
  await bob.locator('.msg.system', { hasText: 'Reconnected.' }).first().waitFor();
  await expectLine(bob, 'alice', 'three');

  // the server is killed and started again: both pages come back by themselves
  server.kill('SIGKILL');
  await new Promise((r) => server.once('exit', r));
  server = start(argv);
  await waitForPort(port, server, serverName);
  for (const page of [alice, bob]) {
    await page.locator('.msg.system', { hasText: 'Reconnected.' }).nth(page === bob ? 1 : 0).waitFor();
    await page.getByTestId('status').filter({ hasText: 'connected' }).waitFor();
  }
  await say(bob, 'four');
  await expectLine(alice, 'bob', 'four');
  await say(alice, 'five');
  await expectLine(bob, 'alice', 'five');

  for (const page of [alice, bob]) {
    for (const text of ['one', 'two', 'three', 'four', 'five']) {
      assert.equal(await linesWith(page, text), 1, `"${text}" shown ${await linesWith(page, text)} times`);
    }
  }
  assert.deepEqual([...alice.errors, ...bob.errors], []);
  await alice.close();
  await bob.close();
});
