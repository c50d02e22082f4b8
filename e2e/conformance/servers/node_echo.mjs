// Conformance echo server on Wirecore's Node.js package.
// Usage: node node_echo.mjs --port P [--host H] [--max-message BYTES]
//                           [--cert FILE --key FILE]   (wss://)
// Every text or binary message on any path goes back as it came, except on
// the /app/... endpoints of the app cases (cases/10-app.json). Prints
// "listening on H:P" once the listener is up; SIGTERM/SIGINT stop it.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
let wirecore;
try {
  wirecore = require('wirecore');
} catch {
  wirecore = require(path.join(here, '..', '..', '..', 'packages', 'node'));
}
const { App, WebSocketResponse } = wirecore;

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '0'));
const maxPayload = Number(arg('--max-message', String(1 << 20)));

const NUMBERED = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The endpoints of the app cases; the same in every conformance server.
function appEndpoints(app) {
  app.websocket('/app/json', { messageSchema: NUMBERED }, (m) => m);
  app.websocket('/app/json-close', { messageSchema: NUMBERED, invalidMessages: 'close' }, (m) => m);
  app.websocket('/app/crash', () => new WebSocketResponse({
    onMessage: (msg) => {
      if (msg.asText() === 'crash') throw new Error('the handler failed');
      return msg;
    },
  }));
  app.websocket('/app/order', () => new WebSocketResponse({
    onMessage: async (msg) => {
      await sleep(Number(msg.asText()) % 3);
      return msg;
    },
  }));
  app.websocket('/app/slow', { stream: true }, async (socket) => {
    await sleep(1000); // starts late: the peer floods meanwhile
    let n = 0;
    let broken = false;
    for await (const msg of socket) {
      const text = msg.asText();
      if (text === 'end') {
        await socket.sendText(broken ? `out of order at ${n}` : `got ${n} in order`);
        continue;
      }
      if (!broken && Number(text.slice(0, 6)) !== n) broken = true;
      if (!broken) n++;
      if (n % 1000 === 0) await sleep(5);
    }
  });
}

const cert = arg('--cert');
const tls = cert ? { cert: fs.readFileSync(cert), key: fs.readFileSync(arg('--key', cert)) } : undefined;
const app = new App({ maxPayload, tls });
app.on('error', () => {}); // /app/crash fails on purpose
appEndpoints(app);
for (const route of ['/', '/{path:path}']) {
  app.websocket(route, () => new WebSocketResponse({ onMessage: (msg) => msg }), { maxPayload });
}
await app.listen({ host, port });
console.log(`listening on ${host}:${app.port}`);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => app.close().then(() => process.exit(0)));
}
