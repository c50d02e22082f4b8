// Topics: socket.subscribe / unsubscribe / topics, app.publish and
// app.subscriberCount, against the real `ws` client on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { wirecore, serve, wsConnect, until, sleep } from './helpers.mjs';

const { App, WebSocketResponse, WebSocketEndpoint, ConfigError } = wirecore;

/** /room/{name}: 'say:x' publishes to the others, 'me:x' to all, 'order' mixes
 * direct sends and publishes, 'leave' unsubscribes. */
function roomRoutes(a) {
  a.websocket('/room/{name}', { stream: true }, async (socket) => {
    const name = socket.params.name;
    socket.subscribe(name);
    await socket.sendText(`joined:${socket.topics.join(',')}`);
    for await (const msg of socket) {
      const text = msg.asText();
      if (text.startsWith('say:')) {
        const n = a.publish(name, text.slice(4), { exclude: socket });
        await socket.sendText(`sent:${n}`);
      } else if (text.startsWith('me:')) {
        a.publish(name, text.slice(3));
      } else if (text === 'order') {
        for (let i = 0; i < 5; i++) {
          socket.sendText(`direct${i}`);
          a.publish(name, `pub${i}`);
        }
      } else if (text === 'leave') {
        const first = socket.unsubscribe(name);
        const second = socket.unsubscribe(name);
        await socket.sendText(`left:${first}:${second}:${JSON.stringify(socket.topics)}`);
      }
    }
  });
}

async function joined(t, app, path) {
  const ws = wsConnect(t, app.url(path));
  await ws.opened;
  assert.match((await ws.next()).text, /^joined:/);
  return ws;
}

test('publish reaches every subscriber but the excluded one', async (t) => {
  const app = await serve(t, roomRoutes);
  const a = await joined(t, app, '/room/lobby');
  const b = await joined(t, app, '/room/lobby');
  const c = await joined(t, app, '/room/other');
  assert.equal(app.subscriberCount('lobby'), 2);
  a.send('say:hello');
  assert.equal((await a.next()).text, 'sent:1');
  assert.equal((await b.next()).text, 'hello');
  a.send('me:all');
  assert.equal((await a.next()).text, 'all');
  assert.equal((await b.next()).text, 'all');
  await assert.rejects(c.next(200), /no message/);
});

test('publishes and direct sends keep the order they were made in', async (t) => {
  const app = await serve(t, roomRoutes);
  const a = await joined(t, app, '/room/o');
  a.send('order');
  const got = [];
  for (let i = 0; i < 10; i++) got.push((await a.next()).text);
  assert.deepEqual(got, [0, 1, 2, 3, 4].flatMap((i) => [`direct${i}`, `pub${i}`]));
});

test('unsubscribe and close end subscriptions', async (t) => {
  const app = await serve(t, roomRoutes);
  const a = await joined(t, app, '/room/u');
  const b = await joined(t, app, '/room/u');
  a.send('leave');
  assert.equal((await a.next()).text, 'left:true:false:[]');
  assert.equal(app.subscriberCount('u'), 1);
  assert.equal(app.publish('u', 'after'), 1);
  assert.equal((await b.next()).text, 'after');
  await assert.rejects(a.next(200), /no message/);
  b.close();
  await until(() => app.subscriberCount('u') === 0);
  assert.equal(app.publish('u', 'nobody'), 0);
});

test('publish to no subscribers returns 0; bad topics raise ConfigError', async (t) => {
  const app = new App();
  assert.equal(app.publish('x', 'before listen'), 0);
  t.after(() => app.close({ timeout: 1000 }));
  const seen = [];
  app.websocket('/s', { stream: true }, async (socket) => {
    for (const topic of ['', 'x'.repeat(257)]) {
      try { socket.subscribe(topic); } catch (err) { seen.push(err.constructor.name); }
    }
    socket.subscribe('x'.repeat(256));
    socket.subscribe('x'.repeat(256));
    try {
      for (let i = 0; i < 2000; i++) socket.subscribe(`t${i}`);
    } catch (err) {
      seen.push(['too many', err instanceof ConfigError, socket.topics.length]);
    }
    try { socket.subscribe(7); } catch (err) { seen.push(err.constructor.name); }
    await socket.sendText('done');
    for await (const _ of socket); // eslint-disable-line no-unused-vars
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  assert.equal(app.publish('nobody', 'hi'), 0);
  assert.equal(app.publish('nobody', { a: 1 }), 0);
  assert.equal(app.subscriberCount('nobody'), 0);
  assert.throws(() => app.publish('', 'x'), ConfigError);
  assert.throws(() => app.publish('t'.repeat(257), { a: 1 }), ConfigError);
  assert.throws(() => app.subscriberCount(''), ConfigError);
  assert.throws(() => app.publish(Buffer.from('t'), 'x'), TypeError);
  assert.throws(() => app.publish('t', 'x', { exclude: {} }), TypeError);
  const ws = wsConnect(t, app.url('/s'));
  assert.equal((await ws.next()).text, 'done');
  assert.deepEqual(seen, ['ConfigError', 'ConfigError', ['too many', true, 1024], 'TypeError']);
});

test('maxTopicsPerConn sets the topic limit', async (t) => {
  const seen = [];
  const app = await serve(t, (a) => a.websocket('/s', { stream: true }, async (socket) => {
    for (const topic of ['a', 'b', 'c', 'a']) socket.subscribe(topic); // a second 'a' is the same
    try {
      socket.subscribe('d');
    } catch (err) {
      seen.push([err instanceof ConfigError, err.code, /too many topics/.test(err.message), socket.topics.length]);
    }
    socket.unsubscribe('a');
    socket.subscribe('d'); // room again
    seen.push([...socket.topics].sort());
    await socket.sendText('done');
    for await (const _ of socket); // eslint-disable-line no-unused-vars
  }), { maxTopicsPerConn: 3 });
  const ws = wsConnect(t, app.url('/s'));
  assert.equal((await ws.next()).text, 'done');
  assert.deepEqual(seen, [[true, 'ETOOMANY', true, 3], ['b', 'c', 'd']]);
  assert.throws(() => new App({ maxTopicsPerConn: -1 }), /maxTopicsPerConn/);
});

test('publish from a timer outside any handler', async (t) => {
  const app = await serve(t, (a) => {
    a.websocket('/tick', () => new WebSocketResponse({ onConnect: (socket) => socket.subscribe('ticks') }));
  });
  const ws = wsConnect(t, app.url('/tick'));
  await ws.opened;
  await until(() => app.subscriberCount('ticks') === 1);
  const counts = [];
  for (let i = 0; i < 3; i++) setTimeout(() => counts.push(app.publish('ticks', `t${i}`)), 5 * (i + 1));
  for (let i = 0; i < 3; i++) assert.equal((await ws.next()).text, `t${i}`);
  assert.deepEqual(counts, [1, 1, 1]);
});

test('JSON and MessagePack endpoints subscribed to one topic each get their encoding', async (t) => {
  const endpoint = (path, serializer) => class extends WebSocketEndpoint {
    static path = path;
    static serializer = serializer;
    static messages = { any: { type: 'object' } };
    onConnect() {
      this.subscribe('news');
      assert.deepEqual(this.topics, ['news']);
    }
    receiveAny() {}
  };
  const app = await serve(t, (a) => {
    a.include(endpoint('/mp', 'msgpack'));
    a.include(endpoint('/js', 'json'));
    a.websocket('/stream', { stream: true }, async (socket) => {
      socket.subscribe('news');
      for await (const _ of socket); // eslint-disable-line no-unused-vars
    });
  });
  const mp = wsConnect(t, app.url('/mp'));
  const js = wsConnect(t, app.url('/js'));
  const st = wsConnect(t, app.url('/stream'));
  await Promise.all([mp.opened, js.opened, st.opened]);
  await until(() => app.subscriberCount('news') === 3);
  const value = { headline: 'topics', n: [1, 2.5, null, true] };
  assert.equal(app.publish('news', value), 3);
  const m = await mp.next();
  assert.ok(m.isBinary);
  assert.deepEqual(wirecore.decode(m.data, 'msgpack'), value);
  const j = await js.next();
  assert.ok(!j.isBinary);
  assert.deepEqual(JSON.parse(j.text), value);
  assert.deepEqual(await st.nextJson(), value);
  assert.equal(app.publish('news', Buffer.from([0, 1])), 3);
  for (const c of [mp, js, st]) {
    const b = await c.next();
    assert.ok(b.isBinary);
    assert.deepEqual([...b.data], [0, 1]);
  }
});

test('1,000 subscribers on one topic each get every message', async (t) => {
  const app = await serve(t, (a) => {
    a.websocket('/all', { stream: true }, async (socket) => {
      socket.subscribe('all');
      for await (const _ of socket); // eslint-disable-line no-unused-vars
    });
  });
  const N = 1000;
  const M = 20;
  const clients = [];
  for (let i = 0; i < N; i += 100) {
    const batch = Array.from({ length: 100 }, () => wsConnect(t, app.url('/all')));
    await Promise.all(batch.map((c) => c.opened));
    clients.push(...batch);
  }
  await until(() => app.subscriberCount('all') === N, 20000);
  for (let i = 0; i < M; i++) assert.equal(app.publish('all', `m${i}`), N);
  const got = await Promise.all(clients.map(async (c) => {
    const out = [];
    for (let i = 0; i < M; i++) out.push((await c.next(30000)).text);
    return out;
  }));
  const want = Array.from({ length: M }, (_, i) => `m${i}`);
  for (const g of got) assert.deepEqual(g, want);
});

test('a subscriber that never reads is closed at its limit; the others get everything', async (t) => {
  const app = await serve(t, (a) => {
    a.websocket('/feed', { stream: true, maxBackpressure: 256 * 1024 }, async (socket) => {
      socket.subscribe('feed');
      for await (const _ of socket); // eslint-disable-line no-unused-vars
    });
  });
  // the stalled peer: a raw socket that completes the handshake, then never reads
  const stalled = net.connect(app.port, '127.0.0.1');
  t.after(() => stalled.destroy());
  await new Promise((resolve) => stalled.once('connect', resolve));
  stalled.write('GET /feed HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  stalled.pause();
  const reader = wsConnect(t, app.url('/feed'), { maxPayload: 0 });
  await reader.opened;
  await until(() => app.subscriberCount('feed') === 2);
  const payload = 'p'.repeat(16384);
  const total = 400;
  const counts = [];
  const reading = (async () => {
    for (let i = 0; i < total; i++) assert.equal((await reader.next(30000)).text, payload);
  })();
  for (let i = 0; i < total; i++) {
    counts.push(app.publish('feed', payload));
    await sleep(0);
  }
  await reading;
  assert.equal(counts[0], 2);
  assert.equal(counts[total - 1], 1);
  stalled.destroy();
  await until(() => app.subscriberCount('feed') === 1);
  assert.equal(app.connectionCount, 1);
});
