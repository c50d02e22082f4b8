// Echo server on Node `ws`, the Node.js peer of the benchmark.
// Usage: node node_ws.js [--host H] [--port P] [--typed] [--deflate]
// Raw: every message goes back as it came (text stays text). Typed: each
// message is parsed as JSON, checked to be a chat message and sent back
// re-encoded, which is what a `ws` application writes by hand for what
// Wirecore's typed endpoints do. permessage-deflate is off (the ws default);
// --deflate turns it on with ws's defaults (perMessageDeflate: true).
'use strict';
const { WebSocketServer } = require('ws');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '9003'));
const typed = process.argv.includes('--typed');

function typedReply(data) {
  let m;
  try {
    m = JSON.parse(data.toString());
  } catch (e) {
    return JSON.stringify({ type: 'error', error: String(e.message) });
  }
  if (m === null || typeof m !== 'object' || m.type !== 'chat' ||
      typeof m.user !== 'string' || typeof m.text !== 'string') {
    return JSON.stringify({ type: 'error', error: 'not a chat message' });
  }
  return JSON.stringify({ type: 'chat', user: m.user, text: m.text });
}

const wss = new WebSocketServer({ host, port, backlog: 4096, maxPayload: 64 * 1024 * 1024,
  perMessageDeflate: process.argv.includes('--deflate') });
wss.on('connection', (ws) => {
  if (typed) ws.on('message', (data) => ws.send(typedReply(data)));
  else ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`listening on ${host}:${port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
