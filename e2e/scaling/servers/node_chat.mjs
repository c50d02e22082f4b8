// A chat room server on the Node package with a Redis broker, shaped like
// wire_chat: /chat/{room}, every text message is published to the room's
// topic (the sender included). Usage: node node_chat.mjs PACKAGE_DIR PORT REDIS_URL
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [packageDir, port, broker] = process.argv.slice(2);
const { App } = await import(pathToFileURL(path.join(packageDir, 'index.mjs')).href);

const app = new App({ broker });
app.websocket('/chat/{room}', { stream: true }, async (socket) => {
  const room = socket.params.room;
  socket.subscribe(room);
  for await (const message of socket) app.publish(room, message.asText());
});
await app.listen({ host: '127.0.0.1', port: Number(port) });
console.log('listening');
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
