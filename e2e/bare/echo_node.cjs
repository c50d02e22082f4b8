'use strict';
// Inside the bare root: an echo round trip through the installed npm tarball
// (its prebuilt addon), with the `ws` client over a real socket on 127.0.0.1.
const { App, WebSocketResponse, version } = require('wirecore');
const WebSocket = require('ws');

(async () => {
  const app = new App();
  app.websocket('/echo', () => new WebSocketResponse({ onMessage: (m) => m }));
  const { port } = await app.listen({ host: '127.0.0.1', port: 0 });
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  ws.send('hello from node');
  const got = await new Promise((resolve) => ws.once('message', (d) => resolve(String(d))));
  ws.close();
  await app.close();
  if (got !== 'hello from node') throw new Error(`echoed ${got}`);
  const addon = require.resolve('wirecore').replace(/index\.js$/, 'prebuilds/linux-x64/wirecore.node');
  console.log(`node ${process.version}: wirecore ${version} echoed '${got}' through ws ` +
    `(addon ${require('fs').existsSync(addon) ? 'prebuilt' : 'MISSING'})`);
})().catch((err) => { console.error(err); process.exit(1); });
