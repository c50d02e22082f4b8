// Chat relay on uWebSockets.js with its own topics: the fan-out peer of the
// benchmark. Usage: node node_uws_chat.js [--host H] [--port P]
// /chat/<room>: every connection subscribes to its room; a text message is
// published to the room with app.publish (the sender included), as
// build/wire_chat does. Compression off; backpressure limit 4 MiB, like
// Wirecore's default. uWebSockets.js comes from build/bench-uws
// (e2e/bench/install.sh --fanout-peers) or from NODE_PATH.
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
const port = Number(arg('--port', '9010'));
const app = uWS.App();

app.ws('/chat/:room', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024 * 1024,
  maxBackpressure: 4 * 1024 * 1024,
  upgrade: (res, req, context) => {
    res.upgrade({ room: req.getParameter(0) }, req.getHeader('sec-websocket-key'),
                req.getHeader('sec-websocket-protocol'),
                req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => { ws.subscribe(ws.getUserData().room); },
  message: (ws, message, isBinary) => {
    if (!isBinary) app.publish(ws.getUserData().room, message, false);
  },
});
app.listen(host, port, (token) => {
  if (!token) {
    console.error(`cannot listen on ${host}:${port}`);
    process.exit(1);
  }
  console.log(`listening on ${host}:${port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
