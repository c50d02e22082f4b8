// CommonJS works too: require('wirecore').
// Run: node examples/commonjs.cjs
const { App, WebSocketResponse } = require('wirecore');

const app = new App();
app.websocket('/upper', () => new WebSocketResponse({
  onMessage: (msg) => msg.asText().toUpperCase(),
}));

(async () => {
  if (process.env.WIRECORE_EXAMPLE_SMOKE) {
    const ws = await app.testClient().websocket('/upper');
    ws.send('shout');
    console.log(await ws.receiveText());
    await ws.close();
    await app.close();
    return;
  }
  const { port } = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 8000) });
  console.log(`listening on ws://127.0.0.1:${port}/upper`);
  process.on('SIGINT', () => app.close());
})();
