// Echo server on Wirecore's Node.js package (the addon on Node's own loop).
// Usage: node node_wirecore.js [--host H] [--port P] [--typed | --chat]
// Raw (/): every message goes back as it came. Typed (/chat/{room}): a JSON
// Schema checked in C; the returned object is encoded in C. Chat (--chat,
// /chat/{room}): the fan-out server; each connection subscribes to its room
// and a text message is published to the room (the sender included) with
// app.publish, as build/wire_chat does.
'use strict';
const path = require('path');

function load() {
  if (process.env.WIRECORE_NODE_PACKAGE) return require(process.env.WIRECORE_NODE_PACKAGE);
  try {
    return require('wirecore');
  } catch (e) {
    return require(path.join(__dirname, '..', '..', '..', 'packages', 'node'));
  }
}
const { App, WebSocketResponse } = load();

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '9013'));
const typed = process.argv.includes('--typed');
const chat = process.argv.includes('--chat');

const chatSchema = {
  type: 'object',
  properties: { type: { const: 'chat' }, user: { type: 'string' }, text: { type: 'string' } },
  required: ['type', 'user', 'text'],
};

const app = new App();
if (chat) {
  app.websocket('/chat/{room}', (request) => {
    const topic = request.params.room;
    return new WebSocketResponse({
      onConnect: (socket) => socket.subscribe(topic),
      onMessage: (msg) => { if (msg.isText()) app.publish(topic, msg.data); },
    });
  });
} else if (typed) {
  app.websocket('/chat/{room}', { messageSchema: chatSchema, responseSchema: chatSchema },
    (message) => ({ type: 'chat', user: message.user, text: message.text }));
} else {
  app.websocket('/', () => new WebSocketResponse({ onMessage: (msg) => msg }));
}
app.listen({ host, port }).then(() => console.log(`listening on ${host}:${port}`));
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    Promise.resolve(app.close()).finally(() => process.exit(0));
  });
}
