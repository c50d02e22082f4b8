// Chat relay on Node `ws`: the fan-out peer without topics, a loop over the
// room's clients as a `ws` application writes it.
// Usage: node node_ws_chat.js [--host H] [--port P]
// /chat/<room>: a text message is sent to every connection of the room (the
// sender included), as build/wire_chat does. permessage-deflate is off (the
// ws default).
'use strict';
const { WebSocketServer } = require('ws');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '9011'));
const rooms = new Map();

const wss = new WebSocketServer({ host, port, backlog: 4096, maxPayload: 16 * 1024 * 1024 });
wss.on('connection', (ws, req) => {
  const m = /^\/chat\/([^/?]+)$/.exec(req.url);
  if (!m) {
    ws.close(1008, 'no room');
    return;
  }
  const room = m[1];
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(ws);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    for (const peer of members) peer.send(data, { binary: false });
  });
  ws.on('close', () => {
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  });
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`listening on ${host}:${port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
