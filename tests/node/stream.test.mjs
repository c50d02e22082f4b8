// Stream style: app.websocket(path, { stream: true }, async (socket) => { for await (...) }).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wirecore, serve, wsConnect, sleep, until } from './helpers.mjs';

const { Reject } = wirecore;

test('the handler greets, iterates messages and echoes them', async (t) => {
  const app = await serve(t, (a) => a.websocket('/feed', { stream: true }, async (socket) => {
    socket.sendJson({ hello: socket.request.query.user });
    for await (const msg of socket) socket.send(msg);
  }));
  const ws = await app.testClient().websocket('/feed?user=kim');
  assert.deepEqual(await ws.receiveJson(), { hello: 'kim' });
  ws.send('a');
  ws.sendBytes(Buffer.from('b'));
  assert.equal(await ws.receiveText(), 'a');
  const m = await ws.receive();
  assert.ok(m.isBinary());
  assert.equal(m.asText(), 'b');
});

test('works with the ws client, and messages sent before the handler runs are kept', async (t) => {
  const app = await serve(t, (a) => a.websocket('/late', { stream: true }, async (socket) => {
    await sleep(30);
    const got = [];
    for await (const msg of socket) {
      got.push(msg.asText());
      if (got.length === 3) socket.sendJson(got);
    }
  }));
  const ws = wsConnect(t, app.url('/late'));
  await ws.opened;
  ws.send('1'); ws.send('2'); ws.send('3');
  assert.deepEqual(await ws.nextJson(), ['1', '2', '3']);
});

test('the server may push at any time', async (t) => {
  const app = await serve(t, (a) => a.websocket('/ticks', { stream: true }, async (socket) => {
    for (let i = 0; i < 5; i++) {
      socket.sendJson({ tick: i });
      await sleep(2);
    }
    socket.close(4000, 'finished');
  }));
  const ws = await app.testClient().websocket('/ticks');
  for (let i = 0; i < 5; i++) assert.deepEqual(await ws.receiveJson(), { tick: i });
  assert.deepEqual(await ws.waitClosed(), { code: 4000, reason: 'finished' });
});

test('the connection closes with 1000 when the handler returns', async (t) => {
  const app = await serve(t, (a) => a.websocket('/once', { stream: true }, async (socket) => {
    const first = await socket.receive();
    socket.send(`got ${first.asText()}`);
  }));
  const ws = await app.testClient().websocket('/once');
  ws.send('x');
  assert.equal(await ws.receiveText(), 'got x');
  assert.equal((await ws.waitClosed()).code, 1000);
});

test('a handler that throws closes with 1011; the others carry on', async (t) => {
  const app = await serve(t, (a) => a.websocket('/crash', { stream: true }, async (socket) => {
    for await (const msg of socket) {
      if (msg.asText() === 'crash') throw new Error('stream crashed');
      socket.send(msg);
    }
  }));
  const client = app.testClient();
  const a = await client.websocket('/crash');
  const b = await client.websocket('/crash');
  a.send('crash');
  assert.equal((await a.waitClosed()).code, 1011);
  b.send('fine');
  assert.equal(await b.receiveText(), 'fine');
  assert.equal(app.reported[0].message, 'stream crashed');
});

test('iteration ends when the client closes; closed resolves with the code', async (t) => {
  let result;
  const app = await serve(t, (a) => a.websocket('/end', { stream: true }, async (socket) => {
    let n = 0;
    for await (const _ of socket) n += 1; // eslint-disable-line no-unused-vars
    result = { n, closed: await socket.closed, next: await socket.receive() };
  }));
  const ws = await app.testClient().websocket('/end');
  ws.send('1'); ws.send('2');
  await sleep(20);
  await ws.close(4005, 'later');
  await until(() => result);
  assert.deepEqual(result, { n: 2, closed: { code: 4005, reason: 'later' }, next: null });
});

test('a slow consumer pauses reading instead of buffering without bound', async (t) => {
  let received = 0;
  const app = await serve(t, (a) => a.websocket('/slow', { stream: true }, async (socket) => {
    for await (const msg of socket) {
      received += 1;
      await sleep(1);
      if (msg.asText() === 'last') socket.send(String(received));
    }
  }));
  const ws = await app.testClient().websocket('/slow');
  for (let i = 0; i < 200; i++) ws.send(`m${i}`);
  ws.send('last');
  assert.equal(await ws.receiveText(10000), '201');
});

test('stream endpoints with a schema yield decoded, validated values', async (t) => {
  const app = await serve(t, (a) => a.websocket('/values', {
    stream: true, messageSchema: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
  }, async (socket) => {
    for await (const value of socket) socket.send({ double: value.n * 2 });
  }));
  const ws = await app.testClient().websocket('/values');
  ws.sendJson({ n: 21 });
  assert.deepEqual(await ws.receiveJson(), { double: 42 });
  ws.sendJson({ n: 'x' });
  assert.equal((await ws.receiveJson()).type, 'error');
});

test('onConnect can refuse a stream connection', async (t) => {
  const app = await serve(t, (a) => a.websocket('/guard', {
    stream: true, onConnect: () => { throw new Reject(403); },
  }, async () => {}));
  await assert.rejects(app.testClient().websocket('/guard'), (err) => err.status === 403);
});
