// Stream style: the handler owns the connection, pushes whenever it likes and
// iterates incoming messages.
// Run: node examples/feed.mjs   (then connect to ws://127.0.0.1:8000/feed?user=ann)
import { App } from 'wirecore';

const app = new App();

app.websocket('/feed', { stream: true }, async (socket) => {
  socket.sendJson({ hello: socket.request.query.user });
  const timer = setInterval(() => socket.sendJson({ time: Date.now() }), 1000);
  try {
    for await (const msg of socket) socket.send(msg); // msg: WebSocketMessage
  } finally {
    clearInterval(timer);
  }
});

if (process.env.WIRECORE_EXAMPLE_SMOKE) {
  const ws = await app.testClient().websocket('/feed?user=ann');
  console.log(await ws.receiveJson());
  ws.send('echo me');
  console.log(await ws.receiveText());
  await ws.close();
  await app.close();
} else {
  const { port } = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 8000) });
  console.log(`listening on ws://127.0.0.1:${port}/feed`);
  process.on('SIGINT', () => app.close());
}
