// Echo server on uWebSockets.js (uWebSockets, C++, under Node): the
// uWebSockets peer of the echo benchmark.
// Usage: node node_uws.js [--host H] [--port P]
// Every message goes back as it came (text stays text). Compression off, no
// idle timeout, backpressure limit 4 MiB like Wirecore's default.
// uWebSockets.js comes from build/bench-uws (e2e/bench/install.sh
// --fanout-peers) or from NODE_PATH.
'use strict';
const path = require('node:path');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function loadUws() {
  const local = path.resolve(__dirname, '..', '..', '..', 'build', 'bench-uws', 'node_modules',
                             'uWebSockets.js');
  try {
    return require(local);
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e;
    return require('uWebSockets.js');
  }
}

const uWS = loadUws();
const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '9012'));
const app = uWS.App();

app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024 * 1024,
  maxBackpressure: 4 * 1024 * 1024,
  idleTimeout: 0,
  message: (ws, message, isBinary) => { ws.send(message, isBinary); },
});
app.listen(host, port, (token) => {
  if (!token) {
    console.error(`cannot listen on ${host}:${port}`);
    process.exit(1);
  }
  console.log(`listening on ${host}:${port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
