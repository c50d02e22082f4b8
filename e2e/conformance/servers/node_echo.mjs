// Conformance echo server on Wirecore's Node.js package.
// Usage: node node_echo.mjs --port P [--host H] [--max-message BYTES]
// Every text or binary message on any path goes back as it came. Prints
// "listening on H:P" once the listener is up; SIGTERM/SIGINT stop it.
import { createRequire } from 'node:module';
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

const app = new App({ maxPayload });
for (const route of ['/', '/{path:path}']) {
  app.websocket(route, () => new WebSocketResponse({ onMessage: (msg) => msg }), { maxPayload });
}
await app.listen({ host, port });
console.log(`listening on ${host}:${app.port}`);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => app.close().then(() => process.exit(0)));
}
