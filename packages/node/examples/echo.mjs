// Callback style: echo every message back as it came.
// Run: node examples/echo.mjs   (then connect to ws://127.0.0.1:8000/echo)
// With WIRECORE_EXAMPLE_SMOKE=1 it talks to itself once through the test client and exits.
import { App, WebSocketResponse } from 'wirecore';

const app = new App();

app.websocket('/echo', async (request) => new WebSocketResponse({
  onConnect: async (socket) => console.log(`connected from ${request.remoteAddress}`),
  onMessage: async (msg) => msg, // msg.isText() .asText() .isBinary() .asBinary() .asJson()
  onClose: async (code, reason) => console.log(`closed ${code} ${reason}`),
  onError: async (err) => console.error('error', err),
}));

if (process.env.WIRECORE_EXAMPLE_SMOKE) {
  const ws = await app.testClient().websocket('/echo');
  ws.send('hello');
  console.log('echoed:', await ws.receiveText());
  await ws.close();
  await app.close();
} else {
  const { host, port } = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 8000) });
  console.log(`listening on ws://${host}:${port}/echo`);
  process.on('SIGINT', () => app.close());
}
