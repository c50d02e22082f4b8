// The abuse suite's Node server: the package's callback-style echo on /echo
// with the suite's short deadlines (sendTimeout 1.5 s, pongTimeout 1 s, also
// the close deadline), and /hang, whose handler never finishes unless the
// connection ends (socket.signal).
//
//   node node_echo.mjs --port 8000 [--max-buffered BYTES]
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = process.env.WIRECORE_PACKAGE
  ? path.resolve(process.env.WIRECORE_PACKAGE)
  : path.resolve(here, '..', '..', 'packages', 'node');
const { App, WebSocketResponse } = await import(pathToFileURL(path.join(pkg, 'index.mjs')).href);

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const port = arg('--port', 8000);
const maxBufferedBytes = arg('--max-buffered', undefined);

const app = new App({ maxBufferedBytes });
const limits = { sendTimeout: 1500, pongTimeout: 1000 };
app.websocket('/echo', () => new WebSocketResponse({ onMessage: (m) => m }), limits);
app.websocket('/hang', () => new WebSocketResponse({
  onMessage: (m, socket) => new Promise((resolve, reject) => {
    socket.signal.addEventListener('abort', () => reject(socket.signal.reason));
  }),
}), limits);
await app.listen({ host: '127.0.0.1', port });
console.log(`listening on ws://127.0.0.1:${port}`);
